"""ClaimEscrow insurer terms, patient coverage and its benefit limits."""

import brownie
from brownie import ZERO_ADDRESS, ClaimEscrow, chain
from support.errors import reverts_with
from support.escrow import CARC_BENEFIT_MAX, DAY, PROMPT_PAY, USD, control, h, not_active, over_limit, terms
from support.vocabulary import ALL_CLASSES, INSURER_ROLE, LABS, NOTES, ClaimStatus, bit

# ---------------------------------------------------------------- terms and coverage


def test_terms_validation(desk, escrow, insurer, provider):
    bad = [
        terms(prompt_pay=DAY - 1),
        terms(prompt_pay=90 * DAY + 1),
        terms(dispute=7 * DAY - 1),
        terms(dispute=180 * DAY + 1),
        terms(auto_max=1, service_min=5, service_max=4),
    ]
    for value in bad:
        with reverts_with(ClaimEscrow, "InvalidTerms"):
            escrow.setTerms(value, {"from": insurer})
    with brownie.reverts(not_active(provider, INSURER_ROLE)):
        escrow.setTerms(terms(), {"from": provider})
    good = terms(prompt_pay=DAY, dispute=180 * DAY, auto_max=5, service_min=1, service_max=9, auto_cap=3,
                 auto_period=3600)
    tx = escrow.setTerms(good, {"from": insurer})
    assert escrow.termsOf(insurer) == good
    assert tx.events["InsurerTermsSet"]["insurer"] == insurer


def test_coverage_validation(desk, escrow, insurer, patient2, care, registrar, accounts):
    now = chain.time()
    policy = h("policy")
    with reverts_with(ClaimEscrow, "ZeroAddress"):
        escrow.setCoverage(ZERO_ADDRESS, policy, 0, now + DAY, 0, 0, 0, ALL_CLASSES, {"from": insurer})
    with reverts_with(ClaimEscrow, "EmptyHash"):
        escrow.setCoverage(patient2, b"\x00" * 32, 0, now + DAY, 0, 0, 0, ALL_CLASSES, {"from": insurer})
    for args in [
        (now + DAY, now + DAY),  # empty validity
        (0, now - 10),  # already over
    ]:
        with reverts_with(ClaimEscrow, "InvalidCoverage"):
            escrow.setCoverage(patient2, policy, args[0], args[1], 0, 0, 0, ALL_CLASSES, {"from": insurer})
    for per_period, length in ((100, 0), (0, 3600), (100, 3599)):
        with reverts_with(ClaimEscrow, "InvalidCoverage"):
            escrow.setCoverage(patient2, policy, 0, now + DAY, 0, per_period, length, ALL_CLASSES, {"from": insurer})
    # The auto-approval classes are the coverage's (interface 3): only defined bits 0-10.
    with reverts_with(ClaimEscrow, "InvalidCoverage"):
        escrow.setCoverage(patient2, policy, 0, now + DAY, 0, 0, 0, ALL_CLASSES | 1 << 11, {"from": insurer})
    # An insurer without terms cannot enrol anyone.
    newcomer = accounts[11]
    care.register(newcomer, INSURER_ROLE, h("newcomer"), {"from": registrar})
    with reverts_with(ClaimEscrow, "TermsNotSet", newcomer.address):
        escrow.setCoverage(patient2, policy, 0, now + DAY, 0, 0, 0, ALL_CLASSES, {"from": newcomer})


def test_enrolment_ids_are_stable_and_views_report(desk, escrow, insurer, patient, patient2):
    first = escrow.enrolmentOf(insurer, patient)
    now = chain.time()
    tx = escrow.setCoverage(patient2, h("p2"), now, now + 365 * DAY, 50 * USD, 200 * USD, 30 * DAY, bit(LABS, NOTES),
                            {"from": insurer})
    new_id = tx.return_value if tx.return_value is not None else tx.events["CoverageSet"]["coverageId"]
    assert new_id == first[0] + 1
    event = tx.events["CoverageSet"]
    assert (event["coverageId"], event["insurer"], event["patient"]) == (new_id, insurer, patient2)
    assert event["autoDataClasses"] == bit(LABS, NOTES)
    assert escrow.enrolmentOf(insurer, patient2) == (new_id, now, now + 365 * DAY, bit(LABS, NOTES))
    coverage = escrow.coverageOf(new_id)
    assert coverage[0] == insurer and coverage[4] == patient2
    assert coverage[1] and coverage[2]  # claim- and period-limited
    assert (coverage[5], coverage[6], coverage[9]) == (50 * USD, 200 * USD, 30 * DAY)
    assert coverage[10].hex() == h("p2").hex()
    # Re-enrolment takes a new id; the old coverage keeps its terms for the claims submitted under it.
    escrow.setCoverage(patient2, h("p2b"), now, now + 10 * DAY, 0, 0, 0, ALL_CLASSES, {"from": insurer})
    assert escrow.enrolmentOf(insurer, patient2)[0] == new_id + 1
    assert not escrow.coverageOf(new_id + 1)[1]
    assert escrow.coverageOf(new_id)[1]


