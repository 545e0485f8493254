// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ICareRegistry} from "../interfaces/ICareRegistry.sol";
import {IConsentRegistry} from "../interfaces/IConsentRegistry.sol";
import {IRecordRegistry} from "../interfaces/IRecordRegistry.sol";
import {Scopes} from "./libraries/Scopes.sol";

/**
 * @title RecordRegistry
 * @notice Integrity anchors, linear amendment chains, Merkle batches and access logs for encrypted
 * health records. Only ids, hashes, addresses and small codes are stored or emitted.
 * @dev A record id is the patient's address (its first 20 bytes) followed by 12 random bytes made
 * off-chain (see {patientOf}): the patient is bound to the record by the id itself, so no call can
 * pass another patient for it, and a record id can only be taken by a provider that patient
 * consented to for treatment (break-glass grants emergency reading only, never writing).
 *
 * Storage layout (docs/RECORDS.md):
 * - `_heads[recordId]`: ONE slot per record holding its latest version, a `PackedHead` word:
 *   contentTag (bits 0-159) | authorId (160-191) | version (192-207) | dataClass (208-215) |
 *   anchoredAt (216-255). Zero iff the record does not exist (a stored version is never 0).
 *   Keying by the record id alone is what makes ids unique; the price is that the latest content
 *   hash is held as a 160-bit tag and the author as its CareRegistry id. The tag is the first 20
 *   bytes of keccak256(contentHash), not of the hash itself: a caller-chosen 32-byte value matches
 *   it only if it IS the anchored hash (a 160-bit second preimage otherwise), so every comparison
 *   with the head is as good as a full 256-bit one.
 * - `_past[keccak256(abi.encode(recordId, contentHash))]`: one slot per superseded version, written
 *   by {amend} when it moves the old head out; keyed by the full 256-bit hash.
 * - `_batches[batchId]`: one slot per batch; the root is folded into `batchId`.
 * Previous hashes and batch manifests live only in events.
 */
