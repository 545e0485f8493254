"""Issue 13, findings 8-12 (ConsentRegistry, RecordRegistry, the SDK's sealing) and the F2 claim of
docs/ADVERSARIAL.md: one regression test per property. Each of them failed on the interface-1
contracts and SDK (the signing helpers read the ABI, so the signed-consent tests ran there too and
failed on their assertions, not on the helper).

Consent set up once per module (`grants`):
  patient -> provider : TREAT on LABS, NOTES
  patient2            : nobody
provider2 is an active provider the patient never consented to; guardian serves patient and patient2.
"""
import json
import os
import subprocess
import sys
import time

import brownie
import pytest
from brownie import ConsentRegistry, RecordRegistry, chain, web3
from eth_account import Account
from support.errors import error_message, reverts_with
from support.escrow import private_key
from support.records import DOC, REASON, h, leaf_args, rid, tagged_twin, tree_of
from support.vocabulary import ETREAT, LABS, NOTES, TREAT, bit

from medledger import contracts as sdk_contracts
from medledger import crypto, eip712
from medledger.accounts import LocalSigner
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.errors import SignatureUsed, VaultError
from medledger.merkle import RecordLeaf
from medledger.records import ReaderDirectory, manifest_bytes

DAY = 24 * 3600
HOUR = 3600


@pytest.fixture(scope="module", autouse=True)
def grants(records, consent, patient, provider):
    consent.grant(patient, provider, bit(TREAT), bit(LABS, NOTES), 0, 0, DOC, {"from": patient})


def _nonce(consent, patient, grantee) -> int:
    """The nonce a signed request must carry: the (patient, grantee) pair's (interface 2)."""
    return consent.nonces(patient, grantee)


def _domain(consent) -> eip712.ConsentDomain:
    _, name, version, chain_id, contract, _, _ = consent.eip712Domain()
    return eip712.ConsentDomain(chain_id, contract, name=name, version=version)


def sign_grant(consent, signer, patient, grantee, *, deadline=None, classes=1 << LABS):
    request = eip712.GrantRequest(
        patient=patient.address, grantee=grantee.address, purposes=bit(TREAT), data_classes=classes, valid_from=0,
        valid_until=0, consent_doc_hash=DOC, signer=signer.address,
        nonce=_nonce(consent, patient, grantee),
        deadline=deadline if deadline is not None else chain.time() + HOUR)
    return request, eip712.sign_grant(private_key(signer), _domain(consent), request)


def relay_grant(consent, request, signature, relayer):
    return consent.grantBySig(request.patient, request.grantee, request.purposes, request.data_classes,
                              request.valid_from, request.valid_until, request.consent_doc_hash, request.signer,
                              request.deadline, signature, {"from": relayer})


def invalid_signature(signer) -> str:
    return error_message(ConsentRegistry, "InvalidSignature", signer.address)


def no_treatment(patient, provider, data_class) -> str:
    return error_message(RecordRegistry, "NoTreatmentRelationship", patient.address, provider.address, data_class)


# --------------------------------------------------------------------------- 8: signed consent


def test_f8_a_direct_grant_and_revoke_void_a_pending_signed_grant(consent, patient, provider2, relayer):
    request, signature = sign_grant(consent, patient, patient, provider2)
    consent.grant(patient, provider2, bit(TREAT), bit(LABS), 0, 0, DOC, {"from": patient})
    consent.revoke(patient, provider2, {"from": patient})
    with brownie.reverts(invalid_signature(patient)):
        relay_grant(consent, request, signature, relayer)
    assert consent.hasConsent(patient, provider2, TREAT, LABS) is False  # the withdrawn consent stays gone


def test_f8_a_signed_revoke_voids_a_pending_signed_grant_of_the_pair(consent, patient, guardian, provider,
                                                                     relayer):
    """The guardian's pending grant dies with the patient's own signed revoke (another signer)."""
    consent.appointGuardian(guardian, {"from": patient})
    grant, grant_sig = sign_grant(consent, guardian, patient, provider, classes=bit(LABS, NOTES))
    revoke = eip712.RevokeRequest(patient.address, provider.address, patient.address,
                                  _nonce(consent, patient, provider), chain.time() + HOUR)
    consent.revokeBySig(patient, provider, patient, revoke.deadline,
                        eip712.sign_revoke(private_key(patient), _domain(consent), revoke), {"from": relayer})
    with brownie.reverts(invalid_signature(guardian)):
        relay_grant(consent, grant, grant_sig, relayer)
    assert consent.hasConsent(patient, provider, TREAT, LABS) is False


