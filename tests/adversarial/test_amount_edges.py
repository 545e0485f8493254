"""Amount edges (0, 1, max) of deposit, withdrawals, submission, adjudication and award.
"""
from __future__ import annotations

import pytest
from brownie import ClaimEscrow
from support.errors import reverts_with
from support.escrow import CARC_NOT_COVERED, DECISION, EVIDENCE, UINT96_MAX, Desk, control
from support.vocabulary import ClaimStatus

UINT128_MAX = 2**128 - 1
UINT256_MAX = 2**256 - 1


@pytest.fixture(scope="module")
def edge_desk(MockStablecoin, ClaimEscrow, RecordRegistry, care, consent, admin, provider, insurer, patient2):
    """A fresh escrow on a fresh stablecoin, its own RecordRegistry, patient2 consenting and enrolled.
    The insurer holds the token's whole supply (2^256 - 1, approved to the escrow) and nothing in escrow."""
    token = MockStablecoin.deploy({"from": admin})
    records = RecordRegistry.deploy(care, consent, {"from": admin})
    escrow = ClaimEscrow.deploy(care, consent, records, token, admin, {"from": admin})
    token.mint(insurer, UINT256_MAX, {"from": insurer})
    token.approve(escrow, UINT256_MAX, {"from": insurer})
    parties = {"provider": provider, "insurer": insurer, "patient": patient2}
    return Desk(escrow, token, consent, records, care, parties).setup(funding=0)


def _deposit(d: Desk, amount: int) -> None:
    d.escrow.deposit(amount, {"from": d.insurer})


def _edge_deposit(d: Desk, edge: str) -> None:
    if edge == "zero":
        with reverts_with(ClaimEscrow, "ZeroAmount"):
            d.escrow.deposit(0, {"from": d.insurer})
    elif edge == "one":
        assert d.escrow.deposit(1, {"from": d.insurer}).events["Deposited"]["amount"] == 1
        assert d.free() == 1
    else:
        with reverts_with(ClaimEscrow, "AmountTooLarge", UINT256_MAX):
            d.escrow.deposit(UINT256_MAX, {"from": d.insurer})
        d.escrow.deposit(UINT128_MAX, {"from": d.insurer})  # the most one insurer account can hold
        assert d.free() == UINT128_MAX
        with reverts_with(ClaimEscrow, "AmountTooLarge", 1):
            d.escrow.deposit(1, {"from": d.insurer})


def _edge_withdraw_free(d: Desk, edge: str) -> None:
    if edge == "zero":
        with reverts_with(ClaimEscrow, "ZeroAmount"):
            d.escrow.withdrawFree(0, {"from": d.insurer})
        return
    amount = 1 if edge == "one" else UINT128_MAX
    _deposit(d, amount)
    over = 2 if edge == "one" else UINT256_MAX
    with reverts_with(ClaimEscrow, "InsufficientEscrow", d.insurer.address, over, amount):
        d.escrow.withdrawFree(over, {"from": d.insurer})
    d.escrow.withdrawFree(amount, {"from": d.insurer})
    assert d.free() == 0 and d.token.balanceOf(d.insurer) == UINT256_MAX


def _edge_submit(d: Desk, edge: str) -> None:
    if edge == "zero":
        with reverts_with(ClaimEscrow, "ZeroAmount"):
            d.submit("edge", 0)
        return
    billed = 1 if edge == "one" else UINT96_MAX
    d.submit("edge", billed)
    assert d.claim("edge")[1:3] == (billed, ClaimStatus.SUBMITTED)


