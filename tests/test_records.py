"""RecordRegistry: single anchors, amendments, verification views and access logging.

A record id is the patient's address (20 bytes) then 12 random bytes; `rid(label, patient)` builds one.
The registry reads the patient from the id (`patientOf`), so anchor/amend take no patient argument.

Consent set up once per module (see `grants`):
  patient -> provider : TREAT on LABS, NOTES, GENOMICS (no expiry)
  patient -> provider2: TREAT on LABS
  patient -> insurer  : HPAYMT on LABS, BILLING; TREAT on LABS (an insurer with TREAT still may not anchor)
  patient2            : nobody
"""
import brownie
import pytest
from brownie import ZERO_ADDRESS, RecordRegistry, chain, web3
from eth_utils import keccak
from support.errors import error_message, reverts_with
from support.records import (
    ANCHOR_GAS_BUDGET,
    DOC,
    REASON,
    ZERO32,
    h,
    rid,
    stored_head,
    stored_past_author_id,
    tagged_twin,
)
from support.vocabulary import (
    ALL_CLASSES,
    BILLING,
    ETREAT,
    GENOMICS,
    HPAYMT,
    IMAGING,
    LABS,
    MENTAL_HEALTH,
    NOTES,
    TREAT,
    bit,
)

V1 = h("record:1:v1")
V2 = h("record:1:v2")
V3 = h("record:1:v3")



@pytest.fixture(scope="module", autouse=True)
def grants(records, consent, patient, provider, provider2, insurer):
    consent.grant(patient, provider, bit(TREAT), bit(LABS, NOTES, GENOMICS), 0, 0, DOC, {"from": patient})
    consent.grant(patient, provider2, bit(TREAT), bit(LABS), 0, 0, DOC, {"from": patient})
    consent.grant(patient, insurer, bit(TREAT, HPAYMT), bit(LABS, BILLING), 0, 0, DOC, {"from": patient})


@pytest.fixture(scope="module")
def rid1(patient):
    """The main record id of these tests: a record of `patient`."""
    return rid("record:1", patient)


@pytest.fixture(scope="module")
def rid2(patient2):
    """A record id of `patient2` (who consents to nobody by default)."""
    return rid("record:1", patient2)


@pytest.fixture
def anchored(records, rid1, provider):
    """rid1 v1 (LABS) anchored by `provider`; returns the transaction."""
    return records.anchor(rid1, V1, LABS, {"from": provider})


def block_time(tx) -> int:
    return chain[tx.block_number].timestamp


def party_id(care, account) -> int:
    """`account`'s CareRegistry party id (the last field of partyOf)."""
    return care.partyOf(account)[4]


# --------------------------------------------------------------------------- deployment


def test_deployment(records, care, consent):
    assert records.registry() == care
    assert records.consent() == consent
    assert records.MAX_PROOF_LENGTH() == 32


def test_constructor_rejects_zero_addresses(care, consent, admin):
    with reverts_with(RecordRegistry, "ZeroAddress"):
        RecordRegistry.deploy(ZERO_ADDRESS, consent, {"from": admin})
    with reverts_with(RecordRegistry, "ZeroAddress"):
        RecordRegistry.deploy(care, ZERO_ADDRESS, {"from": admin})


# --------------------------------------------------------------------------- record ids


def test_patient_of_returns_the_id_prefix(records, rid1, rid2, patient, patient2, stranger):
    assert records.patientOf(rid1) == patient
    assert records.patientOf(rid2) == patient2
    assert rid1 != rid2  # same label, other patient: another record
    assert records.patientOf(rid("anything", stranger)) == stranger
    assert records.patientOf(ZERO32) == ZERO_ADDRESS
    assert records.patientOf(bytes(20) + b"\xff" * 12) == ZERO_ADDRESS  # the random tail is ignored
    raw = bytes(range(1, 33))
    assert records.patientOf(raw) == web3.to_checksum_address(raw[:20])


def test_anchor_rejects_an_id_without_a_patient(records, provider, stranger):
    no_patient = bytes(20) + h("tail")[:12]
    for record_id in (ZERO32, no_patient):
        with reverts_with(RecordRegistry, "InvalidRecordId", record_id):
            records.anchor(record_id, V1, LABS, {"from": provider})
    # Checked first: before the content hash, the data class and the caller's role.
    with reverts_with(RecordRegistry, "InvalidRecordId", ZERO32):
        records.anchor(ZERO32, ZERO32, 11, {"from": provider})
    with reverts_with(RecordRegistry, "InvalidRecordId", no_patient):
        records.anchor(no_patient, V1, LABS, {"from": stranger})
    assert records.latestOf(no_patient)[1][1] == 0


