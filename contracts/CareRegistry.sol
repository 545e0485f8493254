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
 * The governor may move a party to a fresh account ({migrate}, docs/OPERATIONS.md): the party keeps its
 * id and its home account (the key of its state in the other contracts) and the old account is retired.
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
    /// @dev Keyed by the insurer's home account; the value is the arbiter's account when assigned (a
    /// migrated arbiter is followed to its successor by {arbiterOf}).
    mapping(address insurer => address arbiter) private _arbiters;
    /// @dev The home account (first registered account) of a successor account; set only by {migrate}.
    mapping(address account => address home) private _homes;

    /// @dev Bit offsets of the fields {resolve} reads from a packed {Party} slot (see {_partyWord}).
    uint256 private constant _ACTIVE = 8;
    uint256 private constant _ID = 96;
    uint256 private constant _MIGRATED = 128;
    uint256 private constant _SUCCESSOR = 136;

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
        _parties[account] = Party({
            role: role,
            active: true,
            registeredAt: now_,
            updatedAt: now_,
            id: id,
            migrated: false,
            successor: false
        });
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
        Party storage insurerParty = _parties[insurer];
        if (insurerParty.role != Role.Insurer) revert NotAnInsurer(insurer);
        if (insurerParty.migrated) revert AccountMigrated(insurer);
        if (arbiter != address(0)) {
            Party storage party = _parties[arbiter];
            if (party.role != Role.Arbiter || !party.active) revert NotAnActiveArbiter(arbiter);
        }
        _arbiters[_homeOf(insurer, insurerParty)] = arbiter;
        emit ArbiterAssigned(insurer, arbiter, msg.sender);
    }

    /// @inheritdoc ICareRegistry
    function migrate(address account, address newAccount) external onlyRole(GOVERNOR_ROLE) {
        Party storage party = _registered(account);
        if (
            newAccount == address(0) || _parties[newAccount].role != Role.None || hasRole(DEFAULT_ADMIN_ROLE, newAccount)
                || hasRole(GOVERNOR_ROLE, newAccount) || hasRole(REGISTRAR_ROLE, newAccount)
        ) revert AccountNotFresh(newAccount);
        uint40 now_ = uint40(block.timestamp);
        Party memory moved = party;
        address home = _homeOf(account, moved);
        // Effects only (no external calls). Every copy is bounded: a 33/65-byte key, a URL of at most
        // MAX_GATEWAY_ENDPOINT_LENGTH bytes.
        party.active = false;
        party.migrated = true;
        party.updatedAt = now_;
        _parties[newAccount] = Party({
            role: moved.role,
            active: moved.active,
            registeredAt: moved.registeredAt,
            updatedAt: now_,
            id: moved.id,
            migrated: false,
            successor: true
        });
        _homes[newAccount] = home;
        _accounts[moved.id] = newAccount;
        _metadata[newAccount] = _metadata[account];
        delete _metadata[account];
        _encryptionKeys[newAccount] = _encryptionKeys[account];
        delete _encryptionKeys[account];
        _gatewayEndpoints[newAccount] = _gatewayEndpoints[account];
        delete _gatewayEndpoints[account];
        emit PartyMigrated(account, newAccount, moved.id, msg.sender);
    }

    /// @inheritdoc ICareRegistry
    function publishEncryptionKey(bytes calldata publicKey) external {
        if (_parties[msg.sender].migrated) revert AccountMigrated(msg.sender);
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
        if (_parties[msg.sender].migrated) revert AccountMigrated(msg.sender);
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
            if (party.migrated) {
                // The arbiter moved: follow its id to its current account (one hop, never a chain).
                arbiter = _accounts[party.id];
                party = _parties[arbiter];
            }
            active = party.active && party.role == Role.Arbiter;
        }
    }

    /// @inheritdoc ICareRegistry
    function resolve(address account) external view returns (Role, uint32, address, address) {
        address current = account;
        uint256 word = _partyWord(account);
        if (uint8(word >> _MIGRATED) != 0) {
            // One hop: `_accounts[id]` is always the party's latest account, however often it moved.
            current = _accounts[uint32(word >> _ID)];
            word = _partyWord(current);
        } else if (word == 0) {
            // Unregistered: nobody (all zero), so the view never echoes an address it knows nothing about.
            current = address(0);
        }
        address home = uint8(word >> _SUCCESSOR) != 0 ? _homes[current] : current;
        // Assembly: the four-word answer (role if active else None, id, home, current) written at 0x00-0x7f
        // and returned at once. This call is on every party entry point of the ClaimEscrow and every consent
        // check, and the ABI encoder's cleanups cost more than its storage read. Nothing runs after
        // `return`, so overwriting the free-memory pointer and the zero slot is harmless.
        assembly {
            mstore(0x00, mul(and(word, 0xff), iszero(iszero(and(shr(_ACTIVE, word), 0xff)))))
            mstore(0x20, and(shr(_ID, word), 0xffffffff))
            mstore(0x40, home)
            mstore(0x60, current)
            return(0x00, 0x80)
        }
    }

    /// @inheritdoc ICareRegistry
    function accountOf(uint32 id) external view returns (address) {
        return _accounts[id];
    }

    /// @inheritdoc ICareRegistry
    function version() external pure returns (uint256) {
        return 4;
    }

    /// @dev A registered account that has not migrated away (suspend, reinstate, metadata, migrate).
    function _registered(address account) private view returns (Party storage party) {
        party = _parties[account];
        if (party.role == Role.None) revert PartyNotRegistered(account);
        if (party.migrated) revert AccountMigrated(account);
    }

    /// @dev The packed {Party} slot of `account`, read once (on every party entry point of the other contracts,
    /// through {resolve}). Bit offsets are the struct's storage layout: role 0, active 8, registeredAt 16,
    /// updatedAt 56, id 96, migrated 128, successor 136.
    function _partyWord(address account) private view returns (uint256 word) {
        Party storage party = _parties[account];
        // Assembly: one SLOAD of the whole slot instead of a masked read per field; `party` starts its slot.
        assembly ("memory-safe") {
            word := sload(party.slot)
        }
    }

    /// @dev The home account of `account` (its own address unless it took over a migrated party).
    function _homeOf(address account, Party memory party) private view returns (address) {
        return party.successor ? _homes[account] : account;
    }
}
