// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ICareRegistry} from "./ICareRegistry.sol";
import {IConsentRegistry} from "./IConsentRegistry.sol";
import {IRecordRegistry} from "./IRecordRegistry.sol";

/**
 * @title IClaimEscrow
 * @notice Stablecoin escrow for healthcare claims: insurers fund it and enrol patients, providers
 * submit claims backed by anchored records, insurers adjudicate (or the claim is deemed approved
 * after the insurer's prompt-pay deadline), approved money becomes owed to the provider and is
 * pulled (or, opted in, pushed). Partial approvals and denials can be disputed before an arbiter;
 * the contested amount is encumbered meanwhile.
 * @dev A claim is referenced by `(provider, controlNumber)`; its id is
 * `keccak256(abi.encode(provider, controlNumber))`. All deadlines are in *escrow time*: block time
 * minus the total time the escrow has been paused, so a pause never eats anyone's window.
 * Amounts are in the token's smallest unit. No PHI is stored: parties are addresses, the claim,
 * policy, evidence and decision documents are commitments, the control number must be an opaque id.
 */
interface IClaimEscrow {
    /// @notice Lifecycle of a claim.
    /// @dev None -> Submitted -> (Settled | Contestable | Voided | DeemedUnfunded);
    /// DeemedUnfunded -> (Settled | Contestable); Contestable -> (Disputed | Settled); Disputed -> Settled.
    /// A replacement (frequency 7) keeps a claim Submitted with a new revision. DeemedUnfunded: the
    /// prompt-pay deadline passed and the insurer's free balance could not cover the claim; the claim
    /// is the insurer's debt, paid from its next deposits (see {finalizeDeemed}).
    enum ClaimStatus {
        None,
        Submitted,
        Contestable,
        Disputed,
        Settled,
        Voided,
        DeemedUnfunded
    }

    /// @notice How a claim was adjudicated.
    enum Adjudication {
        Manual,
        Automatic,
        Deemed
    }

    /// @notice A claim, packed into one storage slot (the slot is also the control-number duplicate check).
    /// @dev `amount` is the billed amount while Submitted, the contested (encumbered) amount while
    /// Contestable or Disputed, and 0 once Settled or Voided. `deadline` is the prompt-pay deadline
    /// while Submitted and the dispute deadline while Contestable (escrow time), else 0. The claim's
    /// insurer and patient are those of coverage `coverageId`, the coverage in force when the claim
    /// (or its latest replacement) was submitted; `disputeWindow` is the insurer's dispute window at
    /// that time. A claim is judged by these terms, whatever the insurer changes later.
    struct Claim {
        uint40 coverageId;
        uint96 amount;
        ClaimStatus status;
        uint40 deadline;
        uint16 revision;
        uint32 disputeWindow;
    }

    /// @notice An anchored record version cited as evidence for a claim.
    struct RecordRef {
        bytes32 recordId;
        bytes32 contentHash;
    }

    /// @notice A claim as submitted by a provider (X12 837 analogue).
    /// @param controlNumber The provider's claim control number: an opaque random id, never an account number.
    /// @param patient The patient (subscriber) the claim is about.
    /// @param insurer The payer.
    /// @param billed The billed (charged) amount; 1 ..= type(uint96).max. Ignored for a void.
    /// @param serviceCode The network's service category code (used for duplicate and auto-approval rules).
    /// @param frequency 1 original, 7 replacement of an open claim, 8 void of an open claim.
    /// @param claimHash Commitment to the canonical FHIR Claim resource.
    /// @param records The anchored records justifying the claim (at least one; ignored for a void).
    struct ClaimSubmission {
        bytes32 controlNumber;
        address patient;
        address insurer;
        uint96 billed;
        uint16 serviceCode;
        uint8 frequency;
        bytes32 claimHash;
        RecordRef[] records;
    }

    /// @notice What the patient owes the provider under the insurer's adjudication (X12 CAS group PR).
    struct PatientShare {
        uint96 deductible;
        uint96 coinsurance;
        uint96 copay;
    }

