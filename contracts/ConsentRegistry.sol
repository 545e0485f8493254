// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ICareRegistry} from "../interfaces/ICareRegistry.sol";
import {IConsentRegistry} from "../interfaces/IConsentRegistry.sol";
import {PartyResolver} from "./libraries/PartyResolver.sol";
import {Scopes} from "./libraries/Scopes.sol";

/**
 * @title ConsentRegistry
 * @notice Patients (or their guardians) grant, narrow, widen and revoke consent per grantee, scoped by
 * purpose of use and data class and bounded in time; gaslessly through EIP-712 signatures if they wish.
 * Active providers may open a short, audited break-glass window for emergency reading.
 * @dev One storage slot per (patient, grantee) pair, holding its scope and its signature nonce; the
 * FHIR Consent document hash and every past scope live only in events. {hasConsent} costs one
 * consent read plus one CareRegistry read.
 */
contract ConsentRegistry is IConsentRegistry, AccessControl, EIP712 {
    /// @notice Upper bound of {maxBreakGlassDuration}: 72 hours.
    uint32 public constant MAX_BREAK_GLASS_CAP = 72 hours;
    /// @inheritdoc IConsentRegistry
    uint32 public constant BREAK_GLASS_PERIOD = 30 days;
    /// @inheritdoc IConsentRegistry
    uint8 public constant MAX_BREAK_GLASS_PER_PERIOD = 3;
    /// @inheritdoc IConsentRegistry
    uint32 public constant MAX_SIGNATURE_LIFETIME = 7 days;
    /// @notice EIP-712 type hash of a signed grant.
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,address grantee,uint8 purposes,uint16 dataClasses,uint40 validFrom,uint40 validUntil,bytes32 consentDocHash,address signer,uint256 nonce,uint256 deadline)"
    );
    /// @notice EIP-712 type hash of a signed revocation.
    bytes32 public constant REVOKE_TYPEHASH =
        keccak256("Revoke(address patient,address grantee,address signer,uint256 nonce,uint256 deadline)");
    /// @notice EIP-712 type hash of a signed guardian appointment (signed by the patient).
    bytes32 public constant APPOINT_GUARDIAN_TYPEHASH =
        keccak256("AppointGuardian(address patient,address guardian,uint256 nonce,uint256 deadline)");
    /// @notice EIP-712 type hash of a signed guardian removal (signed by the patient).
    bytes32 public constant REMOVE_GUARDIAN_TYPEHASH =
        keccak256("RemoveGuardian(address patient,address guardian,uint256 nonce,uint256 deadline)");
    /// @notice EIP-712 type hash of a signed break-glass close (signed by the patient or a guardian).
    bytes32 public constant CLOSE_BREAK_GLASS_TYPEHASH =
        keccak256("CloseBreakGlass(address patient,address provider,address signer,uint256 nonce,uint256 deadline)");
    /// @notice EIP-712 type hash of a signed break-glass allowance (signed by the patient or a guardian).
    bytes32 public constant ALLOW_BREAK_GLASS_TYPEHASH =
        keccak256("AllowBreakGlass(address patient,address provider,address signer,uint256 nonce,uint256 deadline)");

    /// @inheritdoc IConsentRegistry
    ICareRegistry public immutable registry;
    /// @inheritdoc IConsentRegistry
    uint32 public maxBreakGlassDuration;

    mapping(address patient => mapping(address grantee => Consent)) private _consents;
    mapping(address patient => mapping(address provider => BreakGlass)) private _breakGlass;
    mapping(address patient => mapping(address guardian => bool)) private _guardians;

    /// @param admin Governance account holding DEFAULT_ADMIN_ROLE (sets the break-glass maximum).
    /// @param registry_ The CareRegistry that says who is an active provider, insurer or arbiter.
    /// @param maxBreakGlassDuration_ Longest break-glass window in seconds (non-zero, at most 72 hours).
    constructor(address admin, ICareRegistry registry_, uint32 maxBreakGlassDuration_)
        EIP712("MedLedger ConsentRegistry", "2")
    {
        if (admin == address(0) || address(registry_) == address(0)) revert ZeroAddress();
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setMaxBreakGlassDuration(maxBreakGlassDuration_);
    }

    /// @notice {AccessControl-grantRole}, except that no account grants a role to itself (as in the
    /// CareRegistry): an admin appoints others, never itself.
    function grantRole(bytes32 role, address account) public override onlyRole(getRoleAdmin(role)) {
        if (account == msg.sender) revert SelfGrant(account, role);
        _grantRole(role, account);
    }

    // ------------------------------------------------------------------ consent

    /// @inheritdoc IConsentRegistry
    function grant(
        address patient,
        address grantee,
        uint8 purposes,
        uint16 dataClasses,
        uint40 validFrom,
        uint40 validUntil,
        bytes32 consentDocHash
    ) external {
        _checkPatientOrGuardian(patient, msg.sender);
        _grant(patient, grantee, purposes, dataClasses, validFrom, validUntil, consentDocHash, msg.sender);
    }

    /// @inheritdoc IConsentRegistry
    function revoke(address patient, address grantee) external {
        _checkPatientOrGuardian(patient, msg.sender);
        _revoke(patient, grantee, msg.sender);
    }

    /// @inheritdoc IConsentRegistry
    function grantBySig(
        address patient,
        address grantee,
        uint8 purposes,
        uint16 dataClasses,
        uint40 validFrom,
        uint40 validUntil,
        bytes32 consentDocHash,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkDeadline(deadline);
        _checkPatientOrGuardian(patient, signer);
        // abi.encode of static values is their 32-byte words back to back, so two encodings
        // concatenated hash exactly as one; split only to stay within the stack.
        uint256 nonce = _nonceOf(patient, grantee);
        bytes memory head =
            abi.encode(GRANT_TYPEHASH, patient, grantee, purposes, dataClasses, validFrom, validUntil, consentDocHash);
        bytes32 structHash = keccak256(bytes.concat(head, abi.encode(signer, nonce, deadline)));
        _checkSignature(signer, structHash, signature);
        _grant(patient, grantee, purposes, dataClasses, validFrom, validUntil, consentDocHash, signer);
    }

    /// @inheritdoc IConsentRegistry
    function revokeBySig(address patient, address grantee, address signer, uint256 deadline, bytes calldata signature)
        external
    {
        _checkDeadline(deadline);
        _checkPatientOrGuardian(patient, signer);
        bytes32 structHash = keccak256(
            abi.encode(REVOKE_TYPEHASH, patient, grantee, signer, _nonceOf(patient, grantee), deadline)
        );
        _checkSignature(signer, structHash, signature);
        _revoke(patient, grantee, signer);
    }

    /// @inheritdoc IConsentRegistry
    function cancelSignatures(address patient, address grantee) external {
        _checkPatientOrGuardian(patient, msg.sender);
        if (grantee == address(0) || grantee == patient) revert InvalidGrantee(grantee);
        emit SignaturesCancelled(patient, grantee, msg.sender, _useNonce(patient, grantee) + 1);
    }

    // ---------------------------------------------------------------- guardians

    /// @inheritdoc IConsentRegistry
    function appointGuardian(address guardian) external {
        _appointGuardian(msg.sender, guardian);
    }

    /// @inheritdoc IConsentRegistry
    function removeGuardian(address guardian) external {
        _removeGuardian(msg.sender, guardian);
    }

    /// @inheritdoc IConsentRegistry
    function appointGuardianBySig(address patient, address guardian, uint256 deadline, bytes calldata signature)
        external
    {
        _usePatientSignature(APPOINT_GUARDIAN_TYPEHASH, patient, guardian, deadline, signature);
        _appointGuardian(patient, guardian);
    }

    /// @inheritdoc IConsentRegistry
    function removeGuardianBySig(address patient, address guardian, uint256 deadline, bytes calldata signature)
        external
    {
        _usePatientSignature(REMOVE_GUARDIAN_TYPEHASH, patient, guardian, deadline, signature);
        _removeGuardian(patient, guardian);
    }

    // -------------------------------------------------------------- break-glass

    /// @inheritdoc IConsentRegistry
    function openBreakGlass(address patient, uint32 duration, bytes32 reasonCode) external {
        // Windows are keyed by the provider's home account (CareRegistry.resolve), so they follow a
        // migration; a migrated account resolves to its successor and is refused here.
        (uint256 role,, address provider, address current) = _resolve(msg.sender);
        if (role != uint256(ICareRegistry.Role.Provider) || current != msg.sender) revert NotActiveProvider(msg.sender);
        if (patient == address(0)) revert ZeroAddress();
        uint32 max = maxBreakGlassDuration;
        if (duration == 0 || duration > max) revert InvalidBreakGlassDuration(duration, max);
        if (reasonCode == bytes32(0)) revert EmptyReasonCode();
        BreakGlass memory window = _breakGlass[patient][provider];
        if (block.timestamp < window.expiresAt) revert BreakGlassAlreadyOpen(patient, provider, window.expiresAt);
        if (window.blocked) revert BreakGlassBlocked(patient, provider);
        uint40 now_ = uint40(block.timestamp);
        // Sums of uint40 times and periods cannot overflow before the year 36812; checked regardless.
        if (now_ >= window.periodStart + BREAK_GLASS_PERIOD) {
            window.periodStart = now_;
            window.openings = 0;
        }
        if (window.openings >= MAX_BREAK_GLASS_PER_PERIOD) {
            revert BreakGlassLimitReached(patient, provider, window.periodStart + BREAK_GLASS_PERIOD);
        }
        window.openings += 1;
        window.openedAt = now_;
        window.expiresAt = now_ + duration;
        _breakGlass[patient][provider] = window;
        emit BreakGlassOpened(patient, provider, reasonCode, window.expiresAt);
    }

    /// @inheritdoc IConsentRegistry
    function closeBreakGlass(address patient, address provider) external {
        _checkPatientOrGuardian(patient, msg.sender);
        _closeBreakGlass(patient, provider, msg.sender);
    }

    /// @inheritdoc IConsentRegistry
    function allowBreakGlass(address patient, address provider) external {
        _checkPatientOrGuardian(patient, msg.sender);
        _allowBreakGlass(patient, provider, msg.sender);
    }

    /// @inheritdoc IConsentRegistry
    function closeBreakGlassBySig(
        address patient,
        address provider,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _useSignature(CLOSE_BREAK_GLASS_TYPEHASH, patient, provider, signer, deadline, signature);
        _closeBreakGlass(patient, provider, signer);
    }

    /// @inheritdoc IConsentRegistry
    function allowBreakGlassBySig(
        address patient,
        address provider,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _useSignature(ALLOW_BREAK_GLASS_TYPEHASH, patient, provider, signer, deadline, signature);
        _allowBreakGlass(patient, provider, signer);
    }

    /// @inheritdoc IConsentRegistry
    function setMaxBreakGlassDuration(uint32 duration) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMaxBreakGlassDuration(duration);
    }

    // -------------------------------------------------------------------- views

    /// @inheritdoc IConsentRegistry
    function hasConsent(address patient, address grantee, uint8 purpose, uint8 dataClass)
        external
        view
        returns (bool)
    {
        // Shifts past the type width yield 0 (no overflow check on shifts), so undefined
        // purposes / data classes simply match nothing.
        uint8 purposeBit = uint8(1) << purpose;
        uint16 classBit = uint16(1) << dataClass;
        // Consents and break-glass windows are keyed by the grantee's home account; `grantee` may name
        // the party by any account it has had (a migrated account answers for its successor). Whether
        // the caller of a transaction is that party is the calling contract's check (a migrated
        // account is refused by every party entry point).
        (uint256 role,, address home,) = _resolve(grantee);
        if (_granted(patient, home, purposeBit, classBit)) return role != uint256(ICareRegistry.Role.None);
        if (purpose == Scopes.ETREAT && _breakGlassOpen(patient, home, classBit)) {
            return role == uint256(ICareRegistry.Role.Provider);
        }
        return false;
    }

    /// @inheritdoc IConsentRegistry
    function treatingProviderId(address patient, address provider, uint8 dataClass)
        external
        view
        returns (uint32 providerId)
    {
        // Break-glass is emergency reading only: it never makes a provider a treating (writing) one.
        (uint256 role, uint32 id, address home, address current) = _resolve(provider);
        // The writer must be the party's current account (a migrated account writes nothing); its
        // consents are keyed by its home account, so they follow a migration.
        if (
            role == uint256(ICareRegistry.Role.Provider) && current == provider
                && _granted(patient, home, Scopes.TREAT_BIT, uint16(1) << dataClass)
        ) {
            providerId = id;
        }
    }

    /// @inheritdoc IConsentRegistry
    function consentOf(address patient, address grantee) external view returns (Consent memory) {
        return _consents[patient][grantee];
    }

    /// @inheritdoc IConsentRegistry
    function breakGlassOf(address patient, address provider) external view returns (BreakGlass memory) {
        return _breakGlass[patient][provider];
    }

    /// @inheritdoc IConsentRegistry
    function isGuardian(address patient, address guardian) external view returns (bool) {
        return _guardians[patient][guardian];
    }

    /// @inheritdoc IConsentRegistry
    function nonces(address patient, address grantee) external view returns (uint256) {
        return _nonceOf(patient, grantee);
    }

    /// @inheritdoc IConsentRegistry
    function version() external pure returns (uint256) {
        return 3;
    }

    /// @inheritdoc IConsentRegistry
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ----------------------------------------------------------------- internal

    /// @dev `registry.resolve(account)`: (role, id, home, current), on every consent check and record anchor
    /// (PartyResolver: hand-encoded; a short answer reads as nobody, which no check accepts).
    function _resolve(address account)
        private
        view
        returns (uint256 role, uint32 id, address home, address current)
    {
        return PartyResolver.resolve(registry, account);
    }

    function _grant(
        address patient,
        address grantee,
        uint8 purposes,
        uint16 dataClasses,
        uint40 validFrom,
        uint40 validUntil,
        bytes32 consentDocHash,
        address actor
    ) private {
        if (grantee == address(0) || grantee == patient) revert InvalidGrantee(grantee);
        if (
            purposes == 0 || dataClasses == 0 || purposes & ~Scopes.ALL_PURPOSES != 0
                || dataClasses & ~Scopes.ALL_DATA_CLASSES != 0
        ) revert InvalidScope(purposes, dataClasses);
        if (validUntil != 0 && (validUntil <= validFrom || validUntil <= block.timestamp)) {
            revert InvalidValidity(validFrom, validUntil);
        }
        // The same slot holds the pair's signature nonce: bumping it in this write voids every
        // pending signature for the pair at no extra storage cost.
        Consent storage consent = _consents[patient][grantee];
        uint64 nonce = consent.nonce + 1;
        _consents[patient][grantee] = Consent({
            purposes: purposes,
            dataClasses: dataClasses,
            validFrom: validFrom,
            validUntil: validUntil,
            grantedAt: uint40(block.timestamp),
            nonce: nonce
        });
        emit ConsentGranted(patient, grantee, actor, purposes, dataClasses, validFrom, validUntil, consentDocHash);
    }

    function _revoke(address patient, address grantee, address actor) private {
        Consent storage consent = _consents[patient][grantee];
        if (consent.purposes == 0) revert ConsentNotFound(patient, grantee);
        // Ends the consent in this very block; the slot keeps only the bumped signature nonce, which
        // voids every pending signature for the pair (so a revoked consent cannot be relayed back).
        _consents[patient][grantee] = Consent({
            purposes: 0,
            dataClasses: 0,
            validFrom: 0,
            validUntil: 0,
            grantedAt: 0,
            nonce: consent.nonce + 1
        });
        emit ConsentRevoked(patient, grantee, actor);
    }

    function _appointGuardian(address patient, address guardian) private {
        if (guardian == address(0) || guardian == patient) revert InvalidGuardian(guardian);
        mapping(address guardian => bool) storage guardians = _guardians[patient];
        if (guardians[guardian]) revert GuardianAlreadyAppointed(patient, guardian);
        guardians[guardian] = true;
        emit GuardianAppointed(patient, guardian, patient);
    }

    function _removeGuardian(address patient, address guardian) private {
        mapping(address guardian => bool) storage guardians = _guardians[patient];
        if (!guardians[guardian]) revert GuardianNotAppointed(patient, guardian);
        delete guardians[guardian];
        emit GuardianRemoved(patient, guardian, patient);
    }

    function _closeBreakGlass(address patient, address provider, address actor) private {
        BreakGlass storage window = _breakGlass[patient][provider];
        if (block.timestamp >= window.expiresAt) revert BreakGlassNotOpen(patient, provider);
        // Ends the window in this block and keeps the provider out until the patient allows it again.
        window.expiresAt = uint40(block.timestamp);
        window.blocked = true;
        emit BreakGlassClosed(patient, provider, actor);
    }

    function _allowBreakGlass(address patient, address provider, address actor) private {
        BreakGlass storage window = _breakGlass[patient][provider];
        if (!window.blocked) revert BreakGlassNotBlocked(patient, provider);
        window.blocked = false;
        emit BreakGlassAllowed(patient, provider, actor);
    }

    /// @dev Authorises a signed guardian or break-glass action of `signer` (the patient or a guardian) on
    /// the (`patient`, `counterparty`) pair: checks the deadline and the signer, then spends the pair's
    /// nonce (see {_useNonce}) in the EIP-712 struct `typehash(patient, counterparty, signer, nonce,
    /// deadline)`.
    function _useSignature(
        bytes32 typehash,
        address patient,
        address counterparty,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) private {
        _checkDeadline(deadline);
        _checkPatientOrGuardian(patient, signer);
        bytes32 structHash =
            keccak256(abi.encode(typehash, patient, counterparty, signer, _useNonce(patient, counterparty), deadline));
        _checkSignature(signer, structHash, signature);
    }

    /// @dev {_useSignature} for an action only the patient may take (guardians): the patient is the
    /// signer, so the struct `typehash(patient, counterparty, nonce, deadline)` carries no signer field.
    function _usePatientSignature(
        bytes32 typehash,
        address patient,
        address counterparty,
        uint256 deadline,
        bytes calldata signature
    ) private {
        _checkDeadline(deadline);
        if (patient == address(0)) revert ZeroAddress();
        bytes32 structHash =
            keccak256(abi.encode(typehash, patient, counterparty, _useNonce(patient, counterparty), deadline));
        _checkSignature(patient, structHash, signature);
    }

    /// @dev Returns the (`patient`, `counterparty`) pair's signature nonce and increments it. The
    /// guardian and break-glass signed actions key their nonce by the guardian or provider address, so
    /// they share the pair's nonce space with `Grant` and `Revoke`: a consent change of the pair or a
    /// {cancelSignatures} voids them too, and a spent nonce voids the pair's other pending signatures.
    /// The nonce sits in the consent slot, so a signed action never touches the scope bits beside it.
    function _useNonce(address patient, address counterparty) private returns (uint64 nonce) {
        Consent storage consent = _consents[patient][counterparty];
        nonce = consent.nonce;
        consent.nonce = nonce + 1;
    }

    function _checkPatientOrGuardian(address patient, address actor) private view {
        if (patient == address(0)) revert ZeroAddress();
        if (actor != patient && !_guardians[patient][actor]) revert NotPatientOrGuardian(patient, actor);
    }

    /// @dev Accepts a canonical (low-s) ECDSA signature by `signer`, else asks `signer` as an ERC-1271
    /// contract wallet and requires the exact magic value. ECDSA goes first so EOAs skip the cold
    /// EXTCODESIZE; an account without code answers the static call with empty data, which fails the
    /// length check. Written out instead of OpenZeppelin 5.4's `SignatureChecker` because that library
    /// imports `Bytes`, which uses `mcopy` and does not compile for the Shanghai EVM that Ganache runs.
    function _checkSignature(address signer, bytes32 structHash, bytes calldata signature) private view {
        bytes32 digest = _hashTypedDataV4(structHash);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) return;
        (bool success, bytes memory result) =
            signer.staticcall(abi.encodeCall(IERC1271.isValidSignature, (digest, signature)));
        if (
            !success || result.length < 32
                || abi.decode(result, (bytes32)) != bytes32(IERC1271.isValidSignature.selector)
        ) revert InvalidSignature(signer);
    }

    function _nonceOf(address patient, address grantee) private view returns (uint64) {
        return _consents[patient][grantee].nonce;
    }

    /// @dev A signed request is relayable until its deadline, and never with more than
    /// {MAX_SIGNATURE_LIFETIME} of its life left.
    function _checkDeadline(uint256 deadline) private view {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        uint256 latest = block.timestamp + MAX_SIGNATURE_LIFETIME;
        if (deadline > latest) revert SignatureDeadlineTooFar(deadline, latest);
    }

    function _setMaxBreakGlassDuration(uint32 duration) private {
        if (duration == 0 || duration > MAX_BREAK_GLASS_CAP) revert InvalidMaxBreakGlassDuration(duration);
        maxBreakGlassDuration = duration;
        emit MaxBreakGlassDurationSet(duration, msg.sender);
    }

    /// @dev Whether a live consent of `patient` to `grantee` covers `purposeBit` and `classBit`
    /// (one SLOAD: the struct is one slot).
    function _granted(address patient, address grantee, uint8 purposeBit, uint16 classBit)
        private
        view
        returns (bool)
    {
        Consent storage consent = _consents[patient][grantee];
        uint256 word;
        // On every anchor and access check: one SLOAD of the packed slot, unpacked by hand instead of
        // copying all six fields to memory. Solidity packs the fields from the low-order end:
        // purposes (bits 0-7), dataClasses (8-23), validFrom (24-63), validUntil (64-103), ...
        assembly ("memory-safe") {
            word := sload(consent.slot)
        }
        uint40 validUntil = uint40(word >> 64);
        return uint8(word) & purposeBit != 0 && uint16(word >> 8) & classBit != 0
            && uint40(word >> 24) <= block.timestamp && (validUntil == 0 || block.timestamp < validUntil);
    }

    /// @dev Whether `provider`'s break-glass on `patient` is open and covers `classBit`: every defined
    /// bit. A pairwise pseudonym's bits are per-pseudonym labels (docs/PRIVACY.md, section 2), so the
    /// chain cannot tell a sensitive class; the gateway, which knows the real class, excludes them.
    function _breakGlassOpen(address patient, address provider, uint16 classBit) private view returns (bool) {
        return classBit & Scopes.ALL_DATA_CLASSES != 0
            && block.timestamp < _breakGlass[patient][provider].expiresAt;
    }
}
