// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title ICareRegistry
 * @notice Who is who in MedLedger: credentialed providers, insurers and arbiters, their status,
 * a commitment to their off-chain credentials and an optional encryption public key.
 * @dev Patients need no registration: any address is a patient. Anyone may publish an
 * encryption key for its own address. Powers are separated (interface 3): one registrar registers
 * providers and insurers and suspends anyone; the governor reinstates, registers arbiters, assigns
 * arbiters to insurers and appoints registrars.
 * An active provider or insurer may publish the public URL of
 * its record gateway (docs/GATEWAY.md, "Federation").
 */
interface ICareRegistry {
    /// @notice The role a registered party plays. `None` means "not registered".
    enum Role {
        None,
        Provider,
        Insurer,
        Arbiter
    }

    /// @notice A registered party, packed into one storage slot.
    /// @param id The party's compact id (1, 2, ... in registration order; never reused). Record
    /// storage refers to authors by this id, and it follows the party through a migration.
    /// @param migrated The party moved away from this account ({migrate}): the account is inactive for
    /// every role for good (never reinstated, re-registered or migrated again).
    /// @param successor This account took the party over from an earlier account (its home, {resolve}).
    struct Party {
        Role role;
        bool active;
        uint40 registeredAt;
        uint40 updatedAt;
        uint32 id;
        bool migrated;
        bool successor;
    }

    /// @notice A party was registered by `registrar` with commitment `metadataHash`.
    event PartyRegistered(address indexed account, Role indexed role, bytes32 metadataHash, address indexed registrar);
    /// @notice A party's credentials commitment changed.
    event PartyMetadataUpdated(address indexed account, bytes32 metadataHash, address indexed registrar);
    /// @notice A party was suspended: it loses its rights in every MedLedger contract at once.
    event PartySuspended(address indexed account, bytes32 reasonCode, address indexed registrar);
    /// @notice A suspended party was reinstated.
    event PartyReinstated(address indexed account, address indexed registrar);
    /// @notice The governor assigned `arbiter` to resolve `insurer`'s disputes (zero: none assigned).
    event ArbiterAssigned(address indexed insurer, address indexed arbiter, address indexed governor);
    /// @notice `account` published (or, with an empty key, withdrew) its encryption public key.
    event EncryptionKeyPublished(address indexed account, bytes publicKey);
    /// @notice The governor moved party `id` from `account` to `newAccount`: its record, id, published key,
    /// gateway endpoint and (in the other contracts, keyed by its home account) money, claims and consents.
    event PartyMigrated(address indexed account, address indexed newAccount, uint32 id, address indexed governor);
    /// @notice `account` published the public URL of its record gateway (`url`), or withdrew it (`url` empty).
    event GatewayEndpointSet(address indexed account, string url);

    /// @notice Every compact party id is taken (2^32 - 1 registrations).
    error PartyIdsExhausted();
    /// @notice `role` is `None`, or not a role a party can be registered under.
    error InvalidRole(Role role);
    /// @notice The zero address cannot be registered.
    error ZeroAccount();
    /// @notice The metadata commitment must not be zero.
    error EmptyMetadata();
    /// @notice `account` is registered already.
    error PartyAlreadyRegistered(address account);
    /// @notice `account` is not registered.
    error PartyNotRegistered(address account);
    /// @notice `account` is already suspended.
    error PartyAlreadySuspended(address account);
    /// @notice `account` is not suspended.
    error PartyNotSuspended(address account);
    /// @notice No account grants itself a role (`role` to `account`, the caller).
    error SelfGrant(address account, bytes32 role);
    /// @notice No registrar (or governor) registers itself.
    error SelfRegistration(address account);
    /// @notice `account` is not registered as an insurer.
    error NotAnInsurer(address account);
    /// @notice `account` is not a registered, active arbiter.
    error NotAnActiveArbiter(address account);
    /// @notice `account` migrated to another account (it can do nothing any more).
    error AccountMigrated(address account);
    /// @notice A party can only migrate to a fresh account: `account` is registered, or holds a role.
    error AccountNotFresh(address account);
    /// @notice A public key must be 33 (compressed) or 65 (uncompressed, 0x04-prefixed) bytes of secp256k1.
    error InvalidEncryptionKey(uint256 length);
    /// @notice A gateway endpoint must be 1 to `maxLength` bytes long; it was `length` bytes.
    error InvalidGatewayEndpoint(uint256 length, uint256 maxLength);
    /// @notice Only an active provider or insurer may publish a gateway endpoint; `account` is not one
    /// (unregistered, an arbiter, or suspended).
    error NotActiveCustodian(address account);

