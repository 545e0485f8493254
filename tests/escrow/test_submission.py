"""ClaimEscrow claim submission: validation, consent, duplicates, replacements and voids."""

import brownie
from brownie import ClaimEscrow, chain
from support.errors import error_message, reverts_with
from support.escrow import (
    DAY,
    DISPUTE_WINDOW,
    PROMPT_PAY,
    USD,
    control,
    grant,
    h,
    invalid_status,
    missing_consent,
    private_key,
    record_id,
)
from support.vocabulary import (
    ALL_CLASSES,
    BILLING,
    GENOMICS,
    HPAYMT,
    IMAGING,
    LABS,
    NOTES,
    REPLACEMENT,
    TREAT,
    VOID,
    ClaimStatus,
    bit,
)

from medledger import eip712


def test_submit_stores_and_emits(desk, escrow, provider, insurer, patient):
    rec = desk.record("visit")
    tx = desk.submit("c1", 120 * USD, [rec], service=321)
    cid = desk.cid("c1")
    coverage_id = escrow.enrolmentOf(insurer, patient)[0]
    deadline = tx.timestamp + PROMPT_PAY
    assert escrow.claimOf(cid) == (coverage_id, 120 * USD, ClaimStatus.SUBMITTED, deadline, 0, DISPUTE_WINDOW)
    event = tx.events["ClaimSubmitted"]
    assert bytes(event["claimId"]) == cid
    assert (event["insurer"], event["patient"], event["provider"]) == (insurer, patient, provider)
    assert (event["billed"], event["serviceCode"]) == (120 * USD, 321)
    assert (event["revision"], event["deadline"]) == (0, deadline)
    assert bytes(event["controlNumber"]) == control("c1")
    assert bytes(escrow.serviceClaimOf(rec.record_id, patient, 321)) == cid
    # Nothing is reserved at submission.
    assert desk.encumbered() == 0
    assert "ClaimAdjudicated" not in tx.events


def test_submit_validation(desk, escrow, provider, insurer, patient):
    rec = desk.record("v")
    with reverts_with(ClaimEscrow, "ZeroAmount"):
        desk.submit("zero", 0, [rec])
    with reverts_with(ClaimEscrow, "EmptyHash"):
        desk.submit("nohash", 10, [rec], claim_hash=b"\x00" * 32)
    with reverts_with(ClaimEscrow, "NoRecords"):
        desk.submit("norec", 10, [])
    ghost = (record_id("ghost", patient), h("ghost-content"))
    with reverts_with(ClaimEscrow, "RecordNotAnchored", ghost[0], ghost[1]):
        desk.submit("ghost", 10, [ghost])
    wrong_version = (rec.record_id, h("other-content"))
    with reverts_with(ClaimEscrow, "RecordNotAnchored", *wrong_version):
        desk.submit("wrongver", 10, [wrong_version])
    with reverts_with(ClaimEscrow, "InvalidFrequency", 2):
        desk.submit("freq", 10, [rec], frequency=2)


def test_submit_refuses_a_record_of_another_patient(desk, escrow, consent, provider, insurer, patient, patient2):
    """A record id starts with its patient's address: a claim may cite only its own patient's records.
    patient2's record is anchored and provider may treat and bill both patients, yet a claim for
    `patient` citing it reverts RecordNotOfPatient - checked before anything else about the record
    (an unanchored id of another patient gets the same error, not RecordNotAnchored) - and takes no
    (record, service) key."""
    grant(consent, patient2, provider, bit(TREAT) | bit(HPAYMT), ALL_CLASSES)
    own, foreign = desk.record("mine"), desk.record("theirs", patient=patient2)
    assert desk.records.patientOf(foreign.record_id) == patient2 and desk.records.patientOf(own.record_id) == patient
    refused = error_message(ClaimEscrow, "RecordNotOfPatient", foreign.record_id, patient.address)
    with brownie.reverts(refused):
        desk.submit("cross", 10 * USD, [foreign])
    with brownie.reverts(refused):
        desk.submit("cross", 10 * USD, [own, foreign])  # one foreign record among own ones is enough
    ghost = (record_id("ghost", patient2), h("ghost-content"))
    with reverts_with(ClaimEscrow, "RecordNotOfPatient", ghost[0], patient.address):
        desk.submit("cross", 10 * USD, [ghost])
    assert escrow.claimOf(desk.cid("cross"))[2] == ClaimStatus.NONE
    assert bytes(escrow.serviceClaimOf(own.record_id, patient, 100)) == b"\x00" * 32
    assert bytes(escrow.serviceClaimOf(foreign.record_id, patient, 100)) == b"\x00" * 32
    # The same records under their own patients go through.
    desk.submit("cross", 10 * USD, [own])
    grant(consent, patient2, insurer, bit(HPAYMT), bit(BILLING, NOTES))
    escrow.setCoverage(patient2, h("policy:p2"), 0, 2**40 - 1, 0, 0, 0, ALL_CLASSES, {"from": insurer})
    desk.submit("cross-2", 10 * USD, [foreign], patient=patient2)
    assert bytes(escrow.serviceClaimOf(foreign.record_id, patient2, 100)) == desk.cid("cross-2")


