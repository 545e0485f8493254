"""ClaimEscrow adjudication: approvals, patient shares, denials, deadlines and deemed approval."""

import brownie
from brownie import ClaimEscrow, chain
from support.errors import reverts_with
from support.escrow import (
    CARC_MAX_ALLOWABLE,
    CARC_NOT_COVERED,
    DEEMED,
    DISPUTE_WINDOW,
    MANUAL,
    PROMPT_PAY,
    USD,
    control,
    h,
    invalid_status,
)
from support.vocabulary import INSURER_ROLE, ClaimStatus

# ---------------------------------------------------------------- adjudication


def test_full_lifecycle(desk, escrow, usdc, provider, insurer, patient):
    free = desk.free()
    desk.submit("life", 250 * USD)
    tx = desk.adjudicate("life", 250 * USD)
    event = tx.events["ClaimAdjudicated"]
    assert (event["kind"], event["approved"], event["contested"], event["disputeDeadline"]) == (MANUAL, 250 * USD, 0, 0)
    assert list(event["reasonCodes"]) == []
    assert "PatientResponsibility" not in tx.events
    assert desk.free() == free - 250 * USD and desk.encumbered() == 0
    assert desk.owed() == 250 * USD
    assert desk.claim("life")[1:4] == (0, ClaimStatus.SETTLED, 0)
    balance = usdc.balanceOf(provider)
    tx = escrow.withdraw(100 * USD, {"from": provider})
    assert tx.events["PayoutWithdrawn"]["amount"] == 100 * USD
    tx = escrow.withdrawAll({"from": provider})
    assert tx.events["PayoutWithdrawn"]["amount"] == 150 * USD
    assert usdc.balanceOf(provider) == balance + 250 * USD
    assert desk.owed() == 0 and desk.paid_out() == 250 * USD
    desk.assert_solvent([insurer], [provider])


def test_partial_approval_with_patient_share(desk, escrow, provider, insurer, patient):
    free = desk.free()
    desk.submit("part", 100 * USD)
    tx = desk.adjudicate("part", 60 * USD, share=(10 * USD, 5 * USD, 5 * USD), reasons=[CARC_MAX_ALLOWABLE])
    event = tx.events["ClaimAdjudicated"]
    assert (event["approved"], event["contested"]) == (60 * USD, 40 * USD)  # the share is contested too
    assert list(event["reasonCodes"]) == [CARC_MAX_ALLOWABLE]
    assert event["disputeDeadline"] == tx.timestamp + DISPUTE_WINDOW
    share = tx.events["PatientResponsibility"]
    assert (share["deductible"], share["coinsurance"], share["copay"]) == (10 * USD, 5 * USD, 5 * USD)
    assert desk.owed() == 60 * USD
    assert desk.encumbered() == 40 * USD and desk.free() == free - 100 * USD
    assert desk.claim("part")[1:4] == (40 * USD, ClaimStatus.CONTESTABLE, tx.timestamp + DISPUTE_WINDOW)


def test_patient_share_only_is_contestable(desk, escrow, provider):
    # Issue 13, finding 1: a patient share needs a reason code and stays disputable like a denial.
    free = desk.free()
    desk.submit("deductible", 40 * USD)
    tx = desk.adjudicate("deductible", 0, share=(40 * USD, 0, 0), reasons=[1])
    assert desk.status("deductible") == ClaimStatus.CONTESTABLE
    assert tx.events["ClaimAdjudicated"]["contested"] == 40 * USD
    assert desk.free() == free - 40 * USD and desk.owed() == 0


def test_denial_encumbers_until_released(desk, escrow, stranger, insurer):
    free = desk.free()
    desk.submit("deny", 100 * USD)
    desk.adjudicate("deny", 0, reasons=[CARC_NOT_COVERED, 16])
    assert desk.encumbered() == 100 * USD and desk.free() == free - 100 * USD
    deadline = desk.claim("deny")[3]
    with reverts_with(ClaimEscrow, "DeadlineNotReached", desk.cid("deny"), deadline):
        escrow.release(desk.provider, control("deny"), {"from": stranger})
    chain.sleep(DISPUTE_WINDOW + 1)
    chain.mine()
    tx = escrow.release(desk.provider, control("deny"), {"from": stranger})
    assert tx.events["EncumbranceReleased"]["amount"] == 100 * USD
    assert desk.encumbered() == 0 and desk.free() == free
    assert desk.status("deny") == ClaimStatus.SETTLED
    with brownie.reverts(invalid_status(desk.cid("deny"), ClaimStatus.SETTLED)):
        escrow.release(desk.provider, control("deny"), {"from": stranger})


