"""ClaimEscrow roles, suspended parties and the pause."""

import brownie
from brownie import ClaimEscrow, chain
from support.errors import error_message, reverts_with
from support.escrow import (
    CARC_NOT_COVERED,
    DAY,
    PROMPT_PAY,
    USD,
    control,
    h,
    invalid_status,
    missing_consent,
    not_active,
    terms,
)
from support.vocabulary import BILLING, HPAYMT, INSURER_ROLE, PROVIDER_ROLE, ClaimStatus

SUSPENDED = h("suspended")


# ---------------------------------------------------------------- roles and suspension


def test_role_boundaries(desk, escrow, insurer, provider, arbiter, stranger, admin, patient):
    desk.submit("rb", 10 * USD)
    rec = desk.record("rb2")
    for account in (insurer, arbiter, stranger):
        with brownie.reverts(not_active(account, PROVIDER_ROLE)):
            desk.submit("rb2", 10, [rec], provider=account)
        with brownie.reverts(invalid_status(bytes(escrow.claimIdOf(account, control("rb"))), ClaimStatus.NONE)):
            escrow.dispute(control("rb"), h("e"), {"from": account})
        with brownie.reverts(not_active(account, PROVIDER_ROLE)):
            escrow.setPushPayments(True, {"from": account})
    for account in (provider, arbiter, stranger):
        with brownie.reverts(not_active(account, INSURER_ROLE)):
            escrow.setCoverage(patient, h("x"), 0, 2**40 - 1, 0, 0, 0, 0, {"from": account})
        with brownie.reverts(not_active(account, INSURER_ROLE)):
            escrow.endCoverage(patient, {"from": account})
    desk.submit("rbd", 10 * USD)
    desk.adjudicate("rbd", 0, reasons=[CARC_NOT_COVERED])
    escrow.dispute(control("rbd"), h("e"), {"from": provider})
    for account in (provider, insurer, stranger, admin):  # issue 18: only the insurer's assigned arbiter rules
        with reverts_with(ClaimEscrow, "NotAssignedArbiter", account.address, insurer.address):
            escrow.resolveDispute(provider, control("rbd"), 0, h("d"), {"from": account})
    role = escrow.PAUSER_ROLE()
    for account in (provider, insurer, arbiter, stranger):
        with reverts_with(ClaimEscrow, "AccessControlUnauthorizedAccount", account.address, role):
            escrow.pause({"from": account})
    escrow.pause({"from": admin})
    for account in (provider, insurer, arbiter, stranger):
        with reverts_with(ClaimEscrow, "AccessControlUnauthorizedAccount", account.address, role):
            escrow.unpause({"from": account})


def test_suspended_provider_loses_rights(admin, desk, escrow, care, registrar, provider, stranger, insurer):
    desk.submit("s1", 10 * USD)
    desk.adjudicate("s1", 10 * USD)
    desk.submit("s2", 10 * USD)
    rec = desk.record("s3")
    care.suspend(provider, SUSPENDED, {"from": registrar})
    with brownie.reverts(not_active(provider, PROVIDER_ROLE)):
        desk.submit("s3", 10, [rec])
    with brownie.reverts(not_active(provider, PROVIDER_ROLE)):
        escrow.withdrawAll({"from": provider})
    chain.sleep(PROMPT_PAY + 1)
    chain.mine()
    with brownie.reverts(not_active(provider, PROVIDER_ROLE)):
        escrow.finalizeDeemed(provider, control("s2"), {"from": stranger})
    care.reinstate(provider, {"from": admin})
    escrow.withdrawAll({"from": provider})
    escrow.finalizeDeemed(provider, control("s2"), {"from": stranger})