def test_anchor_binds_the_record_to_the_patient_of_its_id(records, patient, patient2, provider):
    """provider holds consent of patient only: it may take patient's ids, never patient2's."""
    tx = records.anchor(rid("mine", patient), V1, LABS, {"from": provider})
    assert tx.events["RecordAnchored"]["patient"] == patient
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient2.address, provider.address, LABS):
        records.anchor(rid("mine", patient2), V1, LABS, {"from": provider})


# --------------------------------------------------------------------------- anchor


def test_anchor_records_version_one(records, care, rid1, patient, provider):
    tx = records.anchor(rid1, V1, LABS, {"from": provider})
    assert tx.events["RecordAnchored"] == {
        "recordId": "0x" + rid1.hex(),
        "patient": patient,
        "author": provider,
        "contentHash": "0x" + V1.hex(),
        "dataClass": LABS,
    }
    now = block_time(tx)
    assert records.verify(rid1, V1) == (True, 1, provider, now, True)
    assert records.recordInfo(rid1, V1) == (provider, 1, LABS, now, True)
    tag, info = records.latestOf(rid1)
    assert tag == "0x" + keccak(V1)[:20].hex()  # the head's tag is keccak256(contentHash)[:20]
    assert info == (provider, 1, LABS, now, True)
    assert stored_head(records, rid1) == {
        "contentTag": keccak(V1)[:20], "authorId": party_id(care, provider), "version": 1, "dataClass": LABS,
        "anchoredAt": now,
    }


def test_author_is_stored_as_its_care_registry_id(records, care, rid1, patient, provider, provider2):
    """No author table any more: the head stores the author's CareRegistry party id, and the views
    resolve it back to the address through care.accountOf."""
    provider_id, provider2_id = party_id(care, provider), party_id(care, provider2)
    assert provider_id != 0 and provider2_id != 0 and provider_id != provider2_id
    assert care.accountOf(provider_id) == provider
    assert care.accountOf(provider2_id) == provider2
    assert care.activePartyOf(provider) == (1, provider_id)  # Role.Provider

    tx = records.anchor(rid1, V1, LABS, {"from": provider})
    assert set(tx.events.keys()) == {"RecordAnchored"}  # no enrolment event of any kind
    assert stored_head(records, rid1)["authorId"] == provider_id
    other = rid("record:2", patient)
    records.anchor(other, h("record:2:v1"), LABS, {"from": provider2})
    assert stored_head(records, other)["authorId"] == provider2_id
    assert records.verify(rid1, V1)[2] == provider
    assert records.verify(other, h("record:2:v1"))[2] == provider2


def test_author_address_survives_suspension(admin, records, care, anchored, rid1, provider, registrar):
    """The views resolve the stored id whatever the party's status: a suspended author stays the author."""
    provider_id = party_id(care, provider)
    care.suspend(provider, REASON, {"from": registrar})
    assert care.activePartyOf(provider) == (0, provider_id)  # Role.None while suspended, same id
    assert records.verify(rid1, V1)[:3] == (True, 1, provider)
    assert records.latestOf(rid1)[1][0] == provider
    care.reinstate(provider, {"from": admin})
    assert party_id(care, provider) == provider_id


def test_anchor_gas_budget(records, patient, provider):
    for label in ("gas:1", "gas:2"):  # nothing is enrolled any more: the first anchor costs the same
        tx = records.anchor(rid(label, patient), h(f"{label}:v1"), LABS, {"from": provider})
        print(f"anchor gas: {tx.gas_used}")
        assert tx.gas_used <= ANCHOR_GAS_BUDGET


def test_unregistered_account_cannot_anchor(records, rid1, stranger):
    with reverts_with(RecordRegistry, "NotActiveProvider", stranger.address):
        records.anchor(rid1, V1, LABS, {"from": stranger})


def test_insurer_cannot_anchor_even_with_treat_consent(records, consent, rid1, patient, insurer):
    assert consent.hasConsent(patient, insurer, TREAT, LABS)
    assert consent.treatingProviderId(patient, insurer, LABS) == 0
    with reverts_with(RecordRegistry, "NotActiveProvider", insurer.address):
        records.anchor(rid1, V1, LABS, {"from": insurer})


