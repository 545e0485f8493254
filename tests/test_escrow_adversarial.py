"""ClaimEscrow against hostile tokens and parties: false-returning, re-entering, fee-on-transfer and
gas-burning tokens on every path that moves tokens, and dust claims."""

import brownie
import pytest
from brownie import chain
from conftest import custom_error
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from support.escrow import (
    CARC_MAX_ALLOWABLE,
    CARC_NOT_COVERED,
    DISPUTE_WINDOW,
    PROMPT_PAY,
    TREAT,
    USD,
    Desk,
    Status,
    bit,
    control,
    grant,
    h,
    private_key,
    submission,
    terms,
)

REENTRANT = "0x" + keccak(text="ReentrantCall()")[:4].hex()
EVIDENCE, DECISION = h("evidence"), h("decision")


def make_desk(ClaimEscrow, token, care, consent, records, admin, provider, insurer, patient) -> Desk:
    escrow = ClaimEscrow.deploy(care, consent, records, token, admin, {"from": admin})
    parties = {"provider": provider, "insurer": insurer, "patient": patient}
    return Desk(escrow, token, consent, records, care, parties).setup(funding=100_000 * USD)


@pytest.fixture(scope="module")
def reentrant(ReentrantToken, admin):
    return ReentrantToken.deploy({"from": admin})


@pytest.fixture(scope="module")
def rd(ClaimEscrow, reentrant, care, consent, records, admin, provider, insurer, patient):
    """A desk whose token re-enters the escrow from its transfer hook once armed."""
    return make_desk(ClaimEscrow, reentrant, care, consent, records, admin, provider, insurer, patient)


@pytest.fixture(scope="module")
def false_token(FalseReturnToken, admin):
    return FalseReturnToken.deploy({"from": admin})


@pytest.fixture(scope="module")
def fd(ClaimEscrow, false_token, care, consent, records, admin, provider, insurer, patient):
    """A desk whose token can start returning false instead of reverting."""
    return make_desk(ClaimEscrow, false_token, care, consent, records, admin, provider, insurer, patient)


@pytest.fixture(scope="module")
def fee_token(FeeOnTransferToken, admin):
    return FeeOnTransferToken.deploy(100, {"from": admin})  # 1 %


@pytest.fixture(scope="module")
def feed(ClaimEscrow, fee_token, care, consent, records, admin, provider, insurer, patient):
    """A desk whose token burns 1 % of every transfer."""
    return make_desk(ClaimEscrow, fee_token, care, consent, records, admin, provider, insurer, patient)


def sleep(seconds: int) -> None:
    chain.sleep(seconds)
    chain.mine()


def settle_owed(desk, label: str, amount: int) -> None:
    desk.submit(label, amount)
    desk.adjudicate(label, amount)


# ---------------------------------------------------------------- false-returning token


def test_false_return_deposit_reverts(fd, false_token, insurer):
    free = fd.free()
    false_token.mint(insurer, 10 * USD, {"from": insurer})
    false_token.approve(fd.escrow, 10 * USD, {"from": insurer})
    false_token.setFailing(True, {"from": insurer})
    with brownie.reverts(custom_error("SafeERC20FailedOperation(address)", false_token.address)):
        fd.escrow.deposit(10 * USD, {"from": insurer})
    assert fd.free() == free


def test_false_return_withdrawals_revert_and_keep_balances(fd, false_token, provider, insurer):
    settle_owed(fd, "f", 50 * USD)
    free = fd.free()
    false_token.setFailing(True, {"from": insurer})
    failed = custom_error("SafeERC20FailedOperation(address)", false_token.address)
    with brownie.reverts(failed):
        fd.escrow.withdraw(10 * USD, {"from": provider})
    with brownie.reverts(failed):
        fd.escrow.withdrawAll({"from": provider})
    with brownie.reverts(failed):
        fd.escrow.withdrawFree(10 * USD, {"from": insurer})
    assert fd.owed() == 50 * USD and fd.paid_out() == 0 and fd.free() == free
    false_token.setFailing(False, {"from": insurer})
    fd.escrow.withdrawAll({"from": provider})
    assert false_token.balanceOf(provider) == 50 * USD
    fd.assert_solvent([insurer], [provider])