def test_f8_a_signer_cancels_its_pending_signature(consent, patient, guardian, provider2, relayer):
    consent.appointGuardian(guardian, {"from": patient})
    request, signature = sign_grant(consent, guardian, patient, provider2)
    tx = consent.cancelSignatures(patient, provider2, {"from": guardian})
    assert tx.events["SignaturesCancelled"]["actor"] == guardian
    assert consent.consentOf(patient, provider2)[0] == 0  # the consent itself is unchanged (none)
    with brownie.reverts(invalid_signature(guardian)):
        relay_grant(consent, request, signature, relayer)
    with reverts_with(ConsentRegistry, "NotPatientOrGuardian", patient.address, relayer.address):
        consent.cancelSignatures(patient, provider2, {"from": relayer})


def test_f8_deadlines_have_an_on_chain_maximum(consent, patient, provider2, relayer):
    far = chain.time() + 30 * DAY
    request, signature = sign_grant(consent, patient, patient, provider2, deadline=far)
    with brownie.reverts():
        relay_grant(consent, request, signature, relayer)
    assert consent.hasConsent(patient, provider2, TREAT, LABS) is False
    assert consent.MAX_SIGNATURE_LIFETIME() == eip712.MAX_SIGNATURE_LIFETIME == 7 * DAY
    request, signature = sign_grant(consent, patient, patient, provider2, deadline=chain.time() + 6 * DAY)
    relay_grant(consent, request, signature, relayer)
    assert consent.hasConsent(patient, provider2, TREAT, LABS) is True


def test_f8_sdk_refuses_to_sign_beyond_the_maximum():
    with pytest.raises(eip712.TypedDataError, match="7 days"):
        eip712.check_deadline(1_000 + 8 * DAY, 1_000)
    eip712.check_deadline(1_000 + 7 * DAY, 1_000)


def test_f8_a_guardians_signatures_for_different_patients_are_independent(
    consent, patient, patient2, guardian, provider2, relayer
):
    consent.appointGuardian(guardian, {"from": patient})
    consent.appointGuardian(guardian, {"from": patient2})
    for_patient = sign_grant(consent, guardian, patient, provider2)  # withheld for now
    for_patient2 = sign_grant(consent, guardian, patient2, provider2)
    relay_grant(consent, *for_patient2, relayer)
    relay_grant(consent, *for_patient, relayer)
    assert consent.hasConsent(patient, provider2, TREAT, LABS) and consent.hasConsent(patient2, provider2, TREAT, LABS)


def test_f8_sdk_cancels_and_refuses_far_deadlines(sdk, consent, patient, provider2):
    """The SDK path a CLI user takes: sign, cancel, and the signed grant no longer relays."""
    chain_, _, consent_sdk = sdk
    signer = LocalSigner(Account.from_key(private_key(patient)))
    with pytest.raises(eip712.TypedDataError, match="7 days"):
        consent_sdk.sign_grant(signer, patient.address, provider2.address, bit(TREAT), bit(LABS),
                               deadline=int(time.time()) + 8 * DAY)
    signed = consent_sdk.sign_grant(signer, patient.address, provider2.address, bit(TREAT), bit(LABS),
                                    deadline=chain.time() + HOUR)
    assert signed.message["nonce"] == consent_sdk.nonce(patient.address, provider2.address)
    consent_sdk.cancel_signatures(signer, patient.address, provider2.address)
    # The SDK's pre-flight check refuses it before sending (nothing reaches the chain); the contract's own
    # refusal of a cancelled signature is test_f8_a_signer_cancels_its_pending_signature.
    with pytest.raises(SignatureUsed, match="already used.*cancelled"):
        consent_sdk.relay(signer, signed)
    assert consent_sdk.consent(patient.address, provider2.address).nonce == 1


# --------------------------------------------------------------------------- 9: break-glass


def test_f9_a_closed_window_stays_closed_until_the_patient_allows_it(consent, patient, guardian, provider2):
    consent.appointGuardian(guardian, {"from": patient})
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})
    consent.closeBreakGlass(patient, provider2, {"from": guardian})
    blocked = error_message(ConsentRegistry, "BreakGlassBlocked", patient.address, provider2.address)
    with brownie.reverts(blocked):
        consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})
    chain.sleep(10 * DAY)
    with brownie.reverts(blocked):
        consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})
    tx = consent.allowBreakGlass(patient, provider2, {"from": patient})
    assert tx.events["BreakGlassAllowed"]["actor"] == patient
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})
    assert consent.hasConsent(patient, provider2, ETREAT, LABS) is True


