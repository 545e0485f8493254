"""ClaimEscrow disputes: window, encumbrance, arbiter awards, release and every forbidden transition."""

import brownie
import pytest
from brownie import ZERO_ADDRESS, ClaimEscrow, chain
from support.errors import reverts_with
from support.escrow import (
    CARC_BENEFIT_MAX,
    CARC_MAX_ALLOWABLE,
    CARC_NOT_COVERED,
    DAY,
    DISPUTE_WINDOW,
    PROMPT_PAY,
    USD,
    control,
    h,
    invalid_status,
    sleep,
)
from support.vocabulary import ARBITER_ROLE, INSURER_ROLE, REPLACEMENT, VOID, ClaimStatus

EVIDENCE = h("appeal-packet")
DECISION = h("arbiter-decision")


def contest(desk, label: str, billed: int = 100 * USD, approved: int = 40 * USD) -> None:
    """Submit and partially approve: billed - approved is contested."""
    desk.submit(label, billed)
    desk.adjudicate(label, approved, reasons=[CARC_MAX_ALLOWABLE])


def test_dispute_and_partial_award(desk, escrow, provider, arbiter, insurer):
    free = desk.free()
    contest(desk, "d")
    tx = escrow.dispute(control("d"), EVIDENCE, {"from": provider})
    event = tx.events["ClaimDisputed"]
    assert bytes(event["claimId"]) == desk.cid("d") and event["provider"] == provider
    assert desk.status("d") == ClaimStatus.DISPUTED
    # A dispute holds the encumbrance past the window: release is not possible.
    sleep(DISPUTE_WINDOW + DAY)
    with brownie.reverts(invalid_status(desk.cid("d"), ClaimStatus.DISPUTED)):
        escrow.release(provider, control("d"), {"from": insurer})
    assert desk.encumbered() == 60 * USD
    tx = escrow.resolveDispute(provider, control("d"), 25 * USD, DECISION, {"from": arbiter})
    event = tx.events["DisputeResolved"]
    assert (event["arbiter"], event["award"], event["returned"]) == (arbiter, 25 * USD, 35 * USD)
    assert desk.status("d") == ClaimStatus.SETTLED and desk.claim("d")[1] == 0
    assert desk.owed() == 40 * USD + 25 * USD
    assert desk.encumbered() == 0 and desk.free() == free - 65 * USD
    desk.assert_solvent([insurer], [provider])


@pytest.mark.parametrize("award", [0, 1, 60 * USD])
def test_award_bounds(desk, escrow, provider, arbiter, insurer, award):
    free = desk.free()
    contest(desk, "b")
    escrow.dispute(control("b"), EVIDENCE, {"from": provider})
    escrow.resolveDispute(provider, control("b"), award, DECISION, {"from": arbiter})
    assert desk.owed() == 40 * USD + award
    assert desk.free() == free - 40 * USD - award and desk.encumbered() == 0


def test_award_above_contested_and_bad_inputs(desk, escrow, provider, arbiter):
    contest(desk, "x")
    escrow.dispute(control("x"), EVIDENCE, {"from": provider})
    with reverts_with(ClaimEscrow, "AwardExceedsContested", 60 * USD + 1, 60 * USD):
        escrow.resolveDispute(provider, control("x"), 60 * USD + 1, DECISION, {"from": arbiter})
    with reverts_with(ClaimEscrow, "EmptyHash"):
        escrow.resolveDispute(provider, control("x"), 1, b"\x00" * 32, {"from": arbiter})


def test_dispute_window(desk, escrow, provider):
    contest(desk, "w")
    deadline = desk.claim("w")[3]
    sleep(DISPUTE_WINDOW + 1)
    with reverts_with(ClaimEscrow, "DeadlinePassed", desk.cid("w"), deadline):
        escrow.dispute(control("w"), EVIDENCE, {"from": provider})
    with reverts_with(ClaimEscrow, "EmptyHash"):
        escrow.dispute(control("w"), b"\x00" * 32, {"from": provider})


def test_undisputed_window_releases_to_insurer(desk, escrow, provider, insurer, stranger):
    free = desk.free()
    contest(desk, "u")
    assert desk.free() == free - 100 * USD
    sleep(DISPUTE_WINDOW + 1)
    tx = escrow.release(provider, control("u"), {"from": stranger})
    assert tx.events["EncumbranceReleased"]["insurer"] == insurer
    assert desk.free() == free - 40 * USD and desk.encumbered() == 0
    # Once released the provider can no longer dispute and the insurer can withdraw the money.
    with brownie.reverts(invalid_status(desk.cid("u"), ClaimStatus.SETTLED)):
        escrow.dispute(control("u"), EVIDENCE, {"from": provider})
    escrow.withdrawFree(desk.free(), {"from": insurer})
    assert desk.free() == 0
    desk.assert_solvent([insurer], [provider])


