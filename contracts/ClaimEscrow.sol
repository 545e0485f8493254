// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IClaimEscrow} from "../interfaces/IClaimEscrow.sol";
import {ICareRegistry} from "../interfaces/ICareRegistry.sol";
import {IConsentRegistry} from "../interfaces/IConsentRegistry.sol";
import {IRecordRegistry} from "../interfaces/IRecordRegistry.sol";
import {PartyResolver} from "./libraries/PartyResolver.sol";
import {Scopes} from "./libraries/Scopes.sol";

/**
 * @title ClaimEscrow
 * @notice Holds insurers' stablecoin, turns adjudicated claims into provider payouts and keeps
 * contested amounts encumbered until the dispute window closes or an arbiter rules.
 * Accounting invariant: token balance >= sum(free) + sum(encumbered) + sum(owed) (equality unless
 * someone transfers tokens to the escrow directly).
 * @dev Design notes (see docs/ESCROW.md):
 * - Money is encumbered only by an adjudication: nothing is reserved at submission, so insurers
 *   fund claims as they approve them; a partial approval or denial reserves the contested rest
 *   (the patient share included). A deemed approval the free balance cannot cover becomes the
 *   insurer's debt ("deemed approved, unfunded"), paid from its next deposits before they are free.
 * - Incoming tokens are credited by balance delta (fee-on-transfer safe); outgoing payments bear
 *   the token's own fee, if any.
 * - One slot `_control` holds the re-entrancy lock, the pause flag and the escrow clock, so the
 *   guard, the pause check and "what time is it" cost a single cold read. A pause stops the clock.
 * - Every function that moves tokens holds the lock and writes its effects before the transfer;
 *   the only writes after an external call are the balance-delta credit of a deposit and the
 *   undo of a failed push, both under the lock.
 */