def test_submit_needs_payer_consent(desk, escrow, consent, provider, insurer, patient):
    rec = desk.record("pc")
    consent.revoke(patient, insurer, {"from": patient})
    with brownie.reverts(missing_consent(patient, insurer, HPAYMT, BILLING)):
        desk.submit("pc", 10, [rec])
    # HPAYMT on another class is not enough: it must cover BILLING.
    grant(consent, patient, insurer, bit(HPAYMT), bit(NOTES))
    with brownie.reverts(missing_consent(patient, insurer, HPAYMT, BILLING)):
        desk.submit("pc", 10, [rec])
    grant(consent, patient, insurer, bit(HPAYMT), bit(BILLING, NOTES))
    desk.submit("pc", 10, [rec])


def test_a_signed_revocation_by_the_member_stops_billing(desk, consent, insurer, patient, stranger):
    """Enrolment is confirmed by the member's payment consent (docs/PRIVACY.md, item 5), so withdrawing it
    needs no member transaction: her signed revocation, relayed by anyone, stops the next claim."""
    rec = desk.record("signed-revoke")
    _, name, version, chain_id, contract, _, _ = consent.eip712Domain()
    request = eip712.RevokeRequest(patient.address, insurer.address, patient.address,
                                   consent.nonces(patient, insurer), chain.time() + DAY)
    signature = eip712.sign_revoke(private_key(patient),
                                   eip712.ConsentDomain(chain_id, contract, name=name, version=version), request)
    sent = patient.nonce
    consent.revokeBySig(patient, insurer, patient, request.deadline, signature, {"from": stranger})
    assert patient.nonce == sent  # the member sent nothing
    with brownie.reverts(missing_consent(patient, insurer, HPAYMT, BILLING)):
        desk.submit("signed-revoke", 10, [rec])


def test_submit_needs_provider_consent_for_the_record_class(desk, consent, provider2, patient):
    rec = desk.record("by-p1", data_class=LABS)
    # provider2 has no consent at all.
    with brownie.reverts(missing_consent(patient, provider2, TREAT, LABS)):
        desk.submit("p2", 10, [rec], provider=provider2)
    # TREAT on LABS lets provider2 bill with provider's record.
    grant(consent, patient, provider2, bit(TREAT), bit(LABS))
    desk.submit("p2", 10, [rec], provider=provider2, service=7)
    # HPAYMT alone is enough only for the author's own records.
    grant(consent, patient, provider2, bit(HPAYMT), ALL_CLASSES)
    with brownie.reverts(missing_consent(patient, provider2, TREAT, LABS)):
        desk.submit("p2b", 10, [rec], provider=provider2, service=8)


def test_author_may_bill_under_payment_grant_only(desk, escrow, consent, provider, patient):
    rec = desk.record("own", data_class=IMAGING)
    grant(consent, patient, provider, bit(HPAYMT), bit(IMAGING))  # TREAT withdrawn, HPAYMT kept
    desk.submit("own", 10, [rec])
    assert desk.status("own") == ClaimStatus.SUBMITTED
    consent.revoke(patient, provider, {"from": patient})
    with brownie.reverts(missing_consent(patient, provider, TREAT, IMAGING)):
        desk.submit("own2", 10, [rec])


def test_sensitive_record_needs_explicit_consent(desk, consent, provider, patient):
    rec = desk.record("genome", data_class=GENOMICS)
    grant(consent, patient, provider, bit(TREAT) | bit(HPAYMT), 0xFF)  # every non-sensitive class
    with brownie.reverts(missing_consent(patient, provider, TREAT, GENOMICS)):
        desk.submit("genome", 10, [rec])


