"""Dust claims: a provider flooding an insurer with one-unit claims cannot block others or raise their costs.
"""
from __future__ import annotations

import pytest
from support.escrow import CARC_NOT_COVERED, DISPUTE_WINDOW, PROMPT_PAY, USD, Desk, control, grant, sleep
from support.vocabulary import ALL_CLASSES, TREAT, bit


def test_dust_claims_cannot_block_others(desk_factory, provider, provider2, insurer, patient, stranger):
    desk = desk_factory()
    grant(desk.consent, patient, provider2, bit(TREAT), ALL_CLASSES)
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
