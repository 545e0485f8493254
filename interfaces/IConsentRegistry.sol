// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICareRegistry} from "./ICareRegistry.sol";

/**
 * @title IConsentRegistry
 * @notice Patient-controlled, purpose- and data-class-scoped consent for MedLedger, with guardians,
 * gasless (EIP-712) grants and revocations, and time-bounded, capped break-glass emergency reading.
 * @dev Purposes (uint8 bitmask, bit = 1 << index): TREAT=0, ETREAT=1, HPAYMT=2, HOPERAT=3, HRESCH=4,
 * COVERAGE=5. Data classes (uint16 bitmask): DEMOGRAPHICS=0, CONDITIONS=1, MEDICATIONS=2, ALLERGIES=3,
 * LABS=4, IMAGING=5, NOTES=6, BILLING=7, GENOMICS=8, MENTAL_HEALTH=9, SUBSTANCE_USE=10. For a pairwise
 * pseudonym the bits are its own permutation of these classes (per-pseudonym labels, docs/PRIVACY.md), so
 * the contract treats every defined bit alike: break-glass covers them all, and the off-chain gateway,
 * which knows the real class, keeps the sensitive ones (the last three) out of emergency reading.
 * Storage holds only the current scope and the signature nonce of each (patient, grantee) pair;
 * history lives in events. Signatures are per pair: any grant, revoke or cancellation of a pair,
 * direct or signed, voids every pending signature for that pair, and a signer's signatures for
 * different patients (or grantees) never depend on each other.
 * Every patient or guardian action has a signed variant that anyone may relay (so a patient never
 * needs gas): {grantBySig}, {revokeBySig}, {appointGuardianBySig}, {removeGuardianBySig},
 * {closeBreakGlassBySig} and {allowBreakGlassBySig}. The guardian and break-glass ones use the nonce
 * of the (patient, guardian) or (patient, provider) pair: relaying one spends that nonce, and a
 * grant, revoke or {cancelSignatures} of the pair voids them. Their direct variants leave the nonce
 * alone (they cost what they did before interface 2's signed variants existed).
 */
interface IConsentRegistry {
    /// @notice The current consent of one (patient, grantee) pair, packed into one storage slot.
    /// @dev `purposes == 0` means "no consent". `validUntil == 0` means no expiry; otherwise the
    /// consent is live while `validFrom <= block.timestamp < validUntil`. `nonce` is the pair's
    /// signature nonce (see {nonces}); it survives a revocation.
    struct Consent {
        uint8 purposes;
        uint16 dataClasses;
        uint40 validFrom;
        uint40 validUntil;
        uint40 grantedAt;
        uint64 nonce;
    }

    /// @notice A provider's emergency access to one patient, packed into one storage slot. Open while
    /// `block.timestamp < expiresAt`. `openings` counts the windows opened since `periodStart`
    /// (at most {MAX_BREAK_GLASS_PER_PERIOD} per {BREAK_GLASS_PERIOD}); `blocked` is set when the
    /// patient or a guardian closes a window and cleared only by {allowBreakGlass}.
    struct BreakGlass {
        uint40 openedAt;
        uint40 expiresAt;
        uint40 periodStart;
        uint8 openings;
        bool blocked;
    }

    /// @notice `actor` (the patient or a guardian) set the scope of `grantee` for `patient`,
    /// replacing any previous scope. `consentDocHash` commits to the off-chain FHIR Consent resource.
    event ConsentGranted(
        address indexed patient,
        address indexed grantee,
        address indexed actor,
        uint8 purposes,
        uint16 dataClasses,
        uint40 validFrom,
        uint40 validUntil,
        bytes32 consentDocHash
    );
    /// @notice `actor` (the patient or a guardian) revoked every consent of `grantee` for `patient`,
    /// effective from this block.
    event ConsentRevoked(address indexed patient, address indexed grantee, address indexed actor);
    /// @notice `patient` (the only one who may) appointed `guardian`.
    event GuardianAppointed(address indexed patient, address indexed guardian, address indexed actor);
    /// @notice `guardian` stopped being a guardian of `patient`; `actor` is the patient.
    event GuardianRemoved(address indexed patient, address indexed guardian, address indexed actor);
    /// @notice `provider` (the actor) opened emergency access to `patient` until `expiresAt`.
    event BreakGlassOpened(
        address indexed patient, address indexed provider, bytes32 indexed reasonCode, uint40 expiresAt
    );
    /// @notice `actor` (the patient or a guardian) closed the emergency access of `provider` to `patient`;
    /// `provider` cannot open a new window on `patient` until {allowBreakGlass}.
    event BreakGlassClosed(address indexed patient, address indexed provider, address indexed actor);
    /// @notice `actor` (the patient or a guardian) let `provider` open break-glass on `patient` again.
    event BreakGlassAllowed(address indexed patient, address indexed provider, address indexed actor);
    /// @notice `actor` (the patient or a guardian) voided every pending signature for the
    /// (`patient`, `grantee`) pair; `nonce` is the pair's new signature nonce.
    event SignaturesCancelled(address indexed patient, address indexed grantee, address indexed actor, uint64 nonce);
    /// @notice `actor` (an admin) set the longest break-glass window to `duration` seconds.
    event MaxBreakGlassDurationSet(uint32 duration, address indexed actor);

