"""The off-chain pipeline end to end: FHIR -> canonical -> sealed -> vault -> content hash."""
import dataclasses
import json

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from medledger import crypto, fhir, merkle, pipeline, record_ids
from medledger.errors import AccountError, DecryptionFailed, FhirInvalid, RecordIdInvalid, RecordTampered
from medledger.pipeline import PreparedRecord, RecordJob, open_record, prepare_batch, prepare_record
from medledger.scopes import DataClass
from medledger.testing import synthetic
from medledger.vault import LocalVault


def _party(label):
    key = keccak(text=f"pipeline test key {label}")
    return Account.from_key(key).address, key


PATIENT, PATIENT_KEY = _party("patient")
DOCTOR, DOCTOR_KEY = _party("doctor")
STRANGER, STRANGER_KEY = _party("stranger")
RECIPIENTS = {PATIENT: crypto.compress_public_key(crypto.public_key_of(PATIENT_KEY)),
              DOCTOR: crypto.public_key_of(DOCTOR_KEY)}


@pytest.fixture
def vault(tmp_path):
    return LocalVault(tmp_path / "vault")


def test_prepare_record_end_to_end(vault):
    bundle = synthetic.patient_bundle(1, PATIENT)
    rec = prepare_record(bundle, patient=PATIENT, recipients=RECIPIENTS, data_class=DataClass.LABS,
                         vault=vault)
    assert isinstance(rec, PreparedRecord) and len(rec.record_id) == 32
    assert (rec.version, rec.patient, rec.data_class) == (1, PATIENT, 4)
    blob = vault.get(rec.vault_id)
    assert rec.content_hash == keccak(blob) and rec.vault_id == "0x" + rec.content_hash.hex()
    assert vault.index.lookup(rec.record_id, 1) == rec.vault_id
    canonical = fhir.canonicalize(bundle)
    assert rec.sha256_plain == fhir.sha256(canonical) and rec.keccak_plain == keccak(canonical)
    assert open_record(vault, rec.content_hash, PATIENT, PATIENT_KEY, expected=rec) == canonical
    assert open_record(vault, rec.vault_id, DOCTOR, DOCTOR_KEY) == canonical
    with pytest.raises(DecryptionFailed):
        open_record(vault, rec.content_hash, STRANGER, STRANGER_KEY)
    envelope = crypto.Envelope.from_bytes(blob)
    assert (envelope.record_id, envelope.version, envelope.patient) == (rec.record_id, 1, PATIENT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.version = 2


def test_blob_and_chain_facing_fields_carry_no_phi(vault):
    bundle = synthetic.patient_bundle(4, PATIENT)
    rec = prepare_record(bundle, patient=PATIENT, recipients=RECIPIENTS, data_class=DataClass.CONDITIONS,
                         vault=vault)
    phi = [v for v in synthetic.phi_fields(bundle).all() if len(v) >= 4]
    assert len(phi) > 15
    canonical = open_record(vault, rec.content_hash, PATIENT, PATIENT_KEY)
    on_chain = rec.leaf(DOCTOR).encode() + rec.record_id + rec.content_hash
    for value in phi:
        assert value.encode() in canonical  # the PHI is really in the record ...
        assert value.encode() not in vault.get(rec.vault_id)  # ... but not in the stored blob
        assert value.encode() not in on_chain and value.encode().hex() not in on_chain.hex()


def test_validation_on_rejects_before_anything_is_stored(vault):
    bad = synthetic.patient_bundle(2, PATIENT)
    bad["entry"][0]["resource"]["birthDate"] = "1980-02-30x"
    with pytest.raises(FhirInvalid, match=r"Bundle\.entry\[0\]\.resource\.birthDate"):
        prepare_record(bad, patient=PATIENT, recipients=RECIPIENTS, data_class=0, vault=vault)
    assert list(vault) == []
    rec = prepare_record(bad, patient=PATIENT, recipients=RECIPIENTS, data_class=0, vault=vault,
                         validate=False)
    assert list(vault) == [rec.vault_id]


def test_r4b_and_json_text_inputs(vault):
    r4b = synthetic.patient_bundle(6, PATIENT, version="R4B")
    rec = prepare_record(json.dumps(r4b, indent=2), patient=PATIENT, recipients=RECIPIENTS, data_class=7,
                         vault=vault, fhir_version="R4B")
    assert rec.keccak_plain == keccak(fhir.canonicalize(r4b))
    with pytest.raises(FhirInvalid):
        prepare_record(r4b, patient=PATIENT, recipients=RECIPIENTS, data_class=7, vault=vault,
                       fhir_version="R5")


def test_bad_inputs(vault):
    bundle = synthetic.patient_bundle(1, PATIENT)
    with pytest.raises(ValueError, match="data class"):
        prepare_record(bundle, patient=PATIENT, recipients=RECIPIENTS, data_class=11, vault=vault)
    with pytest.raises(AccountError, match="patient"):
        prepare_record(bundle, patient=STRANGER, recipients=RECIPIENTS, data_class=1, vault=vault)
    assert list(vault) == []


def test_new_version_keeps_record_id(vault):
    bundle = synthetic.patient_bundle(8, PATIENT)
    v1 = prepare_record(bundle, patient=PATIENT, recipients=RECIPIENTS, data_class=1, vault=vault)
    bundle["entry"][0]["resource"]["telecom"][0]["value"] = "+1-555-555-0100"
    v2 = prepare_record(bundle, patient=PATIENT, recipients={PATIENT: RECIPIENTS[PATIENT]}, data_class=1,
                        vault=vault, version=2, record_id=v1.record_id)
    assert v2.record_id == v1.record_id and v2.content_hash != v1.content_hash
    assert vault.index.lookup(v1.record_id) == v2.vault_id
    with pytest.raises(DecryptionFailed, match="not wrapped"):  # the doctor was not a v2 recipient
        open_record(vault, v2.content_hash, DOCTOR, DOCTOR_KEY)
    with pytest.raises(RecordTampered, match="expected record"):  # v1 bytes presented as v2
        open_record(vault, v1.content_hash, PATIENT, PATIENT_KEY, expected=v2)


def test_batch_on_two_workers_matches_single_path(vault):
    bundles = [synthetic.patient_bundle(seed, PATIENT) for seed in range(12)]
    jobs = [RecordJob(doc=json.dumps(b) if i % 2 else b, patient=PATIENT, recipients=RECIPIENTS,
                      data_class=i % 11, version=1 + i % 3) for i, b in enumerate(bundles * 3)]
    results = prepare_batch(jobs, vault, workers=2, chunksize=5)
    assert len(results) == 36 and len({r.record_id for r in results}) == 36
    assert len({r.content_hash for r in results}) == 36
    for job, rec in zip(jobs, results, strict=True):
        assert (rec.version, rec.data_class) == (job.version, job.data_class)
        plain = open_record(vault, rec.content_hash, DOCTOR, DOCTOR_KEY, expected=rec)
        assert plain == fhir.canonicalize(job.doc)
        assert vault.index.lookup(rec.record_id, rec.version) == rec.vault_id
    assert sorted(vault) == sorted(r.vault_id for r in results)
    tree = merkle.StandardMerkleTree.of_records(r.leaf(DOCTOR) for r in results)
    assert all(merkle.verify(tree.root, results[i].leaf(DOCTOR), tree.get_proof(i)) for i in (0, 17, 35))


def test_batch_validation_failure_propagates_and_indexes_nothing(vault):
    good = synthetic.patient_bundle(1, PATIENT)
    bad = synthetic.patient_bundle(2, PATIENT)
    bad["entry"][0]["resource"]["gender"] = ["female"]
    jobs = [RecordJob(doc=d, patient=PATIENT, recipients=RECIPIENTS, data_class=0)
            for d in [good] * 9 + [bad]]
    with pytest.raises(FhirInvalid, match="gender"):
        prepare_batch(jobs, vault, workers=2, validate=True)
    assert not vault.index.path.exists()


def test_explicit_record_ids_are_used(vault):
    rid = pipeline.new_record_id(PATIENT)
    job = RecordJob(doc=synthetic.patient_bundle(3, PATIENT), patient=PATIENT, recipients=RECIPIENTS,
                    data_class=2, record_id=rid)
    (rec,) = prepare_batch([job], vault)
    assert rec.record_id == rid and pipeline.new_record_id(PATIENT) != rid


def test_record_ids_carry_their_patient(vault):
    """A record id is the patient's address then 12 random bytes; an id of another patient is
    refused before anything is sealed or written."""
    rid = pipeline.new_record_id(PATIENT)
    assert len(rid) == 32 and record_ids.patient_of(rid) == to_checksum_address(PATIENT)
    (rec,) = prepare_batch([RecordJob(doc=synthetic.patient_bundle(4, PATIENT), patient=PATIENT,
                                      recipients=RECIPIENTS, data_class=2)], vault)
    assert record_ids.patient_of(rec.record_id) == to_checksum_address(PATIENT)
    other = "0x" + "11" * 20
    foreign = record_ids.new_record_id(other)
    blobs_before = sorted(p.name for p in vault.directory.rglob("*") if p.is_file())
    with pytest.raises(RecordIdInvalid, match=f"belongs to patient {to_checksum_address(other)}"):
        prepare_batch([RecordJob(doc=synthetic.patient_bundle(5, PATIENT), patient=PATIENT, recipients=RECIPIENTS,
                                 data_class=2, record_id=foreign)], vault)
    with pytest.raises(RecordIdInvalid, match="belongs to patient"):
        prepare_record(synthetic.patient_bundle(5, PATIENT), patient=PATIENT, recipients=RECIPIENTS, data_class=2,
                       vault=vault, record_id=foreign)
    assert sorted(p.name for p in vault.directory.rglob("*") if p.is_file()) == blobs_before
    with pytest.raises(RecordIdInvalid, match="does not start with a patient address"):
        record_ids.require_patient(b"\x00" * 20 + rid[20:], "0x" + "00" * 20)
    assert record_ids.record_id(PATIENT, rid[20:]) == rid
    with pytest.raises(RecordIdInvalid, match="ends in 12 bytes after the patient address, got 32"):
        record_ids.record_id(PATIENT, rid)
