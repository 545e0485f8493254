"""Suspended providers, insurers and arbiters swept across all four contracts: blocked everywhere,
while the money they owe or are owed stays safe.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import brownie
from brownie import ClaimEscrow
from support.errors import error_message, reverts_with
from support.escrow import DECISION, EVIDENCE, PROMPT_PAY, USD, control, h, sleep, submission, terms
from support.records import leaf_args, rid
from support.vocabulary import BILLING, HPAYMT, INSURER_ROLE, NOTES, PROVIDER_ROLE, TREAT, bit
from support.world import (
    DOC,
    MANIFEST,
    REASON,
    governor_role,
    not_active,
    not_provider,
    not_provider_or_insurer,
    unauthorized,
)


def blocked(calls: list[tuple[Callable[[], Any], str]]) -> None:
    for call, error in calls:
        with brownie.reverts(error):
            call()


def test_suspended_provider_is_blocked_everywhere_and_money_stays_safe(world):
    w = world
    p, d = w.provider, w.desk
    w.escrow.setPushPayments(True, {"from": p})
    escrow_balance, provider_balance, owed = w.usdc.balanceOf(w.escrow), w.usdc.balanceOf(p), d.owed()
    w.care.suspend(p, REASON, {"from": w.registrar})

    assert not w.consent.hasConsent(w.patient, p, TREAT, NOTES)
    leaf, proof, batch = w.batch_leaf, w.batch_proof, w.batch_id
    new = submission(control("sp:new"), w.patient, w.insurer, 10 * USD, [w.r2])
    blocked([
        (lambda: w.care.reinstate(p, {"from": p}), unauthorized(governor_role)(w, "", p)),
        (lambda: w.consent.openBreakGlass(w.patient, 3600, REASON, {"from": p}), not_provider(w, "", p)),
        (lambda: w.records.anchor(rid("sp:r", w.patient), h("sp:r:v1"), NOTES, {"from": p}), not_provider(w, "", p)),
        (lambda: w.records.amend(w.r1.record_id, w.r1.content_hash, h("sp:v2"), {"from": p}),
         not_provider(w, "", p)),
        (lambda: w.records.anchorBatch(h("sp:root"), 1, MANIFEST, {"from": p}), not_provider(w, "", p)),
        (lambda: w.records.logAccess(w.patient, w.r1.record_id, TREAT, {"from": p}),
         not_provider_or_insurer(w, "", p)),
        (lambda: w.records.logAccessBatch(h("sp:log"), 1, {"from": p}), not_provider_or_insurer(w, "", p)),
        (lambda: w.records.attestBatchRecord(*leaf_args(leaf), proof, batch, {"from": w.patient}),
         not_provider(w, "", p)),
        (lambda: w.escrow.submitClaim(new, {"from": p}), not_active(PROVIDER_ROLE)(w, "", p)),
        (lambda: w.escrow.setPushPayments(False, {"from": p}), not_active(PROVIDER_ROLE)(w, "", p)),
        (lambda: w.escrow.withdraw(1, {"from": p}), not_active(PROVIDER_ROLE)(w, "", p)),
        (lambda: w.escrow.withdrawAll({"from": p}), not_active(PROVIDER_ROLE)(w, "", p)),
        (lambda: w.escrow.withdrawTo(w.stranger, {"from": p}), not_active(PROVIDER_ROLE)(w, "", p)),
    ])
    # Issue 13: a dispute moves no money, so it stays open to a suspended provider (the window keeps running).
    w.escrow.dispute(control("contestable"), EVIDENCE, {"from": p})
    # Money owed to it is frozen, not lost: approvals and awards are still credited, never pushed.
    tx = d.adjudicate("open", 100 * USD)
    assert tx.events["PushFailed"]["amount"] == 100 * USD and "PaymentPushed" not in tx.events
    tx = w.escrow.resolveDispute(p, control("disputed"), 25 * USD, DECISION, {"from": w.arbiter})
    assert tx.events["PushFailed"]["amount"] == 25 * USD
    assert d.owed() == owed + 125 * USD
    assert w.usdc.balanceOf(w.escrow) == escrow_balance and w.usdc.balanceOf(p) == provider_balance
    sleep(PROMPT_PAY + 1)
    with brownie.reverts(not_active(PROVIDER_ROLE)(w, "", p)):
        w.escrow.finalizeDeemed(p, control("deemed"), {"from": w.stranger})
    w.assert_solvent()

    w.care.reinstate(p, {"from": w.admin})
    assert w.consent.hasConsent(w.patient, p, TREAT, NOTES)
    w.escrow.finalizeDeemed(p, control("deemed"), {"from": w.stranger})  # pushed now: p is active again
    w.escrow.withdrawAll({"from": p})
    assert w.usdc.balanceOf(p) == provider_balance + owed + 125 * USD + 10 * USD and d.owed() == 0
    w.records.anchor(rid("sp:r", w.patient), h("sp:r:v1"), NOTES, {"from": p})
    w.records.attestBatchRecord(*leaf_args(leaf), proof, batch, {"from": w.patient})
    w.consent.openBreakGlass(w.patient, 3600, REASON, {"from": p})
    w.assert_solvent()


def test_suspended_insurer_is_blocked_everywhere_but_cannot_escape_its_claims(world):
    w = world
    i, d = w.insurer, w.desk
    free, encumbered = w.escrow.insurerAccountOf(i)
    insurer_balance = w.usdc.balanceOf(i)
    w.care.suspend(i, REASON, {"from": w.registrar})

    assert not w.consent.hasConsent(w.patient, i, HPAYMT, BILLING)
    new = submission(control("si:new"), w.patient, i, 10 * USD, [w.r2])
    refused = not_active(INSURER_ROLE)(w, "", i)
    blocked([
        (lambda: w.escrow.setTerms(terms(), {"from": i}), refused),
        (lambda: w.escrow.setCoverage(w.patient2, h("p"), 0, 2**40 - 1, 0, 0, 0, 0, {"from": i}), refused),
        (lambda: w.escrow.endCoverage(w.patient, {"from": i}), refused),
        (lambda: w.escrow.deposit(USD, {"from": i}), refused),
        (lambda: w.escrow.depositWithPermit(USD, 0, 27, h("r"), h("s"), {"from": i}), refused),
        (lambda: w.escrow.withdrawFree(USD, {"from": i}), refused),
        (lambda: d.adjudicate("open", 100 * USD), refused),
        (lambda: w.records.logAccess(w.patient, w.r1.record_id, HPAYMT, {"from": i}),
         not_provider_or_insurer(w, "", i)),
        (lambda: w.records.logAccessBatch(h("si:log"), 1, {"from": i}), not_provider_or_insurer(w, "", i)),
        (lambda: w.escrow.submitClaim(new, {"from": w.provider}),  # nobody can bill a suspended payer
         error_message(ClaimEscrow, "MissingConsent", w.patient.address, i.address, HPAYMT,
                      BILLING)),
    ])
    # Its obligations still run: owed money leaves, the arbiter rules, deemed approvals pay out.
    w.escrow.withdrawAll({"from": w.provider})
    w.escrow.resolveDispute(w.provider, control("disputed"), 10 * USD, DECISION, {"from": w.arbiter})
    sleep(PROMPT_PAY + 1)
    w.escrow.finalizeDeemed(w.provider, control("open"), {"from": w.stranger})
    w.escrow.finalizeDeemed(w.provider, control("deemed"), {"from": w.stranger})
    assert d.owed() == 10 * USD + 100 * USD + 10 * USD
    assert w.escrow.insurerAccountOf(i) == (free + 50 * USD - 110 * USD, encumbered - 60 * USD)
    assert w.usdc.balanceOf(i) == insurer_balance
    w.assert_solvent()

    w.care.reinstate(i, {"from": w.admin})
    remaining = w.escrow.insurerAccountOf(i)[0]
    w.escrow.withdrawFree(remaining, {"from": i})
    assert w.usdc.balanceOf(i) == insurer_balance + remaining
    w.escrow.setTerms(terms(), {"from": i})
    w.assert_solvent()


def test_suspended_arbiter_is_blocked_everywhere_and_the_dispute_waits(world):
    w = world
    a = w.arbiter
    w.consent.grant(w.patient, a, bit(HPAYMT), bit(BILLING), 0, 0, DOC, {"from": w.patient})
    free, encumbered = w.escrow.insurerAccountOf(w.insurer)
    owed, escrow_balance = w.desk.owed(), w.usdc.balanceOf(w.escrow)
    w.care.suspend(a, REASON, {"from": w.registrar})

    assert not w.consent.hasConsent(w.patient, a, HPAYMT, BILLING)
    blocked([
        (lambda: w.escrow.resolveDispute(w.provider, control("disputed"), 0, DECISION, {"from": a}),
         error_message(ClaimEscrow, "NotAssignedArbiter", a.address, w.insurer.address)),
        (lambda: w.consent.openBreakGlass(w.patient, 3600, REASON, {"from": a}), not_provider(w, "", a)),
        (lambda: w.records.logAccess(w.patient, w.r1.record_id, HPAYMT, {"from": a}),
         not_provider_or_insurer(w, "", a)),
        (lambda: w.care.reinstate(a, {"from": a}), unauthorized(governor_role)(w, "", a)),
    ])
    # The contested 60 stays encumbered: the insurer cannot take it back, the provider is not paid it.
    with reverts_with(ClaimEscrow, "InsufficientEscrow", w.insurer.address, free + 1, free):
        w.escrow.withdrawFree(free + 1, {"from": w.insurer})
    assert w.escrow.insurerAccountOf(w.insurer) == (free, encumbered)
    assert w.desk.owed() == owed and w.usdc.balanceOf(w.escrow) == escrow_balance

    w.care.reinstate(a, {"from": w.admin})
    assert w.consent.hasConsent(w.patient, a, HPAYMT, BILLING)
    w.escrow.resolveDispute(w.provider, control("disputed"), 60 * USD, DECISION, {"from": a})
    assert w.desk.owed() == owed + 60 * USD
    assert w.escrow.insurerAccountOf(w.insurer) == (free, encumbered - 60 * USD)
    w.assert_solvent()