def test_forbidden_transitions(desk, escrow, provider, provider2, arbiter, insurer, stranger):
    # Submitted: no dispute, resolution or release.
    desk.submit("open", 10 * USD)
    cid = desk.cid("open")
    with brownie.reverts(invalid_status(cid, ClaimStatus.SUBMITTED)):
        escrow.dispute(control("open"), EVIDENCE, {"from": provider})
    with brownie.reverts(invalid_status(cid, ClaimStatus.SUBMITTED)):
        escrow.resolveDispute(provider, control("open"), 0, DECISION, {"from": arbiter})
    with brownie.reverts(invalid_status(cid, ClaimStatus.SUBMITTED)):
        escrow.release(provider, control("open"), {"from": stranger})
    # Contestable: no adjudication, deemed approval, replacement, void or resolution.
    contest(desk, "c")
    cid = desk.cid("c")
    with brownie.reverts(invalid_status(cid, ClaimStatus.CONTESTABLE)):
        desk.adjudicate("c", 60 * USD)
    sleep(PROMPT_PAY + 1)
    with brownie.reverts(invalid_status(cid, ClaimStatus.CONTESTABLE)):
        escrow.finalizeDeemed(provider, control("c"), {"from": stranger})
    with brownie.reverts(invalid_status(cid, ClaimStatus.CONTESTABLE)):
        desk.submit("c", 1, [], frequency=VOID)
    with brownie.reverts(invalid_status(cid, ClaimStatus.CONTESTABLE)):
        escrow.resolveDispute(provider, control("c"), 0, DECISION, {"from": arbiter})
    # Only the claim's own provider can dispute: another provider's (provider2, "c") is no claim.
    with brownie.reverts(invalid_status(desk.cid("c", provider2), ClaimStatus.NONE)):
        escrow.dispute(control("c"), EVIDENCE, {"from": provider2})
    # Disputed: no second dispute, no release, no adjudication.
    contest(desk, "dd")
    escrow.dispute(control("dd"), EVIDENCE, {"from": provider})
    cid = desk.cid("dd")
    with brownie.reverts(invalid_status(cid, ClaimStatus.DISPUTED)):
        escrow.dispute(control("dd"), EVIDENCE, {"from": provider})
    with brownie.reverts(invalid_status(cid, ClaimStatus.DISPUTED)):
        desk.adjudicate("dd", 60 * USD)
    # Settled: nothing more.
    escrow.resolveDispute(provider, control("dd"), 0, DECISION, {"from": arbiter})
    with brownie.reverts(invalid_status(cid, ClaimStatus.SETTLED)):
        escrow.resolveDispute(provider, control("dd"), 0, DECISION, {"from": arbiter})
    with brownie.reverts(invalid_status(cid, ClaimStatus.SETTLED)):
        escrow.release(provider, control("dd"), {"from": stranger})
    # Voided: nothing at all.
    desk.submit("v", 10 * USD)
    desk.submit("v", 10 * USD, [], frequency=VOID)
    cid = desk.cid("v")
    sleep(PROMPT_PAY + 1)
    for attempt in (
        lambda: escrow.finalizeDeemed(provider, control("v"), {"from": stranger}),
        lambda: escrow.dispute(control("v"), EVIDENCE, {"from": provider}),
        lambda: escrow.release(provider, control("v"), {"from": stranger}),
        lambda: escrow.resolveDispute(provider, control("v"), 0, DECISION, {"from": arbiter}),
        lambda: desk.submit("v", 10 * USD, frequency=REPLACEMENT),
    ):
        with brownie.reverts(invalid_status(cid, ClaimStatus.VOIDED)):
            attempt()


def test_only_the_active_arbiter_assigned_to_the_insurer_resolves(desk, escrow, care, admin, registrar, provider,
                                                                provider2, insurer, arbiter, stranger):
    contest(desk, "a")
    escrow.dispute(control("a"), EVIDENCE, {"from": provider})
    for account in (provider, provider2, insurer, stranger, admin, registrar):
        with reverts_with(ClaimEscrow, "NotAssignedArbiter", account.address, insurer.address):
            escrow.resolveDispute(provider, control("a"), 60 * USD, DECISION, {"from": account})
    care.suspend(arbiter, h("conflict"), {"from": registrar})
    with reverts_with(ClaimEscrow, "NotAssignedArbiter", arbiter.address, insurer.address):
        escrow.resolveDispute(provider, control("a"), 60 * USD, DECISION, {"from": arbiter})
    care.reinstate(arbiter, {"from": admin})
    escrow.resolveDispute(provider, control("a"), 60 * USD, DECISION, {"from": arbiter})