def test_f9_break_glass_windows_per_period_are_capped(consent, patient, provider2):
    period, cap = consent.BREAK_GLASS_PERIOD(), consent.MAX_BREAK_GLASS_PER_PERIOD()
    assert (period, cap) == (30 * DAY, 3)
    for _ in range(cap):
        consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})
        chain.sleep(HOUR + 1)
    with brownie.reverts():
        consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})
    chain.sleep(period)
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})


def test_f9_break_glass_reads_but_never_writes(consent, records, patient, provider, provider2):
    mine = rid("f9:mine", patient)
    records.anchor(mine, h("f9:mine:v1"), LABS, {"from": provider})
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})
    assert consent.hasConsent(patient, provider2, ETREAT, LABS) is True
    records.logAccess(patient, mine, ETREAT, {"from": provider2})  # emergency reading works
    assert consent.treatingProviderId(patient, provider2, LABS) == 0
    with brownie.reverts(no_treatment(patient, provider2, LABS)):
        records.anchor(rid("f9:new", patient), h("f9:new:v1"), LABS, {"from": provider2})
    with brownie.reverts(no_treatment(patient, provider2, LABS)):
        records.amend(mine, h("f9:mine:v1"), h("f9:mine:v2"), {"from": provider2})
    leaf = RecordLeaf(rid("f9:batched", patient), h("f9:batched:v1"), patient.address, 1, LABS, provider2.address)
    tree = tree_of([leaf, RecordLeaf(rid("f9:other", patient), h("f9:other"), patient.address, 1, LABS,
                                     provider2.address)])
    batch_id = records.anchorBatch(tree.root, 2, DOC, {"from": provider2}).return_value
    with brownie.reverts(no_treatment(patient, provider2, LABS)):
        records.attestBatchRecord(*leaf_args(leaf), tree.get_proof(0), batch_id, {"from": provider2})


def test_f2_after_closing_break_glass_the_provider_cannot_take_the_patients_ids(consent, records, patient,
                                                                                 provider2):
    """docs/ADVERSARIAL.md F2 claims this; it did not hold while break-glass could be reopened at once."""
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})
    consent.closeBreakGlass(patient, provider2, {"from": patient})
    with reverts_with(ConsentRegistry, "BreakGlassBlocked", patient.address, provider2.address):
        consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})
    with brownie.reverts(no_treatment(patient, provider2, NOTES)):
        records.anchor(rid("f2:pending", patient), h("f2:copy"), NOTES, {"from": provider2})


@pytest.fixture
def sdk(care, consent):
    chain_ = Chain(load_settings(rpc=web3.provider.endpoint_uri))
    return (chain_, sdk_contracts.CareRegistry(chain_, care.address),
            sdk_contracts.ConsentRegistry(chain_, consent.address))


def _publish_key(care, account) -> bytes:
    key = crypto.compress_public_key(crypto.public_key_of(bytes.fromhex(private_key(account)[2:])))
    care.publishEncryptionKey(key, {"from": account})
    return key


def test_f9_f11_new_versions_are_sealed_only_for_live_grants(sdk, care, consent, patient, provider, provider2,
                                                              insurer):
    """No standing key through break-glass (9), none for a revoked grantee (11): the patient, the author
    and grantees whose consent is live now."""
    for account in (patient, provider, provider2, insurer):
        _publish_key(care, account)
    consent.grant(patient, insurer, bit(2), bit(LABS), 0, 0, DOC, {"from": patient})  # HPAYMT
    consent.grant(patient, provider2, bit(TREAT), bit(LABS), 0, 0, DOC, {"from": patient})
    consent.revoke(patient, provider2, {"from": patient})
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})  # open right now
    chain_, care_sdk, consent_sdk = sdk
    author_key = care.encryptionKeyOf(provider)
    readers = ReaderDirectory(chain_, care_sdk, consent_sdk).recipients(patient.address, LABS, provider.address,
                                                                        bytes(author_key))
    assert set(readers.addresses) == {patient.address, provider.address, insurer.address}


# --------------------------------------------------------------------------- 10: forged previous hash


def test_f10_a_forged_previous_hash_is_refused_and_every_version_stays_verifiable(records, patient, provider):
    record = rid("f10", patient)
    v1, v2 = h("f10:v1"), h("f10:v2")
    records.anchor(record, v1, LABS, {"from": provider})
    forged = tagged_twin(v1)  # shares the first 20 bytes of v1
    assert records.verify(record, forged)[0] is False
    with reverts_with(RecordRegistry, "VersionNotFound", record, forged):
        records.amend(record, forged, v2, {"from": provider})
    records.amend(record, v1, v2, {"from": provider})
    assert records.verify(record, v1)[:2] == (True, 1) and records.verify(record, v2)[:2] == (True, 2)
    with reverts_with(RecordRegistry, "ContentAlreadyAnchored", record, v1):
        records.amend(record, v2, v1, {"from": provider})
    assert records.verify(record, forged)[0] is False and records.verify(record, tagged_twin(v2))[0] is False


