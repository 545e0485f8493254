"""Shared constants and builders for the ClaimEscrow tests (not a test module itself)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import IntEnum

from eth_utils import keccak

from .records import rid

# Purposes and data classes (bit indexes), as fixed in the shared constants.
TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, COVERAGE = range(6)
DEMOGRAPHICS, CONDITIONS, MEDICATIONS, ALLERGIES, LABS, IMAGING, NOTES, BILLING = range(8)
GENOMICS, MENTAL_HEALTH, SUBSTANCE_USE = 8, 9, 10
PROVIDER_ROLE, INSURER_ROLE, ARBITER_ROLE = 1, 2, 3

ORIGINAL, REPLACEMENT, VOID = 1, 7, 8
MANUAL, AUTOMATIC, DEEMED = 0, 1, 2
CARC_BENEFIT_MAX = 119
CARC_NOT_COVERED = 96
CARC_MAX_ALLOWABLE = 45

DAY = 86_400
PROMPT_PAY = 30 * DAY
DISPUTE_WINDOW = 14 * DAY
UINT96_MAX = 2**96 - 1
USD = 10**6  # 6-decimal stablecoin unit
ZERO = "0x" + "00" * 32
MNEMONIC = "test test test test test test test test test test test junk"


class Status(IntEnum):
    NONE = 0
    SUBMITTED = 1
    CONTESTABLE = 2
    DISPUTED = 3
    SETTLED = 4
    VOIDED = 5
    DEEMED_UNFUNDED = 6


def h(label: str) -> bytes:
    """A deterministic 32-byte id / commitment for a test label."""
    return keccak(text=label)


def bit(index: int) -> int:
    return 1 << index


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
    auto_classes: int = 0,
    service_min: int = 0,
    service_max: int = 0,
    auto_cap: int = 1_000,
    auto_period: int = 30 * DAY,
) -> tuple:
    """An InsurerTerms tuple (auto-approval off unless auto_max > 0; velocity cap `auto_cap` automatic
    approvals per provider, coverage and `auto_period` seconds)."""
    return (prompt_pay, dispute, auto_max, auto_classes, service_min, service_max, auto_cap, auto_period)


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


def enrol(escrow, insurer, patient, per_claim: int = 0, per_period: int = 0, period: int = 0, until: int = 2**40 - 1):
    escrow.setCoverage(patient, h(f"policy:{patient}"), 0, until, per_claim, per_period, period, {"from": insurer})


def claim_id(escrow, provider, control: bytes) -> bytes:
    return escrow.claimIdOf(provider, control)


def private_key(account) -> str:
    """The private key of a Ganache development account (derived from the project mnemonic)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    for index in range(20):
        local = Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        if local.address == account.address:
            return local.key.hex()
    raise LookupError(account)


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
        grant(self.consent, self.patient, self.insurer, bit(HPAYMT), 0x7FF)
        grant(self.consent, self.patient, self.provider, bit(TREAT) | bit(HPAYMT), 0x7FF)
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

    def status(self, label: str, provider=None) -> Status:
        return Status(self.claim(label, provider)[2])

    def free(self, insurer=None) -> int:
        return self.escrow.insurerAccountOf(insurer or self.insurer)[0]

    def encumbered(self, insurer=None) -> int:
        return self.escrow.insurerAccountOf(insurer or self.insurer)[1]

    def owed(self, provider=None) -> int:
        return self.escrow.providerAccountOf(provider or self.provider)[0]

    def paid_out(self, provider=None) -> int:
        return self.escrow.providerAccountOf(provider or self.provider)[1]

    def assert_solvent(self, insurers, providers) -> None:
        """Token balance of the escrow == sum(free) + sum(encumbered) + sum(owed)."""
        liabilities = sum(self.free(i) + self.encumbered(i) for i in insurers) + sum(self.owed(p) for p in providers)
        assert self.token.balanceOf(self.escrow) == liabilities