contract RecordRegistry is IRecordRegistry {
    /// @dev A `Head` packed into one word by hand: one SSTORE / SLOAD instead of the five masked
    /// read-modify-write pairs a packed-struct assignment compiles to (~1,500 gas on `anchor`).
    type PackedHead is uint256;

    /// @inheritdoc IRecordRegistry
    uint256 public constant MAX_PROOF_LENGTH = 32;

    /// @inheritdoc IRecordRegistry
    uint32 public constant MAX_PROMOTED_VERSION = 255;

    uint16 private constant _MAX_VERSION = type(uint16).max;

    /// @dev A record's latest version, unpacked (160+32+16+8+40 = 256 bits when packed). `authorId`
    /// is the author's CareRegistry party id.
    struct Head {
        bytes20 contentTag;
        uint32 authorId;
        uint16 version;
        uint8 dataClass;
        uint40 anchoredAt;
    }

    /// @dev A batch leaf in memory (one stack slot instead of six).
    struct Leaf {
        bytes32 recordId;
        bytes32 contentHash;
        address patient;
        uint32 version;
        uint8 dataClass;
        address author;
    }

    /// @dev A superseded version (32+16+8+40 bits). Present iff the version was amended.
    struct PastVersion {
        uint32 authorId;
        uint16 version;
        uint8 dataClass;
        uint40 anchoredAt;
    }

    /// @inheritdoc IRecordRegistry
    ICareRegistry public immutable registry;
    /// @inheritdoc IRecordRegistry
    IConsentRegistry public immutable consent;

    mapping(bytes32 recordId => PackedHead) private _heads;
    mapping(bytes32 versionKey => PastVersion) private _past;
    mapping(uint256 batchId => Batch) private _batches;

    /// @param registry_ The CareRegistry of providers and insurers.
    /// @param consent_ The ConsentRegistry consulted for every patient-scoped action.
    constructor(ICareRegistry registry_, IConsentRegistry consent_) {
        if (address(registry_) == address(0) || address(consent_) == address(0)) revert ZeroAddress();
        registry = registry_;
        consent = consent_;
    }

    // ------------------------------------------------------------------ records

    /// @inheritdoc IRecordRegistry
    /// @dev One ConsentRegistry call answers both "active Provider" and "treatment relationship", and
    /// returns the CareRegistry id stored as the author.
    function anchor(bytes32 recordId, bytes32 contentHash, uint8 dataClass) external {
        address patient = patientOf(recordId);
        if (patient == address(0)) revert InvalidRecordId(recordId);
        if (contentHash == bytes32(0)) revert EmptyContentHash();
        if (dataClass > Scopes.MAX_DATA_CLASS) revert InvalidDataClass(dataClass);
        if (PackedHead.unwrap(_heads[recordId]) != 0) revert RecordAlreadyAnchored(recordId);
        uint32 authorId = _requireTreatment(patient, msg.sender, dataClass);
        _heads[recordId] = _pack(_tagOf(contentHash), authorId, 1, dataClass, uint40(block.timestamp));
        emit RecordAnchored(recordId, patient, msg.sender, contentHash, dataClass);
    }

    /// @inheritdoc IRecordRegistry
    function amend(bytes32 recordId, bytes32 previousContentHash, bytes32 newContentHash)
        external
        returns (uint32 version)
    {
        if (newContentHash == bytes32(0)) revert EmptyContentHash();
        Head memory head = _unpack(_heads[recordId]);
        if (head.version == 0) revert RecordNotFound(recordId);
        // Checked before the tag comparison: a superseded version can never be amended (no forks),
        // and its slot can never be written twice (nothing is overwritten).
        PastVersion storage previous = _past[_versionKey(recordId, previousContentHash)];
        if (previous.anchoredAt != 0) revert VersionSuperseded(recordId, previousContentHash);
        // Full-hash comparisons through the keccak tag: a forged previous hash that shares bytes with
        // the head is refused, so the version filed under `_past` is always the exact anchored hash.
        if (head.contentTag != _tagOf(previousContentHash)) revert VersionNotFound(recordId, previousContentHash);
        bytes20 newTag = _tagOf(newContentHash);
        if (newTag == head.contentTag || _past[_versionKey(recordId, newContentHash)].anchoredAt != 0) {
            revert ContentAlreadyAnchored(recordId, newContentHash);
        }
        if (head.version == _MAX_VERSION) revert VersionLimitReached(recordId);

        // Amending needs current treatment consent, the author's included: a revoked author may not.
        address patient = patientOf(recordId);
        uint32 authorId = _requireTreatment(patient, msg.sender, head.dataClass);

        previous.authorId = head.authorId;
        previous.version = head.version;
        previous.dataClass = head.dataClass;
        previous.anchoredAt = head.anchoredAt;
        // Cannot overflow: head.version < _MAX_VERSION was checked above.
        unchecked {
            version = head.version + 1;
        }
        _heads[recordId] = _pack(newTag, authorId, uint16(version), head.dataClass, uint40(block.timestamp));
        emit RecordAmended(recordId, patient, msg.sender, previousContentHash, newContentHash, version);
    }

    // ------------------------------------------------------------------ batches

    /// @inheritdoc IRecordRegistry
    function anchorBatch(bytes32 root, uint32 count, bytes32 manifestHash) external returns (uint256 batchId) {
        _requireActiveProvider(msg.sender);
        batchId = _storeBatch(root, count, BatchKind.Records);
        emit BatchAnchored(batchId, msg.sender, root, count, manifestHash);
    }

    /// @inheritdoc IRecordRegistry
    function attestBatchRecord(
        bytes32 recordId,
        bytes32 contentHash,
        address patient,
        uint32 version,
        uint8 dataClass,
        address author,
        bytes32[] calldata proof,
        uint256 batchId
    ) external {
        // The author built the root and so already chose every leaf in it; the patient is the data
        // subject. Nobody else picks which leaf of a record id becomes the record.
        if (msg.sender != author && msg.sender != patient) revert NotAuthorOrPatient(recordId, msg.sender);
        if (proof.length > MAX_PROOF_LENGTH) revert ProofTooLong(proof.length, MAX_PROOF_LENGTH);
        Leaf memory leaf = Leaf(recordId, contentHash, patient, version, dataClass, author);
        if (!_inBatch(leaf, proof, batchId)) revert NotInBatch(batchId);
        _promote(leaf);
        emit RecordAttested(recordId, patient, author, contentHash, version, dataClass, batchId, msg.sender);
    }

    // ----------------------------------------------------------------- access log

    /// @inheritdoc IRecordRegistry
    function logAccess(address patient, bytes32 recordId, uint8 purpose) external {
        if (purpose > Scopes.MAX_PURPOSE) revert InvalidPurpose(purpose);
        Head memory head = _unpack(_heads[recordId]);
        if (head.version == 0) revert RecordNotFound(recordId);
        if (patientOf(recordId) != patient) revert RecordNotOfPatient(recordId, patient);
        uint8 dataClass = head.dataClass;
        _requireProviderOrInsurer(msg.sender);
        if (!consent.hasConsent(patient, msg.sender, purpose, dataClass)) {
            revert NoConsent(patient, msg.sender, purpose, dataClass);
        }
        emit AccessLogged(recordId, patient, msg.sender, purpose);
    }

    /// @inheritdoc IRecordRegistry
    function logAccessBatch(bytes32 root, uint32 count) external returns (uint256 batchId) {
        _requireProviderOrInsurer(msg.sender);
        batchId = _storeBatch(root, count, BatchKind.AccessLog);
        emit AccessLogBatchAnchored(batchId, msg.sender, root, count);
    }

    // -------------------------------------------------------------------- views

    /// @inheritdoc IRecordRegistry
    function verify(bytes32 recordId, bytes32 contentHash)
        external
        view
        returns (bool anchored, uint32 version, address author, uint40 anchoredAt, bool latest)
    {
        RecordVersion memory info = recordInfo(recordId, contentHash);
        return (info.anchoredAt != 0, info.version, info.author, info.anchoredAt, info.latest);
    }

    /// @inheritdoc IRecordRegistry
    function recordInfo(bytes32 recordId, bytes32 contentHash) public view returns (RecordVersion memory info) {
        (bool found, bool latest, uint32 authorId, uint16 version_, uint8 dataClass, uint40 anchoredAt) =
            _find(recordId, contentHash);
        if (!found) return info;
        return RecordVersion({
            author: registry.accountOf(authorId),
            version: version_,
            dataClass: dataClass,
            anchoredAt: anchoredAt,
            latest: latest
        });
    }

    /// @inheritdoc IRecordRegistry
    function recordFacts(bytes32 recordId, bytes32 contentHash)
        external
        view
        returns (uint32 authorId, uint8 dataClass, uint40 anchoredAt)
    {
        (,, authorId,, dataClass, anchoredAt) = _find(recordId, contentHash);
    }

    /// @inheritdoc IRecordRegistry
    function latestOf(bytes32 recordId) external view returns (bytes20 contentTag, RecordVersion memory info) {
        Head memory head = _unpack(_heads[recordId]);
        if (head.version == 0) return (contentTag, info);
        contentTag = head.contentTag;
        info = RecordVersion({
            author: registry.accountOf(head.authorId),
            version: head.version,
            dataClass: head.dataClass,
            anchoredAt: head.anchoredAt,
            latest: true
        });
    }

    /// @inheritdoc IRecordRegistry
    function verifyInBatch(
        bytes32 recordId,
        bytes32 contentHash,
        address patient,
        uint32 version,
        uint8 dataClass,
        address author,
        bytes32[] calldata proof,
        uint256 batchId
    ) external view returns (bool) {
        if (proof.length > MAX_PROOF_LENGTH) return false;
        return _inBatch(Leaf(recordId, contentHash, patient, version, dataClass, author), proof, batchId);
    }

    /// @inheritdoc IRecordRegistry
    function batchOf(uint256 batchId) external view returns (Batch memory) {
        return _batches[batchId];
    }

    /// @inheritdoc IRecordRegistry
    function batchIdOf(address submitter, bytes32 root) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(submitter, root)));
    }

    /// @inheritdoc IRecordRegistry
    function patientOf(bytes32 recordId) public pure returns (address) {
        return address(bytes20(recordId));
    }

    /// @inheritdoc IRecordRegistry
    function contentTagOf(bytes32 contentHash) external pure returns (bytes20) {
        return _tagOf(contentHash);
    }

    /// @inheritdoc IRecordRegistry
    function version() external pure returns (uint256) {
        return 2;
    }

    // ----------------------------------------------------------------- internal

    /// @dev Makes a verified batch leaf the record's head, dated now: the treatment consent is checked
    /// now, not at the batch's time. `_past` needs no check: a superseded version only exists for a
    /// record that has a head.
    function _promote(Leaf memory leaf) private {
        if (leaf.patient == address(0)) revert InvalidRecordId(leaf.recordId);
        if (patientOf(leaf.recordId) != leaf.patient) revert RecordNotOfPatient(leaf.recordId, leaf.patient);
        if (leaf.contentHash == bytes32(0)) revert EmptyContentHash();
        if (leaf.dataClass > Scopes.MAX_DATA_CLASS) revert InvalidDataClass(leaf.dataClass);
        // Bounded well below _MAX_VERSION so that a promoted record can always be amended.
        if (leaf.version == 0 || leaf.version > MAX_PROMOTED_VERSION) revert InvalidVersion(leaf.version);
        if (PackedHead.unwrap(_heads[leaf.recordId]) != 0) revert RecordAlreadyAnchored(leaf.recordId);
        uint32 authorId = _requireTreatment(leaf.patient, leaf.author, leaf.dataClass);
        _heads[leaf.recordId] =
            _pack(_tagOf(leaf.contentHash), authorId, uint16(leaf.version), leaf.dataClass, uint40(block.timestamp));
    }

    /// @dev Looks a version up: the latest version matches on its 160-bit tag (one cold read), a
    /// superseded version on its full hash (a second read). All zero (found false) if not anchored;
    /// an anchored version always has a non-zero author id.
    function _find(bytes32 recordId, bytes32 contentHash)
        private
        view
        returns (bool found, bool latest, uint32 authorId, uint16 version_, uint8 dataClass, uint40 anchoredAt)
    {
        if (contentHash == bytes32(0)) return (false, false, 0, 0, 0, 0);
        Head memory head = _unpack(_heads[recordId]);
        if (head.version != 0 && head.contentTag == _tagOf(contentHash)) {
            return (true, true, head.authorId, head.version, head.dataClass, head.anchoredAt);
        }
        PastVersion memory past = _past[_versionKey(recordId, contentHash)];
        if (past.anchoredAt == 0) return (false, false, 0, 0, 0, 0);
        return (true, false, past.authorId, past.version, past.dataClass, past.anchoredAt);
    }

    /// @dev Packs a head: the content tag ({_tagOf}) in bits 0-159, then authorId, version,
    /// dataClass and anchoredAt upwards (see the contract's storage notes).
    function _pack(bytes20 contentTag, uint32 authorId, uint16 version_, uint8 dataClass, uint40 anchoredAt)
        private
        pure
        returns (PackedHead)
    {
        return PackedHead.wrap(
            uint256(uint160(contentTag)) | (uint256(authorId) << 160) | (uint256(version_) << 192)
                | (uint256(dataClass) << 208) | (uint256(anchoredAt) << 216)
        );
    }

    /// @dev The 160-bit tag a head stores for `contentHash`: the first 20 bytes of its keccak256.
    function _tagOf(bytes32 contentHash) private pure returns (bytes20 tag) {
        // Hashes the one word in scratch space (0x00-0x1f, free between statements).
        assembly ("memory-safe") {
            mstore(0x00, contentHash)
            tag := and(keccak256(0x00, 0x20), not(0xffffffffffffffffffffffff))
        }
    }

    /// @dev The inverse of {_pack}; an all-zero head (version 0) means "no such record".
    function _unpack(PackedHead packed) private pure returns (Head memory head) {
        uint256 word = PackedHead.unwrap(packed);
        head.contentTag = bytes20(uint160(word));
        head.authorId = uint32(word >> 160);
        head.version = uint16(word >> 192);
        head.dataClass = uint8(word >> 208);
        head.anchoredAt = uint40(word >> 216);
    }

    function _storeBatch(bytes32 root, uint32 count, BatchKind kind) private returns (uint256 batchId) {
        if (root == bytes32(0) || count == 0) revert InvalidBatch(root, count);
        batchId = batchIdOf(msg.sender, root);
        if (_batches[batchId].kind != BatchKind.None) revert BatchAlreadyAnchored(batchId);
        _batches[batchId] =
            Batch({submitter: msg.sender, count: count, anchoredAt: uint40(block.timestamp), kind: kind});
    }

    /// @dev A record batch's id commits to its submitter and root, so the proof's root and the
    /// leaf's author together must reproduce `batchId`: the author is the batch's provider.
    /// The leaf is OpenZeppelin's StandardMerkleTree leaf keccak256(keccak256(abi.encode(values)))
    /// for types ["bytes32","bytes32","address","uint32","uint8","address"].
    function _inBatch(Leaf memory leaf, bytes32[] calldata proof, uint256 batchId) private view returns (bool) {
        if (_batches[batchId].kind != BatchKind.Records) return false;
        bytes32 leafHash = keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        leaf.recordId, leaf.contentHash, leaf.patient, leaf.version, leaf.dataClass, leaf.author
                    )
                )
            )
        );
        return batchIdOf(leaf.author, MerkleProof.processProofCalldata(proof, leafHash)) == batchId;
    }

    /// @dev An active Provider with TREAT consent or open break-glass: returns its CareRegistry id.
    /// The reason for a refusal is diagnosed only on the failure path, so the happy path makes one
    /// call.
    function _requireTreatment(address patient, address provider, uint8 dataClass)
        private
        view
        returns (uint32 providerId)
    {
        IConsentRegistry consent_ = consent;
        bytes4 selector = IConsentRegistry.treatingProviderId.selector;
        // The hot path of every anchor, so the call is hand-encoded: arguments go above the free
        // memory pointer (not allocated: nothing else is written before the call returns) and the
        // 32-byte answer lands in scratch space. A failed call or a short answer reads as 0 (no
        // treatment) and is diagnosed below with regular calls.
        assembly ("memory-safe") {
            let args := mload(0x40)
            mstore(args, selector)
            mstore(add(args, 0x04), patient)
            mstore(add(args, 0x24), provider)
            mstore(add(args, 0x44), dataClass)
            let ok := staticcall(gas(), consent_, args, 0x64, 0x00, 0x20)
            providerId := mul(and(ok, gt(returndatasize(), 0x1f)), and(mload(0x00), 0xffffffff))
        }
        if (providerId != 0) return providerId;
        _requireActiveProvider(provider);
        revert NoTreatmentRelationship(patient, provider, dataClass);
    }

    function _requireActiveProvider(address account) private view {
        if (registry.activeRoleOf(account) != ICareRegistry.Role.Provider) revert NotActiveProvider(account);
    }

    function _requireProviderOrInsurer(address account) private view {
        ICareRegistry.Role role = registry.activeRoleOf(account);
        if (role != ICareRegistry.Role.Provider && role != ICareRegistry.Role.Insurer) {
            revert NotProviderOrInsurer(account);
        }
    }

    function _versionKey(bytes32 recordId, bytes32 contentHash) private pure returns (bytes32) {
        return keccak256(abi.encode(recordId, contentHash));
    }
}
