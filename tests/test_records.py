"""RecordRegistry: single anchors, amendments, verification views and access logging.

Consent set up once per module (see `grants`):
  patient -> provider : TREAT on LABS, NOTES, GENOMICS (no expiry)
  patient -> provider2: TREAT on LABS
  patient -> insurer  : HPAYMT on LABS, BILLING; TREAT on LABS (an insurer with TREAT still may not anchor)
  patient2            : nobody
"""
import brownie
import pytest
from brownie import ZERO_ADDRESS, RecordRegistry, chain, web3
from conftest import custom_error
from support.records import (
    ANCHOR_GAS_BUDGET,
    BILLING,
    DOC,
    ETREAT,
    GENOMICS,
    HPAYMT,
    IMAGING,
    LABS,
    MENTAL_HEALTH,
    NOTES,
    REASON,
    TREAT,
    ZERO32,
    bit,
    h,
    tagged_twin,
)

RID = h("record:1")
V1 = h("record:1:v1")
V2 = h("record:1:v2")
V3 = h("record:1:v3")


@pytest.fixture(scope="module", autouse=True)
def grants(records, consent, patient, provider, provider2, insurer):
    consent.grant(patient, provider, bit(TREAT), bit(LABS, NOTES, GENOMICS), 0, 0, DOC, {"from": patient})
    consent.grant(patient, provider2, bit(TREAT), bit(LABS), 0, 0, DOC, {"from": patient})
    consent.grant(patient, insurer, bit(TREAT, HPAYMT), bit(LABS, BILLING), 0, 0, DOC, {"from": patient})


@pytest.fixture
def anchored(records, patient, provider):
    """RID v1 (LABS) anchored by `provider`; returns the transaction."""
    return records.anchor(RID, patient, V1, LABS, {"from": provider})


def block_time(tx) -> int:
    return chain[tx.block_number].timestamp


# --------------------------------------------------------------------------- deployment


def test_deployment(records, care, consent):
    assert records.registry() == care
    assert records.consent() == consent
    assert records.MAX_PROOF_LENGTH() == 32


def test_constructor_rejects_zero_addresses(care, consent, admin):
    with brownie.reverts(custom_error("ZeroAddress()")):
        RecordRegistry.deploy(ZERO_ADDRESS, consent, {"from": admin})
    with brownie.reverts(custom_error("ZeroAddress()")):
        RecordRegistry.deploy(care, ZERO_ADDRESS, {"from": admin})


# --------------------------------------------------------------------------- anchor


def test_anchor_records_version_one(records, patient, provider):
    tx = records.anchor(RID, patient, V1, LABS, {"from": provider})
    assert tx.events["RecordAnchored"] == {
        "recordId": "0x" + RID.hex(),
        "patient": patient,
        "author": provider,
        "contentHash": "0x" + V1.hex(),
        "dataClass": LABS,
    }
    now = block_time(tx)
    assert records.verify(RID, V1) == (True, 1, provider, now, True)
    assert records.recordInfo(RID, V1) == (provider, 1, LABS, now, True)
    tag, info = records.latestOf(RID)
    assert tag == "0x" + V1[:20].hex()
    assert info == (provider, 1, LABS, now, True)


def test_first_anchor_enrolls_the_author_once(records, patient, provider):
    assert records.authorIdOf(provider) == 0
    tx = records.anchor(RID, patient, V1, LABS, {"from": provider})
    assert tx.events["AuthorEnrolled"] == {"author": provider, "authorId": 1}
    assert records.authorIdOf(provider) == 1
    assert records.authorOf(1) == provider
    tx = records.anchor(h("record:2"), patient, h("record:2:v1"), NOTES, {"from": provider})
    assert "AuthorEnrolled" not in tx.events
    assert records.authorOf(2) == ZERO_ADDRESS


def test_anchor_gas_budget(records, patient, provider):
    records.anchor(h("warm-up"), patient, h("warm-up:v1"), LABS, {"from": provider})  # enrols provider
    tx = records.anchor(RID, patient, V1, LABS, {"from": provider})
    print(f"anchor gas: {tx.gas_used}")
    assert tx.gas_used <= ANCHOR_GAS_BUDGET