def test_false_return_push_keeps_amount_owed(fd, false_token, provider, insurer, arbiter, stranger):
    fd.escrow.setPushPayments(True, {"from": provider})
    for label in ("a", "b", "c"):
        fd.submit(label, 100 * USD)
    fd.adjudicate("b", 40 * USD, reasons=[CARC_MAX_ALLOWABLE])
    fd.escrow.dispute(control("b"), EVIDENCE, {"from": provider})
    false_token.setFailing(True, {"from": insurer})
    tx = fd.adjudicate("a", 100 * USD)  # the approval itself goes through
    assert tx.events["PushFailed"]["amount"] == 100 * USD and "PaymentPushed" not in tx.events
    tx = fd.escrow.resolveDispute(provider, control("b"), 60 * USD, DECISION, {"from": arbiter})
    assert tx.events["PushFailed"]["amount"] == 60 * USD
    sleep(PROMPT_PAY + 1)
    tx = fd.escrow.finalizeDeemed(provider, control("c"), {"from": stranger})
    assert tx.events["PushFailed"]["amount"] == 100 * USD
    assert fd.owed() == 260 * USD and fd.paid_out() == 40 * USD
    assert false_token.balanceOf(provider) == 40 * USD
    fd.assert_solvent([insurer], [provider])


# ---------------------------------------------------------------- re-entering token


def reentry_calls(desk, provider):
    """Calldata for every guarded escrow entry point, aimed at live claims where that matters."""
    e = desk.escrow
    rec = (h("r"), h("c"))
    return {
        "withdraw": e.withdraw.encode_input(1),
        "withdrawAll": e.withdrawAll.encode_input(),
        "withdrawTo": e.withdrawTo.encode_input(desk.patient),
        "withdrawFree": e.withdrawFree.encode_input(1),
        "deposit": e.deposit.encode_input(1),
        "depositWithPermit": e.depositWithPermit.encode_input(1, 0, 0, h("r"), h("s")),
        "submitClaim": e.submitClaim.encode_input(submission(control("re"), desk.patient, desk.insurer, 1, [rec])),
        "adjudicate": e.adjudicate.encode_input(provider, control("x"), 0, 1, (0, 0, 0), []),
        "finalizeDeemed": e.finalizeDeemed.encode_input(provider, control("x")),
        "dispute": e.dispute.encode_input(control("x"), EVIDENCE),
        "resolveDispute": e.resolveDispute.encode_input(provider, control("x"), 0, DECISION),
        "release": e.release.encode_input(provider, control("x")),
        "setPushPayments": e.setPushPayments.encode_input(True),
        "setTerms": e.setTerms.encode_input(terms()),
    }


def _permit(token, owner, spender, value, deadline):
    data = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                       {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                       {"name": "deadline", "type": "uint256"}],
        },
        "primaryType": "Permit",
        "domain": {"name": token.name(), "version": "1", "chainId": chain.id, "verifyingContract": token.address},
        "message": {"owner": owner.address, "spender": spender.address, "value": value,
                    "nonce": token.nonces(owner), "deadline": deadline},
    }
    signed = Account.sign_message(encode_typed_data(full_message=data), private_key(owner))
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def _prepare(path: str, desk, token, provider, insurer, arbiter, stranger):
    """Sets the scene for `path` (unarmed) and returns the action that moves tokens."""
    e = desk.escrow
    if path == "deposit":
        token.mint(insurer, 10 * USD, {"from": insurer})
        token.approve(e, 10 * USD, {"from": insurer})
        return lambda: e.deposit(10 * USD, {"from": insurer})
    if path == "depositWithPermit":
        token.mint(insurer, 10 * USD, {"from": insurer})
        deadline = chain.time() + 3600
        v, r, s = _permit(token, insurer, e, 10 * USD, deadline)
        return lambda: e.depositWithPermit(10 * USD, deadline, v, r, s, {"from": insurer})
    if path == "withdrawFree":
        return lambda: e.withdrawFree(10 * USD, {"from": insurer})
    if path in ("withdraw", "withdrawAll", "withdrawTo"):
        settle_owed(desk, "w", 10 * USD)
        if path == "withdraw":
            return lambda: e.withdraw(10 * USD, {"from": provider})
        if path == "withdrawTo":
            return lambda: e.withdrawTo(stranger, {"from": provider})
        return lambda: e.withdrawAll({"from": provider})
    e.setPushPayments(True, {"from": provider})
    if path == "push:adjudicate":
        desk.submit("p", 10 * USD)
        return lambda: desk.adjudicate("p", 10 * USD)
    if path == "push:autoSubmit":
        e.setTerms(terms(auto_max=100 * USD, auto_classes=0x7FF, service_max=1000), {"from": insurer})
        rec = desk.record("auto")
        return lambda: desk.submit("p", 10 * USD, [rec])
    if path == "push:resolveDispute":
        desk.submit("p", 20 * USD)
        desk.adjudicate("p", 0, reasons=[CARC_NOT_COVERED])
        e.dispute(control("p"), EVIDENCE, {"from": provider})
        return lambda: e.resolveDispute(provider, control("p"), 10 * USD, DECISION, {"from": arbiter})
    if path == "push:finalizeDeemed":
        desk.submit("p", 10 * USD)
        sleep(PROMPT_PAY + 1)
        return lambda: e.finalizeDeemed(provider, control("p"), {"from": stranger})
    raise AssertionError(path)


