"""Focused tests for branches the rest of the suite leaves untaken (found with `make coverage`).

Each test pins a behaviour on the chain with exact assertions; none relies on a particular chain id
or on wall-clock time (times are read back from receipts and blocks, so Ganache and Anvil agree).
"""

import brownie
import pytest
from brownie import chain
from conftest import INSURER, PROVIDER, custom_error
from support.escrow import DAY, USD, Desk, Status, control, h

# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def desk(escrow, usdc, consent, records, care, provider, insurer, patient):
    parties = {"provider": provider, "insurer": insurer, "patient": patient}
    return Desk(escrow, usdc, consent, records, care, parties).setup()


def coverage_inactive(insurer, patient) -> str:
    return custom_error("CoverageInactive(address,address)", insurer.address, patient.address)


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