def test_unregistered_account_cannot_anchor(records, patient, stranger):
    with brownie.reverts(custom_error("NotActiveProvider(address)", stranger.address)):
        records.anchor(RID, patient, V1, LABS, {"from": stranger})


def test_insurer_cannot_anchor_even_with_treat_consent(records, consent, patient, insurer):
    assert consent.hasConsent(patient, insurer, TREAT, LABS)
    with brownie.reverts(custom_error("NotActiveProvider(address)", insurer.address)):
        records.anchor(RID, patient, V1, LABS, {"from": insurer})


def test_arbiter_cannot_anchor(records, patient, arbiter):
    with brownie.reverts(custom_error("NotActiveProvider(address)", arbiter.address)):
        records.anchor(RID, patient, V1, LABS, {"from": arbiter})


def test_suspended_provider_cannot_anchor(records, care, patient, provider, registrar):
    care.suspend(provider, REASON, {"from": registrar})
    with brownie.reverts(custom_error("NotActiveProvider(address)", provider.address)):
        records.anchor(RID, patient, V1, LABS, {"from": provider})


def test_suspended_enrolled_provider_cannot_anchor(records, care, patient, provider, registrar):
    """An enrolled author skips the registry call on the hot path; suspension must still bite."""
    records.anchor(h("record:0"), patient, h("record:0:v1"), LABS, {"from": provider})
    care.suspend(provider, REASON, {"from": registrar})
    with brownie.reverts(custom_error("NotActiveProvider(address)", provider.address)):
        records.anchor(RID, patient, V1, LABS, {"from": provider})
    care.reinstate(provider, {"from": registrar})
    records.anchor(RID, patient, V1, LABS, {"from": provider})
    assert records.verify(RID, V1)[0]


def test_anchor_needs_consent_of_that_patient(records, patient2, provider):
    with brownie.reverts(custom_error("NoTreatmentRelationship(address,address,uint8)", patient2.address,
                                      provider.address, LABS)):
        records.anchor(RID, patient2, V1, LABS, {"from": provider})


def test_anchor_needs_consent_for_that_data_class(records, patient, provider2):
    with brownie.reverts(custom_error("NoTreatmentRelationship(address,address,uint8)", patient.address,
                                      provider2.address, NOTES)):
        records.anchor(RID, patient, V1, NOTES, {"from": provider2})


def test_anchor_needs_treat_purpose(records, consent, patient2, provider):
    consent.grant(patient2, provider, bit(HPAYMT), bit(LABS), 0, 0, DOC, {"from": patient2})
    with brownie.reverts(custom_error("NoTreatmentRelationship(address,address,uint8)", patient2.address,
                                      provider.address, LABS)):
        records.anchor(RID, patient2, V1, LABS, {"from": provider})


def test_expired_consent_cannot_anchor(records, consent, patient2, provider):
    valid_until = chain.time() + 3600
    consent.grant(patient2, provider, bit(TREAT), bit(LABS), 0, valid_until, DOC, {"from": patient2})
    records.anchor(RID, patient2, V1, LABS, {"from": provider})
    chain.mine(timestamp=valid_until)
    with brownie.reverts(custom_error("NoTreatmentRelationship(address,address,uint8)", patient2.address,
                                      provider.address, LABS)):
        records.anchor(h("record:2"), patient2, h("record:2:v1"), LABS, {"from": provider})


def test_revoked_consent_cannot_anchor(records, consent, patient, provider2):
    consent.revoke(patient, provider2, {"from": patient})
    with brownie.reverts(custom_error("NoTreatmentRelationship(address,address,uint8)", patient.address,
                                      provider2.address, LABS)):
        records.anchor(RID, patient, V1, LABS, {"from": provider2})


