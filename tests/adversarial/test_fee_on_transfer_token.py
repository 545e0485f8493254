"""ClaimEscrow over a token that burns 1 % of every transfer: the escrow credits what arrives, the payee
bears the fee on every path, the books stay exact.
"""
from __future__ import annotations

import pytest
from brownie import chain
from support.escrow import (
    CARC_MAX_ALLOWABLE,
    CARC_NOT_COVERED,
    DECISION,
    DISPUTE_WINDOW,
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

fee_token, fee_token_desk, fee_token_desk_of_patient2 = hostile_token_fixtures(
    "FeeOnTransferToken", 100, token="fee_token", desk="fee_token_desk",  # a fee of 100 bp: 1 %
    behaviour="burns 1 % of every transfer",
)


def test_fee_on_transfer_credits_only_what_arrives(fee_token_desk, fee_token, insurer, provider):
    free = fee_token_desk.free()
    assert fee_token.balanceOf(fee_token_desk.escrow) == free  # setup deposit of 100,000 credited 99,000
    assert free == 99_000 * USD
    fee_token.mint(insurer, 1_000 * USD, {"from": insurer})
    fee_token.approve(fee_token_desk.escrow, 1_000 * USD, {"from": insurer})
    tx = fee_token_desk.escrow.deposit(1_000 * USD, {"from": insurer})
    assert tx.events["Deposited"]["amount"] == 990 * USD
    assert fee_token_desk.free() == free + 990 * USD
    fee_token_desk.assert_solvent([insurer], [provider])


def test_fee_on_transfer_payouts_stay_solvent(fee_token_desk, fee_token, insurer, provider):
    settle_owed(fee_token_desk, "a", 100 * USD)
    fee_token_desk.escrow.withdrawAll({"from": provider})
    assert fee_token.balanceOf(provider) == 99 * USD  # the payee bears the token's fee
    fee_token_desk.escrow.setPushPayments(True, {"from": provider})
    settle_owed(fee_token_desk, "b", 100 * USD)
    assert fee_token.balanceOf(provider) == 198 * USD
    fee_token_desk.escrow.withdrawFree(fee_token_desk.free(), {"from": insurer})
    assert fee_token_desk.free() == 0 and fee_token.balanceOf(fee_token_desk.escrow) == 0
    fee_token_desk.assert_solvent([insurer], [provider])


@pytest.mark.parametrize("path", ["depositWithPermit", "push:autoSubmit", "push:resolveDispute",
                                  "push:finalizeDeemed", "dispute:release"])
def test_fee_on_transfer_token_on_remaining_paths(fee_token_desk_of_patient2, arbiter, stranger, path):
    """The paths test_escrow_adversarial leaves out, on a 1 % fee token: the escrow credits what
    arrives, the payee bears the fee, the books stay exact."""
    d = fee_token_desk_of_patient2
    provider_balance = d.token.balanceOf(d.provider)
    if path == "depositWithPermit":  # no permit on this token: the allowance fallback
        free = d.free()
        d.token.mint(d.insurer, 1_000 * USD, {"from": d.insurer})
        d.token.approve(d.escrow, 1_000 * USD, {"from": d.insurer})
        tx = d.escrow.depositWithPermit(1_000 * USD, chain.time() + 60, 27, h("r"), h("s"), {"from": d.insurer})
        assert tx.events["Deposited"]["amount"] == 990 * USD and d.free() == free + 990 * USD
    elif path == "dispute:release":  # encumbrance never touches the token: no fee is charged on it
        free = d.free()
        d.submit("c", 100 * USD)
        d.adjudicate("c", 30 * USD, reasons=[CARC_MAX_ALLOWABLE])
        sleep(DISPUTE_WINDOW + 1)
        d.escrow.release(d.provider, control("c"), {"from": stranger})
        assert d.free() == free - 30 * USD and d.owed() == 30 * USD and d.encumbered() == 0
    else:
        d.escrow.setPushPayments(True, {"from": d.provider})
        if path == "push:autoSubmit":
            d.escrow.setTerms(auto_terms(), {"from": d.insurer})
            tx = d.submit("p", 100 * USD)
        elif path == "push:resolveDispute":
            d.submit("p", 100 * USD)
            d.adjudicate("p", 0, reasons=[CARC_NOT_COVERED])
            d.escrow.dispute(control("p"), EVIDENCE, {"from": d.provider})
            tx = d.escrow.resolveDispute(d.provider, control("p"), 100 * USD, DECISION, {"from": arbiter})
        else:
            d.submit("p", 100 * USD)
            sleep(PROMPT_PAY + 1)
            tx = d.escrow.finalizeDeemed(d.provider, control("p"), {"from": stranger})
        assert tx.events["PaymentPushed"]["amount"] == 100 * USD
        assert d.token.balanceOf(d.provider) == provider_balance + 99 * USD
        assert d.owed() == 0 and d.paid_out() == 100 * USD
    d.assert_solvent([d.insurer], [d.provider])