TOKEN_PATHS = ["deposit", "depositWithPermit", "withdrawFree", "withdraw", "withdrawAll", "withdrawTo",
               "push:adjudicate", "push:autoSubmit", "push:resolveDispute", "push:finalizeDeemed"]


def _check_accounting(path, desk, before, insurer, provider, tx):
    owed, free, paid = before
    if path.startswith("push"):
        assert "PaymentPushed" in tx.events
        assert desk.owed() == owed and desk.paid_out() == paid + 10 * USD
    elif path.startswith("deposit"):
        assert desk.free() == free + 10 * USD
    elif path == "withdrawFree":
        assert desk.free() == free - 10 * USD
    else:
        assert desk.owed() == owed - 10 * USD and desk.paid_out() == paid + 10 * USD
    desk.assert_solvent([insurer], [provider])


def _hook_results(tx) -> list[tuple[int, bool, str]]:
    return [(e["index"], e["success"], e["returnData"]) for e in tx.events["HookCall"]]


@pytest.mark.parametrize("path", [p for p in TOKEN_PATHS if not p.startswith("push")])
def test_reentry_is_blocked_on_every_transfer_path(path, rd, reentrant, provider, insurer, arbiter, stranger):
    """While the escrow moves tokens, the token calls back into every guarded entry point: each
    re-entrant call fails with ReentrantCall and the outer operation completes with exact accounting."""
    calls = reentry_calls(rd, provider)
    action = _prepare(path, rd, reentrant, provider, insurer, arbiter, stranger)
    before = (rd.owed(), rd.free(), rd.paid_out())
    reentrant.arm(rd.escrow, list(calls.values()), False, {"from": stranger})
    tx = action()
    assert _hook_results(tx) == [(i, False, REENTRANT) for i in range(len(calls))]
    _check_accounting(path, rd, before, insurer, provider, tx)


@pytest.mark.parametrize("path", [p for p in TOKEN_PATHS if p.startswith("push")])
def test_reentry_is_blocked_on_every_push_path(path, rd, reentrant, provider, insurer, arbiter, stranger):
    """The same for same-transaction payments, one re-entry target per push (the hook must fit in
    the push's gas stipend): every attempt fails with ReentrantCall and the push still lands."""
    calls = reentry_calls(rd, provider)
    action = _prepare(path, rd, reentrant, provider, insurer, arbiter, stranger)
    before = (rd.owed(), rd.free(), rd.paid_out())
    for name, data in calls.items():
        reentrant.arm(rd.escrow, [data], False, {"from": stranger})
        tx = action()
        assert _hook_results(tx) == [(0, False, REENTRANT)], name
        _check_accounting(path, rd, before, insurer, provider, tx)
        chain.undo(2)  # back to the prepared scene for the next target


def test_bubbling_reentry_reverts_a_withdrawal_without_effect(rd, reentrant, provider, insurer, stranger):
    settle_owed(rd, "w", 10 * USD)
    reentrant.arm(rd.escrow, [rd.escrow.withdrawAll.encode_input()], True, {"from": stranger})
    with brownie.reverts(custom_error("ReentrantCall()")):
        rd.escrow.withdrawAll({"from": provider})
    assert rd.owed() == 10 * USD and reentrant.balanceOf(provider) == 0
    rd.assert_solvent([insurer], [provider])


def test_reverting_payee_cannot_block_an_approval(rd, reentrant, provider, insurer, stranger):
    """A push whose transfer reverts (e.g. a blacklisted payee) leaves the amount owed."""
    rd.escrow.setPushPayments(True, {"from": provider})
    rd.submit("p", 10 * USD)
    reentrant.arm(rd.escrow, [rd.escrow.withdrawAll.encode_input()], True, {"from": stranger})
    tx = rd.adjudicate("p", 10 * USD)
    assert tx.events["PushFailed"]["amount"] == 10 * USD
    assert rd.owed() == 10 * USD and rd.paid_out() == 0 and rd.status("p") == Status.SETTLED
    rd.assert_solvent([insurer], [provider])