def test_adjudication_errors(desk, escrow, provider, insurer, stranger, accounts, care, registrar, patient):
    desk.submit("e", 100 * USD)
    cid = desk.cid("e")
    with reverts_with(ClaimEscrow, "NotClaimInsurer", cid, stranger.address):
        desk.adjudicate("e", 1, sender=stranger)
    other = accounts[12]
    care.register(other, INSURER_ROLE, h("other-insurer"), {"from": registrar})
    with reverts_with(ClaimEscrow, "NotClaimInsurer", cid, other.address):
        desk.adjudicate("e", 1, sender=other)
    with reverts_with(ClaimEscrow, "StaleRevision", cid, 3, 0):
        desk.adjudicate("e", 1, revision=3)
    with reverts_with(ClaimEscrow, "InvalidAdjudication", 100 * USD, 100 * USD + 1, 0):
        desk.adjudicate("e", 100 * USD + 1)
    with reverts_with(ClaimEscrow, "InvalidAdjudication", 100 * USD, 90 * USD, 11 * USD):
        desk.adjudicate("e", 90 * USD, share=(5 * USD, 5 * USD, 1 * USD))
    with reverts_with(ClaimEscrow, "MissingReasonCodes"):
        desk.adjudicate("e", 90 * USD)
    unknown = desk.cid("unknown")
    with brownie.reverts(invalid_status(unknown, ClaimStatus.NONE)):
        desk.adjudicate("unknown", 1)
    desk.adjudicate("e", 100 * USD)
    with brownie.reverts(invalid_status(cid, ClaimStatus.SETTLED)):
        desk.adjudicate("e", 100 * USD)


def test_insufficient_escrow(desk, escrow, insurer, provider):
    free = desk.free()
    escrow.withdrawFree(free - 50 * USD, {"from": insurer})
    desk.submit("big", 80 * USD)
    with reverts_with(ClaimEscrow, "InsufficientEscrow", insurer.address, 80 * USD, 50 * USD):
        desk.adjudicate("big", 80 * USD)
    # A denial must be able to encumber the contested amount too.
    with reverts_with(ClaimEscrow, "InsufficientEscrow", insurer.address, 80 * USD, 50 * USD):
        desk.adjudicate("big", 0, reasons=[CARC_NOT_COVERED])
    # The patient share is contested until the dispute window closes, so it is encumbered too: every
    # adjudication needs the whole billed amount (issue 13, finding 1).
    with reverts_with(ClaimEscrow, "InsufficientEscrow", insurer.address, 80 * USD, 50 * USD):
        desk.adjudicate("big", 30 * USD, share=(50 * USD, 0, 0), reasons=[1])
    desk.fund(30 * USD)
    desk.adjudicate("big", 30 * USD, share=(50 * USD, 0, 0), reasons=[1])
    assert desk.free() == 0 and desk.owed() == 30 * USD and desk.encumbered() == 50 * USD


def test_adjudication_after_prompt_pay_deadline_is_too_late(desk, escrow):
    desk.submit("late", 10 * USD)
    deadline = desk.claim("late")[3]
    chain.sleep(PROMPT_PAY + 1)
    chain.mine()
    with reverts_with(ClaimEscrow, "DeadlinePassed", desk.cid("late"), deadline):
        desk.adjudicate("late", 0, reasons=[CARC_NOT_COVERED])


# ---------------------------------------------------------------- deemed approval


def test_deemed_approval(desk, escrow, stranger, provider, insurer):
    desk.submit("deem", 70 * USD)
    deadline = desk.claim("deem")[3]
    with reverts_with(ClaimEscrow, "DeadlineNotReached", desk.cid("deem"), deadline):
        escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    chain.sleep(PROMPT_PAY + 1)
    chain.mine()
    tx = escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    event = tx.events["ClaimAdjudicated"]
    assert (event["kind"], event["approved"], event["contested"]) == (DEEMED, 70 * USD, 0)
    assert desk.owed() == 70 * USD and desk.status("deem") == ClaimStatus.SETTLED
    with brownie.reverts(invalid_status(desk.cid("deem"), ClaimStatus.SETTLED)):
        escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})


def test_deemed_approval_requires_funds(desk, escrow, stranger, provider, insurer):
    desk.submit("deem", 70 * USD)
    escrow.withdrawFree(desk.free() - 10 * USD, {"from": insurer})
    chain.sleep(PROMPT_PAY + 1)
    chain.mine()
    # Issue 13, finding 6: deemed approved, unfunded; the free balance is set aside for it.
    escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    assert desk.status("deem") == ClaimStatus.DEEMED_UNFUNDED and desk.free() == 0
    assert escrow.deemedPoolOf(insurer) == (70 * USD, 10 * USD)
    with reverts_with(ClaimEscrow, "InsufficientEscrow", insurer.address, 70 * USD, 10 * USD):
        escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    desk.fund(60 * USD)
    escrow.finalizeDeemed(provider, control("deem"), {"from": stranger})
    assert desk.owed() == 70 * USD and desk.free() == 0 and escrow.deemedPoolOf(insurer) == (0, 0)
