"""Shared constants and builders for the ClaimEscrow tests (not a test module itself)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from eth_utils import keccak

from medledger.eip712 import ConsentDomain, PermitRequest, sign_permit
from medledger.testing import ACCOUNT_COUNT, dev_account, dev_private_key

from .errors import error_message
from .records import rid
from .vocabulary import ALL_CLASSES, HPAYMT, NOTES, ORIGINAL, TREAT, ClaimStatus, bit

MANUAL, AUTOMATIC, DEEMED = 0, 1, 2
CARC_DEDUCTIBLE = 1
CARC_COPAY = 3
CARC_BENEFIT_MAX = 119
CARC_NOT_COVERED = 96
CARC_MAX_ALLOWABLE = 45

DAY = 86_400
PROMPT_PAY = 30 * DAY
DISPUTE_WINDOW = 14 * DAY
UINT96_MAX = 2**96 - 1
USD = 10**6  # 6-decimal stablecoin unit
ZERO = "0x" + "00" * 32
EVIDENCE, DECISION = keccak(text="evidence"), keccak(text="decision")  # a dispute's evidence and award commitments


def h(label: str) -> bytes:
    """A deterministic 32-byte id / commitment for a test label."""
    return keccak(text=label)


@dataclass(frozen=True)
class Record:
    record_id: bytes
    content_hash: bytes
    data_class: int

    @property
    def ref(self) -> tuple[bytes, bytes]:
        return (self.record_id, self.content_hash)


def submission(
    control: bytes,
    patient,
    insurer,
    billed: int,
    records: list[Record] | list[tuple],
    service: int = 100,
    frequency: int = ORIGINAL,
    claim_hash: bytes | None = None,
) -> tuple:
    """A ClaimSubmission tuple."""
    refs = [r.ref if isinstance(r, Record) else r for r in records]
    claim_hash = claim_hash or h(f"claim:{control.hex()}:{billed}")
    return (control, patient, insurer, billed, service, frequency, claim_hash, refs)


def terms(
    prompt_pay: int = PROMPT_PAY,
    dispute: int = DISPUTE_WINDOW,
    auto_max: int = 0,
    service_min: int = 0,
    service_max: int = 0,
    auto_cap: int = 1_000,
    auto_period: int = 30 * DAY,
) -> tuple:
    """An InsurerTerms tuple (auto-approval off unless auto_max > 0; velocity cap `auto_cap` automatic
    approvals per provider, coverage and `auto_period` seconds)."""
    return (prompt_pay, dispute, auto_max, service_min, service_max, auto_cap, auto_period)


def auto_terms() -> tuple:
    """InsurerTerms that auto-approve claims up to 100 USD, service codes up to 1000 (the classes are each
    coverage's: `enrol` allows every class)."""
    return terms(auto_max=100 * USD, service_max=1000)


def no_share() -> tuple:
    return (0, 0, 0)


def record_id(label: str, patient) -> bytes:
    """A deterministic record id of `patient` for a test label: the patient's address (20 bytes) then
    12 bytes derived from the label, as the RecordRegistry requires (see tests/support/records.rid)."""
    return rid(f"record:{label}", patient)


def anchor(records, provider, patient, label: str, data_class: int = NOTES) -> Record:
    """Anchors a new record of `patient` by `provider` and returns it."""
    record = Record(record_id(label, patient), h(f"content:{label}"), data_class)
    records.anchor(record.record_id, record.content_hash, data_class, {"from": provider})
    return record


def fund(escrow, usdc, insurer, amount: int) -> None:
    usdc.mint(insurer, amount, {"from": insurer})
    usdc.approve(escrow, amount, {"from": insurer})
    escrow.deposit(amount, {"from": insurer})


def grant(consent, patient, grantee, purposes: int, classes: int) -> None:
    consent.grant(patient, grantee, purposes, classes, 0, 0, h(f"consent:{patient}:{grantee}"), {"from": patient})


def enrol(escrow, insurer, patient, per_claim: int = 0, per_period: int = 0, period: int = 0, until: int = 2**40 - 1,
          auto_classes: int = ALL_CLASSES):
    """Enrols `patient`; by default every class may be cited for automatic approval (ClaimEscrow v3 keeps the
    auto-approval classes on the coverage)."""
    escrow.setCoverage(patient, h(f"policy:{patient}"), 0, until, per_claim, per_period, period, auto_classes,
                       {"from": insurer})


def settle_owed(desk: Desk, label: str, amount: int) -> None:
    """Submits claim `label` for `amount` and approves it in full: the provider is owed `amount`."""
    desk.submit(label, amount)
    desk.adjudicate(label, amount)


def claim_id(escrow, provider, control: bytes) -> bytes:
    return escrow.claimIdOf(provider, control)


def private_key(account) -> str:
    """The private key of a development account (medledger.testing's mnemonic)."""
    for index in range(ACCOUNT_COUNT):
        if dev_account(index).address == account.address:
            return dev_private_key(index)
    raise LookupError(f"{account} is not a development account")


def permit(token, owner, spender, value: int, deadline: int) -> tuple[int, bytes, bytes]:
    """`(v, r, s)` of `owner`'s EIP-2612 permit for `spender` to pull `value` of `token` (the SDK signs it)."""
    from brownie import chain

    domain = ConsentDomain(chain_id=chain.id, verifying_contract=token.address, name=token.name(), version="1")
    request = PermitRequest(owner=owner.address, spender=spender.address, value=value, nonce=token.nonces(owner),
                            deadline=deadline)
    return sign_permit(private_key(owner), domain, request)


def sleep(seconds: int) -> None:
    """Moves the chain's clock `seconds` on and mines a block at the new time."""
    from brownie import chain

    chain.sleep(seconds)
    chain.mine()


def control(label: str) -> bytes:
    """A provider claim control number: an opaque 32-byte id derived from a test label."""
    return h(f"control:{label}")


class Desk:
    """Drives one ClaimEscrow deployment in tests: a named scenario with short helpers.

    `setup()` wires the standard world: the patient consents to the insurer (HPAYMT on every class, so
    that claims may disclose the cited records' classes) and to
    `provider` (TREAT + HPAYMT on every class), the insurer sets terms, enrols the patient and funds the
    escrow.
    """

    def __init__(self, escrow, token, consent, records, care, parties: dict) -> None:
        self.escrow, self.token, self.consent, self.records, self.care = escrow, token, consent, records, care
        self.p = parties
        self.provider, self.insurer, self.patient = parties["provider"], parties["insurer"], parties["patient"]
        self._serial = itertools.count()

    def setup(self, funding: int = 1_000_000 * USD, **terms_kw) -> Desk:
        grant(self.consent, self.patient, self.insurer, bit(HPAYMT), ALL_CLASSES)
        grant(self.consent, self.patient, self.provider, bit(TREAT, HPAYMT), ALL_CLASSES)
        self.escrow.setTerms(terms(**terms_kw), {"from": self.insurer})
        enrol(self.escrow, self.insurer, self.patient)
        if funding:
            self.fund(funding)
        return self

    def fund(self, amount: int, insurer=None) -> None:
        insurer = insurer or self.insurer
        self.token.mint(insurer, amount, {"from": insurer})
        self.token.approve(self.escrow, amount, {"from": insurer})
        self.escrow.deposit(amount, {"from": insurer})

    def record(self, label: str, provider=None, patient=None, data_class: int = NOTES) -> Record:
        return anchor(self.records, provider or self.provider, patient or self.patient, label, data_class)

    def cid(self, label: str, provider=None) -> bytes:
        return bytes(self.escrow.claimIdOf(provider or self.provider, control(label)))

    def submit(self, label: str, billed: int, recs=None, provider=None, patient=None, insurer=None,
               service: int = 100, frequency: int = ORIGINAL, claim_hash: bytes | None = None):
        provider = provider or self.provider
        if recs is None:
            recs = [self.record(f"{label}:auto:{next(self._serial)}", provider=provider, patient=patient)]
        sub = submission(control(label), patient or self.patient, insurer or self.insurer, billed, recs,
                         service=service, frequency=frequency, claim_hash=claim_hash)
        return self.escrow.submitClaim(sub, {"from": provider})

    def adjudicate(self, label: str, approved: int, share=(0, 0, 0), reasons=(), revision: int = 0,
                   provider=None, sender=None):
        return self.escrow.adjudicate(provider or self.provider, control(label), revision, approved, share,
                                      list(reasons), {"from": sender or self.insurer})

    def claim(self, label: str, provider=None) -> tuple:
        return self.escrow.claimOf(self.cid(label, provider))

    def status(self, label: str, provider=None) -> ClaimStatus:
        return ClaimStatus(self.claim(label, provider)[2])

    def free(self, insurer=None) -> int:
        return self.escrow.insurerAccountOf(insurer or self.insurer)[0]

    def encumbered(self, insurer=None) -> int:
        return self.escrow.insurerAccountOf(insurer or self.insurer)[1]

    def owed(self, provider=None) -> int:
        return self.escrow.providerAccountOf(provider or self.provider)[0]

    def paid_out(self, provider=None) -> int:
        return self.escrow.providerAccountOf(provider or self.provider)[1]

    @classmethod
    def over_token(cls, token, ClaimEscrow, care, consent, records, admin, parties: dict,
                   funding: int = 100_000 * USD) -> Desk:
        """A standard-world desk over a fresh ClaimEscrow that holds `token` (a hostile token, say)."""
        escrow = ClaimEscrow.deploy(care, consent, records, token, admin, {"from": admin})
        return cls(escrow, token, consent, records, care, parties).setup(funding=funding)

    def assert_solvent(self, insurers, providers) -> None:
        """Token balance of the escrow == sum(free) + sum(encumbered) + sum(owed) + what the insurers'
        deemed pools hold for their unfunded deemed claims (interface 2)."""
        liabilities = sum(self.free(i) + self.encumbered(i) for i in insurers) + sum(self.owed(p) for p in providers)
        pools = sum(self.escrow.deemedPoolOf(i)[1] for i in insurers)
        assert self.token.balanceOf(self.escrow) == liabilities + pools


# ---------------------------------------------------------------- the escrow's errors, as brownie reports them


def _escrow_error(name: str, *args) -> str:
    from brownie import ClaimEscrow  # the project's container exists once brownie has loaded the project

    return error_message(ClaimEscrow, name, *args)


def not_active(account, role: int) -> str:
    """NotActiveParty: `account` is not an active party of `role`."""
    return _escrow_error("NotActiveParty", account.address, role)


def invalid_status(claim_id: bytes, status: ClaimStatus) -> str:
    """InvalidStatus: the claim is in `status`, which the call does not accept."""
    return _escrow_error("InvalidStatus", claim_id, int(status))


def missing_consent(patient, grantee, purpose: int, data_class: int) -> str:
    """MissingConsent: `patient` has not consented to `grantee` for `purpose` on `data_class`."""
    return _escrow_error("MissingConsent", patient.address, grantee.address, purpose, data_class)


def over_limit(insurer, patient, requested: int, remaining: int) -> str:
    """CoverageLimitExceeded: `requested` is more than the `remaining` benefit of `patient`'s coverage."""
    return _escrow_error("CoverageLimitExceeded", insurer.address, patient.address, requested, remaining)


def coverage_inactive(insurer, patient) -> str:
    """CoverageInactive: `insurer` does not cover `patient` now."""
    return _escrow_error("CoverageInactive", insurer.address, patient.address)
