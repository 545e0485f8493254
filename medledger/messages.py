"""Contract errors as sentences: units, dates and names instead of raw integers, bitmasks and hex.

One table, keyed by the custom error's name, of sentence templates over the error's ABI inputs.
Each input is shown by its type and name: token amounts in token units with the symbol
(`1,240.50 mUSD`), times as UTC dates, roles, purposes and data classes by name, masks as lists
of names, claim statuses by name, addresses with the account's name when it is known. An error
without a template (e.g. one a new contract adds) still reads as a sentence: its name split into
words, then its inputs with units ("Coverage limit exceeded: requested 12.00 mUSD, ...").

`Chain.decode_revert` calls `render`; the CLI passes a `Context` that knows the token and the
keystore names, and SDK callers get the token from their `ClaimEscrow` wrapper.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from eth_utils import keccak

from .scopes import ClaimFrequency, ClaimStatus, DataClass, Purpose, Role, names
from .units import TokenInfo

#: Inputs that hold token amounts (base units), times (Unix seconds) and durations (seconds).
AMOUNTS = frozenset({"amount", "billed", "approved", "patientShare", "award", "contested", "needed", "available",
                     "requested", "remaining", "owed", "balance", "allowance", "limit", "value"})
TIMES = frozenset({"deadline", "expiresAt", "validFrom", "validUntil", "anchoredAt", "notBefore", "until", "at",
                   "closedAt", "reopenAfter"})
DURATIONS = frozenset({"duration", "max", "window", "period", "delay", "minDelay"})

_ROLES = {keccak(text=r): r.removesuffix("_ROLE").lower() for r in ("REGISTRAR_ROLE", "PAUSER_ROLE", "GOVERNOR_ROLE",
                                                                    "PROPOSER_ROLE", "CANCELLER_ROLE")}
_ROLES[b"\x00" * 32] = "admin"


def utc(timestamp: int) -> str:
    """Unix seconds as an ISO 8601 UTC date, e.g. 2026-12-07 06:05:03 UTC."""
    return datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def words(name: str) -> str:
    """CamelCase as lower-case words: "CoverageLimitExceeded" -> "coverage limit exceeded"."""
    parts = re.findall(r"[A-Z]+\d+|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+\d*|[A-Z]+|\d+", name)
    return " ".join(p if p.isupper() and len(p) > 1 else p.lower() for p in parts)


@dataclass
class Context:
    """What rendering may look up: the token (lazily) and account names.

    `token` returns the deployment's token or None; `name_of` an address's account name or None.
    Both are called only when an error needs them, and a failing lookup falls back to raw values.
    """

    token: Callable[[], TokenInfo | None] | None = None
    name_of: Callable[[str], str | None] = lambda _address: None
    _token: TokenInfo | None = field(default=None, init=False, repr=False)

    def token_info(self) -> TokenInfo | None:
        if self._token is None and self.token is not None:
            try:
                self._token = self.token()
            except Exception:  # noqa: BLE001 - an error message must never fail in turn
                return None
        return self._token

    def amount(self, units: int) -> str:
        info = self.token_info()
        return info.format(units) if info else f"{units:,} base units"

    def party(self, address: str) -> str:
        try:
            name = self.name_of(address)
        except Exception:  # noqa: BLE001
            name = None
        return f"{name} ({address})" if name else str(address)


class _Values(Mapping[str, str]):
    """An error's inputs, each shown by its ABI type and name (what templates format)."""

    def __init__(self, types: Sequence[str], arg_names: Sequence[str], values: Sequence[Any], ctx: Context) -> None:
        self.raw = dict(zip(arg_names, values, strict=False))
        self.types = dict(zip(arg_names, types, strict=False))
        self.ctx = ctx

    def __getitem__(self, key: str) -> str:
        return show(key, self.types.get(key, ""), self.raw[key], self.ctx)

    def __iter__(self):
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def show(arg: str, abi_type: str, value: Any, ctx: Context) -> str:
    """One error input, readable: by its name first (amounts, times, scopes), then by its type."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value)
        if arg in ("neededRole", "role") and value in _ROLES:
            return f"the {_ROLES[value]} role"
        return "0x" + value.hex()
    if abi_type == "address":
        return ctx.party(str(value))
    if not isinstance(value, int) or isinstance(value, bool):
        return str(value)
    if arg in AMOUNTS:
        return ctx.amount(value)
    if arg in TIMES:
        return utc(value) if value else "not set"
    if arg in DURATIONS:
        return f"{value / 3600:g} h" if value >= 3600 else f"{value} s"
    lookups: dict[str, Callable[[int], str]] = {
        "role": lambda v: Role(v).name.lower(),
        "purpose": lambda v: Purpose(v).name,
        "dataClass": lambda v: DataClass(v).name.lower().replace("_", "-"),
        "purposes": lambda v: ", ".join(names(v, Purpose)) or "none",
        "dataClasses": lambda v: ", ".join(n.lower().replace("_", "-") for n in names(v, DataClass)) or "none",
        "status": lambda v: ClaimStatus(v).label,
        "frequency": lambda v: f"{v} ({ClaimFrequency(v).name.lower()})",
    }
    if arg in lookups:
        try:
            return lookups[arg](value)
        except ValueError:
            return f"{value} (unknown {words(arg)})"
    return f"{value:,}" if value >= 10_000 else str(value)


#: Sentence templates by error name; {input} is the input shown with its unit.
TEMPLATES: dict[str, str] = {
    # CareRegistry
    "PartyNotRegistered": "{account} is not registered in the CareRegistry",
    "PartyAlreadyRegistered": "{account} is registered already",
    "PartyAlreadySuspended": "{account} is suspended already",
    "PartyNotSuspended": "{account} is not suspended",
    "PartyIdsExhausted": "the CareRegistry has no party ids left",
    "InvalidRole": "{role} is not a role a party can be registered with (provider, insurer or arbiter)",
    "InvalidEncryptionKey": "an encryption key must be a 33-byte compressed secp256k1 public key, not {length} bytes",
    "InvalidGatewayEndpoint": "a gateway endpoint must be 1 to {maxLength} bytes long, not {length} bytes",
    "NotActiveCustodian": "{account} is not an active provider or insurer in the CareRegistry: only one may "
                          "publish a gateway endpoint",
    "EmptyMetadata": "the credentials commitment is empty: give --metadata HASH or --credentials FILE",
    "ZeroAccount": "the zero address cannot be a party",
    "ZeroAddress": "an address given is the zero address",
    "AccessControlUnauthorizedAccount": "{account} lacks {neededRole} this action needs",
    "AccessControlBadConfirmation": "a role can only be renounced by its holder",
    "SelfGrant": "{account} cannot grant itself {role}: no account grants itself a role",
    "SelfRegistration": "{account} cannot register itself: another registrar (for an arbiter, the governor) must",
    "NotAnInsurer": "{account} is not a registered insurer",
    "NotAnActiveArbiter": "{account} is not an active arbiter (unregistered or suspended)",
    "AccountMigrated": "{account} migrated to another account: it can do nothing any more (act from the party's "
                       "new account)",
    "AccountNotFresh": "{account} is not a fresh account: a party migrates only to an account that was never "
                       "registered and holds no role",
    "EnforcedPause": "the contract is paused: nothing can change until governance unpauses it",
    "ExpectedPause": "the contract is not paused",
    # ConsentRegistry
    "NotPatientOrGuardian": "{actor} is neither patient {patient} nor one of their guardians",
    "NotActiveProvider": "{account} is not an active provider (unregistered or suspended)",
    "ConsentNotFound": "{grantee} holds no consent of patient {patient}",
    "InvalidScope": "the consent scope is empty or unknown (purposes: {purposes}; data classes: {dataClasses})",
    "InvalidValidity": "the validity period is empty or inverted (from {validFrom} until {validUntil})",
    "InvalidGrantee": "{grantee} cannot receive consent (the patient themself or the zero address)",
    "InvalidGuardian": "{guardian} cannot be a guardian (the patient themself or the zero address)",
    "GuardianAlreadyAppointed": "{guardian} is a guardian of {patient} already",
    "GuardianNotAppointed": "{guardian} is not a guardian of {patient}",
    "BreakGlassAlreadyOpen": "emergency access of {provider} to {patient} is open already, until {expiresAt}",
    "BreakGlassNotOpen": "{provider} has no open emergency access to {patient}",
    "InvalidBreakGlassDuration": "emergency access lasts at most {max}, not {duration}",
    "InvalidMaxBreakGlassDuration": "the longest emergency access must be between 1 s and 72 h, not {duration}",
    "EmptyReasonCode": "emergency access needs a reason code",
    "InvalidSignature": "the signature is not {signer}'s for this consent: altered, signed for another "
                        "deployment, or already used",
    "SignatureExpired": "the signature expired on {deadline}",
    "InvalidAccountNonce": "the signature of {account} is already used (its next nonce is {currentNonce})",
    "SignatureUsed": "this signature was already used",
    # RecordRegistry
    "NoTreatmentRelationship": "{provider} holds neither TREAT consent of patient {patient} for {dataClass} nor open "
                               "emergency access",
    "NoConsent": "{accessor} has no {purpose} consent of patient {patient} for {dataClass}",
    "NotAuthorOrConsented": "{account} neither authored record {recordId} nor holds TREAT consent of patient "
                            "{patient}",
    "NotProviderOrInsurer": "{account} is not an active provider or insurer",
    "RecordAlreadyAnchored": "record {recordId} is anchored already: amend it instead",
    "ContentAlreadyAnchored": "content {contentHash} is anchored already for record {recordId}",
    "RecordNotFound": "record {recordId} is not anchored",
    "VersionNotFound": "record {recordId} has no version with content {contentHash}",
    "VersionSuperseded": "content {contentHash} is not the latest version of record {recordId}: amend the latest",
    "VersionLimitReached": "record {recordId} has reached its last version",
    "InvalidRecordId": "record id {recordId} does not start with the patient's address",
    "RecordNotOfPatient": "record {recordId} is not a record of patient {patient}",
    "InvalidDataClass": "{dataClass} is not a data class",
    "InvalidPurpose": "{purpose} is not a purpose of use",
    "InvalidVersion": "version {version} is out of range",
    "EmptyContentHash": "the content hash is empty",
    "InvalidBatch": "a batch needs a root and between 1 and the maximum records (root {root}, count {count})",
    "BatchAlreadyAnchored": "batch {batchId} is anchored already",
    "NotInBatch": "the record is not in batch {batchId} (its proof does not verify)",
    "ProofTooLong": "the Merkle proof has {length} steps, more than the {max} allowed",
    # ClaimEscrow
    "NotActiveParty": "{account} is not an active {role} (unregistered or suspended)",
    "NotClaimInsurer": "{caller} is not the insurer of claim {claimId}",
    "InsufficientEscrow": "the free escrow balance of {insurer} is {available}, but {needed} is needed",
    "InsufficientOwed": "{provider} is owed {owed}, less than the {requested} asked for",
    "InvalidAdjudication": "the approved amount ({approved}) plus the patient share ({patientShare}) exceeds the "
                           "billed {billed}",
    "AwardExceedsContested": "the award of {award} exceeds the contested {contested}",
    "NotAssignedArbiter": "{account} is not the active arbiter assigned to insurer {insurer}: only that arbiter "
                          "resolves its disputes",
    "AmountTooLarge": "{amount} is more than an escrow amount can hold",
    "ZeroAmount": "the amount must be positive",
    "CoverageInactive": "patient {patient} has no active coverage with {insurer}",
    "CoverageLimitExceeded": "the coverage of {patient} with {insurer} has {remaining} left, less than the "
                             "{requested} asked for",
    "DeadlineNotReached": "claim {claimId} cannot be closed yet: its deadline is {deadline}",
    "DeadlinePassed": "the deadline of claim {claimId} passed on {deadline}",
    "DuplicateClaim": "claim {claimId} exists already (same provider and control number)",
    "DuplicateService": "record {recordId} was billed for service {serviceCode} already, by claim {claimId}",
    "ClaimMismatch": "the replacement does not match claim {claimId} (patient and insurer must stay the same)",
    "InvalidStatus": "claim {claimId} is {status}: this step is not possible now",
    "StaleRevision": "claim {claimId} changed meanwhile (revision {current}, not {given}): look at it again",
    "InvalidFrequency": "claim frequency {frequency} is not 1 (original), 7 (replacement) or 8 (void)",
    "RecordNotAnchored": "the cited record {recordId} is not anchored with content {contentHash}",
    "MissingConsent": "patient {patient} has not given {grantee} {purpose} consent for {dataClass}",
    "MissingReasonCodes": "a denial or partial approval needs at least one CARC reason code",
    "NoRecords": "a claim must cite at least one anchored record",
    "EmptyHash": "a commitment hash is empty",
    "InvalidCoverage": "the coverage terms are invalid (dates inverted, or a period limit without a period)",
    "InvalidTerms": "the insurer terms are invalid (windows out of range, or the auto-approval range inverted)",
    "TermsNotSet": "insurer {insurer} has set no prompt-pay and dispute terms yet",
    "InvalidConfiguration": "the escrow's configuration is invalid",
    "PermitFailed": "the token's permit for {amount} from {owner} failed: approve the escrow, then deposit",
    "ReentrantCall": "a re-entrant call was refused",
    "SafeERC20FailedOperation": "the token {token} refused the transfer",
    # TimelockController (governance)
    "TimelockInsufficientDelay": "a delay of {delay} is shorter than the timelock's minimum of {minDelay}",
    "TimelockUnexpectedOperationState": "timelock operation {operationId} is not in a state this step allows "
                                        "(not scheduled, not ready yet, or done already)",
    "TimelockUnauthorizedCaller": "{caller} may not execute timelock operations",
    "TimelockUnexecutedPredecessor": "timelock operation {predecessorId} must be executed first",
    # Tokens
    "ERC20InsufficientBalance": "{sender} holds {balance}, less than the {needed} needed",
    "ERC20InsufficientAllowance": "{spender} may spend {allowance}, less than the {needed} needed",
    "ERC2612ExpiredSignature": "the permit signature expired on {deadline}",
    "ERC2612InvalidSigner": "the permit is signed by {signer}, not by the owner {owner}",
}


def render(name: str, types: Sequence[str], arg_names: Sequence[str], values: Sequence[Any],
           ctx: Context | None = None) -> str:
    """The sentence for custom error `name` with decoded `values` (never the raw `Name(...)` form)."""
    ctx = ctx or Context()
    shown = _Values(types, arg_names, values, ctx)
    template = TEMPLATES.get(name)
    if template is not None and len(values) == len(arg_names):
        try:
            return template.format_map(shown)
        except (KeyError, IndexError, ValueError):
            pass  # the contract changed the error's inputs: fall through to the generic sentence
    sentence = words(name)
    sentence = sentence[:1].upper() + sentence[1:]
    details = ", ".join(f"{words(n)} {shown[n]}" for n in arg_names[:len(values)] if n)
    return f"{sentence}: {details}" if details else sentence