def test_duplicates(desk, escrow, consent, provider, provider2, patient):
    rec = desk.record("dup")
    desk.submit("a", 10, [rec], service=1)
    with reverts_with(ClaimEscrow, "DuplicateClaim", desk.cid("a")):
        desk.submit("a", 10, [desk.record("dup-other")], service=2)
    with reverts_with(ClaimEscrow, "DuplicateService", rec.record_id, 1, desk.cid("a")):
        desk.submit("b", 10, [rec], service=1)
    # Same record, another service: fine. Another provider citing the record takes no key (issue 13).
    desk.submit("c", 10, [rec], service=2)
    grant(consent, patient, provider2, bit(TREAT), ALL_CLASSES)
    desk.submit("x", 10, [rec], service=1, provider=provider2)
    assert bytes(escrow.serviceClaimOf(rec.record_id, patient, 1)) == desk.cid("a")
    # The same control number is free for another provider (ids are per provider).
    desk.submit("a", 10, [desk.record("p2own", provider=provider)], service=9, provider=provider2)
    # A duplicate inside one claim is harmless (the claim holds the key already).
    rec2 = desk.record("twice")
    desk.submit("twice", 10, [rec2, rec2], service=1)
    # A settled claim keeps its keys: a record+service can never be billed twice.
    desk.adjudicate("a", 10)
    with reverts_with(ClaimEscrow, "DuplicateService", rec.record_id, 1, desk.cid("a")):
        desk.submit("again", 10, [rec], service=1)


def test_replacement(desk, escrow, provider, patient, insurer, patient2):
    rec = desk.record("orig")
    desk.submit("r", 100 * USD, [rec])
    chain.sleep(DAY)
    rec2 = desk.record("orig-2")
    tx = desk.submit("r", 80 * USD, [rec, rec2], frequency=REPLACEMENT)
    claim = desk.claim("r")
    assert (claim[1], claim[2], claim[4]) == (80 * USD, ClaimStatus.SUBMITTED, 1)
    assert claim[3] == tx.timestamp + PROMPT_PAY  # prompt-pay clock restarts
    assert tx.events["ClaimSubmitted"]["revision"] == 1
    # The insurer must adjudicate the current revision.
    with reverts_with(ClaimEscrow, "StaleRevision", desk.cid("r"), 0, 1):
        desk.adjudicate("r", 80 * USD, revision=0)
    desk.adjudicate("r", 80 * USD, revision=1)
    assert desk.owed() == 80 * USD
    # An adjudicated claim can no longer be replaced or voided.
    for frequency in (REPLACEMENT, VOID):
        with brownie.reverts(invalid_status(desk.cid("r"), ClaimStatus.SETTLED)):
            desk.submit("r", 90 * USD, [rec], frequency=frequency)


def test_replacement_rules(desk, escrow, provider, insurer, patient, patient2, consent):
    with brownie.reverts(invalid_status(desk.cid("nothing"), ClaimStatus.NONE)):
        desk.submit("nothing", 10, frequency=REPLACEMENT)
    desk.submit("m", 10)
    grant(consent, patient2, insurer, bit(HPAYMT), bit(BILLING))
    escrow.setCoverage(patient2, h("p2"), 0, 2**40 - 1, 0, 0, 0, ALL_CLASSES, {"from": insurer})
    with reverts_with(ClaimEscrow, "ClaimMismatch", desk.cid("m")):
        desk.submit("m", 10, [desk.record("m2", patient=patient)], patient=patient2, frequency=REPLACEMENT)


def test_void(desk, escrow, provider, patient):
    rec = desk.record("void")
    desk.submit("v", 50 * USD, [rec], service=4)
    tx = desk.submit("v", 50 * USD, [], frequency=VOID, claim_hash=h("void-claim"))
    assert tx.events["ClaimVoided"]["provider"] == provider
    assert desk.claim("v")[1:4] == (0, ClaimStatus.VOIDED, 0)
    for attempt in (lambda: desk.adjudicate("v", 1), lambda: desk.submit("v", 1, [rec], frequency=VOID)):
        with brownie.reverts(invalid_status(desk.cid("v"), ClaimStatus.VOIDED)):
            attempt()
    with reverts_with(ClaimEscrow, "DuplicateClaim", desk.cid("v")):
        desk.submit("v", 50 * USD, [rec], service=4)
    # Its record+service key is free again for a new control number.
    desk.submit("v2", 50 * USD, [rec], service=4)
    assert bytes(escrow.serviceClaimOf(rec.record_id, patient, 4)) == desk.cid("v2")
