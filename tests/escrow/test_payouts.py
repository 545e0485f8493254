"""ClaimEscrow provider payouts and amount bounds."""

import brownie
import pytest
from brownie import ClaimEscrow, web3
from eth_abi import encode
from support.errors import reverts_with
from support.escrow import UINT96_MAX, USD, control, h, invalid_status, not_active, submission
from support.vocabulary import PROVIDER_ROLE, ClaimStatus

# ---------------------------------------------------------------- withdrawals


def test_over_withdrawal_and_double_payout(desk, escrow, usdc, provider, provider2, insurer):
    desk.submit("w", 100 * USD)
    desk.adjudicate("w", 100 * USD)
    with reverts_with(ClaimEscrow, "InsufficientOwed", provider.address, 100 * USD + 1, 100 * USD):
        escrow.withdraw(100 * USD + 1, {"from": provider})
    with reverts_with(ClaimEscrow, "ZeroAmount"):
        escrow.withdraw(0, {"from": provider})
    escrow.withdraw(100 * USD, {"from": provider})
    with reverts_with(ClaimEscrow, "InsufficientOwed", provider.address, 1, 0):
        escrow.withdraw(1, {"from": provider})
    with reverts_with(ClaimEscrow, "ZeroAmount"):
        escrow.withdrawAll({"from": provider})
    # Nobody else can take it: another provider is owed nothing, non-providers are refused.
    with reverts_with(ClaimEscrow, "ZeroAmount"):
        escrow.withdrawAll({"from": provider2})
    with brownie.reverts(not_active(insurer, PROVIDER_ROLE)):
        escrow.withdraw(1, {"from": insurer})
    # The settled claim cannot be paid again by any path.
    with brownie.reverts(invalid_status(desk.cid("w"), ClaimStatus.SETTLED)):
        desk.adjudicate("w", 100 * USD)
    with brownie.reverts(invalid_status(desk.cid("w"), ClaimStatus.SETTLED)):
        escrow.finalizeDeemed(provider, control("w"), {"from": provider})
    with brownie.reverts(invalid_status(desk.cid("w"), ClaimStatus.SETTLED)):
        escrow.dispute(control("w"), h("e"), {"from": provider})
    desk.assert_solvent([insurer], [provider, provider2])


# ---------------------------------------------------------------- amounts


def test_amount_edges(desk, escrow, usdc, provider, insurer):
    desk.submit("one", 1)
    desk.adjudicate("one", 1)
    assert desk.owed() == 1
    escrow.withdraw(1, {"from": provider})
    desk.fund(UINT96_MAX)
    desk.submit("max", UINT96_MAX)
    desk.adjudicate("max", UINT96_MAX)
    assert desk.owed() == UINT96_MAX
    escrow.withdrawAll({"from": provider})
    assert desk.owed() == 0
    desk.assert_solvent([insurer], [provider])


def test_amount_above_uint96_is_rejected_by_the_abi_decoder(desk, escrow, provider, insurer, patient):
    rec = desk.record("huge")
    base = submission(control("huge"), patient, insurer, 1, [rec])
    shape = ["(bytes32,address,address,uint256,uint16,uint8,bytes32,(bytes32,bytes32)[])"]

    def call_with(billed: int):
        fields = (base[0], base[1].address, base[2].address, billed, base[4], base[5], base[6], base[7])
        data = escrow.submitClaim.signature + encode(shape, [fields]).hex()
        return web3.eth.call({"from": provider.address, "to": escrow.address, "data": data})

    with pytest.raises(ValueError):
        call_with(2**96)
    call_with(2**96 - 1)  # the largest billable amount decodes and would be accepted


def test_deposit_overflow_guard(desk, escrow, usdc, insurer):
    usdc.mint(insurer, 2**128, {"from": insurer})
    usdc.approve(escrow, 2**128, {"from": insurer})
    with reverts_with(ClaimEscrow, "AmountTooLarge", 2**128):
        escrow.deposit(2**128, {"from": insurer})