def _edge_adjudicate(d: Desk, edge: str) -> None:
    if edge == "zero":  # a full denial: the whole bill is contested, and must be funded
        d.submit("edge", 10)
        with reverts_with(ClaimEscrow, "MissingReasonCodes"):
            d.adjudicate("edge", 0)
        with reverts_with(ClaimEscrow, "InsufficientEscrow", d.insurer.address, 10, 0):
            d.adjudicate("edge", 0, reasons=[CARC_NOT_COVERED])
        _deposit(d, 10)
        d.adjudicate("edge", 0, reasons=[CARC_NOT_COVERED])
        assert (d.owed(), d.free(), d.encumbered()) == (0, 0, 10)
        assert d.claim("edge")[1:3] == (10, ClaimStatus.CONTESTABLE)
        return
    billed = 1 if edge == "one" else UINT96_MAX
    d.submit("edge", billed)
    _deposit(d, billed)
    with reverts_with(ClaimEscrow, "InvalidAdjudication", billed, 0, 3 * UINT96_MAX):
        d.adjudicate("edge", 0, share=(UINT96_MAX, UINT96_MAX, UINT96_MAX))  # no overflow: summed in 256 bits
    if edge == "one":
        with reverts_with(ClaimEscrow, "InvalidAdjudication", 1, 1, 1):
            d.adjudicate("edge", 1, share=(0, 0, 1))
    d.adjudicate("edge", billed)
    assert (d.owed(), d.free(), d.encumbered()) == (billed, 0, 0)
    assert d.status("edge") == ClaimStatus.SETTLED


def _edge_award(d: Desk, edge: str, arbiter) -> None:
    contested = {"zero": 10, "one": 1, "max": UINT96_MAX}[edge]
    award = {"zero": 0, "one": 1, "max": UINT96_MAX}[edge]
    d.submit("edge", contested)
    _deposit(d, contested)
    d.adjudicate("edge", 0, reasons=[CARC_NOT_COVERED])
    d.escrow.dispute(control("edge"), EVIDENCE, {"from": d.provider})
    if contested < UINT96_MAX:
        with reverts_with(ClaimEscrow, "AwardExceedsContested", contested + 1, contested):
            d.escrow.resolveDispute(d.provider, control("edge"), contested + 1, DECISION, {"from": arbiter})
    tx = d.escrow.resolveDispute(d.provider, control("edge"), award, DECISION, {"from": arbiter})
    assert (tx.events["DisputeResolved"]["award"], tx.events["DisputeResolved"]["returned"]) == (award,
                                                                                                  contested - award)
    assert (d.owed(), d.free(), d.encumbered()) == (award, contested - award, 0)


def _edge_withdraw(d: Desk, edge: str) -> None:
    if edge == "zero":
        with reverts_with(ClaimEscrow, "ZeroAmount"):
            d.escrow.withdraw(0, {"from": d.provider})
        with reverts_with(ClaimEscrow, "ZeroAmount"):
            d.escrow.withdrawAll({"from": d.provider})  # nothing owed
        return
    owed = 1 if edge == "one" else UINT96_MAX
    d.submit("edge", owed)
    _deposit(d, owed)
    d.adjudicate("edge", owed)
    over = 2 if edge == "one" else UINT256_MAX
    with reverts_with(ClaimEscrow, "InsufficientOwed", d.provider.address, over, owed):
        d.escrow.withdraw(over, {"from": d.provider})
    d.escrow.withdraw(owed, {"from": d.provider})
    assert d.owed() == 0 and d.token.balanceOf(d.provider) == owed


@pytest.mark.parametrize("edge_case", ["zero", "one", "max"])
@pytest.mark.parametrize("operation", ["deposit", "withdrawFree", "submitClaim", "adjudicate", "award", "withdraw"])
def test_amount_edges(edge_desk, arbiter, operation, edge_case):
    {
        "deposit": _edge_deposit,
        "withdrawFree": _edge_withdraw_free,
        "submitClaim": _edge_submit,
        "adjudicate": _edge_adjudicate,
        "award": lambda d, e: _edge_award(d, e, arbiter),
        "withdraw": _edge_withdraw,
    }[operation](edge_desk, edge_case)
    edge_desk.assert_solvent([edge_desk.insurer], [edge_desk.provider])