    /// @notice No account grants itself a role (`role` to `account`, the caller).
    error SelfGrant(address account, bytes32 role);
    /// @notice A required address (admin, registry, patient) is zero.
    error ZeroAddress();
    /// @notice `actor` is neither `patient` nor one of the patient's guardians.
    error NotPatientOrGuardian(address patient, address actor);
    /// @notice `grantee` is zero or the patient.
    error InvalidGrantee(address grantee);
    /// @notice The scope is empty or sets undefined purpose / data-class bits.
    error InvalidScope(uint8 purposes, uint16 dataClasses);
    /// @notice `validUntil` is not after both `validFrom` and now (and not 0 for "no expiry").
    error InvalidValidity(uint40 validFrom, uint40 validUntil);
    /// @notice `patient` has no consent recorded for `grantee`.
    error ConsentNotFound(address patient, address grantee);
    /// @notice `guardian` is zero or the patient.
    error InvalidGuardian(address guardian);
    /// @notice `guardian` already is a guardian of `patient`.
    error GuardianAlreadyAppointed(address patient, address guardian);
    /// @notice `guardian` is not a guardian of `patient`.
    error GuardianNotAppointed(address patient, address guardian);
    /// @notice `account` is not an active Provider in the CareRegistry.
    error NotActiveProvider(address account);
    /// @notice `duration` is zero or longer than the current maximum `max`.
    error InvalidBreakGlassDuration(uint32 duration, uint32 max);
    /// @notice The maximum break-glass window must be non-zero and at most 72 hours.
    error InvalidMaxBreakGlassDuration(uint32 duration);
    /// @notice A break-glass needs a non-zero reason code.
    error EmptyReasonCode();
    /// @notice `provider` already has emergency access to `patient` until `expiresAt`.
    error BreakGlassAlreadyOpen(address patient, address provider, uint40 expiresAt);
    /// @notice `provider` has no open emergency access to `patient`.
    error BreakGlassNotOpen(address patient, address provider);
    /// @notice The patient or a guardian closed `provider`'s last window on `patient`; it may open a new
    /// one only after {allowBreakGlass}.
    error BreakGlassBlocked(address patient, address provider);
    /// @notice `provider` is not blocked from break-glass on `patient`.
    error BreakGlassNotBlocked(address patient, address provider);
    /// @notice `provider` opened {MAX_BREAK_GLASS_PER_PERIOD} windows on `patient` this period; the next
    /// may open at `nextAt`.
    error BreakGlassLimitReached(address patient, address provider, uint40 nextAt);
    /// @notice The signed request's deadline has passed.
    error SignatureExpired(uint256 deadline);
    /// @notice The signed request's `deadline` is more than {MAX_SIGNATURE_LIFETIME} away (the latest
    /// acceptable now is `latest`).
    error SignatureDeadlineTooFar(uint256 deadline, uint256 latest);
    /// @notice The signature is not a valid EIP-712 signature of the request by `signer`.
    error InvalidSignature(address signer);