def test_an_active_arbiter_not_assigned_to_the_insurer_cannot_resolve(desk, escrow, care, admin, registrar, provider,
                                                                      insurer, arbiter, accounts):
    """Issue 18: arbiters are assigned per insurer, not first come first served. Another insurer's active
    arbiter is refused; the governor's reassignment takes effect at once, open disputes included."""
    other, insurer2 = accounts[15], accounts[16]
    care.register(other, ARBITER_ROLE, h("arbiter-2"), {"from": admin})
    care.register(insurer2, INSURER_ROLE, h("insurer-2"), {"from": registrar})
    care.assignArbiter(insurer2, other, {"from": admin})
    assert care.isActive(other, ARBITER_ROLE)
    contest(desk, "r")
    escrow.dispute(control("r"), EVIDENCE, {"from": provider})
    with reverts_with(ClaimEscrow, "NotAssignedArbiter", other.address, insurer.address):
        escrow.resolveDispute(provider, control("r"), 10 * USD, DECISION, {"from": other})
    care.assignArbiter(insurer, other, {"from": admin})  # reassignment
    with reverts_with(ClaimEscrow, "NotAssignedArbiter", arbiter.address, insurer.address):
        escrow.resolveDispute(provider, control("r"), 10 * USD, DECISION, {"from": arbiter})
    tx = escrow.resolveDispute(provider, control("r"), 10 * USD, DECISION, {"from": other})
    assert tx.events["DisputeResolved"]["arbiter"] == other
    # Unassigned: nobody resolves the insurer's disputes until the governor assigns an arbiter again.
    contest(desk, "u")
    escrow.dispute(control("u"), EVIDENCE, {"from": provider})
    care.assignArbiter(insurer, ZERO_ADDRESS, {"from": admin})
    for account in (arbiter, other):
        with reverts_with(ClaimEscrow, "NotAssignedArbiter", account.address, insurer.address):
            escrow.resolveDispute(provider, control("u"), 0, DECISION, {"from": account})


def test_suspended_provider_can_still_dispute(desk, escrow, care, registrar, provider):
    # Issue 13, finding 2: a dispute moves no money, so a suspension must not run out the window.
    contest(desk, "s")
    care.suspend(provider, h("fraud"), {"from": registrar})
    escrow.dispute(control("s"), EVIDENCE, {"from": provider})
    assert desk.status("s") == ClaimStatus.DISPUTED


def test_award_to_a_suspended_provider_stays_owed(desk, escrow, care, registrar, provider, arbiter, insurer):
    escrow.setPushPayments(True, {"from": provider})
    desk.submit("sp", 100 * USD)
    tx = desk.adjudicate("sp", 40 * USD, reasons=[CARC_MAX_ALLOWABLE])
    assert tx.events["PaymentPushed"]["amount"] == 40 * USD
    escrow.dispute(control("sp"), EVIDENCE, {"from": provider})
    care.suspend(provider, h("audit"), {"from": registrar})
    tx = escrow.resolveDispute(provider, control("sp"), 60 * USD, DECISION, {"from": arbiter})
    assert tx.events["PushFailed"]["amount"] == 60 * USD and "PaymentPushed" not in tx.events
    assert desk.owed() == 60 * USD
    desk.assert_solvent([insurer], [provider])


def test_award_is_pushed_when_opted_in(desk, escrow, usdc, provider, arbiter):
    contest(desk, "push")
    escrow.dispute(control("push"), EVIDENCE, {"from": provider})
    escrow.setPushPayments(True, {"from": provider})
    balance = usdc.balanceOf(provider)
    tx = escrow.resolveDispute(provider, control("push"), 30 * USD, DECISION, {"from": arbiter})
    assert tx.events["PaymentPushed"]["amount"] == 30 * USD
    assert usdc.balanceOf(provider) == balance + 30 * USD
    assert desk.owed() == 40 * USD  # the earlier approval was credited before the opt-in


def test_encumbered_money_cannot_leave(desk, escrow, provider, insurer):
    free = desk.free()
    escrow.withdrawFree(free - 100 * USD, {"from": insurer})
    contest(desk, "e", billed=100 * USD, approved=0)
    assert desk.free() == 0 and desk.encumbered() == 100 * USD
    with reverts_with(ClaimEscrow, "InsufficientEscrow", insurer.address, 1, 0):
        escrow.withdrawFree(1, {"from": insurer})
    # Another claim cannot be paid out of the encumbrance either.
    desk.submit("other", 10 * USD)
    with reverts_with(ClaimEscrow, "InsufficientEscrow", insurer.address, 10 * USD, 0):
        desk.adjudicate("other", 10 * USD)