    /// @notice An insurer's standing terms, packed into one storage slot.
    /// @param promptPayWindow Seconds after submission before an unadjudicated claim may be deemed approved.
    /// @param disputeWindow Seconds after a partial approval or denial during which the provider may dispute.
    /// @param autoMaxAmount Claims billed at most this much may be approved automatically; 0 disables it.
    /// The data classes a claim may cite for automatic approval are the coverage's
    /// (`Enrolment.autoDataClasses`, interface 3): they live in the member's label space.
    /// @param autoServiceMin Lowest service code eligible for automatic approval.
    /// @param autoServiceMax Highest service code eligible for automatic approval.
    /// @param autoMaxPerPeriod Velocity cap: at most this many automatic approvals per provider,
    /// coverage and `autoPeriod` (1.. when auto-approval is on).
    /// @param autoPeriod Length in seconds of the velocity cap's fixed windows (at least one hour when
    /// auto-approval is on). Only claims whose every cited record the provider authored qualify.
    struct InsurerTerms {
        uint32 promptPayWindow;
        uint32 disputeWindow;
        uint96 autoMaxAmount;
        uint16 autoServiceMin;
        uint16 autoServiceMax;
        uint16 autoMaxPerPeriod;
        uint32 autoPeriod;
    }

    /// @notice Whether and under which coverage an (insurer, patient) pair is enrolled; one slot,
    /// the only coverage data a submission reads. Valid while `validFrom <= block.timestamp < validUntil`.
    /// @param autoDataClasses Data-class bitmask, in the member pseudonym's label space (per-pseudonym
    /// labels, docs/PRIVACY.md): every record a claim cites must be in it for automatic approval.
    struct Enrolment {
        uint40 coverageId;
        uint40 validFrom;
        uint40 validUntil;
        uint16 autoDataClasses;
    }

    /// @notice The terms of coverage `coverageId`, laid out so that an adjudication without limits
    /// reads slot 0 only, a per-claim limit adds slot 1 and a period limit adds slot 2.
    /// @dev Benefit periods are fixed windows of `periodLength` seconds from `periodStart` (the
    /// coverage's `validFrom`); `periodUsed` is what the insurer approved in period `periodIndex`.
    /// A zero limit means "no limit"; `claimLimited` / `periodLimited` mirror "limit != 0" so that
    /// unlimited coverage never reads the limit slots.
    struct Coverage {
        address insurer;
        bool claimLimited;
        bool periodLimited;
        uint40 periodStart;
        address patient;
        uint96 perClaimLimit;
        uint96 perPeriodLimit;
        uint96 periodUsed;
        uint32 periodIndex;
        uint32 periodLength;
        bytes32 policyHash;
    }

    /// @notice An insurer's money in escrow, one slot.
    /// @param free Withdrawable and available for approvals.
    /// @param encumbered Held for contested amounts until the dispute window closes or the dispute is resolved.
    struct InsurerAccount {
        uint128 free;
        uint128 encumbered;
    }

    /// @notice What an insurer owes on deemed-approved claims its free balance could not cover.
    /// @param unpaid Sum of its DeemedUnfunded claims' amounts.
    /// @param funded Money set aside for them (its free balance at the time, then its deposits first).
    struct DeemedPool {
        uint128 unpaid;
        uint128 funded;
    }

    /// @notice Automatic approvals of one provider on one coverage in the current velocity window.
    struct Velocity {
        uint32 window;
        uint16 count;
    }

    /// @notice A provider's payout account, one slot.
    /// @param owed Approved money the provider may withdraw.
    /// @param paidOut Lifetime amount transferred to the provider (also keeps the slot warm-priced).
    /// @param pushPayments Whether approvals are transferred in the same transaction.
    struct ProviderAccount {
        uint128 owed;
        uint120 paidOut;
        bool pushPayments;
    }