def test_break_glass_allows_anchoring(records, consent, patient2, provider2):
    consent.openBreakGlass(patient2, 3600, REASON, {"from": provider2})
    tx = records.anchor(RID, patient2, V1, IMAGING, {"from": provider2})
    assert tx.events["RecordAnchored"]["author"] == provider2
    assert records.verify(RID, V1)[:3] == (True, 1, provider2)


def test_break_glass_never_covers_sensitive_classes(records, consent, patient2, provider2):
    consent.openBreakGlass(patient2, 3600, REASON, {"from": provider2})
    with brownie.reverts(custom_error("NoTreatmentRelationship(address,address,uint8)", patient2.address,
                                      provider2.address, MENTAL_HEALTH)):
        records.anchor(RID, patient2, V1, MENTAL_HEALTH, {"from": provider2})


def test_break_glass_ends(records, consent, patient2, provider2):
    consent.openBreakGlass(patient2, 3600, REASON, {"from": provider2})
    expires_at = consent.breakGlassOf(patient2, provider2)[1]
    chain.mine(timestamp=expires_at)
    with brownie.reverts(custom_error("NoTreatmentRelationship(address,address,uint8)", patient2.address,
                                      provider2.address, LABS)):
        records.anchor(RID, patient2, V1, LABS, {"from": provider2})


def test_sensitive_class_with_explicit_consent(records, patient, provider):
    records.anchor(RID, patient, V1, GENOMICS, {"from": provider})
    assert records.recordInfo(RID, V1)[2] == GENOMICS


def test_record_ids_are_unique(records, anchored, patient, provider, provider2):
    error = custom_error("RecordAlreadyAnchored(bytes32)", RID)
    with brownie.reverts(error):
        records.anchor(RID, patient, V1, LABS, {"from": provider})  # same content
    with brownie.reverts(error):
        records.anchor(RID, patient, V2, LABS, {"from": provider})  # other content
    with brownie.reverts(error):
        records.anchor(RID, patient, V2, LABS, {"from": provider2})  # other provider
    assert records.verify(RID, V2)[0] is False


def test_anchor_validates_input(records, patient, provider):
    with brownie.reverts(custom_error("EmptyRecordId()")):
        records.anchor(ZERO32, patient, V1, LABS, {"from": provider})
    with brownie.reverts(custom_error("EmptyContentHash()")):
        records.anchor(RID, patient, ZERO32, LABS, {"from": provider})
    with brownie.reverts(custom_error("InvalidDataClass(uint8)", 11)):
        records.anchor(RID, patient, V1, 11, {"from": provider})


# --------------------------------------------------------------------------- amend


def test_amend_by_author(records, anchored, patient, provider):
    t1 = block_time(anchored)
    chain.sleep(60)
    tx = records.amend(RID, patient, V1, V2, {"from": provider})
    assert tx.return_value == 2
    assert tx.events["RecordAmended"] == {
        "recordId": "0x" + RID.hex(),
        "patient": patient,
        "author": provider,
        "previousContentHash": "0x" + V1.hex(),
        "contentHash": "0x" + V2.hex(),
        "version": 2,
    }
    t2 = block_time(tx)
    assert t2 > t1
    # The old version stays verifiable, with its own metadata, marked not latest.
    assert records.verify(RID, V1) == (True, 1, provider, t1, False)
    assert records.verify(RID, V2) == (True, 2, provider, t2, True)
    tag, info = records.latestOf(RID)
    assert tag == "0x" + V2[:20].hex()
    assert info == (provider, 2, LABS, t2, True)


def test_author_may_amend_without_current_consent(records, consent, anchored, patient, provider):
    consent.revoke(patient, provider, {"from": patient})
    records.amend(RID, patient, V1, V2, {"from": provider})
    assert records.verify(RID, V2)[:3] == (True, 2, provider)


def test_amend_by_consented_other_provider(records, anchored, patient, provider, provider2):
    tx = records.amend(RID, patient, V1, V2, {"from": provider2})
    assert tx.events["RecordAmended"]["author"] == provider2
    assert tx.events["AuthorEnrolled"]["author"] == provider2
    assert records.verify(RID, V1)[:3] == (True, 1, provider)
    assert records.verify(RID, V2)[:3] == (True, 2, provider2)


