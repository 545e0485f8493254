"""ClaimEscrow over a token whose transfers return false instead of reverting: every path that moves
tokens refuses or keeps the amount owed, and the books stay exact.
"""
from __future__ import annotations

import brownie
from brownie import ClaimEscrow, chain
from support.errors import error_message, reverts_with
from support.escrow import (
    CARC_MAX_ALLOWABLE,
    DECISION,
    EVIDENCE,
    PROMPT_PAY,
    USD,
    auto_terms,
    control,
    h,
    settle_owed,
    sleep,
)
from support.hostile_token import hostile_token_fixtures
from support.vocabulary import ClaimStatus

false_token, false_token_desk, false_token_desk_of_patient2 = hostile_token_fixtures(
    "FalseReturnToken", token="false_token", desk="false_token_desk",
    behaviour="can start returning false instead of reverting",
)


def test_false_return_deposit_reverts(false_token_desk, false_token, insurer):
    free = false_token_desk.free()
    false_token.mint(insurer, 10 * USD, {"from": insurer})
    false_token.approve(false_token_desk.escrow, 10 * USD, {"from": insurer})
    false_token.setFailing(True, {"from": insurer})
    with reverts_with(ClaimEscrow, "SafeERC20FailedOperation", false_token.address):
        false_token_desk.escrow.deposit(10 * USD, {"from": insurer})
    assert false_token_desk.free() == free


def test_false_return_withdrawals_revert_and_keep_balances(false_token_desk, false_token, provider, insurer):
    settle_owed(false_token_desk, "f", 50 * USD)
    free = false_token_desk.free()
    false_token.setFailing(True, {"from": insurer})
    failed = error_message(ClaimEscrow, "SafeERC20FailedOperation", false_token.address)
    with brownie.reverts(failed):
        false_token_desk.escrow.withdraw(10 * USD, {"from": provider})
    with brownie.reverts(failed):
        false_token_desk.escrow.withdrawAll({"from": provider})
    with brownie.reverts(failed):
        false_token_desk.escrow.withdrawFree(10 * USD, {"from": insurer})
    assert false_token_desk.owed() == 50 * USD and false_token_desk.paid_out() == 0 and false_token_desk.free() == free
    false_token.setFailing(False, {"from": insurer})
    false_token_desk.escrow.withdrawAll({"from": provider})
    assert false_token.balanceOf(provider) == 50 * USD
    false_token_desk.assert_solvent([insurer], [provider])


def test_false_return_push_keeps_amount_owed(false_token_desk, false_token, provider, insurer, arbiter, stranger):
    false_token_desk.escrow.setPushPayments(True, {"from": provider})
    for label in ("a", "b", "c"):
        false_token_desk.submit(label, 100 * USD)
    false_token_desk.adjudicate("b", 40 * USD, reasons=[CARC_MAX_ALLOWABLE])
    false_token_desk.escrow.dispute(control("b"), EVIDENCE, {"from": provider})
    false_token.setFailing(True, {"from": insurer})
    tx = false_token_desk.adjudicate("a", 100 * USD)  # the approval itself goes through
    assert tx.events["PushFailed"]["amount"] == 100 * USD and "PaymentPushed" not in tx.events
    tx = false_token_desk.escrow.resolveDispute(provider, control("b"), 60 * USD, DECISION, {"from": arbiter})
    assert tx.events["PushFailed"]["amount"] == 60 * USD
    sleep(PROMPT_PAY + 1)
    tx = false_token_desk.escrow.finalizeDeemed(provider, control("c"), {"from": stranger})
    assert tx.events["PushFailed"]["amount"] == 100 * USD
    assert false_token_desk.owed() == 260 * USD and false_token_desk.paid_out() == 40 * USD
    assert false_token.balanceOf(provider) == 40 * USD
    false_token_desk.assert_solvent([insurer], [provider])


def test_false_return_token_on_deposit_with_permit(false_token_desk_of_patient2):
    """A token without permit whose transferFrom returns false: no allowance -> PermitFailed;
    with an allowance the pull itself is refused; nothing is credited either way."""
    d = false_token_desk_of_patient2
    free = d.free()
    d.token.mint(d.insurer, 10 * USD, {"from": d.insurer})
    with reverts_with(ClaimEscrow, "PermitFailed", d.insurer.address, 10 * USD):
        d.escrow.depositWithPermit(10 * USD, chain.time() + 60, 27, h("r"), h("s"), {"from": d.insurer})
    d.token.approve(d.escrow, 10 * USD, {"from": d.insurer})
    d.token.setFailing(True, {"from": d.insurer})
    with reverts_with(ClaimEscrow, "SafeERC20FailedOperation", d.token.address):
        d.escrow.depositWithPermit(10 * USD, chain.time() + 60, 27, h("r"), h("s"), {"from": d.insurer})
    assert d.free() == free
    d.assert_solvent([d.insurer], [d.provider])


def test_false_return_token_on_automatic_approval_push(false_token_desk_of_patient2):
    """The one push path test_escrow_adversarial leaves out: an auto-approval inside submitClaim."""
    d = false_token_desk_of_patient2
    d.escrow.setTerms(auto_terms(), {"from": d.insurer})
    d.escrow.setPushPayments(True, {"from": d.provider})
    d.token.setFailing(True, {"from": d.insurer})
    tx = d.submit("auto", 10 * USD)
    assert tx.events["ClaimAdjudicated"]["kind"] == 1 and tx.events["PushFailed"]["amount"] == 10 * USD
    assert d.status("auto") == ClaimStatus.SETTLED and d.owed() == 10 * USD and d.paid_out() == 0
    assert d.token.balanceOf(d.provider) == 0
    d.assert_solvent([d.insurer], [d.provider])