    /// @notice `insurer` set its standing terms.
    event InsurerTermsSet(address indexed insurer, InsurerTerms terms);
    /// @notice `insurer` enrolled (or re-enrolled) `patient` under the policy committed to by
    /// `policyHash`; every enrolment gets a new `coverageId`, and claims keep the one they were submitted under.
    event CoverageSet(
        uint40 indexed coverageId,
        address indexed insurer,
        address indexed patient,
        bytes32 policyHash,
        uint40 validFrom,
        uint40 validUntil,
        uint96 perClaimLimit,
        uint96 perPeriodLimit,
        uint32 periodLength,
        uint16 autoDataClasses
    );
    /// @notice `insurer` ended the coverage of `patient` at `endedAt`.
    event CoverageEnded(address indexed insurer, address indexed patient, uint40 endedAt);
    /// @notice `insurer`'s free balance was credited `amount` (the amount actually received).
    event Deposited(address indexed insurer, uint256 amount);
    /// @notice `insurer` withdrew `amount` of its free balance.
    event FundsWithdrawn(address indexed insurer, uint256 amount);
    /// @notice `provider` turned same-transaction payment on or off.
    event PushPaymentsSet(address indexed provider, bool enabled);
    /// @notice A claim was submitted (`revision` 0, frequency 1) or replaced (`revision` > 0,
    /// frequency 7). Indexed by insurer (its work queue) and patient (its statement).
    event ClaimSubmitted(
        bytes32 indexed claimId,
        address indexed insurer,
        address indexed patient,
        address provider,
        bytes32 controlNumber,
        uint96 billed,
        uint16 serviceCode,
        uint16 revision,
        uint40 deadline,
        bytes32 claimHash
    );
    /// @notice The provider voided an open claim (frequency 8); `claimHash` commits to the void claim.
    event ClaimVoided(bytes32 indexed claimId, address indexed provider, bytes32 claimHash);
    /// @notice A claim was adjudicated: `approved` is owed to the provider, `contested` is
    /// encumbered and disputable until `disputeDeadline` (0 if nothing is contested), `reasonCodes`
    /// are the X12 CARC codes for what the insurer did not pay.
    event ClaimAdjudicated(
        bytes32 indexed claimId,
        address indexed insurer,
        Adjudication kind,
        uint96 approved,
        uint96 contested,
        uint16[] reasonCodes,
        uint40 disputeDeadline
    );
    /// @notice The patient's responsibility under the adjudication of `claimId` (X12 CAS group PR),
    /// for the patient's statement. Emitted only when non-zero.
    event PatientResponsibility(bytes32 indexed claimId, uint96 deductible, uint96 coinsurance, uint96 copay);
    /// @notice The provider disputed the contested amount; `evidenceHash` commits to its appeal packet.
    event ClaimDisputed(bytes32 indexed claimId, address indexed provider, bytes32 evidenceHash);
    /// @notice `arbiter` awarded `award` of the contested amount; `returned` went back to the insurer's free balance.
    event DisputeResolved(
        bytes32 indexed claimId, address indexed arbiter, uint96 award, uint96 returned, bytes32 decisionHash
    );
    /// @notice The dispute window closed without a dispute; `amount` went back to the insurer's free balance.
    event EncumbranceReleased(bytes32 indexed claimId, address indexed insurer, uint96 amount);
    /// @notice `amount` owed to `provider` was transferred to it in the approving transaction.
    event PaymentPushed(address indexed provider, uint256 amount);
    /// @notice Pushing `amount` to `provider` failed (or the provider is suspended); it stays owed.
    event PushFailed(address indexed provider, uint256 amount);
    /// @notice `provider` withdrew `amount` of what it is owed, paid to `recipient` (itself unless {withdrawTo}).
    event PayoutWithdrawn(address indexed provider, address indexed recipient, uint256 amount);
    /// @notice The prompt-pay deadline of `claimId` passed and `insurer`'s free balance could not cover
    /// its `amount`: the claim is deemed approved, unfunded. `swept` (the free balance) was set aside for it.
    event ClaimDeemedUnfunded(bytes32 indexed claimId, address indexed insurer, uint96 amount, uint256 swept);
    /// @notice `amount` of a deposit by `insurer` was set aside for its unfunded deemed claims.
    event DeemedPoolFunded(address indexed insurer, uint256 amount);
    /// @notice `account` paused claim processing and deposits; escrow time stands still from now on.
    event EscrowPaused(address indexed account);
    /// @notice `account` unpaused; the pause lasted `duration` seconds, added to every open window.
    event EscrowUnpaused(address indexed account, uint40 duration);

