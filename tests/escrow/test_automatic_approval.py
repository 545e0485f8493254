"""ClaimEscrow automatic approval under the insurer's rules, and push payments."""

from support.escrow import AUTOMATIC, USD, auto_terms, enrol, grant, h, terms
from support.vocabulary import ALL_CLASSES, HPAYMT, IMAGING, LABS, NOTES, REPLACEMENT, TREAT, ClaimStatus, bit


def test_auto_approval_rules(desk, escrow, usdc, insurer, provider, provider2, consent, patient):
    escrow.setTerms(terms(auto_max=100 * USD, service_min=10, service_max=20), {"from": insurer})
    enrol(escrow, insurer, patient, auto_classes=bit(NOTES, LABS))  # the coverage's classes (interface 3)
    free = desk.free()
    tx = desk.submit("auto", 100 * USD, [desk.record("a1")], service=10)
    assert tx.events["ClaimAdjudicated"]["kind"] == AUTOMATIC
    assert desk.status("auto") == ClaimStatus.SETTLED and desk.owed() == 100 * USD
    assert desk.free() == free - 100 * USD
    # Each rule keeps a claim out of automation.
    misses = {
        "too-much": dict(billed=100 * USD + 1, service=10, data_class=NOTES),
        "service-low": dict(billed=1, service=9, data_class=NOTES),
        "service-high": dict(billed=1, service=21, data_class=NOTES),
        "class": dict(billed=1, service=15, data_class=IMAGING),
    }
    for label, case in misses.items():
        rec = desk.record(label, data_class=case["data_class"])
        tx = desk.submit(label, case["billed"], [rec], service=case["service"])
        assert "ClaimAdjudicated" not in tx.events
        assert desk.status(label) == ClaimStatus.SUBMITTED
    # Not authored by the submitting provider.
    grant(consent, patient, provider2, bit(TREAT), ALL_CLASSES)
    tx = desk.submit("foreign", 5 * USD, [desk.record("foreign-rec")], service=12, provider=provider2)
    assert "ClaimAdjudicated" not in tx.events


def test_auto_approval_respects_funds_and_limits(desk, escrow, insurer, patient):
    escrow.setTerms(auto_terms(), {"from": insurer})
    escrow.setCoverage(patient, h("lim"), 0, 2**40 - 1, 50 * USD, 0, 0, ALL_CLASSES, {"from": insurer})
    tx = desk.submit("over-limit", 60 * USD)
    assert "ClaimAdjudicated" not in tx.events
    escrow.withdrawFree(desk.free() - 20 * USD, {"from": insurer})
    tx = desk.submit("underfunded", 30 * USD)
    assert "ClaimAdjudicated" not in tx.events and desk.status("underfunded") == ClaimStatus.SUBMITTED
    tx = desk.submit("fits", 20 * USD)
    assert tx.events["ClaimAdjudicated"]["approved"] == 20 * USD and desk.free() == 0


def test_auto_approval_of_a_replacement(desk, escrow, insurer):
    desk.submit("rep", 500 * USD)
    escrow.setTerms(auto_terms(), {"from": insurer})
    tx = desk.submit("rep", 90 * USD, frequency=REPLACEMENT)
    assert tx.events["ClaimAdjudicated"]["approved"] == 90 * USD
    assert desk.claim("rep")[1:] == (0, ClaimStatus.SETTLED, 0, 1, 0)


def test_push_payment(desk, escrow, usdc, provider, insurer):
    tx = escrow.setPushPayments(True, {"from": provider})
    assert tx.events["PushPaymentsSet"]["enabled"]
    balance = usdc.balanceOf(provider)
    desk.submit("push", 40 * USD)
    tx = desk.adjudicate("push", 40 * USD)
    assert tx.events["PaymentPushed"]["amount"] == 40 * USD
    assert usdc.balanceOf(provider) == balance + 40 * USD
    assert desk.owed() == 0 and desk.paid_out() == 40 * USD
    escrow.setPushPayments(False, {"from": provider})
    desk.submit("pull", 40 * USD)
    tx = desk.adjudicate("pull", 40 * USD)
    assert "PaymentPushed" not in tx.events and desk.owed() == 40 * USD
    desk.assert_solvent([insurer], [provider])


def test_auto_approval_pays_in_the_submit_transaction(desk, escrow, usdc, provider, insurer):
    escrow.setTerms(auto_terms(), {"from": insurer})
    escrow.setPushPayments(True, {"from": provider})
    balance = usdc.balanceOf(provider)
    tx = desk.submit("instant", 75 * USD)
    assert tx.events["PaymentPushed"]["amount"] == 75 * USD
    assert usdc.balanceOf(provider) == balance + 75 * USD
    assert desk.owed() == 0
    desk.assert_solvent([insurer], [provider])


def test_auto_approval_classes_are_each_coverages(desk, escrow, insurer, provider, consent, patient, patient2):
    """Interface 3: one insurer rule, two coverages. The classes a claim may cite are the coverage's
    (`autoDataClasses`, in each member's label space), so the same LABS record auto-approves for one
    member and waits for the insurer for the other."""
    escrow.setTerms(auto_terms(), {"from": insurer})
    grant(consent, patient2, insurer, bit(HPAYMT), ALL_CLASSES)
    grant(consent, patient2, provider, bit(TREAT, HPAYMT), ALL_CLASSES)
    enrol(escrow, insurer, patient, auto_classes=bit(LABS))
    enrol(escrow, insurer, patient2, auto_classes=bit(NOTES))
    assert escrow.enrolmentOf(insurer, patient)[3] == bit(LABS)
    for who, label, auto in ((patient, "labs-1", True), (patient2, "labs-2", False)):
        rec = desk.record(label, patient=who, data_class=LABS)
        tx = desk.submit(label, 5 * USD, [rec], patient=who)
        assert ("ClaimAdjudicated" in tx.events) is auto
        assert desk.status(label) == (ClaimStatus.SETTLED if auto else ClaimStatus.SUBMITTED)
