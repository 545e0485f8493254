// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICareRegistry} from "./ICareRegistry.sol";
import {IConsentRegistry} from "./IConsentRegistry.sol";

/**
 * @title IRecordRegistry
 * @notice Integrity anchors for encrypted health records. Providers anchor the keccak256 of each
 * sealed record version (the vault blob), amend records into linear version chains, anchor Merkle
 * batches of many versions in one transaction, and log who accessed which record for what purpose.
 * No PHI reaches the chain: only record ids, content hashes, addresses and small codes.
 *
 * A record id is `bytes32(abi.encodePacked(patient, bytes12(random)))`: the patient's address in its
 * first 20 bytes, then 12 random bytes made off-chain ({patientOf}). Binding the patient into the id
 * means no call can name another patient for a record (a provider cannot act on someone else's
 * record through a patient account it controls), and only a provider the patient consented to for
 * treatment can take one of that patient's ids (break-glass is emergency reading only). The address is public anyway: every record event indexes it.
 * @dev Purposes (uint8 bit index): TREAT=0, ETREAT=1, HPAYMT=2, HOPERAT=3, HRESCH=4, COVERAGE=5.
 * Data classes (uint8 bit index): DEMOGRAPHICS=0 ... SUBSTANCE_USE=10. Authorisation comes from
 * the CareRegistry (who is an active provider / insurer) and the ConsentRegistry (`hasConsent`).
 *
 * Storage keeps one slot per record (its latest version), one slot per superseded version and one
 * slot per batch; the patient, previous hashes and manifests live only in events. The latest
 * version is held under a 160-bit tag ({contentTagOf}: the first 20 bytes of keccak256 of its
 * content hash) so that anchoring costs exactly one new storage slot while still enforcing
 * record-id uniqueness; a superseded version is held under its full 256-bit hash. Every version
 * ever anchored stays verifiable by its exact hash, and no hash is anchored twice in one record's
 * chain. See docs/RECORDS.md for the trust model.
 */
interface IRecordRegistry {
    /// @notice One anchored version of a record, as returned by the views. All zero when not anchored.
    /// @param author The provider that anchored (or amended into) this version.
    /// @param version 1 for a new record, previous + 1 for each amendment.
    /// @param dataClass The data class of the record (fixed for all its versions).
    /// @param anchoredAt When this version was anchored; for a promoted batch record, the batch's time.
    /// @param latest Whether this is the record's current version (not superseded by an amendment).
    struct RecordVersion {
        address author;
        uint32 version;
        uint8 dataClass;
        uint40 anchoredAt;
        bool latest;
    }

    /// @notice What a batch commits to.
    enum BatchKind {
        None,
        Records,
        AccessLog
    }

    /// @notice An anchored Merkle batch, packed into one storage slot. The root is not stored: the
    /// batch id is derived from it (see {batchIdOf}).
    struct Batch {
        address submitter;
        uint32 count;
        uint40 anchoredAt;
        BatchKind kind;
    }

    /// @notice `author` anchored version 1 of a new record of `patient` with `contentHash`.
    event RecordAnchored(
        bytes32 indexed recordId, address indexed patient, address indexed author, bytes32 contentHash, uint8 dataClass
    );
    /// @notice `author` amended version `version - 1` (`previousContentHash`) into `version` (`contentHash`).
    event RecordAmended(
        bytes32 indexed recordId,
        address indexed patient,
        address indexed author,
        bytes32 previousContentHash,
        bytes32 contentHash,
        uint32 version
    );
    /// @notice A record version proven by batch `batchId` became a regular anchor (promoted by `attester`).
    event RecordAttested(
        bytes32 indexed recordId,
        address indexed patient,
        address indexed author,
        bytes32 contentHash,
        uint32 version,
        uint8 dataClass,
        uint256 batchId,
        address attester
    );
    /// @notice `provider` anchored a batch of `count` record versions under `root`; `manifestHash`
    /// commits to the off-chain batch file (the leaves).
    event BatchAnchored(
        uint256 indexed batchId, address indexed provider, bytes32 root, uint32 count, bytes32 manifestHash
    );
    /// @notice `accessor` declared that it accessed `recordId` of `patient` for `purpose`, holding consent.
    event AccessLogged(bytes32 indexed recordId, address indexed patient, address indexed accessor, uint8 purpose);
    /// @notice `accessor` anchored the Merkle root of an access-log file of `count` entries.
    event AccessLogBatchAnchored(uint256 indexed batchId, address indexed accessor, bytes32 root, uint32 count);

