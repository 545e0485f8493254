"""Focused tests for branches the rest of the suite leaves untaken (found with `make coverage`).

Each test pins a behaviour on the chain with exact assertions; none relies on a particular chain id
or on wall-clock time (times are read back from receipts and blocks, so Ganache and Anvil agree).
"""

import brownie
import pytest
from brownie import chain
from conftest import INSURER, PROVIDER, custom_error
from support.escrow import CARC_BENEFIT_MAX, DAY, DEEMED, PROMPT_PAY, USD, Desk, Status, control, h

# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def desk(escrow, usdc, consent, records, care, provider, insurer, patient):
    parties = {"provider": provider, "insurer": insurer, "patient": patient}
    return Desk(escrow, usdc, consent, records, care, parties).setup()


def coverage_inactive(insurer, patient) -> str:
    return custom_error("CoverageInactive(address,address)", insurer.address, patient.address)


def over_limit(insurer, patient, requested: int, remaining: int) -> str:
    signature = "CoverageLimitExceeded(address,address,uint256,uint256)"
    return custom_error(signature, insurer.address, patient.address, requested, remaining)


def period_usage(escrow, insurer, patient) -> tuple[int, int]:
    """(periodUsed, periodIndex) of the patient's coverage with `insurer`."""
    coverage = escrow.coverageOf(escrow.enrolmentOf(insurer, patient)[0])
    return coverage[7], coverage[8]


def sleep(seconds: int) -> None:
    chain.sleep(seconds)
    chain.mine()


def now() -> int:
    """The latest block's timestamp (what the next transaction sees, give or take its own second)."""
    return chain[-1].timestamp


# ---------------------------------------------------------------- CareRegistry


def test_party_of_reports_role_status_and_times(care, registrar, provider, insurer, stranger):
    role, active, registered_at, updated_at = care.partyOf(provider)
    assert (role, active) == (PROVIDER, True)
    assert registered_at != 0 and updated_at == registered_at
    assert care.partyOf(insurer)[:2] == (INSURER, True)
    # Suspension flips `active` and stamps `updatedAt`; the registration time stays.
    tx = care.suspend(provider, h("audit"), {"from": registrar})
    assert care.partyOf(provider) == (PROVIDER, False, registered_at, tx.timestamp)
    tx = care.reinstate(provider, {"from": registrar})
    assert care.partyOf(provider) == (PROVIDER, True, registered_at, tx.timestamp)
    # An unknown account is all zero.
    assert care.partyOf(stranger) == (0, False, 0, 0)


# ---------------------------------------------------------------- ClaimEscrow coverage windows


def test_ending_coverage_before_it_starts_clamps_the_start(desk, escrow, insurer, patient):
    start = now() + 10 * DAY
    escrow.setCoverage(patient, h("future"), start, start + 30 * DAY, 0, 0, 0, {"from": insurer})
    coverage_id = escrow.enrolmentOf(insurer, patient)[0]
    tx = escrow.endCoverage(patient, {"from": insurer})
    ended_at = tx.events["CoverageEnded"]["endedAt"]
    assert ended_at == tx.timestamp < start
    # validFrom is pulled back to the end, so the enrolment is an empty window, never in force.
    assert escrow.enrolmentOf(insurer, patient) == (coverage_id, ended_at, ended_at)
    sleep(10 * DAY + 1)
    with brownie.reverts(coverage_inactive(insurer, patient)):
        desk.submit("after-start", 10 * USD)
    with brownie.reverts(coverage_inactive(insurer, patient)):
        escrow.endCoverage(patient, {"from": insurer})


# ---------------------------------------------------------------- ClaimEscrow benefit limits


def test_per_claim_limit_binds_until_the_period_remainder_is_smaller(desk, escrow, insurer, patient):
    """With both limits the headroom is the smaller one: first the per-claim limit (period has more
    left), then, once the period remainder drops below it, the period remainder."""
    start = now()
    escrow.setCoverage(patient, h("both"), start, start + 400 * DAY, 50 * USD, 100 * USD, 365 * DAY, {"from": insurer})
    for label in ("a", "b", "c"):
        desk.submit(label, 60 * USD)
    with brownie.reverts(over_limit(insurer, patient, 60 * USD, 50 * USD)):
        desk.adjudicate("a", 60 * USD)
    desk.adjudicate("a", 50 * USD, reasons=[CARC_BENEFIT_MAX])
    # 50 left in the period, equal to the per-claim limit: the headroom stays 50.
    with brownie.reverts(over_limit(insurer, patient, 50 * USD + 1, 50 * USD)):
        desk.adjudicate("b", 50 * USD + 1, reasons=[CARC_BENEFIT_MAX])
    desk.adjudicate("b", 40 * USD, reasons=[CARC_BENEFIT_MAX])
    # Now only 10 is left in the period, below the per-claim limit.
    with brownie.reverts(over_limit(insurer, patient, 11 * USD, 10 * USD)):
        desk.adjudicate("c", 11 * USD, reasons=[CARC_BENEFIT_MAX])
    desk.adjudicate("c", 10 * USD, reasons=[CARC_BENEFIT_MAX])
    assert period_usage(escrow, insurer, patient) == (100 * USD, 0)
    assert desk.owed() == 100 * USD and desk.encumbered() == 10 * USD + 20 * USD + 50 * USD


def test_exhausted_period_limit_deems_nothing_approved(desk, escrow, insurer, patient, provider, stranger):
    """A spent period limit leaves zero headroom: a manual approval reverts, and a deemed approval
    approves nothing and contests the whole amount (CARC 119) without touching the period usage."""
    start = now()
    escrow.setCoverage(patient, h("yearly"), start, start + 400 * DAY, 0, 100 * USD, 365 * DAY, {"from": insurer})
    desk.submit("full", 100 * USD)
    desk.submit("more", 30 * USD)
    desk.adjudicate("full", 100 * USD)
    with brownie.reverts(over_limit(insurer, patient, 1, 0)):
        desk.adjudicate("more", 1, reasons=[CARC_BENEFIT_MAX])
    sleep(PROMPT_PAY + 1)  # still inside the 365-day benefit period
    free, owed = desk.free(), desk.owed()
    tx = escrow.finalizeDeemed(provider, control("more"), {"from": stranger})
    event = tx.events["ClaimAdjudicated"]
    assert (event["kind"], event["approved"], event["contested"]) == (DEEMED, 0, 30 * USD)
    assert list(event["reasonCodes"]) == [CARC_BENEFIT_MAX]
    assert "PaymentPushed" not in tx.events and "PushFailed" not in tx.events
    assert desk.status("more") == Status.CONTESTABLE
    assert desk.owed() == owed and desk.encumbered() == 30 * USD and desk.free() == free - 30 * USD
    assert period_usage(escrow, insurer, patient) == (100 * USD, 0)
    desk.assert_solvent([insurer], [provider])