    /// @notice No account grants itself a role (`role` to `account`, the caller).
    error SelfGrant(address account, bytes32 role);
    /// @notice A constructor address is zero or the token has no code.
    error InvalidConfiguration();
    /// @notice A required address argument is zero.
    error ZeroAddress();
    /// @notice A required commitment (policy, claim, evidence or decision hash) is zero.
    error EmptyHash();
    /// @notice `account` is not an active party of `role` in the CareRegistry.
    error NotActiveParty(address account, ICareRegistry.Role role);
    /// @notice The amount must be non-zero.
    error ZeroAmount();
    /// @notice `amount` does not fit the escrow's balance accounting.
    error AmountTooLarge(uint256 amount);
    /// @notice `insurer`'s free balance `available` is below the `needed` amount.
    error InsufficientEscrow(address insurer, uint256 needed, uint256 available);
    /// @notice `provider` asked for `requested` but is owed only `owed`.
    error InsufficientOwed(address provider, uint256 requested, uint256 owed);
    /// @notice Neither the permit nor an earlier approval lets the escrow pull `amount` from `owner`.
    error PermitFailed(address owner, uint256 amount);
    /// @notice The terms' windows are out of bounds or the auto-approval rule is malformed.
    error InvalidTerms();
    /// @notice `insurer` has not set its terms yet, so it cannot enrol patients.
    error TermsNotSet(address insurer);
    /// @notice The validity period or limits of a coverage are malformed.
    error InvalidCoverage();
    /// @notice `patient` has no coverage with `insurer` in force now.
    error CoverageInactive(address insurer, address patient);
    /// @notice Approving `requested` would exceed `insurer`'s limit for `patient` (`remaining` left).
    error CoverageLimitExceeded(address insurer, address patient, uint256 requested, uint256 remaining);
    /// @notice `patient` has not consented to `grantee` using `dataClass` data for `purpose`.
    error MissingConsent(address patient, address grantee, uint8 purpose, uint8 dataClass);
    /// @notice The submission cites no records.
    error NoRecords();
    /// @notice The cited record version is not anchored.
    error RecordNotAnchored(bytes32 recordId, bytes32 contentHash);
    /// @notice The cited record version was anchored at `anchoredAt`, outside the coverage period.
    error RecordOutsideCoverage(bytes32 recordId, uint40 anchoredAt);
    /// @notice The cited record belongs to another patient than the claim's `patient`.
    error RecordNotOfPatient(bytes32 recordId, address patient);
    /// @notice The frequency code is not 1, 7 or 8.
    error InvalidFrequency(uint8 frequency);
    /// @notice A claim with this provider and control number exists already.
    error DuplicateClaim(bytes32 claimId);
    /// @notice `recordId` is already billed for `serviceCode` by the live claim `claimId`.
    error DuplicateService(bytes32 recordId, uint16 serviceCode, bytes32 claimId);
    /// @notice The claim is not in a status that allows this action.
    error InvalidStatus(bytes32 claimId, ClaimStatus status);
    /// @notice A replacement or void names another patient or insurer than the open claim.
    error ClaimMismatch(bytes32 claimId);
    /// @notice The insurer adjudicated revision `given` but the claim is at revision `current`.
    error StaleRevision(bytes32 claimId, uint16 given, uint16 current);
    /// @notice `caller` is not the claim's insurer.
    error NotClaimInsurer(bytes32 claimId, address caller);
    /// @notice `approved` plus the patient's share exceeds `billed`.
    error InvalidAdjudication(uint256 billed, uint256 approved, uint256 patientShare);
    /// @notice A partial approval or denial must carry at least one CARC reason code.
    error MissingReasonCodes();
    /// @notice The claim's deadline (escrow time) has not passed yet.
    error DeadlineNotReached(bytes32 claimId, uint40 deadline);
    /// @notice The claim's deadline (escrow time) has passed.
    error DeadlinePassed(bytes32 claimId, uint40 deadline);
    /// @notice The award exceeds the contested amount.
    error AwardExceedsContested(uint256 award, uint256 contested);
    /// @notice `account` is not the active arbiter the CareRegistry assigns to `insurer`.
    error NotAssignedArbiter(address account, address insurer);
    /// @notice The escrow is paused.
    error EnforcedPause();
    /// @notice The escrow is not paused.
    error ExpectedPause();
    /// @notice A re-entrancy-guarded function was entered again before it returned.
    error ReentrantCall();