    /// @notice Sets the scope of `grantee` for `patient`, replacing any previous scope (this is how a
    /// consent is narrowed or widened). Callable by the patient or a guardian of the patient. Voids
    /// every pending signature for the pair.
    /// @param purposes Bitmask of purposes of use; must be non-empty and only use defined bits.
    /// @param dataClasses Bitmask of data classes; must be non-empty and only use defined bits.
    /// @param validFrom First second the consent is live (0 or a past time: live at once).
    /// @param validUntil First second the consent is no longer live; 0 means no expiry.
    /// @param consentDocHash Commitment to the off-chain FHIR Consent resource; emitted, not stored.
    function grant(
        address patient,
        address grantee,
        uint8 purposes,
        uint16 dataClasses,
        uint40 validFrom,
        uint40 validUntil,
        bytes32 consentDocHash
    ) external;

    /// @notice Revokes every consent of `grantee` for `patient`, effective in this block.
    /// Callable by the patient or a guardian of the patient. Voids every pending signature for the pair.
    function revoke(address patient, address grantee) external;

    /// @notice {grant} on behalf of `signer` (the patient or a guardian), authorised by an EIP-712
    /// `Grant` signature (EOA or ERC-1271 wallet) over `nonces(patient, grantee)`. Anyone may relay,
    /// before `deadline` and never with more than {MAX_SIGNATURE_LIFETIME} of it left.
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
    ) external;

    /// @notice {revoke} on behalf of `signer` (the patient or a guardian), authorised by an EIP-712
    /// `Revoke` signature (EOA or ERC-1271 wallet) over `nonces(patient, grantee)`. Relayable as {grantBySig}.
    function revokeBySig(address patient, address grantee, address signer, uint256 deadline, bytes calldata signature)
        external;

    /// @notice Voids every pending signed request for the (`patient`, `grantee`) pair without changing its
    /// consent: grants and revokes, and the guardian or break-glass requests whose guardian or provider is
    /// `grantee`. Callable by the patient or a guardian (a signer cancels its signature).
    function cancelSignatures(address patient, address grantee) external;

    /// @notice The caller (a patient) appoints `guardian`, who may then grant, revoke and close
    /// break-glass on the caller's behalf.
    function appointGuardian(address guardian) external;

    /// @notice The caller (a patient) removes `guardian`.
    function removeGuardian(address guardian) external;

    /// @notice {appointGuardian} on behalf of `patient`, authorised by the patient's EIP-712
    /// `AppointGuardian(address patient,address guardian,uint256 nonce,uint256 deadline)` signature (EOA or
    /// ERC-1271 wallet) over `nonces(patient, guardian)`, which it spends. Anyone may relay, before
    /// `deadline` and never with more than {MAX_SIGNATURE_LIFETIME} of it left. A guardian cannot sign it.
    function appointGuardianBySig(address patient, address guardian, uint256 deadline, bytes calldata signature)
        external;

    /// @notice {removeGuardian} on behalf of `patient`, authorised by the patient's EIP-712
    /// `RemoveGuardian(address patient,address guardian,uint256 nonce,uint256 deadline)` signature over
    /// `nonces(patient, guardian)`, which it spends. Relayable as {appointGuardianBySig}.
    function removeGuardianBySig(address patient, address guardian, uint256 deadline, bytes calldata signature)
        external;

    /// @notice The caller, an active Provider, opens emergency (ETREAT) reading of every data-class
    /// bit of `patient` (the gateway excludes sensitive classes) for `duration` seconds (at most
    /// {maxBreakGlassDuration}). Refused while the patient keeps the caller blocked (after a
    /// {closeBreakGlass}) and beyond {MAX_BREAK_GLASS_PER_PERIOD} windows per {BREAK_GLASS_PERIOD}.
    /// Break-glass never lets a provider create or amend records ({treatingProviderId} ignores it).
    /// @param reasonCode A code naming the emergency (never free text); must be non-zero.
    function openBreakGlass(address patient, uint32 duration, bytes32 reasonCode) external;

    /// @notice Closes `provider`'s emergency access to `patient` early and blocks it from opening a new
    /// window on `patient` until {allowBreakGlass}. Callable by the patient or a guardian.
    function closeBreakGlass(address patient, address provider) external;

    /// @notice Lets `provider` open break-glass on `patient` again after a {closeBreakGlass}. Callable by
    /// the patient or a guardian.
    function allowBreakGlass(address patient, address provider) external;

    /// @notice {closeBreakGlass} on behalf of `signer` (the patient or a guardian), authorised by an EIP-712
    /// `CloseBreakGlass(address patient,address provider,address signer,uint256 nonce,uint256 deadline)`
    /// signature (EOA or ERC-1271 wallet) over `nonces(patient, provider)`, which it spends. Anyone may
    /// relay, before `deadline` and never with more than {MAX_SIGNATURE_LIFETIME} of it left.
    function closeBreakGlassBySig(
        address patient,
        address provider,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice {allowBreakGlass} on behalf of `signer` (the patient or a guardian), authorised by an EIP-712
    /// `AllowBreakGlass(address patient,address provider,address signer,uint256 nonce,uint256 deadline)`
    /// signature over `nonces(patient, provider)`, which it spends. Relayable as {closeBreakGlassBySig}.
    function allowBreakGlassBySig(
        address patient,
        address provider,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Sets the longest break-glass window (non-zero, at most 72 hours). Admin only.
    function setMaxBreakGlassDuration(uint32 duration) external;

    /// @notice Whether `grantee` may use `patient`'s data of class `dataClass` for `purpose` right now:
    /// `grantee` is an active registered party and either a live consent covers both bits, or
    /// `purpose` is ETREAT, `dataClass` is a defined bit, `grantee` is an active Provider and its
    /// break-glass on `patient` is open. Out-of-range `purpose` / `dataClass` yield false.
    /// @dev Interface 3 (account migration): consents and break-glass windows are keyed by the grantee's
    /// home account (ICareRegistry.resolve) and `grantee` may name the party by any account it has had
    /// (a migrated account answers for its current one, whose status counts). A grant made to a
    /// successor account rather than the home account is never found (fail-closed): the SDK grants to
    /// the home account.
    function hasConsent(address patient, address grantee, uint8 purpose, uint8 dataClass)
        external
        view
        returns (bool);

    /// @notice The CareRegistry id of `provider` if it may create or change `patient`'s records of
    /// class `dataClass` right now, else 0: `provider` is an active Provider's current account (a migrated
    /// account is refused) and a live consent to its home account covers
    /// TREAT and `dataClass`. Break-glass does not count (it grants reading only). One consent read
    /// plus one CareRegistry read, as {hasConsent}.
    function treatingProviderId(address patient, address provider, uint8 dataClass)
        external
        view
        returns (uint32 providerId);

    /// @notice The stored consent of `grantee` for `patient` (all zero if none; may be expired or not yet live).
    function consentOf(address patient, address grantee) external view returns (Consent memory);

    /// @notice The stored break-glass state of `provider` on `patient` (all zero if never opened).
    function breakGlassOf(address patient, address provider) external view returns (BreakGlass memory);

    /// @notice Whether `guardian` is a guardian of `patient`.
    function isGuardian(address patient, address guardian) external view returns (bool);

    /// @notice The CareRegistry whose active parties may hold consent.
    function registry() external view returns (ICareRegistry);

    /// @notice The longest break-glass window, in seconds.
    function maxBreakGlassDuration() external view returns (uint32);

    /// @notice The nonce the next signed `Grant` or `Revoke` for the (`patient`, `grantee`) pair must
    /// carry, and the next signed guardian (`grantee` = the guardian) or break-glass (`grantee` = the
    /// provider) request. Every grant, revoke and {cancelSignatures} of the pair increments it, and so
    /// does every relayed signed request of the pair.
    function nonces(address patient, address grantee) external view returns (uint256);

    /// @notice Windows per (patient, provider) pair are counted over periods of this many seconds (30 days).
    function BREAK_GLASS_PERIOD() external view returns (uint32); // solhint-disable-line func-name-mixedcase

    /// @notice At most this many break-glass windows per (patient, provider) pair and period (3).
    function MAX_BREAK_GLASS_PER_PERIOD() external view returns (uint8); // solhint-disable-line func-name-mixedcase

    /// @notice A signed request is never relayed with more than this many seconds (7 days) before its deadline.
    function MAX_SIGNATURE_LIFETIME() external view returns (uint32); // solhint-disable-line func-name-mixedcase

    /// @notice The interface revision (3: consents keyed by the grantee's home account, so they follow an
    /// account migration, and break-glass covers every label bit; 2: per-pair signature nonces, blocking
    /// break-glass, reading only).
    function version() external pure returns (uint256);

    /// @notice The EIP-712 domain separator (name "MedLedger ConsentRegistry", version "2").
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