def test_amend_by_unconsented_provider(records, consent, anchored, patient, provider2):
    consent.revoke(patient, provider2, {"from": patient})
    with brownie.reverts(custom_error("NotAuthorOrConsented(bytes32,address,address)", RID, patient.address,
                                      provider2.address)):
        records.amend(RID, patient, V1, V2, {"from": provider2})


def test_amend_consent_must_be_treat_for_the_record_class(records, consent, patient, provider, provider2):
    records.anchor(RID, patient, V1, NOTES, {"from": provider})  # provider2 is consented for LABS only
    with brownie.reverts(custom_error("NotAuthorOrConsented(bytes32,address,address)", RID, patient.address,
                                      provider2.address)):
        records.amend(RID, patient, V1, V2, {"from": provider2})


def test_break_glass_does_not_allow_amending_others_records(records, consent, patient, provider, provider2):
    records.anchor(RID, patient, V1, NOTES, {"from": provider})
    consent.openBreakGlass(patient, 3600, REASON, {"from": provider2})
    with brownie.reverts(custom_error("NotAuthorOrConsented(bytes32,address,address)", RID, patient.address,
                                      provider2.address)):
        records.amend(RID, patient, V1, V2, {"from": provider2})


def test_author_privilege_is_for_the_version_being_amended(records, consent, anchored, patient, provider,
                                                           provider2):
    """After provider2 amends, provider is no longer the author of the latest version: it needs consent."""
    records.amend(RID, patient, V1, V2, {"from": provider2})
    consent.revoke(patient, provider, {"from": patient})
    with brownie.reverts(custom_error("NotAuthorOrConsented(bytes32,address,address)", RID, patient.address,
                                      provider.address)):
        records.amend(RID, patient, V2, V3, {"from": provider})


def test_insurer_and_strangers_cannot_amend(records, anchored, patient, insurer, stranger):
    for account in (insurer, stranger):
        with brownie.reverts(custom_error("NotActiveProvider(address)", account.address)):
            records.amend(RID, patient, V1, V2, {"from": account})


def test_suspended_author_cannot_amend(records, care, anchored, patient, provider, registrar):
    care.suspend(provider, REASON, {"from": registrar})
    with brownie.reverts(custom_error("NotActiveProvider(address)", provider.address)):
        records.amend(RID, patient, V1, V2, {"from": provider})


def test_amending_a_superseded_version_reverts(records, anchored, patient, provider, provider2):
    records.amend(RID, patient, V1, V2, {"from": provider})
    for account in (provider, provider2):
        with brownie.reverts(custom_error("VersionSuperseded(bytes32,bytes32)", RID, V1)):
            records.amend(RID, patient, V1, V3, {"from": account})
    records.amend(RID, patient, V2, V3, {"from": provider2})
    for old in (V1, V2):
        with brownie.reverts(custom_error("VersionSuperseded(bytes32,bytes32)", RID, old)):
            records.amend(RID, patient, old, h("fork"), {"from": provider})
    assert [records.verify(RID, v)[4] for v in (V1, V2, V3)] == [False, False, True]


def test_amend_validates_versions(records, anchored, patient, provider):
    with brownie.reverts(custom_error("RecordNotFound(bytes32)", h("nope"))):
        records.amend(h("nope"), patient, V1, V2, {"from": provider})
    with brownie.reverts(custom_error("VersionNotFound(bytes32,bytes32)", RID, V3)):
        records.amend(RID, patient, V3, V2, {"from": provider})
    with brownie.reverts(custom_error("EmptyContentHash()")):
        records.amend(RID, patient, V1, ZERO32, {"from": provider})
    with brownie.reverts(custom_error("ContentAlreadyAnchored(bytes32,bytes32)", RID, V1)):
        records.amend(RID, patient, V1, V1, {"from": provider})
    records.amend(RID, patient, V1, V2, {"from": provider})
    with brownie.reverts(custom_error("ContentAlreadyAnchored(bytes32,bytes32)", RID, V1)):
        records.amend(RID, patient, V2, V1, {"from": provider})  # back to an old version