    /// @notice Registers `account` under `role` with a hash of its off-chain credentials. Providers and
    /// insurers by a registrar, arbiters by the governor; never the caller itself.
    function register(address account, Role role, bytes32 metadataHash) external;

    /// @notice Replaces the credentials commitment of a registered party.
    function updateMetadata(address account, bytes32 metadataHash) external;

    /// @notice Suspends an active party; `reasonCode` is a registrar-defined code, never free text.
    function suspend(address account, bytes32 reasonCode) external;

    /// @notice Reinstates a suspended party (the governor: a suspension is fast, a reinstatement is not).
    function reinstate(address account) external;

    /// @notice The governor assigns `arbiter` (a registered, active arbiter; zero to unassign) to resolve
    /// the disputes of `insurer` (a registered insurer). Replaces any earlier assignment at once, open
    /// disputes included.
    function assignArbiter(address insurer, address arbiter) external;

    /// @notice The governor moves the party registered at `account` to the fresh account `newAccount`
    /// (never registered, holding no role): role, id, status (a suspended party stays suspended),
    /// credentials commitment, encryption key, gateway endpoint and arbiter assignments follow, and
    /// `account` is inactive for every role for good. Party-owned state in the other contracts stays
    /// keyed by the party's home account (the first account it was registered under), which {resolve}
    /// maps to the party's current account: nothing is copied, so no migration loops.
    function migrate(address account, address newAccount) external;

    /// @notice Publishes the caller's secp256k1 public key for record-key wrapping; empty withdraws it.
    function publishEncryptionKey(bytes calldata publicKey) external;

    /// @notice Publishes the caller's record gateway URL (1 to 256 bytes), replacing any earlier one.
    /// @dev The caller must be an active provider or insurer. The contract checks only the length: the
    /// URL's form (https, no credentials, query or fragment) is the SDK's check (medledger.federation).
    /// A registrar cannot set another party's endpoint: where a custodian serves records is the
    /// custodian's own statement, made with its own key.
    function setGatewayEndpoint(string calldata url) external;

    /// @notice Withdraws the caller's gateway URL. Allowed to any account, suspended parties included:
    /// a withdrawal only removes a public pointer.
    function clearGatewayEndpoint() external;

    /// @notice The party record of `account` (role `None` if unregistered).
    function partyOf(address account) external view returns (Party memory);

    /// @notice The credentials commitment of `account`.
    function metadataOf(address account) external view returns (bytes32);

    /// @notice The published encryption key of `account` (empty if none).
    function encryptionKeyOf(address account) external view returns (bytes memory);

    /// @notice The gateway URL `account` published (empty if none). A suspended party's URL stays
    /// readable; its gateway's readers are refused by the suspension itself where it matters.
    function gatewayEndpointOf(address account) external view returns (string memory);

    /// @notice Whether `account` is registered under `role` and active. One storage read.
    function isActive(address account, Role role) external view returns (bool);

    /// @notice The role of `account` if it is registered and active, else `Role.None`. One storage read.
    function activeRoleOf(address account) external view returns (Role);

    /// @notice {activeRoleOf} plus the party's compact id (the id is returned even when suspended;
    /// 0 if unregistered). One storage read.
    function activePartyOf(address account) external view returns (Role role, uint32 id);

    /// @notice The arbiter assigned to `insurer` (its home account, {resolve}; zero if none: a successor
    /// account has no assignment of its own) and whether it is an active arbiter now. A migrated
    /// arbiter is answered with its current account.
    /// ClaimEscrow accepts a ruling on `insurer`'s claims only from it, and only while active.
    function arbiterOf(address insurer) external view returns (address arbiter, bool active);

    /// @notice The account registered under compact id `id` (zero address if none).
    function accountOf(uint32 id) external view returns (address);

    /// @notice Where the party known by `account` stands now. `current` is its current account (a migrated
    /// account resolves to its successor; otherwise `account` itself), `role` the current account's role if
    /// it is active (else `None`), `id` its party id and `home` the account its state is keyed by in the other
    /// contracts (the first account it was registered under). All zero if `account` was never registered.
    /// A caller is the party only if `current` equals it: a migrated account resolves to its successor
    /// but acts for nobody. One storage read for a party that never migrated.
    function resolve(address account) external view returns (Role role, uint32 id, address home, address current);

    /// @notice The interface revision (4: account migration; 3: separated powers, arbiters per insurer).
    function version() external pure returns (uint256);
}