def test_arbiter_cannot_anchor(records, rid1, arbiter):
    with reverts_with(RecordRegistry, "NotActiveProvider", arbiter.address):
        records.anchor(rid1, V1, LABS, {"from": arbiter})


def test_suspended_provider_cannot_anchor(records, care, rid1, provider, registrar):
    care.suspend(provider, REASON, {"from": registrar})
    with reverts_with(RecordRegistry, "NotActiveProvider", provider.address):
        records.anchor(rid1, V1, LABS, {"from": provider})


def test_suspension_bites_after_earlier_anchors(admin, records, care, consent, rid1, patient, provider, registrar):
    """A provider that anchored before is still checked against the CareRegistry on every anchor."""
    records.anchor(rid("record:0", patient), h("record:0:v1"), LABS, {"from": provider})
    care.suspend(provider, REASON, {"from": registrar})
    assert consent.treatingProviderId(patient, provider, LABS) == 0
    with reverts_with(RecordRegistry, "NotActiveProvider", provider.address):
        records.anchor(rid1, V1, LABS, {"from": provider})
    care.reinstate(provider, {"from": admin})
    assert consent.treatingProviderId(patient, provider, LABS) == party_id(care, provider)
    records.anchor(rid1, V1, LABS, {"from": provider})
    assert records.verify(rid1, V1)[0]


def test_anchor_needs_consent_of_that_patient(records, rid2, patient2, provider):
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient2.address, provider.address, LABS):
        records.anchor(rid2, V1, LABS, {"from": provider})


def test_anchor_needs_consent_for_that_data_class(records, rid1, patient, provider2):
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider2.address, NOTES):
        records.anchor(rid1, V1, NOTES, {"from": provider2})


def test_anchor_needs_treat_purpose(records, consent, rid2, patient2, provider):
    consent.grant(patient2, provider, bit(HPAYMT), bit(LABS), 0, 0, DOC, {"from": patient2})
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient2.address, provider.address, LABS):
        records.anchor(rid2, V1, LABS, {"from": provider})


def test_expired_consent_cannot_anchor(records, consent, rid2, patient2, provider):
    valid_until = chain.time() + 3600
    consent.grant(patient2, provider, bit(TREAT), bit(LABS), 0, valid_until, DOC, {"from": patient2})
    records.anchor(rid2, V1, LABS, {"from": provider})
    chain.mine(timestamp=valid_until)
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient2.address, provider.address, LABS):
        records.anchor(rid("record:2", patient2), h("record:2:v1"), LABS, {"from": provider})


def test_revoked_consent_cannot_anchor(records, consent, rid1, patient, provider2):
    consent.revoke(patient, provider2, {"from": patient})
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider2.address, LABS):
        records.anchor(rid1, V1, LABS, {"from": provider2})


def test_break_glass_does_not_allow_anchoring(records, care, consent, rid2, patient2, provider2):
    """Interface 2: break-glass is emergency reading only (issue 13, finding 9)."""
    consent.openBreakGlass(patient2, 3600, REASON, {"from": provider2})
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient2.address, provider2.address, IMAGING):
        records.anchor(rid2, V1, IMAGING, {"from": provider2})


def test_break_glass_never_covers_sensitive_classes(records, consent, rid2, patient2, provider2):
    consent.openBreakGlass(patient2, 3600, REASON, {"from": provider2})
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient2.address, provider2.address, MENTAL_HEALTH):
        records.anchor(rid2, V1, MENTAL_HEALTH, {"from": provider2})


def test_break_glass_ends(records, consent, rid2, patient2, provider2):
    consent.openBreakGlass(patient2, 3600, REASON, {"from": provider2})
    expires_at = consent.breakGlassOf(patient2, provider2)[1]
    chain.mine(timestamp=expires_at)
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient2.address, provider2.address, LABS):
        records.anchor(rid2, V1, LABS, {"from": provider2})


def test_sensitive_class_with_explicit_consent(records, rid1, provider):
    records.anchor(rid1, V1, GENOMICS, {"from": provider})
    assert records.recordInfo(rid1, V1)[2] == GENOMICS


