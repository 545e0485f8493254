"""ClaimEscrow deployment and insurer funds: deposits (plain and EIP-2612 permit) and free withdrawals."""

import brownie
import pytest
from brownie import ZERO_ADDRESS, ClaimEscrow, MockStablecoin, chain
from eth_account.messages import encode_typed_data
from support.errors import reverts_with
from support.escrow import CARC_NOT_COVERED, USD, not_active, permit, private_key
from support.vocabulary import INSURER_ROLE

from medledger.eip712 import ConsentDomain, PermitRequest, permit_typed_data, sign_permit, split_signature
from medledger.errors import TypedDataError

# ---------------------------------------------------------------- deployment


def test_deployment(escrow, care, consent, records, usdc, admin):
    assert escrow.registry() == care
    assert escrow.consent() == consent
    assert escrow.records() == records
    assert escrow.token() == usdc
    assert escrow.hasRole(escrow.DEFAULT_ADMIN_ROLE(), admin)
    assert escrow.hasRole(escrow.PAUSER_ROLE(), admin)
    assert not escrow.paused()
    assert abs(escrow.escrowTime() - chain[-1].timestamp) <= 5  # never paused: escrow time is block time
    assert usdc.decimals() == 6


def test_constructor_validates(ClaimEscrow, care, consent, records, usdc, admin):
    good = [care, consent, records, usdc, admin]
    for index in range(5):
        args = list(good)
        args[index] = ZERO_ADDRESS
        with reverts_with(ClaimEscrow, "InvalidConfiguration"):
            ClaimEscrow.deploy(*args, {"from": admin})
    with reverts_with(ClaimEscrow, "InvalidConfiguration"):  # a token must be a contract
        ClaimEscrow.deploy(care, consent, records, admin, admin, {"from": admin})


# ---------------------------------------------------------------- insurer funds


def test_deposit_credits_received_amount(desk, escrow, usdc, insurer):
    before = desk.free()
    usdc.mint(insurer, 500 * USD, {"from": insurer})
    usdc.approve(escrow, 500 * USD, {"from": insurer})
    tx = escrow.deposit(500 * USD, {"from": insurer})
    assert desk.free() == before + 500 * USD
    assert tx.events["Deposited"]["insurer"] == insurer
    assert tx.events["Deposited"]["amount"] == 500 * USD
    desk.assert_solvent([insurer], [desk.provider])


def test_deposit_rejects_zero_missing_allowance_and_non_insurers(desk, escrow, usdc, insurer, provider, stranger):
    with reverts_with(ClaimEscrow, "ZeroAmount"):
        escrow.deposit(0, {"from": insurer})
    usdc.mint(insurer, 10, {"from": insurer})
    with reverts_with(MockStablecoin, "ERC20InsufficientAllowance", escrow.address, 0, 10):
        escrow.deposit(10, {"from": insurer})
    for account, role in ((provider, INSURER_ROLE), (stranger, INSURER_ROLE)):
        with brownie.reverts(not_active(account, role)):
            escrow.deposit(1, {"from": account})


def test_withdraw_free_only_unencumbered(desk, escrow, usdc, insurer, provider):
    free = desk.free()
    desk.submit("deny", 300 * USD)
    desk.adjudicate("deny", 0, reasons=[CARC_NOT_COVERED])  # 300 encumbered
    assert desk.free() == free - 300 * USD
    assert desk.encumbered() == 300 * USD
    with reverts_with(ClaimEscrow, "InsufficientEscrow", insurer.address, free, free - 300 * USD):
        escrow.withdrawFree(free, {"from": insurer})
    balance = usdc.balanceOf(insurer)
    tx = escrow.withdrawFree(free - 300 * USD, {"from": insurer})
    assert tx.events["FundsWithdrawn"]["amount"] == free - 300 * USD
    assert usdc.balanceOf(insurer) == balance + free - 300 * USD
    assert desk.free() == 0 and desk.encumbered() == 300 * USD
    with reverts_with(ClaimEscrow, "InsufficientEscrow", insurer.address, 1, 0):
        escrow.withdrawFree(1, {"from": insurer})
    with reverts_with(ClaimEscrow, "ZeroAmount"):
        escrow.withdrawFree(0, {"from": insurer})
    with brownie.reverts(not_active(provider, INSURER_ROLE)):
        escrow.withdrawFree(1, {"from": provider})
    desk.assert_solvent([insurer], [provider])


def test_deposit_with_permit(desk, escrow, usdc, insurer):
    before = desk.free()
    usdc.mint(insurer, 700 * USD, {"from": insurer})
    deadline = chain.time() + 3600
    v, r, s = permit(usdc, insurer, escrow, 700 * USD, deadline)
    tx = escrow.depositWithPermit(700 * USD, deadline, v, r, s, {"from": insurer})
    assert desk.free() == before + 700 * USD
    assert usdc.allowance(insurer, escrow) == 0
    assert tx.events["Deposited"]["amount"] == 700 * USD


def test_deposit_with_front_run_permit(desk, escrow, usdc, insurer, stranger):
    """Someone submits the insurer's permit first: the deposit still goes through on the allowance."""
    before = desk.free()
    usdc.mint(insurer, 700 * USD, {"from": insurer})
    deadline = chain.time() + 3600
    v, r, s = permit(usdc, insurer, escrow, 700 * USD, deadline)
    usdc.permit(insurer, escrow, 700 * USD, deadline, v, r, s, {"from": stranger})
    escrow.depositWithPermit(700 * USD, deadline, v, r, s, {"from": insurer})
    assert desk.free() == before + 700 * USD


def test_deposit_with_bad_permit_fails_cleanly(desk, escrow, usdc, insurer, stranger):
    usdc.mint(insurer, 700 * USD, {"from": insurer})
    deadline = chain.time() + 3600
    v, r, s = permit(usdc, stranger, escrow, 700 * USD, deadline)  # signed by the wrong key
    with reverts_with(ClaimEscrow, "PermitFailed", insurer.address, 700 * USD):
        escrow.depositWithPermit(700 * USD, deadline, v, r, s, {"from": insurer})
    v, r, s = permit(usdc, insurer, escrow, 700 * USD, chain.time() - 1)  # expired
    with reverts_with(ClaimEscrow, "PermitFailed", insurer.address, 700 * USD):
        escrow.depositWithPermit(700 * USD, chain.time() - 1, v, r, s, {"from": insurer})


def test_sdk_permit_typed_data_is_what_the_token_verifies(usdc, escrow, insurer):
    """The SDK's EIP-2612 typed data (medledger.eip712) has the token's own domain separator, and the
    permit it signs is the one the token accepts: the allowance is set and the nonce spent."""
    request = PermitRequest(owner=insurer.address, spender=escrow.address, value=5 * USD,
                            nonce=usdc.nonces(insurer), deadline=chain.time() + 600)
    domain = ConsentDomain(chain_id=chain.id, verifying_contract=usdc.address, name=usdc.name(), version="1")
    typed = permit_typed_data(domain, request)
    assert encode_typed_data(full_message=typed).header == bytes(usdc.DOMAIN_SEPARATOR())
    v, r, s = sign_permit(private_key(insurer), domain, request)
    usdc.permit(insurer, escrow, 5 * USD, request.deadline, v, r, s, {"from": insurer})
    assert usdc.allowance(insurer, escrow) == 5 * USD and usdc.nonces(insurer) == request.nonce + 1
    with pytest.raises(TypedDataError):
        split_signature(b"\x00" * 64)