# --------------------------------------------------------------------------- 11: revoked author


def test_f11_a_revoked_author_cannot_amend(consent, records, patient, provider):
    record = rid("f11", patient)
    records.anchor(record, h("f11:v1"), LABS, {"from": provider})
    consent.revoke(patient, provider, {"from": patient})
    with brownie.reverts(no_treatment(patient, provider, LABS)):
        records.amend(record, h("f11:v1"), h("f11:v2"), {"from": provider})
    consent.grant(patient, provider, bit(TREAT), bit(LABS), 0, 0, DOC, {"from": patient})
    records.amend(record, h("f11:v1"), h("f11:v2"), {"from": provider})


def test_f11_record_amend_help_says_consent_is_needed():
    result = subprocess.run([sys.executable, "-m", "medledger", "record", "amend", "--help"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "a revoked author may not amend" in text and "a revoked grantee gets no key" not in text


# --------------------------------------------------------------------------- 12: batch promotion


def _batch(records, provider, leaves):
    tree = tree_of(leaves)
    tx = records.anchorBatch(tree.root, len(leaves), DOC, {"from": provider})
    return tree, tx.return_value, tx


def _leaf(label, patient, provider, version=1):
    return RecordLeaf(rid(label, patient), h(f"{label}:v"), patient.address, version, LABS, provider.address)


def test_f12_promotion_is_dated_when_it_happens_and_only_by_author_or_patient(records, patient, provider,
                                                                               provider2, stranger):
    leaves = [_leaf("f12:a", patient, provider), _leaf("f12:b", patient, provider)]
    tree, batch_id, batch_tx = _batch(records, provider, leaves)
    chain.sleep(DAY)
    for outsider in (stranger, provider2):
        with reverts_with(RecordRegistry, "NotAuthorOrPatient", leaves[0].record_id, outsider.address):
            records.attestBatchRecord(*leaf_args(leaves[0]), tree.get_proof(0), batch_id, {"from": outsider})
    by_patient = records.attestBatchRecord(*leaf_args(leaves[0]), tree.get_proof(0), batch_id, {"from": patient})
    by_author = records.attestBatchRecord(*leaf_args(leaves[1]), tree.get_proof(1), batch_id, {"from": provider})
    batch_time = chain[batch_tx.block_number].timestamp
    for tx, leaf in ((by_patient, leaves[0]), (by_author, leaves[1])):
        anchored_at = records.verify(leaf.record_id, leaf.content_hash)[3]
        assert anchored_at == chain[tx.block_number].timestamp >= batch_time + DAY


def test_f12_promoted_versions_are_bounded(records, patient, provider):
    top = records.MAX_PROMOTED_VERSION()
    assert top == 255
    leaves = [_leaf("f12:max", patient, provider, 65_535), _leaf("f12:ok", patient, provider, top)]
    tree, batch_id, _ = _batch(records, provider, leaves)
    with reverts_with(RecordRegistry, "InvalidVersion", 65_535):
        records.attestBatchRecord(*leaf_args(leaves[0]), tree.get_proof(0), batch_id, {"from": provider})
    records.attestBatchRecord(*leaf_args(leaves[1]), tree.get_proof(1), batch_id, {"from": provider})
    tx = records.amend(leaves[1].record_id, leaves[1].content_hash, h("f12:ok:next"), {"from": provider})
    assert tx.return_value == top + 1  # a promoted record can still be amended


def test_f12_a_manifest_holds_one_leaf_per_record_id(patient, provider):
    one = _leaf("f12:dup", patient, provider)
    variant = RecordLeaf(one.record_id, h("f12:dup:variant"), one.patient, 1, NOTES, one.author)
    with pytest.raises(VaultError, match="twice"):
        manifest_bytes(1337, provider.address, provider.address, tree_of([one, variant]))
    doc = json.loads(manifest_bytes(1337, provider.address, provider.address,
                                    tree_of([one, _leaf("f12:dup2", patient, provider)])))
    assert doc["count"] == 2


# --------------------------------------------------------------------------- interface revision


def test_interface_versions(care, consent, records):
    assert records.version() == 2
    assert consent.version() == 3  # home-account keys (issue 18); break-glass on every bit (issue 14)
    assert care.version() == 4  # issue 18 item 3: account migration (3: separated powers, arbiters per insurer)
    assert consent.eip712Domain()[2] == eip712.DOMAIN_VERSION == "2"  # v3 signs exactly as v2
