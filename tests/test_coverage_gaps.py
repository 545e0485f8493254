"""Focused tests for branches the rest of the suite leaves untaken (found with `make coverage`).

Each test pins a behaviour on the chain with exact assertions; none relies on a particular chain id
or on wall-clock time (times are read back from receipts and blocks, so Ganache and Anvil agree).
"""

import brownie
from brownie import ZERO_ADDRESS, chain
from support.escrow import (
    CARC_BENEFIT_MAX,
    DAY,
    DEEMED,
    PROMPT_PAY,
    USD,
    control,
    coverage_inactive,
    h,
    over_limit,
    sleep,
)
from support.vocabulary import INSURER_ROLE, PROVIDER_ROLE, ClaimStatus

# ---------------------------------------------------------------- fixtures and helpers


def period_usage(escrow, insurer, patient) -> tuple[int, int]:
    """(periodUsed, periodIndex) of the patient's coverage with `insurer`."""
    coverage = escrow.coverageOf(escrow.enrolmentOf(insurer, patient)[0])
    return coverage[7], coverage[8]


def now() -> int:
    """The latest block's timestamp (what the next transaction sees, give or take its own second)."""
    return chain[-1].timestamp


# ---------------------------------------------------------------- CareRegistry


def test_party_of_reports_role_status_times_and_id(admin, care, registrar, provider, provider2, insurer, arbiter,
                                                   stranger):
    role, active, registered_at, updated_at, party_id, migrated, successor = care.partyOf(provider)
    assert (migrated, successor) == (False, False)
    assert (role, active) == (PROVIDER_ROLE, True)
    assert registered_at != 0 and updated_at == registered_at
    # Ids are 1, 2, ... in registration order (the `care` fixture registers provider first).
    assert party_id == 1
    assert [care.partyOf(p)[4] for p in (provider2, insurer, arbiter)] == [2, 3, 4]
    assert care.partyOf(insurer)[:2] == (INSURER_ROLE, True)
    # Suspension flips `active` and stamps `updatedAt`; the registration time and the id stay.
    tx = care.suspend(provider, h("audit"), {"from": registrar})
    assert care.partyOf(provider) == (PROVIDER_ROLE, False, registered_at, tx.timestamp, party_id, False, False)
    tx = care.reinstate(provider, {"from": admin})
    assert care.partyOf(provider) == (PROVIDER_ROLE, True, registered_at, tx.timestamp, party_id, False, False)
    # An unknown account is all zero.
    assert care.partyOf(stranger) == (0, False, 0, 0, 0, False, False)


def test_active_party_of_and_account_of(care, registrar, provider, insurer, stranger):
    """activePartyOf is activeRoleOf plus the id, which it keeps returning while the party is
    suspended; accountOf maps an id back (zero address for id 0 and ids not handed out)."""
    party_id = care.partyOf(provider)[4]
    assert care.activePartyOf(provider) == (PROVIDER_ROLE, party_id)
    assert care.activePartyOf(insurer) == (INSURER_ROLE, care.partyOf(insurer)[4])
    assert care.activePartyOf(stranger) == (0, 0)
    care.suspend(provider, h("audit"), {"from": registrar})
    assert care.activePartyOf(provider) == (0, party_id)
    assert care.accountOf(party_id) == provider  # a suspended party keeps its id
    assert care.accountOf(0) == ZERO_ADDRESS
    assert care.accountOf(5) == ZERO_ADDRESS  # the `care` fixture hands out ids 1-4
    tx = care.register(stranger, INSURER_ROLE, h("credentials:new"), {"from": registrar})
    assert tx.status == 1 and care.partyOf(stranger)[4] == 5 and care.accountOf(5) == stranger
    assert care.activePartyOf(stranger) == (INSURER_ROLE, 5)


# ---------------------------------------------------------------- ClaimEscrow coverage windows


def test_ending_coverage_before_it_starts_clamps_the_start(desk, escrow, insurer, patient):
    start = now() + 10 * DAY
    escrow.setCoverage(patient, h("future"), start, start + 30 * DAY, 0, 0, 0, 0, {"from": insurer})
    coverage_id = escrow.enrolmentOf(insurer, patient)[0]
    tx = escrow.endCoverage(patient, {"from": insurer})
    ended_at = tx.events["CoverageEnded"]["endedAt"]
    assert ended_at == tx.timestamp < start
    # validFrom is pulled back to the end, so the enrolment is an empty window, never in force.
    assert escrow.enrolmentOf(insurer, patient) == (coverage_id, ended_at, ended_at, 0)  # no auto classes
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
    escrow.setCoverage(patient, h("both"), start, start + 400 * DAY, 50 * USD, 100 * USD, 365 * DAY, 0,
                       {"from": insurer})
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
    escrow.setCoverage(patient, h("yearly"), start, start + 400 * DAY, 0, 100 * USD, 365 * DAY, 0, {"from": insurer})
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
    assert desk.status("more") == ClaimStatus.CONTESTABLE
    assert desk.owed() == owed and desk.encumbered() == 30 * USD and desk.free() == free - 30 * USD
    assert period_usage(escrow, insurer, patient) == (100 * USD, 0)
    desk.assert_solvent([insurer], [provider])
