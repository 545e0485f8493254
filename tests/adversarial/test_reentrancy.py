"""ClaimEscrow against a token that re-enters it from its transfer hook: every re-entrant call fails with
ReentrantCall on every path that moves tokens, reverting or gas-burning payees cannot block an approval,
and views read mid-transfer already show the effects.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from brownie import ClaimEscrow, chain
from eth_abi import decode
from support.errors import error_selector, reverts_with
from support.escrow import (
    CARC_NOT_COVERED,
    DECISION,
    EVIDENCE,
    PROMPT_PAY,
    USD,
    Desk,
    auto_terms,
    control,
    h,
    permit,
    settle_owed,
    sleep,
    submission,
    terms,
)
from support.hostile_token import hostile_token_fixtures
from support.vocabulary import ClaimStatus

REENTRANT = error_selector(ClaimEscrow, "ReentrantCall")


reentrant_token, reentrant_desk, reentrant_desk_of_patient2 = hostile_token_fixtures(
    "ReentrantToken", token="reentrant_token", desk="reentrant_desk",
    behaviour="re-enters the escrow from its transfer hook once armed",
)


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
        v, r, s = permit(token, insurer, e, 10 * USD, deadline)
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
        e.setTerms(terms(auto_max=100 * USD, service_max=1000), {"from": insurer})
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
def test_reentry_is_blocked_on_every_transfer_path(path, reentrant_desk, reentrant_token, provider, insurer, arbiter,
                                                   stranger):
    """While the escrow moves tokens, the token calls back into every guarded entry point: each
    re-entrant call fails with ReentrantCall and the outer operation completes with exact accounting."""
    calls = reentry_calls(reentrant_desk, provider)
    action = _prepare(path, reentrant_desk, reentrant_token, provider, insurer, arbiter, stranger)
    before = (reentrant_desk.owed(), reentrant_desk.free(), reentrant_desk.paid_out())
    reentrant_token.arm(reentrant_desk.escrow, list(calls.values()), False, {"from": stranger})
    tx = action()
    assert _hook_results(tx) == [(i, False, REENTRANT) for i in range(len(calls))]
    _check_accounting(path, reentrant_desk, before, insurer, provider, tx)


@pytest.mark.parametrize("path", [p for p in TOKEN_PATHS if p.startswith("push")])
def test_reentry_is_blocked_on_every_push_path(path, reentrant_desk, reentrant_token, provider, insurer, arbiter,
                                               stranger):
    """The same for same-transaction payments, one re-entry target per push (the hook must fit in
    the push's gas stipend): every attempt fails with ReentrantCall and the push still lands."""
    calls = reentry_calls(reentrant_desk, provider)
    action = _prepare(path, reentrant_desk, reentrant_token, provider, insurer, arbiter, stranger)
    before = (reentrant_desk.owed(), reentrant_desk.free(), reentrant_desk.paid_out())
    for name, data in calls.items():
        reentrant_token.arm(reentrant_desk.escrow, [data], False, {"from": stranger})
        tx = action()
        assert _hook_results(tx) == [(0, False, REENTRANT)], name
        _check_accounting(path, reentrant_desk, before, insurer, provider, tx)
        chain.undo(2)  # back to the prepared scene for the next target


def test_bubbling_reentry_reverts_a_withdrawal_without_effect(reentrant_desk, reentrant_token, provider, insurer,
                                                              stranger):
    settle_owed(reentrant_desk, "w", 10 * USD)
    reentrant_token.arm(reentrant_desk.escrow,
                        [reentrant_desk.escrow.withdrawAll.encode_input()], True, {"from": stranger})
    with reverts_with(ClaimEscrow, "ReentrantCall"):
        reentrant_desk.escrow.withdrawAll({"from": provider})
    assert reentrant_desk.owed() == 10 * USD and reentrant_token.balanceOf(provider) == 0
    reentrant_desk.assert_solvent([insurer], [provider])


def test_reverting_payee_cannot_block_an_approval(reentrant_desk, reentrant_token, provider, insurer, stranger):
    """A push whose transfer reverts (e.g. a blacklisted payee) leaves the amount owed."""
    reentrant_desk.escrow.setPushPayments(True, {"from": provider})
    reentrant_desk.submit("p", 10 * USD)
    reentrant_token.arm(reentrant_desk.escrow,
                        [reentrant_desk.escrow.withdrawAll.encode_input()], True, {"from": stranger})
    tx = reentrant_desk.adjudicate("p", 10 * USD)
    assert tx.events["PushFailed"]["amount"] == 10 * USD
    assert reentrant_desk.owed() == 10 * USD and reentrant_desk.paid_out() == 0
    assert reentrant_desk.status("p") == ClaimStatus.SETTLED
    reentrant_desk.assert_solvent([insurer], [provider])


def test_gas_burning_hook_cannot_block_an_approval(reentrant_desk, reentrant_token, provider, insurer, stranger):
    """A hook that burns all gas it gets only costs the capped push stipend; the approval stands."""
    reentrant_desk.escrow.setPushPayments(True, {"from": provider})
    reentrant_desk.submit("p", 10 * USD)
    reentrant_token.arm(reentrant_token, [reentrant_token.spin.encode_input()], False, {"from": stranger})
    tx = reentrant_desk.adjudicate("p", 10 * USD)
    assert tx.events["PushFailed"]["amount"] == 10 * USD
    assert reentrant_desk.owed() == 10 * USD
    assert tx.gas_used < 60_000 + reentrant_desk.escrow.PUSH_GAS() + 20_000
    reentrant_desk.assert_solvent([insurer], [provider])


REENTRY_PATHS = ["deposit", "depositWithPermit", "withdrawFree", "withdraw", "withdrawAll", "push:adjudicate",
                 "push:autoSubmit", "push:resolveDispute", "push:finalizeDeemed"]


def _reentry_scene(d: Desk, path: str, arbiter, stranger) -> tuple[Callable[[], Any], bytes | None]:
    """Sets the scene for `path` and returns the action that moves tokens, and the claim it pays (if any)."""
    e, token = d.escrow, d.token
    if path in ("deposit", "depositWithPermit"):
        token.mint(d.insurer, 10 * USD, {"from": d.insurer})
        if path == "deposit":
            token.approve(e, 10 * USD, {"from": d.insurer})
            return lambda: e.deposit(10 * USD, {"from": d.insurer}), None
        deadline = chain.time() + 3600
        v, r, s = permit(token, d.insurer, e, 10 * USD, deadline)
        return lambda: e.depositWithPermit(10 * USD, deadline, v, r, s, {"from": d.insurer}), None
    if path == "withdrawFree":
        return lambda: e.withdrawFree(10 * USD, {"from": d.insurer}), None
    if path in ("withdraw", "withdrawAll"):
        d.submit("w", 10 * USD)
        d.adjudicate("w", 10 * USD)
        if path == "withdraw":
            return lambda: e.withdraw(10 * USD, {"from": d.provider}), None
        return lambda: e.withdrawAll({"from": d.provider}), None
    e.setPushPayments(True, {"from": d.provider})
    if path == "push:adjudicate":
        d.submit("p", 10 * USD)
        return lambda: d.adjudicate("p", 10 * USD), d.cid("p")
    if path == "push:autoSubmit":
        e.setTerms(auto_terms(), {"from": d.insurer})
        record = d.record("reentry-auto")
        return lambda: d.submit("p", 10 * USD, [record]), d.cid("p")
    if path == "push:resolveDispute":
        d.submit("p", 20 * USD)
        d.adjudicate("p", 0, reasons=[CARC_NOT_COVERED])
        e.dispute(control("p"), EVIDENCE, {"from": d.provider})
        return lambda: e.resolveDispute(d.provider, control("p"), 10 * USD, DECISION, {"from": arbiter}), d.cid("p")
    d.submit("p", 10 * USD)
    sleep(PROMPT_PAY + 1)
    return lambda: e.finalizeDeemed(d.provider, control("p"), {"from": stranger}), d.cid("p")


@pytest.mark.parametrize("path", REENTRY_PATHS)
def test_views_read_mid_transfer_already_show_the_effects(reentrant_desk_of_patient2, arbiter, stranger, path):
    """Read-only re-entrancy: while the escrow's token transfer runs, the token's hook reads the
    escrow's views. For every outgoing payment they already show the final books (effects are
    written before the transfer), so no integrator can be shown money that is about to leave. A
    deposit is the one documented exception: its credit is the balance delta, written after the pull
    under the lock, so mid-transfer the views show the books before the deposit - never more."""
    d = reentrant_desk_of_patient2
    e = d.escrow
    action, cid = _reentry_scene(d, path, arbiter, stranger)
    views = [e.insurerAccountOf.encode_input(d.insurer), e.providerAccountOf.encode_input(d.provider)]
    if cid is not None:
        views.append(e.claimOf.encode_input(cid))
    before = (tuple(e.insurerAccountOf(d.insurer)), tuple(e.providerAccountOf(d.provider)))
    d.token.arm(e, views, False, {"from": stranger})
    tx = action()
    seen = list(tx.events["HookCall"])
    assert len(seen) == len(views) and all(event["success"] for event in seen)
    mid_insurer = decode(["uint128", "uint128"], bytes(seen[0]["returnData"]))
    mid_provider = decode(["uint128", "uint120", "bool"], bytes(seen[1]["returnData"]))
    after = (tuple(e.insurerAccountOf(d.insurer)), tuple(e.providerAccountOf(d.provider)))
    if path.startswith("deposit"):
        assert (mid_insurer, mid_provider) == before
        assert after[0][0] == before[0][0] + 10 * USD
    else:
        assert (mid_insurer, mid_provider) == after
        assert after != before
    if cid is not None:
        mid_claim = decode(["uint40", "uint96", "uint8", "uint40", "uint16", "uint32"],
                           bytes(seen[2]["returnData"]))
        assert mid_claim == tuple(e.claimOf(cid)) and mid_claim[2] == ClaimStatus.SETTLED
        assert "PaymentPushed" in tx.events
    d.assert_solvent([d.insurer], [d.provider])