def test_record_ids_are_unique(records, anchored, rid1, provider, provider2):
    error = error_message(RecordRegistry, "RecordAlreadyAnchored", rid1)
    with brownie.reverts(error):
        records.anchor(rid1, V1, LABS, {"from": provider})  # same content
    with brownie.reverts(error):
        records.anchor(rid1, V2, LABS, {"from": provider})  # other content
    with brownie.reverts(error):
        records.anchor(rid1, V2, LABS, {"from": provider2})  # other provider
    assert records.verify(rid1, V2)[0] is False


def test_anchor_validates_input(records, rid1, provider):
    with reverts_with(RecordRegistry, "InvalidRecordId", ZERO32):
        records.anchor(ZERO32, V1, LABS, {"from": provider})
    with reverts_with(RecordRegistry, "EmptyContentHash"):
        records.anchor(rid1, ZERO32, LABS, {"from": provider})
    with reverts_with(RecordRegistry, "InvalidDataClass", 11):
        records.anchor(rid1, V1, 11, {"from": provider})


# --------------------------------------------------------------------------- amend


def test_amend_by_author(records, care, anchored, rid1, patient, provider):
    t1 = block_time(anchored)
    chain.sleep(60)
    tx = records.amend(rid1, V1, V2, {"from": provider})
    assert tx.return_value == 2
    assert tx.events["RecordAmended"] == {
        "recordId": "0x" + rid1.hex(),
        "patient": patient,
        "author": provider,
        "previousContentHash": "0x" + V1.hex(),
        "contentHash": "0x" + V2.hex(),
        "version": 2,
    }
    t2 = block_time(tx)
    assert t2 > t1
    # The old version stays verifiable, with its own metadata, marked not latest.
    assert records.verify(rid1, V1) == (True, 1, provider, t1, False)
    assert records.verify(rid1, V2) == (True, 2, provider, t2, True)
    tag, info = records.latestOf(rid1)
    assert tag == "0x" + keccak(V2)[:20].hex()
    assert info == (provider, 2, LABS, t2, True)
    assert stored_past_author_id(records, rid1, V1) == party_id(care, provider)


def test_author_needs_current_consent_to_amend(records, consent, anchored, rid1, patient, provider):
    """Interface 2 (issue 13, finding 11): a revoked author may not amend."""
    consent.revoke(patient, provider, {"from": patient})
    assert not consent.hasConsent(patient, provider, TREAT, LABS)
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider.address, LABS):
        records.amend(rid1, V1, V2, {"from": provider})


def test_amend_by_consented_other_provider(records, care, anchored, rid1, patient, provider, provider2):
    tx = records.amend(rid1, V1, V2, {"from": provider2})
    assert tx.events["RecordAmended"]["author"] == provider2
    assert tx.events["RecordAmended"]["patient"] == patient
    assert set(tx.events.keys()) == {"RecordAmended"}
    assert records.verify(rid1, V1)[:3] == (True, 1, provider)
    assert records.verify(rid1, V2)[:3] == (True, 2, provider2)
    assert stored_head(records, rid1)["authorId"] == party_id(care, provider2)
    assert stored_past_author_id(records, rid1, V1) == party_id(care, provider)


def test_amend_by_unconsented_provider(records, consent, anchored, rid1, patient, provider2):
    consent.revoke(patient, provider2, {"from": patient})
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider2.address, LABS):
        records.amend(rid1, V1, V2, {"from": provider2})


def test_amend_cannot_use_a_puppet_patient(records, consent, anchored, rid1, patient, patient2, provider2):
    """provider2 controls patient2 (a "puppet") and holds its TREAT consent, but not patient's: the
    patient of a record comes from its id, so the puppet's consent cannot authorise amending it."""
    consent.revoke(patient, provider2, {"from": patient})
    consent.grant(patient2, provider2, bit(TREAT), ALL_CLASSES, 0, 0, DOC, {"from": patient2})
    assert consent.hasConsent(patient2, provider2, TREAT, LABS)
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider2.address, LABS):
        records.amend(rid1, V1, V2, {"from": provider2})
    # Nor can it take one of patient's ids for itself.
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider2.address, LABS):
        records.anchor(rid("squat", patient), V1, LABS, {"from": provider2})
    # The puppet's consent does work for the puppet's own records.
    puppet_record = rid("puppet", patient2)
    records.anchor(puppet_record, V1, LABS, {"from": provider2})
    assert records.verify(puppet_record, V1)[:3] == (True, 1, provider2)
    assert records.verify(rid1, V1)[4] is True and records.verify(rid1, V2)[0] is False