def test_history_is_reconstructible_from_events(records, anchored, patient, provider, provider2):
    hashes = [V1, V2, V3, h("record:1:v4")]
    steps = [(V1, V2, provider2), (V2, V3, provider), (V3, hashes[3], provider2)]
    for prev, new, who in steps:
        records.amend(RID, patient, prev, new, {"from": who})
    # Every version event of the record is found through the indexed recordId topic alone.
    by_topic = web3.eth.get_logs({"address": records.address, "fromBlock": anchored.block_number,
                                  "topics": [None, "0x" + RID.hex()]})
    assert len(by_topic) == 4  # RecordAnchored + 3 x RecordAmended
    amended = web3.eth.contract(address=records.address, abi=records.abi).events.RecordAmended()
    history = [amended.process_log(log).args for log in by_topic[1:]]
    assert [(e.previousContentHash, e.contentHash, e.version, e.author) for e in history] == [
        (prev, new, version, who.address) for version, (prev, new, who) in enumerate(steps, start=2)
    ]
    assert [records.verify(RID, v)[1] for v in hashes] == [1, 2, 3, 4]
    assert [records.verify(RID, v)[4] for v in hashes] == [False, False, False, True]


# --------------------------------------------------------------------------- verify views


def test_verify_unknown(records, anchored):
    assert records.verify(h("nope"), V1) == (False, 0, ZERO_ADDRESS, 0, False)
    assert records.verify(RID, V2) == (False, 0, ZERO_ADDRESS, 0, False)
    assert records.verify(RID, ZERO32) == (False, 0, ZERO_ADDRESS, 0, False)
    assert records.recordInfo(RID, V2) == (ZERO_ADDRESS, 0, 0, 0, False)
    assert records.latestOf(h("nope")) == ("0x" + "00" * 20, (ZERO_ADDRESS, 0, 0, 0, False))


def test_latest_version_matches_on_its_160_bit_tag(records, anchored, patient, provider):
    """Documented trade-off (docs/RECORDS.md): the latest version is stored as the first 20 bytes of
    its hash, so a hash agreeing on those 160 bits verifies; a superseded version needs all 256."""
    assert records.verify(RID, tagged_twin(V1))[0] is True
    records.amend(RID, patient, V1, V2, {"from": provider})
    assert records.verify(RID, V1)[0] is True
    assert records.verify(RID, tagged_twin(V1))[0] is False


# --------------------------------------------------------------------------- access log


def test_log_access_with_consent(records, anchored, patient, insurer):
    tx = records.logAccess(patient, RID, HPAYMT, {"from": insurer})
    assert tx.events["AccessLogged"] == {
        "recordId": "0x" + RID.hex(), "patient": patient, "accessor": insurer, "purpose": HPAYMT,
    }
    assert len(tx.events) == 1
    print(f"logAccess gas: {tx.gas_used}")


def test_log_access_by_provider(records, anchored, patient, provider2):
    tx = records.logAccess(patient, RID, TREAT, {"from": provider2})
    assert tx.events["AccessLogged"]["accessor"] == provider2


def test_log_access_without_consent(records, anchored, patient, patient2, insurer, provider2):
    with brownie.reverts(custom_error("NoConsent(address,address,uint8,uint8)", patient.address,
                                      insurer.address, ETREAT, LABS)):
        records.logAccess(patient, RID, ETREAT, {"from": insurer})
    with brownie.reverts(custom_error("NoConsent(address,address,uint8,uint8)", patient2.address,
                                      insurer.address, HPAYMT, LABS)):
        records.logAccess(patient2, RID, HPAYMT, {"from": insurer})
    with brownie.reverts(custom_error("NoConsent(address,address,uint8,uint8)", patient.address,
                                      provider2.address, HPAYMT, LABS)):
        records.logAccess(patient, RID, HPAYMT, {"from": provider2})