    /// @notice The interface version: 3 since account migration (issue 18: party state keyed by the home
    /// account, no self-granted roles) and auto-approval classes moved to the coverage (issue 14); 2 since
    /// the review revision (issue 13).
    function version() external pure returns (uint256);

    /// @notice Sets the caller's (an active insurer's) standing terms; applies to claims submitted or
    /// adjudicated afterwards. Windows: prompt pay 1..90 days, dispute 7..180 days.
    function setTerms(InsurerTerms calldata terms) external;

    /// @notice The caller (an active insurer with terms) enrols or re-enrols `patient` under a new
    /// coverage id with fresh period usage. Open claims keep the coverage (and limits) they were
    /// submitted under.
    /// @param policyHash Commitment to the policy / FHIR Coverage resource (non-zero).
    /// @param perClaimLimit Most the insurer may approve on one claim (0: none).
    /// @param perPeriodLimit Most the insurer may approve per benefit period (0: none, then `periodLength` must be 0).
    /// @param periodLength Benefit period in seconds (at least one hour if a period limit is set).
    /// @param autoDataClasses The data classes (bits 0-10, in `patient`'s label space) a claim may cite
    /// and still be approved automatically under the insurer's terms; 0: none.
    function setCoverage(
        address patient,
        bytes32 policyHash,
        uint40 validFrom,
        uint40 validUntil,
        uint96 perClaimLimit,
        uint96 perPeriodLimit,
        uint32 periodLength,
        uint16 autoDataClasses
    ) external returns (uint40 coverageId);

    /// @notice The caller (an active insurer) ends `patient`'s coverage now. Open claims stay payable.
    function endCoverage(address patient) external;

    /// @notice The caller (an active insurer) deposits `amount` via a prior ERC-20 approval; its free
    /// balance is credited with what the escrow actually received, after its unfunded deemed claims
    /// (see {DeemedPool}) have been set aside.
    function deposit(uint256 amount) external;

    /// @notice {deposit} authorised by an EIP-2612 permit. A permit already used (e.g. front-run)
    /// is tolerated when the allowance suffices.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice The caller (an active insurer) withdraws `amount` of its free (unencumbered) balance.
    /// Allowed while paused.
    function withdrawFree(uint256 amount) external;

    /// @notice The caller (an active provider) opts in or out of same-transaction payment.
    function setPushPayments(bool enabled) external;

    /// @notice The caller (an active provider) submits, replaces or voids a claim.
    /// @dev Original/replacement: the patient must consent to the insurer (HPAYMT, BILLING), the
    /// coverage must be in force, every record version must be anchored within the coverage period,
    /// usable by the provider (TREAT consent of the patient for its data class, or authored by the
    /// provider and HPAYMT consent) and disclosable to the insurer (HPAYMT consent for its class).
    /// A record the provider authored takes the (record, patient, service) key: no live claim may hold
    /// it already. Citing another author's record takes no key. A claim citing only its own records
    /// and matching the insurer's auto-approval rule (and velocity cap, limits, funds) is approved in
    /// full at once.
    /// @return claimId The claim's id.
    function submitClaim(ClaimSubmission calldata submission) external returns (bytes32 claimId);

    /// @notice The claim's insurer approves `approved` (0 denies) of revision `revision` of the claim.
    /// `approved` is credited to the provider; billed - approved (the patient share included) is
    /// contested, encumbered and disputable for the claim's dispute window, and needs a reason code.
    /// Reverts with {InsufficientEscrow} if the free balance is short.
    function adjudicate(
        address provider,
        bytes32 controlNumber,
        uint16 revision,
        uint96 approved,
        PatientShare calldata share,
        uint16[] calldata reasonCodes
    ) external;