def test_end_coverage(desk, escrow, insurer, patient):
    desk.submit("before-end", 10 * USD)
    tx = escrow.endCoverage(patient, {"from": insurer})
    assert tx.events["CoverageEnded"]["endedAt"] == tx.timestamp
    with reverts_with(ClaimEscrow, "CoverageInactive", insurer.address, patient.address):
        desk.submit("after-end", 10 * USD)
    with reverts_with(ClaimEscrow, "CoverageInactive", insurer.address, patient.address):
        escrow.endCoverage(patient, {"from": insurer})
    # The open claim stays payable.
    desk.adjudicate("before-end", 10 * USD)
    assert desk.status("before-end") == ClaimStatus.SETTLED


def test_coverage_not_yet_valid(desk, escrow, insurer, patient):
    now = chain.time()
    escrow.setCoverage(patient, h("later"), now + 10 * DAY, now + 20 * DAY, 0, 0, 0, ALL_CLASSES, {"from": insurer})
    with reverts_with(ClaimEscrow, "CoverageInactive", insurer.address, patient.address):
        desk.submit("early", 10 * USD)
    chain.sleep(10 * DAY + 1)
    chain.mine()
    desk.submit("early", 10 * USD)
    assert desk.status("early") == ClaimStatus.SUBMITTED


# ---------------------------------------------------------------- coverage limits


def test_per_claim_limit(desk, escrow, insurer, patient, stranger):
    escrow.setCoverage(patient, h("capped"), 0, 2**40 - 1, 100 * USD, 0, 0, ALL_CLASSES, {"from": insurer})
    desk.submit("cap", 150 * USD)
    with brownie.reverts(over_limit(insurer, patient, 101 * USD, 100 * USD)):
        desk.adjudicate("cap", 101 * USD, reasons=[CARC_BENEFIT_MAX])
    desk.adjudicate("cap", 100 * USD, reasons=[CARC_BENEFIT_MAX])
    assert desk.owed() == 100 * USD and desk.encumbered() == 50 * USD
    # Deemed approval is capped too; the excess is contested with CARC 119.
    desk.submit("cap2", 130 * USD)
    chain.sleep(PROMPT_PAY + 1)
    chain.mine()
    tx = escrow.finalizeDeemed(desk.provider, control("cap2"), {"from": stranger})
    event = tx.events["ClaimAdjudicated"]
    assert (event["approved"], event["contested"]) == (100 * USD, 30 * USD)
    assert list(event["reasonCodes"]) == [CARC_BENEFIT_MAX]
    assert desk.status("cap2") == ClaimStatus.CONTESTABLE


def test_per_period_limit(desk, escrow, insurer, patient):
    start = chain.time()
    escrow.setCoverage(patient, h("annual"), start, start + 400 * DAY, 0, 100 * USD, 30 * DAY, 0, {"from": insurer})
    for label in ("p1", "p2", "p3"):
        desk.submit(label, 40 * USD)
    desk.adjudicate("p1", 40 * USD)
    desk.adjudicate("p2", 40 * USD)
    with brownie.reverts(over_limit(insurer, patient, 40 * USD, 20 * USD)):
        desk.adjudicate("p3", 40 * USD)
    desk.adjudicate("p3", 20 * USD, reasons=[CARC_BENEFIT_MAX])
    coverage = escrow.coverageOf(escrow.enrolmentOf(insurer, patient)[0])
    assert (coverage[7], coverage[8]) == (100 * USD, 0)  # used, period index
    # The next period starts fresh.
    chain.sleep(30 * DAY)
    chain.mine()
    desk.submit("p4", 90 * USD)
    desk.adjudicate("p4", 90 * USD)
    coverage = escrow.coverageOf(escrow.enrolmentOf(insurer, patient)[0])
    assert (coverage[7], coverage[8]) == (90 * USD, 1)