def test_log_access_uses_the_record_data_class(records, patient, provider, insurer):
    records.anchor(RID, patient, V1, NOTES, {"from": provider})  # insurer holds HPAYMT on LABS, BILLING only
    with brownie.reverts(custom_error("NoConsent(address,address,uint8,uint8)", patient.address,
                                      insurer.address, HPAYMT, NOTES)):
        records.logAccess(patient, RID, HPAYMT, {"from": insurer})


def test_log_access_after_consent_expiry(records, consent, anchored, patient, insurer):
    valid_until = chain.time() + 3600
    consent.grant(patient, insurer, bit(HPAYMT), bit(LABS), 0, valid_until, DOC, {"from": patient})
    records.logAccess(patient, RID, HPAYMT, {"from": insurer})
    chain.mine(timestamp=valid_until)
    with brownie.reverts(custom_error("NoConsent(address,address,uint8,uint8)", patient.address,
                                      insurer.address, HPAYMT, LABS)):
        records.logAccess(patient, RID, HPAYMT, {"from": insurer})


def test_log_access_under_break_glass(records, consent, anchored, patient, provider2):
    with brownie.reverts(custom_error("NoConsent(address,address,uint8,uint8)", patient.address,
                                      provider2.address, ETREAT, LABS)):
        records.logAccess(patient, RID, ETREAT, {"from": provider2})
    consent.openBreakGlass(patient, 3600, REASON, {"from": provider2})
    tx = records.logAccess(patient, RID, ETREAT, {"from": provider2})
    assert tx.events["AccessLogged"]["purpose"] == ETREAT


def test_log_access_roles_and_inputs(records, care, anchored, patient, insurer, arbiter, stranger, registrar):
    for account in (arbiter, stranger):
        with brownie.reverts(custom_error("NotProviderOrInsurer(address)", account.address)):
            records.logAccess(patient, RID, HPAYMT, {"from": account})
    with brownie.reverts(custom_error("RecordNotFound(bytes32)", h("nope"))):
        records.logAccess(patient, h("nope"), HPAYMT, {"from": insurer})
    with brownie.reverts(custom_error("InvalidPurpose(uint8)", 6)):
        records.logAccess(patient, RID, 6, {"from": insurer})
    care.suspend(insurer, REASON, {"from": registrar})
    with brownie.reverts(custom_error("NotProviderOrInsurer(address)", insurer.address)):
        records.logAccess(patient, RID, HPAYMT, {"from": insurer})


def test_log_access_on_an_amended_record(records, anchored, patient, provider, insurer):
    records.amend(RID, patient, V1, V2, {"from": provider})
    tx = records.logAccess(patient, RID, HPAYMT, {"from": insurer})
    assert tx.events["AccessLogged"]["recordId"] == "0x" + RID.hex()


def test_gas_report(records, patient, provider, provider2, insurer):
    """Receipts of the hot paths, printed for the report (run with -s)."""
    first = records.anchor(h("g:0"), patient, h("g:0:v1"), LABS, {"from": provider})
    tx = records.anchor(RID, patient, V1, LABS, {"from": provider})
    by_author = records.amend(RID, patient, V1, V2, {"from": provider})
    by_other = records.amend(RID, patient, V2, V3, {"from": provider2})  # provider2 enrols here
    by_other2 = records.amend(RID, patient, V3, h("v4"), {"from": provider})
    log = records.logAccess(patient, RID, HPAYMT, {"from": insurer})
    print(f"\nGAS anchor(first, enrols)={first.gas_used} anchor={tx.gas_used} "
          f"amend(author)={by_author.gas_used} amend(consented, enrols)={by_other.gas_used} "
          f"amend(consented)={by_other2.gas_used} logAccess={log.gas_used}")
    assert tx.gas_used < first.gas_used
    assert tx.gas_used <= ANCHOR_GAS_BUDGET