def test_deemed_excess_over_limit_is_disputable_but_no_award_exceeds_the_limit(desk, escrow, provider, insurer,
                                                                             arbiter, patient, stranger):
    """Issue 18, "awards respect the coverage limits": the excess over a per-claim limit is contested (CARC 119)
    and disputable, but an award counts against the limit like an approval: nothing is left of it here."""
    escrow.setCoverage(patient, h("cap"), 0, 2**40 - 1, 50 * USD, 0, 0, 0, {"from": insurer})
    desk.submit("cap", 80 * USD)
    sleep(PROMPT_PAY + 1)
    tx = escrow.finalizeDeemed(provider, control("cap"), {"from": stranger})
    assert list(tx.events["ClaimAdjudicated"]["reasonCodes"]) == [CARC_BENEFIT_MAX]
    escrow.dispute(control("cap"), EVIDENCE, {"from": provider})
    with reverts_with(ClaimEscrow, "CoverageLimitExceeded", insurer.address, patient.address, 1, 0):
        escrow.resolveDispute(provider, control("cap"), 1, DECISION, {"from": arbiter})
    escrow.resolveDispute(provider, control("cap"), 0, DECISION, {"from": arbiter})
    assert desk.owed() == 50 * USD


def test_award_respects_the_per_claim_limit(desk, escrow, provider, insurer, arbiter, patient):
    """A partial approval under a per-claim limit leaves only the rest of the limit to award."""
    escrow.setCoverage(patient, h("claim-cap"), 0, 2**40 - 1, 100 * USD, 0, 0, 0, {"from": insurer})
    contest(desk, "pc", billed=150 * USD, approved=60 * USD)  # 90 contested, 40 of the limit left
    escrow.dispute(control("pc"), EVIDENCE, {"from": provider})
    with reverts_with(ClaimEscrow, "CoverageLimitExceeded", insurer.address, patient.address, 40 * USD + 1, 40 * USD):
        escrow.resolveDispute(provider, control("pc"), 40 * USD + 1, DECISION, {"from": arbiter})
    free = desk.free()
    tx = escrow.resolveDispute(provider, control("pc"), 40 * USD, DECISION, {"from": arbiter})
    assert (tx.events["DisputeResolved"]["award"], tx.events["DisputeResolved"]["returned"]) == (40 * USD, 50 * USD)
    assert desk.owed() == 100 * USD and desk.free() == free + 50 * USD and desk.encumbered() == 0


def test_award_respects_the_period_limit_at_the_time_of_the_ruling(desk, escrow, provider, insurer, arbiter, patient):
    """An award counts as usage of the benefit period it is made in, and cannot exceed what is left of it."""
    start = chain.time()
    escrow.setCoverage(patient, h("period-cap"), start, start + 400 * DAY, 0, 100 * USD, 30 * DAY, 0, {"from": insurer})
    contest(desk, "pa", billed=100 * USD, approved=40 * USD)  # 60 contested
    desk.submit("pb", 50 * USD)
    desk.adjudicate("pb", 50 * USD)  # 90 of the period's 100 used
    escrow.dispute(control("pa"), EVIDENCE, {"from": provider})
    with reverts_with(ClaimEscrow, "CoverageLimitExceeded", insurer.address, patient.address, 20 * USD, 10 * USD):
        escrow.resolveDispute(provider, control("pa"), 20 * USD, DECISION, {"from": arbiter})
    escrow.resolveDispute(provider, control("pa"), 10 * USD, DECISION, {"from": arbiter})
    coverage = escrow.coverageOf(escrow.enrolmentOf(insurer, patient)[0])
    assert coverage[7] == 100 * USD  # the award is recorded as usage: the period is exhausted
    assert desk.owed() == 100 * USD


def test_pause_freezes_the_dispute_window(desk, escrow, admin, provider):
    contest(desk, "frozen")
    deadline = desk.claim("frozen")[3]
    sleep(DISPUTE_WINDOW - DAY)
    escrow.pause({"from": admin})
    sleep(5 * DAY)
    with reverts_with(ClaimEscrow, "EnforcedPause"):
        escrow.dispute(control("frozen"), EVIDENCE, {"from": provider})
    escrow.unpause({"from": admin})
    assert chain.time() > deadline  # in block time the window is over...
    escrow.dispute(control("frozen"), EVIDENCE, {"from": provider})  # ...in escrow time it is not
    assert desk.status("frozen") == ClaimStatus.DISPUTED


def test_denial_with_several_reason_codes_is_fully_contested(desk, escrow, provider, arbiter):
    desk.submit("deny", 90 * USD)
    tx = desk.adjudicate("deny", 0, reasons=[CARC_NOT_COVERED, 50, 197])
    assert list(tx.events["ClaimAdjudicated"]["reasonCodes"]) == [CARC_NOT_COVERED, 50, 197]
    assert desk.claim("deny")[1] == 90 * USD
    escrow.dispute(control("deny"), EVIDENCE, {"from": provider})
    escrow.resolveDispute(provider, control("deny"), 90 * USD, DECISION, {"from": arbiter})
    assert desk.owed() == 90 * USD