def test_amend_consent_must_be_treat_for_the_record_class(records, consent, rid1, patient, provider, provider2):
    records.anchor(rid1, V1, NOTES, {"from": provider})  # provider2 is consented for LABS only
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider2.address, NOTES):
        records.amend(rid1, V1, V2, {"from": provider2})


def test_break_glass_does_not_allow_amending_others_records(records, consent, rid1, patient, provider,
                                                            provider2):
    records.anchor(rid1, V1, NOTES, {"from": provider})
    consent.openBreakGlass(patient, 3600, REASON, {"from": provider2})
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider2.address, NOTES):
        records.amend(rid1, V1, V2, {"from": provider2})


def test_author_privilege_is_for_the_version_being_amended(records, consent, anchored, rid1, patient, provider,
                                                           provider2):
    """Every amender needs live TREAT consent (interface 2), whoever wrote earlier versions."""
    records.amend(rid1, V1, V2, {"from": provider2})
    consent.revoke(patient, provider, {"from": patient})
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider.address, LABS):
        records.amend(rid1, V2, V3, {"from": provider})


def test_insurer_and_strangers_cannot_amend(records, anchored, rid1, insurer, stranger):
    for account in (insurer, stranger):
        with reverts_with(RecordRegistry, "NotActiveProvider", account.address):
            records.amend(rid1, V1, V2, {"from": account})


def test_suspended_author_cannot_amend(admin, records, care, anchored, rid1, provider, registrar):
    care.suspend(provider, REASON, {"from": registrar})
    with reverts_with(RecordRegistry, "NotActiveProvider", provider.address):
        records.amend(rid1, V1, V2, {"from": provider})
    # Reinstated, it is the same party (same id), hence still the author.
    care.reinstate(provider, {"from": admin})
    assert records.amend(rid1, V1, V2, {"from": provider}).return_value == 2


def test_suspended_author_without_consent_cannot_amend(records, care, consent, anchored, rid1, patient, provider,
                                                       registrar):
    """Suspension is checked before authorship: the author's id must not let a suspended party through."""
    consent.revoke(patient, provider, {"from": patient})
    care.suspend(provider, REASON, {"from": registrar})
    with reverts_with(RecordRegistry, "NotActiveProvider", provider.address):
        records.amend(rid1, V1, V2, {"from": provider})


def test_amending_a_superseded_version_reverts(records, anchored, rid1, provider, provider2):
    records.amend(rid1, V1, V2, {"from": provider})
    for account in (provider, provider2):
        with reverts_with(RecordRegistry, "VersionSuperseded", rid1, V1):
            records.amend(rid1, V1, V3, {"from": account})
    records.amend(rid1, V2, V3, {"from": provider2})
    for old in (V1, V2):
        with reverts_with(RecordRegistry, "VersionSuperseded", rid1, old):
            records.amend(rid1, old, h("fork"), {"from": provider})
    assert [records.verify(rid1, v)[4] for v in (V1, V2, V3)] == [False, False, True]


def test_amend_validates_versions(records, anchored, rid1, patient, provider):
    nope = rid("nope", patient)
    with reverts_with(RecordRegistry, "RecordNotFound", nope):
        records.amend(nope, V1, V2, {"from": provider})
    with reverts_with(RecordRegistry, "RecordNotFound", ZERO32):
        records.amend(ZERO32, V1, V2, {"from": provider})
    with reverts_with(RecordRegistry, "VersionNotFound", rid1, V3):
        records.amend(rid1, V3, V2, {"from": provider})
    with reverts_with(RecordRegistry, "EmptyContentHash"):
        records.amend(rid1, V1, ZERO32, {"from": provider})
    with reverts_with(RecordRegistry, "ContentAlreadyAnchored", rid1, V1):
        records.amend(rid1, V1, V1, {"from": provider})
    records.amend(rid1, V1, V2, {"from": provider})
    with reverts_with(RecordRegistry, "ContentAlreadyAnchored", rid1, V1):
        records.amend(rid1, V2, V1, {"from": provider})  # back to an old version