    /// @notice A constructor address is zero.
    error ZeroAddress();
    /// @notice `recordId` does not start with a (non-zero) patient address.
    error InvalidRecordId(bytes32 recordId);
    /// @notice `recordId` belongs to another patient than `patient` (its first 20 bytes).
    error RecordNotOfPatient(bytes32 recordId, address patient);
    /// @notice Content hashes must be non-zero.
    error EmptyContentHash();
    /// @notice `dataClass` is not a defined data class (0-10).
    error InvalidDataClass(uint8 dataClass);
    /// @notice `purpose` is not a defined purpose of use (0-5).
    error InvalidPurpose(uint8 purpose);
    /// @notice `version` is zero or above {MAX_PROMOTED_VERSION}.
    error InvalidVersion(uint32 version);
    /// @notice `account` is not an active Provider in the CareRegistry.
    error NotActiveProvider(address account);
    /// @notice `account` is neither an active Provider nor an active Insurer.
    error NotProviderOrInsurer(address account);
    /// @notice `provider` holds neither TREAT consent nor open break-glass for `patient` and `dataClass`.
    error NoTreatmentRelationship(address patient, address provider, uint8 dataClass);
    /// @notice `accessor` has no consent of `patient` for `purpose` on `dataClass`.
    error NoConsent(address patient, address accessor, uint8 purpose, uint8 dataClass);
    /// @notice Only the leaf's author or its patient may promote a batched record; `account` is neither.
    error NotAuthorOrPatient(bytes32 recordId, address account);
    /// @notice A record with `recordId` is anchored already (ids are unique).
    error RecordAlreadyAnchored(bytes32 recordId);
    /// @notice No record with `recordId` is anchored.
    error RecordNotFound(bytes32 recordId);
    /// @notice `contentHash` is no version of `recordId`.
    error VersionNotFound(bytes32 recordId, bytes32 contentHash);
    /// @notice `contentHash` is a superseded version of `recordId`: amend the latest one (no forks).
    error VersionSuperseded(bytes32 recordId, bytes32 contentHash);
    /// @notice `contentHash` is already a version of `recordId`.
    error ContentAlreadyAnchored(bytes32 recordId, bytes32 contentHash);
    /// @notice `recordId` reached the largest storable version.
    error VersionLimitReached(bytes32 recordId);
    /// @notice A batch needs a non-zero root and at least one leaf.
    error InvalidBatch(bytes32 root, uint32 count);
    /// @notice This submitter anchored this root already.
    error BatchAlreadyAnchored(uint256 batchId);
    /// @notice A Merkle proof longer than {MAX_PROOF_LENGTH} is never valid.
    error ProofTooLong(uint256 length, uint256 max);
    /// @notice The leaf and proof do not lead to the root of record batch `batchId` by the leaf's author.
    error NotInBatch(uint256 batchId);

    /// @notice Anchors version 1 of a new record of the patient named by `recordId`. Caller: an active
    /// provider holding live TREAT consent of that patient for `dataClass` (break-glass does not count).
    /// @param recordId The patient's address then 12 random bytes made off-chain; unique across the
    /// registry.
    /// @param contentHash keccak256 of the sealed record blob (non-zero).
    /// @dev Writes one new storage slot. The author is stored as its CareRegistry party id.
    function anchor(bytes32 recordId, bytes32 contentHash, uint8 dataClass) external;

    /// @notice Amends the latest version of a record into a new version linked to it. Caller: an active
    /// provider holding live TREAT consent of the record's patient for its data class, the author
    /// included (a revoked author may not amend; break-glass does not count). The old version stays
    /// verifiable by its exact hash (not latest); nothing is deleted.
    /// @param previousContentHash The exact content hash of the latest version; a superseded one reverts.
    /// @param newContentHash The content hash of the new version, never used by this record before.
    /// @return version The new version number.
    function amend(bytes32 recordId, bytes32 previousContentHash, bytes32 newContentHash)
        external
        returns (uint32 version);

    /// @notice Anchors the Merkle root of `count` record versions (StandardMerkleTree leaves
    /// `(recordId, contentHash, patient, version, dataClass, author)` with `author` = the caller).
    /// Caller: an active provider. No per-patient check: a batch proves existence and integrity at
    /// this time by this provider; authorisation is checked when a record is promoted or used.
    /// @return batchId `uint256(keccak256(abi.encode(msg.sender, root)))`.
    function anchorBatch(bytes32 root, uint32 count, bytes32 manifestHash) external returns (uint256 batchId);