contract ClaimEscrow is IClaimEscrow, AccessControl {
    using SafeERC20 for IERC20;

    /// @notice May pause and unpause the escrow.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Shortest / longest prompt-pay window an insurer may set.
    uint32 private constant _MIN_PROMPT_PAY_WINDOW = 1 days;
    uint32 private constant _MAX_PROMPT_PAY_WINDOW = 90 days;
    /// @notice Shortest / longest dispute window an insurer may set.
    uint32 private constant _MIN_DISPUTE_WINDOW = 7 days;
    uint32 private constant _MAX_DISPUTE_WINDOW = 180 days;
    /// @notice Shortest benefit period of a per-period limit.
    uint32 private constant _MIN_PERIOD_LENGTH = 1 hours;
    /// @notice Gas forwarded to a push payment: a payee (or token hook) can never starve the caller.
    uint256 public constant PUSH_GAS = 150_000;
    /// @notice X12 CARC 119, "benefit maximum for this time period or occurrence has been reached":
    /// the reason recorded when a deemed approval is capped by the coverage limits.
    uint16 public constant CARC_BENEFIT_MAXIMUM = 119;

    uint8 private constant _FREQ_ORIGINAL = 1;
    uint8 private constant _FREQ_REPLACEMENT = 7;
    uint8 private constant _FREQ_VOID = 8;
    uint8 private constant _UNLOCKED = 1;
    uint8 private constant _LOCKED = 2;
    uint256 private constant _VERSION = 3;
    /// @dev Bit offsets of the fields of a {PackedClaim} word (coverageId starts at bit 0).
    uint256 private constant _CLAIM_AMOUNT = 40;
    uint256 private constant _CLAIM_STATUS = 136;
    uint256 private constant _CLAIM_DEADLINE = 144;
    uint256 private constant _CLAIM_REVISION = 184;
    uint256 private constant _CLAIM_WINDOW = 200;

    /// @dev Lock, pause flag and escrow clock in one slot. Escrow time = now - pausedFor (frozen at
    /// pausedAt - pausedFor while paused). `lock` is never zero, so locking never pays a fresh-slot write.
    struct Control {
        uint8 lock;
        bool paused;
        uint40 pausedAt;
        uint40 pausedFor;
    }

    /// @dev A `Claim` packed into one word by hand, in the struct's own storage layout: coverageId
    /// (bits 0-39) | amount (40-135) | status (136-143) | deadline (144-183) | revision (184-199) |
    /// disputeWindow (200-231). One SLOAD / SSTORE instead of the masked read-modify-write per field
    /// a packed-struct assignment compiles to. Zero iff the claim does not exist (status None).
    type PackedClaim is uint256;

    /// @dev An {Enrolment} as stored (with its auto-approval classes, in the same slot), plus whether its
    /// coverage has any limit (per claim or per period), so that an automatic approval under unlimited
    /// coverage never reads the coverage.
    /// Coverage limits never change after {setCoverage}, so the flag cannot go stale.
    struct StoredEnrolment {
        uint40 coverageId;
        uint40 validFrom;
        uint40 validUntil;
        bool limited;
        uint16 autoDataClasses;
    }

    /// @notice The CareRegistry consulted for every party's role and status.
    ICareRegistry public immutable registry;
    /// @notice The ConsentRegistry consulted for patients' consent.
    IConsentRegistry public immutable consent;
    /// @notice The RecordRegistry whose anchors justify claims.
    IRecordRegistry public immutable records;
    /// @notice The stablecoin held in escrow.
    IERC20 public immutable token;

    Control private _control;
    uint40 private _lastCoverageId;
    mapping(bytes32 claimId => PackedClaim) private _claims;
    mapping(bytes32 serviceKey => bytes32 claimId) private _serviceClaims;
    mapping(address insurer => InsurerAccount) private _insurers;
    mapping(address provider => ProviderAccount) private _providers;
    mapping(address insurer => InsurerTerms) private _terms;
    mapping(address insurer => mapping(address patient => StoredEnrolment)) private _enrolments;
    mapping(uint40 coverageId => Coverage) private _coverages;
    mapping(address insurer => DeemedPool) private _deemedPools;
    mapping(address provider => mapping(uint40 coverageId => Velocity)) private _velocity;
    /// @dev What was approved on a contested claim of a per-claim-limited coverage: an award may add only
    /// the rest of the per-claim limit (interface 3). Zero (unset) for every other claim.
    mapping(bytes32 claimId => uint96 approved) private _limitedApprovals;

    /// @dev Re-entrancy guard for a mutating entry point that is blocked while paused.
    modifier nonReentrantWhenNotPaused() {
        _enter(true);
        _;
        _control.lock = _UNLOCKED;
    }

    /// @dev Re-entrancy guard for a mutating entry point that stays open while paused (withdrawals
    /// of owed / free money).
    modifier nonReentrant() {
        _enter(false);
        _;
        _control.lock = _UNLOCKED;
    }

    /// @param registry_ The CareRegistry.
    /// @param consent_ The ConsentRegistry.
    /// @param records_ The RecordRegistry.
    /// @param token_ The ERC-20 stablecoin (immutable; must be a deployed contract).
    /// @param admin Receives DEFAULT_ADMIN_ROLE and PAUSER_ROLE.
    constructor(
        ICareRegistry registry_,
        IConsentRegistry consent_,
        IRecordRegistry records_,
        IERC20 token_,
        address admin
    ) {
        if (
            address(registry_) == address(0) || address(consent_) == address(0) || address(records_) == address(0)
                || admin == address(0) || address(token_).code.length == 0
        ) revert InvalidConfiguration();
        registry = registry_;
        consent = consent_;
        records = records_;
        token = token_;
        _control.lock = _UNLOCKED;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    /// @notice {AccessControl-grantRole}, except that no account grants a role to itself (as in the
    /// CareRegistry): an admin appoints others, never itself.
    function grantRole(bytes32 role, address account) public override onlyRole(getRoleAdmin(role)) {
        if (account == msg.sender) revert SelfGrant(account, role);
        _grantRole(role, account);
    }

    // ------------------------------------------------------------------ insurers: configuration

    /// @inheritdoc IClaimEscrow
    function setTerms(InsurerTerms calldata terms) external nonReentrantWhenNotPaused {
        address insurer = _callerHome(ICareRegistry.Role.Insurer);
        if (
            terms.promptPayWindow < _MIN_PROMPT_PAY_WINDOW || terms.promptPayWindow > _MAX_PROMPT_PAY_WINDOW
                || terms.disputeWindow < _MIN_DISPUTE_WINDOW || terms.disputeWindow > _MAX_DISPUTE_WINDOW
                || terms.autoServiceMin > terms.autoServiceMax
                || (terms.autoMaxAmount != 0 && (terms.autoMaxPerPeriod == 0 || terms.autoPeriod < _MIN_PERIOD_LENGTH))
        ) revert InvalidTerms();
        _terms[insurer] = terms;
        emit InsurerTermsSet(insurer, terms);
    }

    /// @inheritdoc IClaimEscrow
    function setCoverage(
        address patient,
        bytes32 policyHash,
        uint40 validFrom,
        uint40 validUntil,
        uint96 perClaimLimit,
        uint96 perPeriodLimit,
        uint32 periodLength,
        uint16 autoDataClasses
    ) external nonReentrantWhenNotPaused returns (uint40 coverageId) {
        address insurer = _callerHome(ICareRegistry.Role.Insurer);
        if (_terms[insurer].promptPayWindow == 0) revert TermsNotSet(insurer);
        if (patient == address(0)) revert ZeroAddress();
        if (policyHash == bytes32(0)) revert EmptyHash();
        if (
            validUntil <= validFrom || validUntil <= block.timestamp || (perPeriodLimit == 0) != (periodLength == 0)
                || (periodLength != 0 && periodLength < _MIN_PERIOD_LENGTH)
                || autoDataClasses & ~Scopes.ALL_DATA_CLASSES != 0
        ) revert InvalidCoverage();
        // A new id for every enrolment: open claims keep the coverage (and limits) they were submitted under.
        coverageId = ++_lastCoverageId;
        _enrolments[insurer][patient] = StoredEnrolment(
            coverageId, validFrom, validUntil, perClaimLimit != 0 || perPeriodLimit != 0, autoDataClasses
        );
        _coverages[coverageId] = Coverage({
            insurer: insurer,
            claimLimited: perClaimLimit != 0,
            periodLimited: perPeriodLimit != 0,
            periodStart: validFrom,
            patient: patient,
            perClaimLimit: perClaimLimit,
            perPeriodLimit: perPeriodLimit,
            periodUsed: 0,
            periodIndex: 0,
            periodLength: periodLength,
            policyHash: policyHash
        });
        emit CoverageSet(
            coverageId,
            insurer,
            patient,
            policyHash,
            validFrom,
            validUntil,
            perClaimLimit,
            perPeriodLimit,
            periodLength,
            autoDataClasses
        );
    }

    /// @inheritdoc IClaimEscrow
    function endCoverage(address patient) external nonReentrantWhenNotPaused {
        address insurer = _callerHome(ICareRegistry.Role.Insurer);
        StoredEnrolment storage enrolment = _enrolments[insurer][patient];
        if (enrolment.validUntil <= block.timestamp) revert CoverageInactive(insurer, patient);
        uint40 endedAt = uint40(block.timestamp);
        enrolment.validUntil = endedAt;
        if (enrolment.validFrom > endedAt) enrolment.validFrom = endedAt;
        emit CoverageEnded(insurer, patient, endedAt);
    }

    // ------------------------------------------------------------------ insurers: funds

    /// @inheritdoc IClaimEscrow
    function deposit(uint256 amount) external nonReentrantWhenNotPaused {
        _deposit(_callerHome(ICareRegistry.Role.Insurer), amount);
    }

    /// @inheritdoc IClaimEscrow
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external nonReentrantWhenNotPaused {
        address insurer = _callerHome(ICareRegistry.Role.Insurer);
        // A permit can be front-run (anyone may submit the signed permit first), which makes ours
        // revert; that is harmless as long as the allowance is in place, so only then fail.
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {}
        catch {
            if (token.allowance(msg.sender, address(this)) < amount) revert PermitFailed(msg.sender, amount);
        }
        _deposit(insurer, amount);
    }

    /// @inheritdoc IClaimEscrow
    function withdrawFree(uint256 amount) external nonReentrant {
        address insurer = _callerHome(ICareRegistry.Role.Insurer);
        if (amount == 0) revert ZeroAmount();
        InsurerAccount storage account = _insurers[insurer];
        uint256 free = account.free;
        if (amount > free) revert InsufficientEscrow(insurer, amount, free);
        // Checked above: amount <= free.
        unchecked {
            account.free = uint128(free - amount);
        }
        emit FundsWithdrawn(insurer, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ providers

    /// @inheritdoc IClaimEscrow
    function setPushPayments(bool enabled) external nonReentrantWhenNotPaused {
        address provider = _callerHome(ICareRegistry.Role.Provider);
        _providers[provider].pushPayments = enabled;
        emit PushPaymentsSet(provider, enabled);
    }

    /// @inheritdoc IClaimEscrow
    function submitClaim(ClaimSubmission calldata submission) external nonReentrantWhenNotPaused returns (bytes32 claimId) {
        (address provider, uint32 providerId, bool active) = _caller(ICareRegistry.Role.Provider);
        if (!active) revert NotActiveParty(msg.sender, ICareRegistry.Role.Provider);
        if (submission.claimHash == bytes32(0)) revert EmptyHash();
        claimId = _claimId(provider, submission.controlNumber);
        // An original needs the status only; a replacement or void unpacks the whole (now warm) slot.
        ClaimStatus status = _statusOf(claimId);
        StoredEnrolment memory enrolment = _enrolments[submission.insurer][submission.patient];
        uint40 coverageId = enrolment.coverageId;
        uint8 frequency = submission.frequency;
        uint16 revision = 0;
        if (frequency == _FREQ_ORIGINAL) {
            if (status != ClaimStatus.None) revert DuplicateClaim(claimId);
        } else if (frequency == _FREQ_REPLACEMENT || frequency == _FREQ_VOID) {
            if (status != ClaimStatus.Submitted) revert InvalidStatus(claimId, status);
            Claim memory claim = _loadClaim(claimId);
            if (claim.coverageId != coverageId) {
                // Re-enrolled since: the same (insurer, patient) pair, now under a new coverage id.
                Coverage storage previous = _coverages[claim.coverageId];
                if (previous.insurer != submission.insurer || previous.patient != submission.patient) {
                    revert ClaimMismatch(claimId);
                }
            }
            if (frequency == _FREQ_VOID) {
                _storeClaim(claimId, Claim(claim.coverageId, 0, ClaimStatus.Voided, 0, claim.revision, 0));
                emit ClaimVoided(claimId, provider, submission.claimHash);
                return claimId;
            }
            revision = claim.revision + 1;
        } else {
            revert InvalidFrequency(frequency);
        }
        // An unknown pair has an all-zero enrolment, which is never in force.
        if (block.timestamp < enrolment.validFrom || block.timestamp >= enrolment.validUntil) {
            revert CoverageInactive(submission.insurer, submission.patient);
        }
        _submit(claimId, provider, providerId, enrolment, revision, submission);
    }

    /// @inheritdoc IClaimEscrow
    function dispute(bytes32 controlNumber, bytes32 evidenceHash) external nonReentrantWhenNotPaused {
        // No status check: only the claim's provider reaches its claim, and a dispute moves no money,
        // so a suspended provider keeps its right to contest (the award stays owed until reinstated).
        // Claims are keyed by the provider's home account; an account that migrated away is nobody.
        (address provider,,) = _caller(ICareRegistry.Role.Provider);
        if (provider == address(0)) revert NotActiveParty(msg.sender, ICareRegistry.Role.Provider);
        if (evidenceHash == bytes32(0)) revert EmptyHash();
        bytes32 claimId = _claimId(provider, controlNumber);
        uint256 word = PackedClaim.unwrap(_claims[claimId]);
        ClaimStatus status = ClaimStatus(uint8(word >> _CLAIM_STATUS));
        if (status != ClaimStatus.Contestable) revert InvalidStatus(claimId, status);
        uint40 deadline = uint40(word >> _CLAIM_DEADLINE);
        if (_escrowTime() > deadline) revert DeadlinePassed(claimId, deadline);
        // Only the status byte changes (Contestable -> Disputed).
        _claims[claimId] = PackedClaim.wrap(
            (word & ~(uint256(type(uint8).max) << _CLAIM_STATUS)) | (uint256(ClaimStatus.Disputed) << _CLAIM_STATUS)
        );
        emit ClaimDisputed(claimId, provider, evidenceHash);
    }

    /// @inheritdoc IClaimEscrow
    function withdraw(uint256 amount) external nonReentrant {
        _withdraw(msg.sender, amount, false);
    }

    /// @inheritdoc IClaimEscrow
    function withdrawAll() external nonReentrant {
        _withdraw(msg.sender, 0, true);
    }

    /// @inheritdoc IClaimEscrow
    function withdrawTo(address recipient) external nonReentrant {
        if (recipient == address(0)) revert ZeroAddress();
        _withdraw(recipient, 0, true);
    }

    // ------------------------------------------------------------------ adjudication

    /// @inheritdoc IClaimEscrow
    function adjudicate(
        address provider,
        bytes32 controlNumber,
        uint16 revision,
        uint96 approved,
        PatientShare calldata share,
        uint16[] calldata reasonCodes
    ) external nonReentrantWhenNotPaused {
        bytes32 claimId = _claimId(provider, controlNumber);
        Claim memory claim = _loadClaim(claimId);
        if (claim.status != ClaimStatus.Submitted) revert InvalidStatus(claimId, claim.status);
        Coverage storage coverage = _coverages[claim.coverageId];
        address insurer = coverage.insurer;
        _requireClaimInsurer(claimId, insurer);
        if (claim.revision != revision) revert StaleRevision(claimId, revision, claim.revision);
        if (_escrowTime() > claim.deadline) revert DeadlinePassed(claimId, claim.deadline);

        uint256 shareTotal = uint256(share.deductible) + share.coinsurance + share.copay;
        if (approved + shareTotal > claim.amount) revert InvalidAdjudication(claim.amount, approved, shareTotal);
        uint96 contested;
        // The patient share is contested like a denial (reason code, encumbered, disputable): an insurer
        // cannot settle a claim unpaid by calling the bill the patient's. Checked above: approved <= billed.
        unchecked {
            contested = claim.amount - approved;
        }
        if (contested != 0 && reasonCodes.length == 0) revert MissingReasonCodes();
        if (approved != 0) {
            (uint256 headroom, uint32 period) = _headroom(coverage);
            if (approved > headroom) revert CoverageLimitExceeded(insurer, coverage.patient, approved, headroom);
            _recordUsage(coverage, period, approved);
            if (contested != 0 && coverage.claimLimited) _limitedApprovals[claimId] = approved;
        }
        if (shareTotal != 0) emit PatientResponsibility(claimId, share.deductible, share.coinsurance, share.copay);
        _adjudicate(claimId, provider, insurer, claim, approved, contested, reasonCodes, Adjudication.Manual, false);
    }

    /// @inheritdoc IClaimEscrow
    function finalizeDeemed(address provider, bytes32 controlNumber) external nonReentrantWhenNotPaused {
        bytes32 claimId = _claimId(provider, controlNumber);
        Claim memory claim = _loadClaim(claimId);
        Coverage storage coverage = _coverages[claim.coverageId];
        address insurer = coverage.insurer;
        bool fromPool = claim.status == ClaimStatus.DeemedUnfunded;
        if (fromPool) {
            _requireActive(provider, ICareRegistry.Role.Provider);
            DeemedPool memory pool = _deemedPools[insurer];
            if (claim.amount > pool.funded) revert InsufficientEscrow(insurer, claim.amount, pool.funded);
            // Checked above: amount <= funded <= unpaid (the pool never funds more than it owes).
            unchecked {
                _deemedPools[insurer] = DeemedPool(pool.unpaid - claim.amount, pool.funded - claim.amount);
            }
        } else {
            if (claim.status != ClaimStatus.Submitted) revert InvalidStatus(claimId, claim.status);
            if (_escrowTime() <= claim.deadline) revert DeadlineNotReached(claimId, claim.deadline);
            _requireActive(provider, ICareRegistry.Role.Provider);
            uint128 free = _insurers[insurer].free;
            if (claim.amount > free) {
                _deemUnfunded(claimId, insurer, claim, free);
                return;
            }
        }
        (uint256 headroom, uint32 period) = _headroom(coverage);
        bool capped = claim.amount > headroom;
        // When capped, headroom < amount <= type(uint96).max, so the cast is lossless.
        uint96 approved = capped ? uint96(headroom) : claim.amount;
        uint16[] memory reasonCodes = new uint16[](capped ? 1 : 0);
        if (capped) reasonCodes[0] = CARC_BENEFIT_MAXIMUM;
        _recordUsage(coverage, period, approved);
        if (capped && approved != 0 && coverage.claimLimited) _limitedApprovals[claimId] = approved;
        _adjudicate(
            claimId, provider, insurer, claim, approved, claim.amount - approved, reasonCodes, Adjudication.Deemed, fromPool
        );
    }

    /// @inheritdoc IClaimEscrow
    function resolveDispute(address provider, bytes32 controlNumber, uint96 award, bytes32 decisionHash)
        external
        nonReentrantWhenNotPaused
    {
        if (decisionHash == bytes32(0)) revert EmptyHash();
        bytes32 claimId = _claimId(provider, controlNumber);
        Claim memory claim = _loadClaim(claimId);
        if (claim.status != ClaimStatus.Disputed) revert InvalidStatus(claimId, claim.status);
        Coverage storage coverage = _coverages[claim.coverageId];
        address insurer = coverage.insurer;
        _requireArbiterOf(insurer);
        if (award > claim.amount) revert AwardExceedsContested(award, claim.amount);
        if (award != 0 && (coverage.claimLimited || coverage.periodLimited)) _useCoverage(claimId, coverage, award);
        uint96 returned;
        // Checked above: award <= contested.
        unchecked {
            returned = claim.amount - award;
        }
        InsurerAccount memory account = _insurers[insurer];
        // The contested amount leaves `encumbered`; what is not awarded goes back to `free`.
        _insurers[insurer] = InsurerAccount(account.free + returned, account.encumbered - claim.amount);
        _settle(claimId, claim);
        emit DisputeResolved(claimId, msg.sender, award, returned, decisionHash);
        if (award != 0) _credit(provider, award, false);
    }

    /// @inheritdoc IClaimEscrow
    function release(address provider, bytes32 controlNumber) external nonReentrantWhenNotPaused {
        bytes32 claimId = _claimId(provider, controlNumber);
        Claim memory claim = _loadClaim(claimId);
        if (claim.status != ClaimStatus.Contestable) revert InvalidStatus(claimId, claim.status);
        if (_escrowTime() <= claim.deadline) revert DeadlineNotReached(claimId, claim.deadline);
        address insurer = _coverages[claim.coverageId].insurer;
        InsurerAccount memory account = _insurers[insurer];
        _insurers[insurer] = InsurerAccount(account.free + claim.amount, account.encumbered - claim.amount);
        _settle(claimId, claim);
        emit EncumbranceReleased(claimId, insurer, claim.amount);
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc IClaimEscrow
    function pause() external onlyRole(PAUSER_ROLE) {
        Control storage control = _control;
        if (control.paused) revert EnforcedPause();
        control.paused = true;
        control.pausedAt = uint40(block.timestamp);
        emit EscrowPaused(msg.sender);
    }

    /// @inheritdoc IClaimEscrow
    function unpause() external onlyRole(PAUSER_ROLE) {
        Control storage control = _control;
        if (!control.paused) revert ExpectedPause();
        uint40 duration = uint40(block.timestamp) - control.pausedAt;
        control.paused = false;
        control.pausedFor += duration;
        emit EscrowUnpaused(msg.sender, duration);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IClaimEscrow
    function version() external pure returns (uint256) {
        return _VERSION;
    }

    /// @inheritdoc IClaimEscrow
    function deemedPoolOf(address insurer) external view returns (DeemedPool memory) {
        return _deemedPools[insurer];
    }

    /// @inheritdoc IClaimEscrow
    function velocityOf(address provider, uint40 coverageId) external view returns (Velocity memory) {
        return _velocity[provider][coverageId];
    }

    /// @inheritdoc IClaimEscrow
    function claimIdOf(address provider, bytes32 controlNumber) external pure returns (bytes32) {
        return _claimId(provider, controlNumber);
    }

    /// @inheritdoc IClaimEscrow
    function claimOf(bytes32 claimId) external view returns (Claim memory) {
        return _loadClaim(claimId);
    }

    /// @inheritdoc IClaimEscrow
    function serviceClaimOf(bytes32 recordId, address patient, uint16 serviceCode) external view returns (bytes32) {
        return _serviceClaims[_serviceKey(recordId, patient, serviceCode)];
    }

    /// @inheritdoc IClaimEscrow
    function insurerAccountOf(address insurer) external view returns (InsurerAccount memory) {
        return _insurers[insurer];
    }

    /// @inheritdoc IClaimEscrow
    function providerAccountOf(address provider) external view returns (ProviderAccount memory) {
        return _providers[provider];
    }

    /// @inheritdoc IClaimEscrow
    function termsOf(address insurer) external view returns (InsurerTerms memory) {
        return _terms[insurer];
    }

    /// @inheritdoc IClaimEscrow
    function enrolmentOf(address insurer, address patient) external view returns (Enrolment memory) {
        StoredEnrolment memory enrolment = _enrolments[insurer][patient];
        return Enrolment(enrolment.coverageId, enrolment.validFrom, enrolment.validUntil, enrolment.autoDataClasses);
    }

    /// @inheritdoc IClaimEscrow
    function coverageOf(uint40 coverageId) external view returns (Coverage memory) {
        return _coverages[coverageId];
    }

    /// @inheritdoc IClaimEscrow
    function escrowTime() external view returns (uint40) {
        Control memory control = _control;
        return (control.paused ? control.pausedAt : uint40(block.timestamp)) - control.pausedFor;
    }

    /// @inheritdoc IClaimEscrow
    function paused() external view returns (bool) {
        return _control.paused;
    }

    // ------------------------------------------------------------------ internals

    /// @dev Takes the lock (one cold read of `_control`); with `live`, also requires "not paused".
    function _enter(bool live) private {
        uint256 word;
        // Assembly: the packed `_control` word (lock in bits 0-7, paused in bits 8-15) read once and
        // written once with the lock byte set, instead of a masked SLOAD per field and another for
        // the write. `_control` starts its slot (offset 0).
        assembly ("memory-safe") {
            word := sload(_control.slot)
        }
        if (uint8(word) == _LOCKED) revert ReentrantCall();
        if (live && uint8(word >> 8) != 0) revert EnforcedPause();
        assembly ("memory-safe") {
            sstore(_control.slot, or(and(word, not(0xff)), _LOCKED))
        }
    }

    /// @dev Escrow time while not paused (only called from `nonReentrantWhenNotPaused` functions).
    function _escrowTime() private view returns (uint40) {
        return uint40(block.timestamp) - _control.pausedFor;
    }

    /// @dev Reverts unless the party whose home account is `account` is active in `role` now (at its
    /// current account, wherever a migration moved it). For stored parties (a claim's provider), never
    /// for the caller: see {_caller}.
    function _requireActive(address account, ICareRegistry.Role role) private view {
        (uint256 role_,,,) = _party(account);
        if (role_ != uint256(role)) revert NotActiveParty(account, role);
    }

    /// @dev The caller as a party: its home account (the key of its state here), its party id and whether
    /// it is active in `role`. An account that migrated away is nobody (zero, 0, false): the party acts
    /// from its current account only. An unregistered caller (all zero) is its own home, inactive.
    function _caller(ICareRegistry.Role role) private view returns (address home, uint32 id, bool active) {
        (uint256 role_, uint32 id_, address home_, address current) = _party(msg.sender);
        if (current == address(0)) return (msg.sender, 0, false);
        if (current == msg.sender) {
            home = home_;
            id = id_;
            active = role_ == uint256(role);
        }
    }

    /// @dev Reverts unless the caller is the current account of `insurer` (the claim's insurer, by its home
    /// account) and active.
    function _requireClaimInsurer(bytes32 claimId, address insurer) private view {
        (uint256 role,, address home, address current) = _party(msg.sender);
        if (current != msg.sender || home != insurer) revert NotClaimInsurer(claimId, msg.sender);
        if (role != uint256(ICareRegistry.Role.Insurer)) revert NotActiveParty(msg.sender, ICareRegistry.Role.Insurer);
    }

    /// @dev {_caller}'s home account, reverting unless the caller is active in `role`.
    function _callerHome(ICareRegistry.Role role) private view returns (address home) {
        bool active;
        (home,, active) = _caller(role);
        if (!active) revert NotActiveParty(msg.sender, role);
    }

    /// @dev `registry.resolve(account)` (PartyResolver: hand-encoded, a short answer reads as nobody).
    function _party(address account)
        private
        view
        returns (uint256 role, uint32 id, address home, address current)
    {
        return PartyResolver.resolve(registry, account);
    }

    /// @dev Reverts unless the caller is the arbiter the CareRegistry assigns to `insurer` and it is active
    /// (`registry.arbiterOf(insurer)`, one call); a short answer reads as "not assigned".
    function _requireArbiterOf(address insurer) private view {
        (bool ok, uint256 arbiter, uint256 active) = _registryWords(ICareRegistry.arbiterOf.selector, insurer);
        if (!ok || arbiter != uint256(uint160(msg.sender)) || active != 1) {
            revert NotAssignedArbiter(msg.sender, insurer);
        }
    }

    /// @dev An award counts against the coverage like an approval: at most the per-claim limit less what
    /// was approved on the claim, and the benefit period's headroom at the time of the ruling.
    function _useCoverage(bytes32 claimId, Coverage storage coverage, uint96 award) private {
        (uint256 headroom, uint32 period) = _headroom(coverage);
        if (coverage.claimLimited) {
            uint256 limit = coverage.perClaimLimit;
            uint256 approved = _limitedApprovals[claimId];
            uint256 left = limit > approved ? limit - approved : 0;
            if (left < headroom) headroom = left;
            delete _limitedApprovals[claimId];
        }
        if (award > headroom) revert CoverageLimitExceeded(coverage.insurer, coverage.patient, award, headroom);
        _recordUsage(coverage, period, award);
    }

    /// @dev `consent.hasConsent(patient, grantee, purpose, dataClass)`, hand-encoded: up to four times
    /// per submission, so the 132 bytes of arguments are written above the free-memory pointer (not
    /// allocated) and the answer read into scratch space. A reverting call bubbles its revert up, as a
    /// high-level call would; a short or non-boolean answer reads as "no consent".
    function _hasConsent(address patient, address grantee, uint8 purpose, uint8 dataClass)
        private
        view
        returns (bool granted)
    {
        IConsentRegistry consent_ = consent;
        bytes4 selector = IConsentRegistry.hasConsent.selector;
        // Assembly: the call above; memory at and above the free-memory pointer is scratch until the
        // next allocation, and 0x00-0x1f is scratch space.
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, selector)
            mstore(add(ptr, 0x04), patient)
            mstore(add(ptr, 0x24), grantee)
            mstore(add(ptr, 0x44), purpose)
            mstore(add(ptr, 0x64), dataClass)
            if iszero(staticcall(gas(), consent_, ptr, 0x84, 0x00, 0x20)) {
                returndatacopy(ptr, 0, returndatasize())
                revert(ptr, returndatasize())
            }
            granted := and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1))
        }
    }

    /// @dev `registry.<selector>(account)` with a two-word answer (`arbiterOf`), hand-encoded
    /// on the hot paths. A reverting call bubbles its revert data up, as a high-level call would; `ok` is
    /// false when the answer is shorter than two words.
    function _registryWords(bytes4 selector, address account)
        private
        view
        returns (bool ok, uint256 first, uint256 second)
    {
        ICareRegistry registry_ = registry;
        // Assembly: 36 bytes of arguments out and two words back, both in scratch space (0x00-0x3f).
        assembly ("memory-safe") {
            mstore(0x00, selector)
            mstore(0x04, account)
            if iszero(staticcall(gas(), registry_, 0x00, 0x24, 0x00, 0x40)) {
                let ptr := mload(0x40)
                returndatacopy(ptr, 0, returndatasize())
                revert(ptr, returndatasize())
            }
            ok := gt(returndatasize(), 0x3f)
            first := mload(0x00)
            second := mload(0x20)
        }
    }

    /// @dev Validates an original or replacement submission, then stores it or approves it at once.
    function _submit(
        bytes32 claimId,
        address provider,
        uint32 providerId,
        StoredEnrolment memory enrolment,
        uint16 revision,
        ClaimSubmission calldata submission
    ) private {
        address patient = submission.patient;
        address insurer = submission.insurer;
        uint96 billed = submission.billed;
        if (billed == 0) revert ZeroAmount();
        if (!_hasConsent(patient, insurer, Scopes.HPAYMT, Scopes.BILLING)) {
            revert MissingConsent(patient, insurer, Scopes.HPAYMT, Scopes.BILLING);
        }
        (uint16 classes, bool allAuthored) = _checkRecords(claimId, provider, providerId, enrolment, submission);

        InsurerTerms memory terms = _terms[insurer];
        uint40 deadline = _escrowTime() + terms.promptPayWindow;
        _emitSubmitted(claimId, provider, revision, deadline, submission);
        if (
            allAuthored
                && _matchesAutoRule(terms, billed, submission.serviceCode, classes, enrolment.autoDataClasses)
                && _autoApprove(claimId, provider, enrolment, insurer, billed, revision, terms)
        ) return;
        _storeClaim(claimId, Claim(enrolment.coverageId, billed, ClaimStatus.Submitted, deadline, revision, terms.disputeWindow));
    }

    function _emitSubmitted(
        bytes32 claimId,
        address provider,
        uint16 revision,
        uint40 deadline,
        ClaimSubmission calldata submission
    ) private {
        emit ClaimSubmitted(
            claimId,
            submission.insurer,
            submission.patient,
            provider,
            submission.controlNumber,
            submission.billed,
            submission.serviceCode,
            revision,
            deadline,
            submission.claimHash
        );
    }

    /// @dev Whether a claim falls under the insurer's auto-approval rule (autoMaxAmount 0: never) and
    /// cites only classes of the coverage's `autoDataClasses` (labels in the member's label space).
    function _matchesAutoRule(
        InsurerTerms memory terms,
        uint96 billed,
        uint16 serviceCode,
        uint16 classes,
        uint16 autoDataClasses
    ) private pure returns (bool) {
        return billed <= terms.autoMaxAmount && serviceCode >= terms.autoServiceMin
            && serviceCode <= terms.autoServiceMax && classes & ~autoDataClasses == 0;
    }

    /// @dev Checks every cited record; a record the provider authored takes its (record, patient,
    /// service) duplicate key, another author's record takes none (it never blocks the author).
    /// @return classes The union of the records' data classes (bitmask).
    /// @return allAuthored Whether the provider anchored every cited record version itself.
    function _checkRecords(
        bytes32 claimId,
        address provider,
        uint32 providerId,
        StoredEnrolment memory enrolment,
        ClaimSubmission calldata submission
    ) private returns (uint16 classes, bool allAuthored) {
        RecordRef[] calldata refs = submission.records;
        if (refs.length == 0) revert NoRecords();
        allAuthored = true;
        for (uint256 i; i < refs.length; ++i) {
            bytes32 recordId = refs[i].recordId;
            (uint8 dataClass, bool authored) = _checkRecord(provider, providerId, enrolment, submission, refs[i]);
            classes |= uint16(1) << dataClass;
            if (!authored) {
                allAuthored = false;
                continue;
            }
            // The key includes the claim's patient (redundant now that a record id carries it, and
            // kept so the key stays well-defined on its own).
            bytes32 key = _serviceKey(recordId, submission.patient, submission.serviceCode);
            bytes32 holder = _serviceClaims[key];
            if (holder != claimId) {
                // A key held by a voided claim is free again; any other holder is a live duplicate.
                if (holder != bytes32(0) && _statusOf(holder) != ClaimStatus.Voided) {
                    revert DuplicateService(recordId, submission.serviceCode, holder);
                }
                _serviceClaims[key] = claimId;
            }
        }
    }

    /// @dev One cited record: of the claim's patient, anchored within the coverage period, usable by
    /// the provider and disclosable to the insurer. Returns its data class and whether the provider
    /// authored it.
    function _checkRecord(
        address provider,
        uint32 providerId,
        StoredEnrolment memory enrolment,
        ClaimSubmission calldata submission,
        RecordRef calldata ref
    ) private view returns (uint8 dataClass, bool authored) {
        address patient = submission.patient;
        // A record id starts with its patient's address: a claim may only cite its patient's records.
        if (address(bytes20(ref.recordId)) != patient) revert RecordNotOfPatient(ref.recordId, patient);
        // Author ids, not addresses: a CareRegistry party id belongs to one account for good, and
        // comparing ids saves the registry call that maps the author's id to its account.
        (uint32 authorId, uint8 dataClass_, uint40 anchoredAt) = _recordFacts(ref);
        dataClass = dataClass_;
        if (authorId == 0) revert RecordNotAnchored(ref.recordId, ref.contentHash);
        // Care billed under a coverage was recorded while it was in force.
        if (anchoredAt < enrolment.validFrom || anchoredAt >= enrolment.validUntil) {
            revert RecordOutsideCoverage(ref.recordId, anchoredAt);
        }
        authored = authorId == providerId;
        if (!_hasConsent(patient, provider, Scopes.TREAT, dataClass)) {
            // Without a treatment grant a provider may still bill for its own record under a payment grant.
            if (!authored || !_hasConsent(patient, provider, Scopes.HPAYMT, dataClass)) {
                revert MissingConsent(patient, provider, Scopes.TREAT, dataClass);
            }
        }
        // Citing the record discloses its class to the insurer (BILLING is checked by the caller).
        address insurer = submission.insurer;
        if (dataClass != Scopes.BILLING && !_hasConsent(patient, insurer, Scopes.HPAYMT, dataClass)) {
            revert MissingConsent(patient, insurer, Scopes.HPAYMT, dataClass);
        }
    }

    /// @dev `records.recordFacts(ref.recordId, ref.contentHash)`, hand-encoded like {_hasConsent}: a
    /// reverting call bubbles up, a short answer reads as "not anchored" (author id 0).
    function _recordFacts(RecordRef calldata ref)
        private
        view
        returns (uint32 authorId, uint8 dataClass, uint40 anchoredAt)
    {
        IRecordRegistry records_ = records;
        bytes4 selector = IRecordRegistry.recordFacts.selector;
        bytes32 recordId = ref.recordId;
        bytes32 contentHash = ref.contentHash;
        // Assembly: arguments and the three-word answer above the free-memory pointer (not allocated).
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, selector)
            mstore(add(ptr, 0x04), recordId)
            mstore(add(ptr, 0x24), contentHash)
            if iszero(staticcall(gas(), records_, ptr, 0x44, ptr, 0x60)) {
                returndatacopy(ptr, 0, returndatasize())
                revert(ptr, returndatasize())
            }
            if gt(returndatasize(), 0x5f) {
                authorId := and(mload(ptr), 0xffffffff)
                dataClass := and(mload(add(ptr, 0x20)), 0xff)
                anchoredAt := and(mload(add(ptr, 0x40)), 0xffffffffff)
            }
        }
    }

    /// @dev Approves a claim in full inside its submission if the velocity cap, limits and funds
    /// allow; returns false (claim stays for manual adjudication) otherwise.
    function _autoApprove(
        bytes32 claimId,
        address provider,
        StoredEnrolment memory enrolment,
        address insurer,
        uint96 billed,
        uint16 revision,
        InsurerTerms memory terms
    ) private returns (bool) {
        uint40 coverageId = enrolment.coverageId;
        Coverage storage coverage = _coverages[coverageId];
        // Unlimited coverage (the enrolment says so): no headroom to check, no usage to record, and
        // the coverage is not read at all.
        uint256 headroom = type(uint256).max;
        uint32 period = 0;
        if (enrolment.limited) (headroom, period) = _headroom(coverage);
        if (billed > headroom) return false;
        InsurerAccount memory account = _insurers[insurer];
        if (billed > account.free) return false;
        if (!_takeVelocity(provider, coverageId, terms)) return false;
        if (enrolment.limited) _recordUsage(coverage, period, billed);
        // Checked above: billed <= free.
        unchecked {
            _insurers[insurer] = InsurerAccount(account.free - billed, account.encumbered);
        }
        _storeClaim(claimId, Claim(coverageId, 0, ClaimStatus.Settled, 0, revision, 0));
        emit ClaimAdjudicated(claimId, insurer, Adjudication.Automatic, billed, 0, new uint16[](0), 0);
        _credit(provider, billed, true);
        return true;
    }

    /// @dev Counts one automatic approval of `provider` on `coverageId` unless the insurer's velocity
    /// cap for the current window is reached (then returns false and counts nothing).
    function _takeVelocity(address provider, uint40 coverageId, InsurerTerms memory terms) private returns (bool) {
        // Fixed windows of autoPeriod seconds (>= 1 hour, so fewer than 2^32 of them in 2^40 s).
        uint32 window = uint32(block.timestamp / terms.autoPeriod);
        Velocity storage slot = _velocity[provider][coverageId];
        Velocity memory velocity = slot;
        uint16 used = velocity.window == window ? velocity.count : 0;
        if (used >= terms.autoMaxPerPeriod) return false;
        // used < autoMaxPerPeriod <= type(uint16).max, so the increment cannot overflow.
        unchecked {
            slot.window = window;
            slot.count = used + 1;
        }
        return true;
    }

    /// @dev Books an adjudication: takes approved + contested from the insurer's free balance (or,
    /// `fromPool`, from its deemed pool, already debited by the caller), encumbers the contested part,
    /// moves the claim on and credits (or pushes) the approval.
    function _adjudicate(
        bytes32 claimId,
        address provider,
        address insurer,
        Claim memory claim,
        uint96 approved,
        uint96 contested,
        uint16[] memory reasonCodes,
        Adjudication kind,
        bool fromPool
    ) private {
        InsurerAccount memory account = _insurers[insurer];
        uint128 free = account.free;
        if (!fromPool) {
            uint256 needed = uint256(approved) + contested;
            if (needed > free) revert InsufficientEscrow(insurer, needed, free);
            // Checked above: needed <= free, so it neither underflows nor truncates.
            unchecked {
                free -= uint128(needed);
            }
        }
        _insurers[insurer] = InsurerAccount(free, account.encumbered + contested);
        uint40 disputeDeadline = 0;
        if (contested != 0) {
            disputeDeadline = _escrowTime() + claim.disputeWindow;
            _storeClaim(
                claimId,
                Claim(
                    claim.coverageId, contested, ClaimStatus.Contestable, disputeDeadline, claim.revision, claim.disputeWindow
                )
            );
        } else {
            _settle(claimId, claim);
        }
        emit ClaimAdjudicated(claimId, insurer, kind, approved, contested, reasonCodes, disputeDeadline);
        if (approved != 0) _credit(provider, approved, false);
    }

    /// @dev A deemed approval the free balance cannot cover: the claim becomes the insurer's debt and
    /// its whole free balance is set aside for it (so it cannot be withdrawn ahead of the claim).
    function _deemUnfunded(bytes32 claimId, address insurer, Claim memory claim, uint128 free) private {
        DeemedPool memory pool = _deemedPools[insurer];
        _deemedPools[insurer] = DeemedPool(pool.unpaid + claim.amount, pool.funded + free);
        if (free != 0) _insurers[insurer].free = 0;
        // Amount, deadline, revision and dispute window stay (the caller returns right after).
        claim.status = ClaimStatus.DeemedUnfunded;
        _storeClaim(claimId, claim);
        emit ClaimDeemedUnfunded(claimId, insurer, claim.amount, free);
    }

    /// @dev Final state; the slot stays (it is the control-number duplicate check).
    function _settle(bytes32 claimId, Claim memory claim) private {
        _storeClaim(claimId, Claim(claim.coverageId, 0, ClaimStatus.Settled, 0, claim.revision, 0));
    }

    /// @dev Reads claim `claimId` (one SLOAD; all zero if unknown). See {PackedClaim}.
    function _loadClaim(bytes32 claimId) private view returns (Claim memory claim) {
        uint256 word = PackedClaim.unwrap(_claims[claimId]);
        claim.coverageId = uint40(word);
        claim.amount = uint96(word >> _CLAIM_AMOUNT);
        claim.status = ClaimStatus(uint8(word >> _CLAIM_STATUS));
        claim.deadline = uint40(word >> _CLAIM_DEADLINE);
        claim.revision = uint16(word >> _CLAIM_REVISION);
        claim.disputeWindow = uint32(word >> _CLAIM_WINDOW);
    }

    /// @dev The status of claim `claimId` alone (None if unknown). See {PackedClaim}.
    function _statusOf(bytes32 claimId) private view returns (ClaimStatus) {
        return ClaimStatus(uint8(PackedClaim.unwrap(_claims[claimId]) >> _CLAIM_STATUS));
    }

    /// @dev Writes claim `claimId` (one SSTORE). See {PackedClaim}.
    function _storeClaim(bytes32 claimId, Claim memory claim) private {
        _claims[claimId] = PackedClaim.wrap(
            uint256(claim.coverageId) | (uint256(claim.amount) << _CLAIM_AMOUNT)
                | (uint256(claim.status) << _CLAIM_STATUS) | (uint256(claim.deadline) << _CLAIM_DEADLINE)
                | (uint256(claim.revision) << _CLAIM_REVISION) | (uint256(claim.disputeWindow) << _CLAIM_WINDOW)
        );
    }

    /// @dev Credits a non-zero `amount` to `provider`, or pushes it if the provider opted in and is
    /// active. Called last, after every other effect of the transaction.
    function _credit(address provider, uint96 amount, bool knownActive) private {
        ProviderAccount storage account = _providers[provider];
        ProviderAccount memory current = account;
        if (current.pushPayments) {
            // The payee is the provider's current account: the caller itself when known active (its own
            // submission), else the registry's answer for the home account `provider`.
            address payee = msg.sender;
            bool active = knownActive;
            if (!knownActive) {
                uint256 role;
                (role,,, payee) = _party(provider);
                active = role == uint256(ICareRegistry.Role.Provider);
            }
            if (active) {
                account.paidOut = _addPaid(current.paidOut, amount);
                if (_tryTransfer(payee, amount)) {
                    emit PaymentPushed(provider, amount);
                    return;
                }
                // The transfer failed (blacklisted payee, reverting hook, out of gas...): undo and
                // keep the amount owed. Written after the call, but under the lock.
                account.paidOut = current.paidOut;
            }
            emit PushFailed(provider, amount);
        }
        account.owed = current.owed + amount;
    }

    /// @dev The caller (an active provider's current account) withdraws from its home account's balance.
    function _withdraw(address recipient, uint256 amount, bool all) private {
        address provider = _callerHome(ICareRegistry.Role.Provider);
        ProviderAccount storage account = _providers[provider];
        uint256 owed = account.owed;
        if (all) amount = owed;
        if (amount == 0) revert ZeroAmount();
        if (amount > owed) revert InsufficientOwed(provider, amount, owed);
        // Checked above: amount <= owed, which fits uint128.
        unchecked {
            account.owed = uint128(owed - amount);
        }
        account.paidOut = _addPaid(account.paidOut, amount);
        emit PayoutWithdrawn(provider, recipient, amount);
        token.safeTransfer(recipient, amount);
    }

    /// @dev Credits the insurer with what actually arrived (balance delta), so a fee-on-transfer
    /// token cannot create phantom balance. The credit follows the transfer; the lock is held.
    function _deposit(address insurer, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        InsurerAccount storage account = _insurers[insurer];
        uint256 free = account.free + received;
        // Keeping free + encumbered within uint128 means no later move between the two can overflow.
        if (free + account.encumbered > type(uint128).max) revert AmountTooLarge(received);
        emit Deposited(insurer, received);
        // Unfunded deemed claims come first: the deposit fills their pool before it becomes free.
        DeemedPool memory pool = _deemedPools[insurer];
        uint256 gap = pool.unpaid - pool.funded;
        if (gap != 0) {
            uint256 setAside = gap < received ? gap : received;
            // setAside <= gap = unpaid - funded, so funded + setAside <= unpaid fits uint128; setAside <= free.
            unchecked {
                _deemedPools[insurer].funded = pool.funded + uint128(setAside);
                free -= setAside;
            }
            emit DeemedPoolFunded(insurer, setAside);
        }
        account.free = uint128(free);
    }

    /// @dev A token transfer that never reverts: gas-capped at PUSH_GAS and reading at most one
    /// word of return data, so neither a reverting or blacklisted payee, a gas-burning hook nor a
    /// return-data bomb can make the caller fail. Success = call succeeded and returned nothing
    /// (the token has code, checked at construction) or a word equal to 1.
    function _tryTransfer(address to, uint256 amount) private returns (bool ok) {
        bytes memory data = abi.encodeCall(IERC20.transfer, (to, amount));
        address target = address(token);
        // Assembly: a low-level call with a gas cap and a bounded return-data copy into scratch space.
        assembly ("memory-safe") {
            mstore(0x00, 0)
            let success := call(PUSH_GAS, target, 0, add(data, 0x20), mload(data), 0x00, 0x20)
            let size := returndatasize()
            ok := and(success, or(iszero(size), and(gt(size, 31), eq(mload(0x00), 1))))
        }
    }

    /// @dev How much the insurer may still approve for this coverage now (per-claim and per-period
    /// limits; max uint256 if none) and the current benefit period. Reads the limit slots only if
    /// the coverage has such a limit.
    function _headroom(Coverage storage coverage) private view returns (uint256 headroom, uint32 period) {
        headroom = type(uint256).max;
        if (coverage.claimLimited) headroom = coverage.perClaimLimit;
        if (coverage.periodLimited) {
            uint40 start = coverage.periodStart;
            // Fixed windows from periodStart; at most 2^40 / MIN_PERIOD_LENGTH < 2^32 of them.
            period = block.timestamp > start ? uint32((block.timestamp - start) / coverage.periodLength) : 0;
            uint256 used = coverage.periodIndex != period ? 0 : coverage.periodUsed;
            uint256 limit = coverage.perPeriodLimit;
            uint256 left = limit > used ? limit - used : 0;
            if (left < headroom) headroom = left;
        }
    }

    /// @dev Adds `amount` to the usage of `period` (only when a period limit exists).
    function _recordUsage(Coverage storage coverage, uint32 period, uint96 amount) private {
        if (amount != 0 && coverage.periodLimited) {
            uint96 used = coverage.periodIndex != period ? 0 : coverage.periodUsed;
            coverage.periodIndex = period;
            // Within the period limit (checked by the caller via _headroom), which is a uint96.
            coverage.periodUsed = used + amount;
        }
    }

    /// @dev Lifetime payouts, saturating at 2^120 - 1 (informational; it never blocks a payment).
    function _addPaid(uint120 paidOut, uint256 amount) private pure returns (uint120) {
        uint256 total = uint256(paidOut) + amount;
        return total > type(uint120).max ? type(uint120).max : uint120(total);
    }

    function _claimId(address provider, bytes32 controlNumber) private pure returns (bytes32) {
        return keccak256(abi.encode(provider, controlNumber));
    }

    function _serviceKey(bytes32 recordId, address patient, uint16 serviceCode) private pure returns (bytes32) {
        return keccak256(abi.encode(recordId, patient, serviceCode));
    }
}