def test_history_is_reconstructible_from_events(records, anchored, rid1, patient, provider, provider2):
    hashes = [V1, V2, V3, h("record:1:v4")]
    steps = [(V1, V2, provider2), (V2, V3, provider), (V3, hashes[3], provider2)]
    for prev, new, who in steps:
        records.amend(rid1, prev, new, {"from": who})
    # Every version event of the record is found through the indexed recordId topic alone.
    by_topic = web3.eth.get_logs({"address": records.address, "fromBlock": anchored.block_number,
                                  "topics": [None, "0x" + rid1.hex()]})
    assert len(by_topic) == 4  # RecordAnchored + 3 x RecordAmended
    amended = web3.eth.contract(address=records.address, abi=records.abi).events.RecordAmended()
    history = [amended.process_log(log).args for log in by_topic[1:]]
    assert [(e.previousContentHash, e.contentHash, e.version, e.author, e.patient) for e in history] == [
        (prev, new, version, who.address, patient.address) for version, (prev, new, who) in enumerate(steps, start=2)
    ]
    assert [records.verify(rid1, v)[1] for v in hashes] == [1, 2, 3, 4]
    assert [records.verify(rid1, v)[4] for v in hashes] == [False, False, False, True]


# --------------------------------------------------------------------------- verify views


def test_verify_unknown(records, anchored, rid1, rid2, patient):
    nope = rid("nope", patient)
    assert records.verify(nope, V1) == (False, 0, ZERO_ADDRESS, 0, False)
    assert records.verify(rid2, V1) == (False, 0, ZERO_ADDRESS, 0, False)  # same tail, other patient
    assert records.verify(rid1, V2) == (False, 0, ZERO_ADDRESS, 0, False)
    assert records.verify(rid1, ZERO32) == (False, 0, ZERO_ADDRESS, 0, False)
    assert records.recordInfo(rid1, V2) == (ZERO_ADDRESS, 0, 0, 0, False)
    assert records.latestOf(nope) == ("0x" + "00" * 20, (ZERO_ADDRESS, 0, 0, 0, False))


def test_latest_version_matches_on_its_160_bit_tag(records, anchored, rid1, provider):
    """docs/RECORDS.md: the latest version is stored under keccak256(hash)[:20], so a hash sharing the
    first 20 bytes of the anchored one does not verify (interface 1 accepted it); superseded: all 256."""
    assert records.verify(rid1, tagged_twin(V1))[0] is False
    records.amend(rid1, V1, V2, {"from": provider})
    assert records.verify(rid1, V1)[0] is True
    assert records.verify(rid1, tagged_twin(V1))[0] is False


# --------------------------------------------------------------------------- access log


def test_log_access_with_consent(records, anchored, rid1, patient, insurer):
    tx = records.logAccess(patient, rid1, HPAYMT, {"from": insurer})
    assert tx.events["AccessLogged"] == {
        "recordId": "0x" + rid1.hex(), "patient": patient, "accessor": insurer, "purpose": HPAYMT,
    }
    assert len(tx.events) == 1
    print(f"logAccess gas: {tx.gas_used}")


def test_log_access_by_provider(records, anchored, rid1, patient, provider2):
    tx = records.logAccess(patient, rid1, TREAT, {"from": provider2})
    assert tx.events["AccessLogged"]["accessor"] == provider2


def test_log_access_without_consent(records, anchored, rid1, patient, insurer, provider2):
    with reverts_with(RecordRegistry, "NoConsent", patient.address, insurer.address, ETREAT, LABS):
        records.logAccess(patient, rid1, ETREAT, {"from": insurer})
    with reverts_with(RecordRegistry, "NoConsent", patient.address, provider2.address, HPAYMT, LABS):
        records.logAccess(patient, rid1, HPAYMT, {"from": provider2})


def test_log_access_names_the_record_patient(records, consent, anchored, rid1, patient, patient2, insurer,
                                             stranger):
    """The patient argument must be the id's patient, even when the caller holds consent of the one it
    names (a "puppet" patient2 consenting to the insurer)."""
    consent.grant(patient2, insurer, bit(HPAYMT), ALL_CLASSES, 0, 0, DOC, {"from": patient2})
    assert consent.hasConsent(patient2, insurer, HPAYMT, LABS)
    error = error_message(RecordRegistry, "RecordNotOfPatient", rid1, patient2.address)
    with brownie.reverts(error):
        records.logAccess(patient2, rid1, HPAYMT, {"from": insurer})
    with brownie.reverts(error):  # checked before the caller's role
        records.logAccess(patient2, rid1, HPAYMT, {"from": stranger})
    with reverts_with(RecordRegistry, "RecordNotOfPatient", rid1, ZERO_ADDRESS):
        records.logAccess(ZERO_ADDRESS, rid1, HPAYMT, {"from": insurer})
    # ...and after RecordNotFound: an unknown id is reported as such, whoever is named.
    nope = rid("nope", patient)
    with reverts_with(RecordRegistry, "RecordNotFound", nope):
        records.logAccess(patient2, nope, HPAYMT, {"from": insurer})
    tx = records.logAccess(patient, rid1, HPAYMT, {"from": insurer})
    assert tx.events["AccessLogged"]["patient"] == patient