def test_gas_burning_hook_cannot_block_an_approval(rd, reentrant, provider, insurer, stranger):
    """A hook that burns all gas it gets only costs the capped push stipend; the approval stands."""
    rd.escrow.setPushPayments(True, {"from": provider})
    rd.submit("p", 10 * USD)
    reentrant.arm(reentrant, [reentrant.spin.encode_input()], False, {"from": stranger})
    tx = rd.adjudicate("p", 10 * USD)
    assert tx.events["PushFailed"]["amount"] == 10 * USD
    assert rd.owed() == 10 * USD
    assert tx.gas_used < 60_000 + rd.escrow.PUSH_GAS() + 20_000
    rd.assert_solvent([insurer], [provider])


# ---------------------------------------------------------------- fee-on-transfer token


def test_fee_on_transfer_credits_only_what_arrives(feed, fee_token, insurer, provider):
    free = feed.free()
    assert fee_token.balanceOf(feed.escrow) == free  # setup deposit of 100,000 credited 99,000
    assert free == 99_000 * USD
    fee_token.mint(insurer, 1_000 * USD, {"from": insurer})
    fee_token.approve(feed.escrow, 1_000 * USD, {"from": insurer})
    tx = feed.escrow.deposit(1_000 * USD, {"from": insurer})
    assert tx.events["Deposited"]["amount"] == 990 * USD
    assert feed.free() == free + 990 * USD
    feed.assert_solvent([insurer], [provider])


def test_fee_on_transfer_payouts_stay_solvent(feed, fee_token, insurer, provider):
    settle_owed(feed, "a", 100 * USD)
    feed.escrow.withdrawAll({"from": provider})
    assert fee_token.balanceOf(provider) == 99 * USD  # the payee bears the token's fee
    feed.escrow.setPushPayments(True, {"from": provider})
    settle_owed(feed, "b", 100 * USD)
    assert fee_token.balanceOf(provider) == 198 * USD
    feed.escrow.withdrawFree(feed.free(), {"from": insurer})
    assert feed.free() == 0 and fee_token.balanceOf(feed.escrow) == 0
    feed.assert_solvent([insurer], [provider])


# ---------------------------------------------------------------- dust claims


def test_dust_claims_cannot_block_others(desk_factory, provider, provider2, insurer, patient, stranger):
    desk = desk_factory()
    grant(desk.consent, patient, provider2, bit(TREAT), 0x7FF)
    # Baseline (after a warm-up credit): an honest claim's submit and approval cost.
    desk.submit("warm-up", 1)
    desk.adjudicate("warm-up", 1)
    base_submit = desk.submit("honest-0", 50 * USD).gas_used
    base_approve = desk.adjudicate("honest-0", 50 * USD).gas_used
    # A provider floods the insurer with one-unit claims.
    dust = [f"dust-{i}" for i in range(25)]
    for label in dust:
        desk.submit(label, 1, [desk.record(label, provider=provider2)], provider=provider2)
    # The honest provider is unaffected: same costs, same outcome.
    submit = desk.submit("honest-1", 50 * USD).gas_used
    approve = desk.adjudicate("honest-1", 50 * USD).gas_used
    assert abs(submit - base_submit) <= 400  # only calldata zero-byte counts differ
    assert abs(approve - base_approve) <= 400
    assert desk.owed() == 100 * USD + 1
    # Dust can be denied one by one (encumbering one unit each) or simply left to be deemed: at
    # worst the insurer pays what was billed, one unit per claim.
    desk.adjudicate(dust[0], 0, reasons=[CARC_NOT_COVERED], provider=provider2)
    assert desk.encumbered() == 1
    sleep(PROMPT_PAY + 1)
    for label in dust[1:]:
        desk.escrow.finalizeDeemed(provider2, control(label), {"from": stranger})
    assert desk.owed(provider2) == len(dust) - 1
    sleep(DISPUTE_WINDOW)
    desk.escrow.release(provider2, control(dust[0]), {"from": stranger})
    desk.assert_solvent([insurer], [provider, provider2])


@pytest.fixture(scope="module")
def desk_factory(escrow, usdc, consent, records, care, provider, insurer, patient):
    def factory():
        parties = {"provider": provider, "insurer": insurer, "patient": patient}
        return Desk(escrow, usdc, consent, records, care, parties).setup()

    return factory
