// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ICareRegistry} from "../interfaces/ICareRegistry.sol";

/**
 * @title CareRegistry
 * @notice The credentialing registry, with separated powers: registrars register providers and
 * insurers and suspend any party at once (one registrar suffices); the governor (a TimelockController
 * whose proposer is the governance Safe, in a normal deployment) reinstates parties, registers arbiters,
 * assigns each insurer its arbiter and appoints registrars. No account grants itself a role and no
 * registrar registers itself. Only commitments (hashes of NPI, licence or payer id documents) are
 * stored, never the credentials themselves.
 * Parties publish their own encryption keys and, for custodians, the URL of their record gateway.
 */
contract CareRegistry is ICareRegistry, AccessControl {
    /// @notice Credentialing authorities that register providers and insurers and suspend any party.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice Governance (quorum + delay): reinstates, registers and assigns arbiters; admin of REGISTRAR_ROLE.
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");
    /// @notice The longest gateway endpoint URL, in bytes.
    uint256 public constant MAX_GATEWAY_ENDPOINT_LENGTH = 256;

    mapping(address account => Party) private _parties;
    mapping(address account => bytes32 metadataHash) private _metadata;
    mapping(address account => bytes publicKey) private _encryptionKeys;
    mapping(address account => string url) private _gatewayEndpoints;
    mapping(uint32 id => address account) private _accounts;
    uint32 private _partyCount;
    mapping(address insurer => address arbiter) private _arbiters;

    /// @param admin The governance account: DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE (the deployer, until it
    /// hands both to the timelock).
    /// @param registrar The first registrar, or the zero address for none. Set here because no account
    /// may grant itself a role later (a deployer that is also the first registrar).
    constructor(address admin, address registrar) {
        if (admin == address(0)) revert ZeroAccount();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
        _setRoleAdmin(REGISTRAR_ROLE, GOVERNOR_ROLE);
        if (registrar != address(0)) _grantRole(REGISTRAR_ROLE, registrar);
    }

    /// @notice {AccessControl-grantRole}, except that no account grants a role to itself.
    function grantRole(bytes32 role, address account) public override onlyRole(getRoleAdmin(role)) {
        if (account == msg.sender) revert SelfGrant(account, role);
        _grantRole(role, account);
    }

    /// @inheritdoc ICareRegistry
    function register(address account, Role role, bytes32 metadataHash) external {
        _checkRole(role == Role.Arbiter ? GOVERNOR_ROLE : REGISTRAR_ROLE);
        if (account == msg.sender) revert SelfRegistration(account);
        if (account == address(0)) revert ZeroAccount();
        if (role == Role.None) revert InvalidRole(role);
        if (metadataHash == bytes32(0)) revert EmptyMetadata();
        if (_parties[account].role != Role.None) revert PartyAlreadyRegistered(account);
        uint32 id = _partyCount;
        if (id == type(uint32).max) revert PartyIdsExhausted();
        // Cannot overflow: checked against type(uint32).max just above.
        unchecked {
            ++id;
        }
        _partyCount = id;
        uint40 now_ = uint40(block.timestamp);
        _parties[account] = Party({role: role, active: true, registeredAt: now_, updatedAt: now_, id: id});
        _accounts[id] = account;
        _metadata[account] = metadataHash;
        emit PartyRegistered(account, role, metadataHash, msg.sender);
    }

    /// @inheritdoc ICareRegistry
    function updateMetadata(address account, bytes32 metadataHash) external onlyRole(REGISTRAR_ROLE) {
        if (metadataHash == bytes32(0)) revert EmptyMetadata();
        Party storage party = _registered(account);
        party.updatedAt = uint40(block.timestamp);
        _metadata[account] = metadataHash;
        emit PartyMetadataUpdated(account, metadataHash, msg.sender);
    }

    /// @inheritdoc ICareRegistry
    function suspend(address account, bytes32 reasonCode) external onlyRole(REGISTRAR_ROLE) {
        Party storage party = _registered(account);
        if (!party.active) revert PartyAlreadySuspended(account);
        party.active = false;
        party.updatedAt = uint40(block.timestamp);
        emit PartySuspended(account, reasonCode, msg.sender);
    }

    /// @inheritdoc ICareRegistry
    function reinstate(address account) external onlyRole(GOVERNOR_ROLE) {
        Party storage party = _registered(account);
        if (party.active) revert PartyNotSuspended(account);
        party.active = true;
        party.updatedAt = uint40(block.timestamp);
        emit PartyReinstated(account, msg.sender);
    }

    /// @inheritdoc ICareRegistry
    function assignArbiter(address insurer, address arbiter) external onlyRole(GOVERNOR_ROLE) {
        if (_parties[insurer].role != Role.Insurer) revert NotAnInsurer(insurer);
        if (arbiter != address(0)) {
            Party storage party = _parties[arbiter];
            if (party.role != Role.Arbiter || !party.active) revert NotAnActiveArbiter(arbiter);
        }
        _arbiters[insurer] = arbiter;
        emit ArbiterAssigned(insurer, arbiter, msg.sender);
    }

    /// @inheritdoc ICareRegistry
    function publishEncryptionKey(bytes calldata publicKey) external {
        uint256 len = publicKey.length;
        bool compressed = len == 33 && (publicKey[0] == 0x02 || publicKey[0] == 0x03);
        bool uncompressed = len == 65 && publicKey[0] == 0x04;
        if (len != 0 && !compressed && !uncompressed) revert InvalidEncryptionKey(len);
        _encryptionKeys[msg.sender] = publicKey;
        emit EncryptionKeyPublished(msg.sender, publicKey);
    }

    /// @inheritdoc ICareRegistry
    function setGatewayEndpoint(string calldata url) external {
        uint256 len = bytes(url).length;
        if (len == 0 || len > MAX_GATEWAY_ENDPOINT_LENGTH) {
            revert InvalidGatewayEndpoint(len, MAX_GATEWAY_ENDPOINT_LENGTH);
        }
        Party storage party = _parties[msg.sender];
        if (!party.active || (party.role != Role.Provider && party.role != Role.Insurer)) {
            revert NotActiveCustodian(msg.sender);
        }
        _gatewayEndpoints[msg.sender] = url;
        emit GatewayEndpointSet(msg.sender, url);
    }

    /// @inheritdoc ICareRegistry
    function clearGatewayEndpoint() external {
        delete _gatewayEndpoints[msg.sender];
        emit GatewayEndpointSet(msg.sender, "");
    }

    /// @inheritdoc ICareRegistry
    function partyOf(address account) external view returns (Party memory) {
        return _parties[account];
    }

    /// @inheritdoc ICareRegistry
    function metadataOf(address account) external view returns (bytes32) {
        return _metadata[account];
    }

    /// @inheritdoc ICareRegistry
    function encryptionKeyOf(address account) external view returns (bytes memory) {
        return _encryptionKeys[account];
    }

    /// @inheritdoc ICareRegistry
    function gatewayEndpointOf(address account) external view returns (string memory) {
        return _gatewayEndpoints[account];
    }

    /// @inheritdoc ICareRegistry
    function isActive(address account, Role role) external view returns (bool) {
        Party storage party = _parties[account];
        return party.active && party.role == role && role != Role.None;
    }

    /// @inheritdoc ICareRegistry
    function activeRoleOf(address account) external view returns (Role) {
        Party storage party = _parties[account];
        return party.active ? party.role : Role.None;
    }

    /// @inheritdoc ICareRegistry
    function activePartyOf(address account) external view returns (Role role, uint32 id) {
        Party storage party = _parties[account];
        return (party.active ? party.role : Role.None, party.id);
    }

    /// @inheritdoc ICareRegistry
    function arbiterOf(address insurer) external view returns (address arbiter, bool active) {
        arbiter = _arbiters[insurer];
        if (arbiter != address(0)) {
            Party storage party = _parties[arbiter];
            active = party.active && party.role == Role.Arbiter;
        }
    }

    /// @inheritdoc ICareRegistry
    function accountOf(uint32 id) external view returns (address) {
        return _accounts[id];
    }

    /// @inheritdoc ICareRegistry
    function version() external pure returns (uint256) {
        return 3;
    }

    function _registered(address account) private view returns (Party storage party) {
        party = _parties[account];
        if (party.role == Role.None) revert PartyNotRegistered(account);
    }
}