    /// @notice Promotes a record version proven by record batch `batchId` to a regular anchor (as the
    /// record's latest version, dated now, when its consent is checked). Caller: the leaf's `author`
    /// or `patient`. Requires, now: `author` an active provider holding live TREAT consent for
    /// `patient` and `dataClass`, `recordId` a record id of `patient`, `version` in
    /// 1..{MAX_PROMOTED_VERSION}, and no record with `recordId` anchored yet (the first promotion
    /// of an id is final: one leaf per record id becomes the record).
    function attestBatchRecord(
        bytes32 recordId,
        bytes32 contentHash,
        address patient,
        uint32 version,
        uint8 dataClass,
        address author,
        bytes32[] calldata proof,
        uint256 batchId
    ) external;

    /// @notice Records that the caller (an active provider or insurer) accesses `recordId` of
    /// `patient` for `purpose`; requires consent for `purpose` on the record's data class (for
    /// ETREAT, an open break-glass counts). `patient` must be the record's patient. Event only.
    function logAccess(address patient, bytes32 recordId, uint8 purpose) external;

    /// @notice Anchors the Merkle root of an access-log file of `count` entries. Caller: an active
    /// provider or insurer.
    /// @return batchId `uint256(keccak256(abi.encode(msg.sender, root)))`.
    function logAccessBatch(bytes32 root, uint32 count) external returns (uint256 batchId);

    /// @notice Whether `contentHash` is an anchored version of `recordId`, and its metadata.
    /// @return anchored False (and all other values zero) if it is not.
    /// @return version Its version number.
    /// @return author The provider that anchored it.
    /// @return anchoredAt When it was anchored.
    /// @return latest Whether it is the record's current version.
    function verify(bytes32 recordId, bytes32 contentHash)
        external
        view
        returns (bool anchored, uint32 version, address author, uint40 anchoredAt, bool latest);

    /// @notice {verify} as a struct (all zero when not anchored).
    function recordInfo(bytes32 recordId, bytes32 contentHash) external view returns (RecordVersion memory);

    /// @notice What the ClaimEscrow checks of a cited record version, without resolving its author's
    /// address: {recordInfo} less the CareRegistry call that maps the author's party id to its account.
    /// @return authorId The author's CareRegistry party id; 0 (and all other values 0) if the version
    /// is not anchored.
    /// @return dataClass Its data class.
    /// @return anchoredAt When it was anchored.
    function recordFacts(bytes32 recordId, bytes32 contentHash)
        external
        view
        returns (uint32 authorId, uint8 dataClass, uint40 anchoredAt);

    /// @notice The latest version of `recordId` (all zero when the record does not exist).
    /// @return contentTag The latest version's tag, {contentTagOf} its content hash (the full hash is
    /// in the RecordAnchored / RecordAmended / RecordAttested event of that version).
    /// @return info Its author, version, data class and time; `latest` is true for any existing record.
    function latestOf(bytes32 recordId) external view returns (bytes20 contentTag, RecordVersion memory info);

    /// @notice Whether the leaf is in record batch `batchId` anchored by `author`. False for an
    /// unknown or access-log batch, a wrong leaf or proof, or a proof longer than {MAX_PROOF_LENGTH}.
    function verifyInBatch(
        bytes32 recordId,
        bytes32 contentHash,
        address patient,
        uint32 version,
        uint8 dataClass,
        address author,
        bytes32[] calldata proof,
        uint256 batchId
    ) external view returns (bool);

    /// @notice The batch stored under `batchId` (all zero if none).
    function batchOf(uint256 batchId) external view returns (Batch memory);

    /// @notice The id a batch with `root` submitted by `submitter` gets.
    function batchIdOf(address submitter, bytes32 root) external pure returns (uint256);

    /// @notice The patient a record id belongs to: its first 20 bytes.
    function patientOf(bytes32 recordId) external pure returns (address);

    /// @notice The 160-bit tag a record's latest version is stored under ({latestOf}): the first 20
    /// bytes of keccak256(contentHash).
    function contentTagOf(bytes32 contentHash) external pure returns (bytes20);

    /// @notice The largest version a batched leaf may be promoted at (255), so that every record keeps
    /// room for at least 65,280 amendments.
    // solhint-disable-next-line func-name-mixedcase
    function MAX_PROMOTED_VERSION() external view returns (uint32);

    /// @notice The interface revision (2: keccak content tags, treatment-only writes, restricted promotion).
    function version() external pure returns (uint256);

    /// @notice The CareRegistry that says who is an active provider or insurer.
    function registry() external view returns (ICareRegistry);

    /// @notice The ConsentRegistry whose `hasConsent` authorises anchoring, amending and access logging.
    function consent() external view returns (IConsentRegistry);

    /// @notice Longest accepted Merkle proof: 32 siblings, the depth of a tree of 2^32 leaves
    /// (`count` is a uint32, and OpenZeppelin trees of n leaves have depth ceil(log2 n)).
    // solhint-disable-next-line func-name-mixedcase
    function MAX_PROOF_LENGTH() external view returns (uint256);
}