def test_suspended_insurer_loses_rights(admin, desk, escrow, care, registrar, insurer, usdc, patient):
    desk.submit("si", 10 * USD)
    care.suspend(insurer, SUSPENDED, {"from": registrar})
    with brownie.reverts(not_active(insurer, INSURER_ROLE)):
        desk.adjudicate("si", 10 * USD)
    with brownie.reverts(not_active(insurer, INSURER_ROLE)):
        escrow.withdrawFree(1, {"from": insurer})
    with brownie.reverts(not_active(insurer, INSURER_ROLE)):
        escrow.deposit(1, {"from": insurer})
    with brownie.reverts(not_active(insurer, INSURER_ROLE)):
        escrow.setTerms(terms(), {"from": insurer})
    # A suspended insurer holds no live consent, so no claim can be filed against it.
    with brownie.reverts(missing_consent(patient, insurer, HPAYMT, BILLING)):
        desk.submit("si2", 10 * USD)
    care.reinstate(insurer, {"from": admin})
    desk.adjudicate("si", 10 * USD)


# ---------------------------------------------------------------- pause


def test_pause_blocks_processing_but_not_withdrawals(desk, escrow, admin, provider, insurer, arbiter, usdc, stranger):
    desk.submit("owed", 30 * USD)
    desk.adjudicate("owed", 30 * USD)
    desk.submit("open", 30 * USD)
    rec = desk.record("paused")
    tx = escrow.pause({"from": admin})
    assert tx.events["EscrowPaused"]["account"] == admin and escrow.paused()
    paused = error_message(ClaimEscrow, "EnforcedPause")
    blocked = [
        lambda: escrow.deposit(1, {"from": insurer}),
        lambda: escrow.depositWithPermit(1, 0, 0, h("r"), h("s"), {"from": insurer}),
        lambda: desk.submit("p", 10, [rec]),
        lambda: desk.adjudicate("open", 30 * USD),
        lambda: escrow.finalizeDeemed(provider, control("open"), {"from": stranger}),
        lambda: escrow.dispute(control("open"), h("e"), {"from": provider}),
        lambda: escrow.resolveDispute(provider, control("open"), 0, h("d"), {"from": arbiter}),
        lambda: escrow.release(provider, control("open"), {"from": stranger}),
        lambda: escrow.setTerms(terms(), {"from": insurer}),
        lambda: escrow.setCoverage(desk.patient, h("x"), 0, 2**40 - 1, 0, 0, 0, 0, {"from": insurer}),
        lambda: escrow.endCoverage(desk.patient, {"from": insurer}),
        lambda: escrow.setPushPayments(True, {"from": provider}),
    ]
    for call in blocked:
        with brownie.reverts(paused):
            call()
    with brownie.reverts(paused):
        escrow.pause({"from": admin})
    # Money already owed or free stays withdrawable.
    escrow.withdrawAll({"from": provider})
    escrow.withdrawFree(10 * USD, {"from": insurer})
    escrow.unpause({"from": admin})
    with reverts_with(ClaimEscrow, "ExpectedPause"):
        escrow.unpause({"from": admin})
    desk.adjudicate("open", 30 * USD)


def test_pause_stops_the_escrow_clock(desk, escrow, admin, stranger, provider):
    desk.submit("clock", 10 * USD)
    deadline = desk.claim("clock")[3]
    chain.sleep(PROMPT_PAY - DAY)
    escrow.pause({"from": admin})
    frozen = escrow.escrowTime()
    chain.sleep(10 * DAY)
    chain.mine()
    assert escrow.escrowTime() == frozen
    tx = escrow.unpause({"from": admin})
    assert tx.events["EscrowUnpaused"]["duration"] >= 10 * DAY
    # Without the pause the deadline would have passed by now; in escrow time it has not.
    assert chain.time() > deadline
    assert escrow.escrowTime() <= deadline
    with reverts_with(ClaimEscrow, "DeadlineNotReached", desk.cid("clock"), deadline):
        escrow.finalizeDeemed(provider, control("clock"), {"from": stranger})
    desk.adjudicate("clock", 10 * USD)  # the insurer still has its full window