def test_log_access_uses_the_record_data_class(records, rid1, patient, provider, insurer):
    records.anchor(rid1, V1, NOTES, {"from": provider})  # insurer holds HPAYMT on LABS, BILLING only
    with reverts_with(RecordRegistry, "NoConsent", patient.address, insurer.address, HPAYMT, NOTES):
        records.logAccess(patient, rid1, HPAYMT, {"from": insurer})


def test_log_access_after_consent_expiry(records, consent, anchored, rid1, patient, insurer):
    valid_until = chain.time() + 3600
    consent.grant(patient, insurer, bit(HPAYMT), bit(LABS), 0, valid_until, DOC, {"from": patient})
    records.logAccess(patient, rid1, HPAYMT, {"from": insurer})
    chain.mine(timestamp=valid_until)
    with reverts_with(RecordRegistry, "NoConsent", patient.address, insurer.address, HPAYMT, LABS):
        records.logAccess(patient, rid1, HPAYMT, {"from": insurer})


def test_log_access_under_break_glass(records, consent, anchored, rid1, patient, provider2):
    with reverts_with(RecordRegistry, "NoConsent", patient.address, provider2.address, ETREAT, LABS):
        records.logAccess(patient, rid1, ETREAT, {"from": provider2})
    consent.openBreakGlass(patient, 3600, REASON, {"from": provider2})
    tx = records.logAccess(patient, rid1, ETREAT, {"from": provider2})
    assert tx.events["AccessLogged"]["purpose"] == ETREAT


def test_log_access_roles_and_inputs(records, care, anchored, rid1, patient, insurer, arbiter, stranger,
                                     registrar):
    for account in (arbiter, stranger):
        with reverts_with(RecordRegistry, "NotProviderOrInsurer", account.address):
            records.logAccess(patient, rid1, HPAYMT, {"from": account})
    nope = rid("nope", patient)
    with reverts_with(RecordRegistry, "RecordNotFound", nope):
        records.logAccess(patient, nope, HPAYMT, {"from": insurer})
    with reverts_with(RecordRegistry, "InvalidPurpose", 6):
        records.logAccess(patient, rid1, 6, {"from": insurer})
    care.suspend(insurer, REASON, {"from": registrar})
    with reverts_with(RecordRegistry, "NotProviderOrInsurer", insurer.address):
        records.logAccess(patient, rid1, HPAYMT, {"from": insurer})


def test_log_access_on_an_amended_record(records, anchored, rid1, patient, provider, insurer):
    records.amend(rid1, V1, V2, {"from": provider})
    tx = records.logAccess(patient, rid1, HPAYMT, {"from": insurer})
    assert tx.events["AccessLogged"]["recordId"] == "0x" + rid1.hex()


def test_gas_report(records, rid1, patient, provider, provider2, insurer):
    """Receipts of the hot paths, printed for the report (run with -s)."""
    first = records.anchor(rid("g:0", patient), h("g:0:v1"), LABS, {"from": provider})
    tx = records.anchor(rid1, V1, LABS, {"from": provider})
    by_author = records.amend(rid1, V1, V2, {"from": provider})
    by_other = records.amend(rid1, V2, V3, {"from": provider2})
    by_other2 = records.amend(rid1, V3, h("v4"), {"from": provider})
    log = records.logAccess(patient, rid1, HPAYMT, {"from": insurer})
    print(f"\nGAS anchor(first)={first.gas_used} anchor={tx.gas_used} "
          f"amend(author)={by_author.gas_used} amend(consented)={by_other.gas_used} "
          f"amend(consented, again)={by_other2.gas_used} logAccess={log.gas_used}")
    assert max(first.gas_used, tx.gas_used) <= ANCHOR_GAS_BUDGET
    # Interface 2: every amender pays the same consent lookup, the author included.
    assert abs(by_author.gas_used - by_other.gas_used) < 1_000