    /// @notice Anyone may, after the prompt-pay deadline, approve an unadjudicated claim in full
    /// (capped by the coverage limits; any excess is contested with CARC 119). The provider must be
    /// active. If the insurer's free balance cannot cover the billed amount, the claim becomes
    /// DeemedUnfunded: the free balance is set aside for it, and so are the insurer's next deposits;
    /// calling this again pays it once enough is set aside.
    function finalizeDeemed(address provider, bytes32 controlNumber) external;

    /// @notice The claim's provider disputes the contested amount before the dispute deadline. Open
    /// to a suspended provider too: a dispute moves no money, so a suspension never costs contested money.
    function dispute(bytes32 controlNumber, bytes32 evidenceHash) external;

    /// @notice The arbiter the CareRegistry assigns to the claim's insurer, if active at the time of the
    /// ruling, awards `award` of a disputed claim to the provider; the rest returns to the insurer's free
    /// balance. An award is at most the contested amount and counts against the coverage like an
    /// approval (the per-claim limit less what was approved on the claim, the period's headroom).
    function resolveDispute(address provider, bytes32 controlNumber, uint96 award, bytes32 decisionHash) external;

    /// @notice Anyone may, after an undisputed dispute window, return the contested amount to the
    /// insurer's free balance.
    function release(address provider, bytes32 controlNumber) external;

    /// @notice The caller (an active provider) withdraws `amount` of what it is owed. Allowed while paused.
    function withdraw(uint256 amount) external;

    /// @notice The caller (an active provider) withdraws everything it is owed. Allowed while paused.
    function withdrawAll() external;

    /// @notice The caller (an active provider) withdraws everything it is owed to `recipient` (e.g. a
    /// new address when its own is blacklisted by the token). Allowed while paused.
    function withdrawTo(address recipient) external;

    /// @notice Pauses deposits, claim processing and configuration (pauser only); withdrawals of
    /// owed and free money stay open and escrow time stops.
    function pause() external;

    /// @notice Ends a pause (pauser only); every open window is extended by the pause's length.
    function unpause() external;

    /// @notice The claim id of `(provider, controlNumber)`.
    function claimIdOf(address provider, bytes32 controlNumber) external pure returns (bytes32);

    /// @notice The stored claim `claimId` (all zero if unknown).
    function claimOf(bytes32 claimId) external view returns (Claim memory);

    /// @notice The claim that holds the duplicate key of `recordId` billed for `serviceCode` on behalf
    /// of `patient` (zero if none).
    function serviceClaimOf(bytes32 recordId, address patient, uint16 serviceCode) external view returns (bytes32);

    /// @notice `insurer`'s escrow account.
    function insurerAccountOf(address insurer) external view returns (InsurerAccount memory);

    /// @notice `provider`'s payout account.
    function providerAccountOf(address provider) external view returns (ProviderAccount memory);

    /// @notice `insurer`'s standing terms.
    function termsOf(address insurer) external view returns (InsurerTerms memory);

    /// @notice `patient`'s enrolment with `insurer` (coverage id 0 if never enrolled).
    function enrolmentOf(address insurer, address patient) external view returns (Enrolment memory);

    /// @notice `insurer`'s unfunded deemed claims and what is set aside for them.
    function deemedPoolOf(address insurer) external view returns (DeemedPool memory);

    /// @notice Automatic approvals of `provider` on `coverageId` in the current velocity window.
    function velocityOf(address provider, uint40 coverageId) external view returns (Velocity memory);

    /// @notice Coverage `coverageId` (all zero if unknown).
    function coverageOf(uint40 coverageId) external view returns (Coverage memory);

    /// @notice Current escrow time: block time minus the total time spent paused.
    function escrowTime() external view returns (uint40);

    /// @notice Whether the escrow is paused.
    function paused() external view returns (bool);

    /// @notice The CareRegistry consulted for every party's role and status.
    function registry() external view returns (ICareRegistry);

    /// @notice The ConsentRegistry consulted for patients' consent.
    function consent() external view returns (IConsentRegistry);

    /// @notice The RecordRegistry whose anchors justify claims.
    function records() external view returns (IRecordRegistry);

    /// @notice The stablecoin held in escrow.
    function token() external view returns (IERC20);
}
