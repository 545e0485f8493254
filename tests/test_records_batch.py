"""RecordRegistry: Merkle batches (OpenZeppelin StandardMerkleTree leaves built with medledger.merkle),
promotion of batched records to regular anchors, and access-log batches.

Record ids carry their patient (`rid`): promotion checks a leaf's patient against its id's prefix, while
verifyInBatch stays pure inclusion.

Consent set up once per module (see `grants`): patient -> provider and patient -> provider2: TREAT on every
data class; patient2 consents to nobody.
"""
import random
from dataclasses import replace

import brownie
import pytest
from brownie import RecordRegistry, chain
from brownie.test import given
from eth_utils import keccak
from hypothesis import example, settings
from hypothesis import strategies as st
from support.errors import error_message, reverts_with
from support.records import (
    BATCH_GAS_BUDGET,
    DOC,
    MAX_PROOF_LENGTH,
    REASON,
    UINT16_MAX,
    ZERO32,
    ZERO_ADDRESS,
    h,
    leaf_args,
    random_leaves,
    rid,
    stored_head,
    tree_of,
)
from support.vocabulary import ALL_CLASSES, HPAYMT, LABS, NOTES, TREAT, bit

from medledger.merkle import RecordLeaf, process_proof

RECORDS, ACCESS_LOG = 1, 2
MANIFEST = keccak(text="manifest:batch-1")


@pytest.fixture(scope="module", autouse=True)
def grants(records, consent, patient, provider, provider2, insurer):
    for grantee in (provider, provider2):
        consent.grant(patient, grantee, bit(TREAT), ALL_CLASSES, 0, 0, DOC, {"from": patient})
    consent.grant(patient, insurer, bit(HPAYMT), ALL_CLASSES, 0, 0, DOC, {"from": patient})


@pytest.fixture(scope="module")
def thousand_leaf_batch(patient, patient2, provider):
    """1,000 leaves by `provider` over two patients, and their tree."""
    leaves = random_leaves(random.Random(1000), 1000, [patient.address, patient2.address], provider.address)
    return leaves, tree_of(leaves)


def leaf(record: str, patient, author, version: int = 1, data_class: int = LABS) -> RecordLeaf:
    return RecordLeaf(rid(f"{record}:id", patient), h(f"{record}:v{version}"), patient.address, version,
                      data_class, author.address)


def anchor_tree(records, leaves, provider):
    """Anchors a tree of `leaves` by `provider`; returns (tree, batchId, tx)."""
    tree = tree_of(leaves)
    tx = records.anchorBatch(tree.root, len(leaves), MANIFEST, {"from": provider})
    return tree, tx.return_value, tx


# --------------------------------------------------------------------------- anchorBatch


def test_batch_of_1000_leaves(records, thousand_leaf_batch, provider):
    leaves, tree = thousand_leaf_batch
    tx = records.anchorBatch(tree.root, 1000, MANIFEST, {"from": provider})
    batch_id = tx.return_value
    assert batch_id == records.batchIdOf(provider, tree.root)
    encoded = bytes(12) + bytes.fromhex(provider.address[2:]) + tree.root  # abi.encode(provider, root)
    assert batch_id == int.from_bytes(keccak(encoded), "big")
    assert tx.events["BatchAnchored"] == {
        "batchId": batch_id, "provider": provider, "root": "0x" + tree.root.hex(), "count": 1000,
        "manifestHash": "0x" + MANIFEST.hex(),
    }
    assert records.batchOf(batch_id) == (provider, 1000, chain[tx.block_number].timestamp, RECORDS)
    print(f"anchorBatch(N=1000) gas: {tx.gas_used}")
    assert tx.gas_used <= BATCH_GAS_BUDGET

    sample = [0, 1, 499, 998, 999] + random.Random(7).sample(range(1000), 35)
    for i in sample:
        proof = tree.get_proof(leaves[i])
        assert tree.verify(leaves[i], proof)  # the Python side agrees with...
        assert records.verifyInBatch(*leaf_args(leaves[i]), proof, batch_id)  # ...the contract


def test_attest_gas_in_a_1000_leaf_batch(records, thousand_leaf_batch, patient, provider, stranger):
    leaves, tree = thousand_leaf_batch
    batch_id = records.anchorBatch(tree.root, 1000, MANIFEST, {"from": provider}).return_value
    target = next(x for x in leaves if x.patient == patient.address)
    assert records.patientOf(target.record_id) == patient
    tx = records.attestBatchRecord(*leaf_args(target), tree.get_proof(target), batch_id, {"from": patient})
    print(f"attestBatchRecord(N=1000) gas: {tx.gas_used}")
    assert records.verify(target.record_id, target.content_hash)[:3] == (True, target.version, provider)


def test_tampered_leaf_is_rejected(records, thousand_leaf_batch, provider, provider2, patient2):
    leaves, tree = thousand_leaf_batch
    batch_id = records.anchorBatch(tree.root, 1000, MANIFEST, {"from": provider}).return_value
    good = leaves[123]
    proof = tree.get_proof(good)
    assert records.verifyInBatch(*leaf_args(good), proof, batch_id)
    other_patient = patient2.address if good.patient != patient2.address else provider2.address
    tampered = [
        replace(good, record_id=rid("other-id", good.patient)),
        replace(good, content_hash=h("other-content")),
        replace(good, patient=other_patient),
        replace(good, version=good.version + 1),
        replace(good, data_class=(good.data_class + 1) % 11),
        replace(good, author=provider2.address),
    ]
    for bad in tampered:
        assert not records.verifyInBatch(*leaf_args(bad), proof, batch_id)


def test_wrong_proof_or_batch_is_rejected(records, thousand_leaf_batch, provider):
    leaves, tree = thousand_leaf_batch
    batch_id = records.anchorBatch(tree.root, 1000, MANIFEST, {"from": provider}).return_value
    good = leaves[5]
    proof = tree.get_proof(good)
    assert not records.verifyInBatch(*leaf_args(good), tree.get_proof(leaves[6]), batch_id)
    assert not records.verifyInBatch(*leaf_args(good), [], batch_id)
    assert not records.verifyInBatch(*leaf_args(good), proof[:-1], batch_id)
    assert not records.verifyInBatch(*leaf_args(good), proof, batch_id + 1)
    assert not records.verifyInBatch(*leaf_args(good), proof, 0)


def test_single_leaf_batch(records, patient, provider):
    only = leaf("single", patient, provider)
    tree, batch_id, _ = anchor_tree(records, [only], provider)
    assert tree.root == only.hash
    assert records.verifyInBatch(*leaf_args(only), [], batch_id)


def test_author_in_leaf_must_be_the_batch_provider(records, patient, provider, provider2):
    leaves = random_leaves(random.Random(3), 20, [patient.address], provider.address)
    leaves += random_leaves(random.Random(4), 20, [patient.address], provider2.address)
    tree, by_provider, _ = anchor_tree(records, leaves, provider)
    by_provider2 = records.anchorBatch(tree.root, 40, MANIFEST, {"from": provider2}).return_value  # same root
    assert by_provider != by_provider2
    for record_leaf in (leaves[0], leaves[25]):
        proof = tree.get_proof(record_leaf)
        mine = by_provider if record_leaf.author == provider.address else by_provider2
        theirs = by_provider2 if mine == by_provider else by_provider
        assert records.verifyInBatch(*leaf_args(record_leaf), proof, mine)
        assert not records.verifyInBatch(*leaf_args(record_leaf), proof, theirs)


def test_oversized_proof(records, patient, provider, stranger):
    """A proof of 32 siblings verifies; 33 never does (verifyInBatch: false, attest: revert), even
    when the hashing is consistent with the anchored root."""
    target = leaf("deep", patient, provider)
    siblings = [keccak(text=f"sibling:{i}") for i in range(33)]
    root32 = process_proof(target.hash, siblings[:32])
    root33 = process_proof(target.hash, siblings)
    id32 = records.anchorBatch(root32, 2**32 - 1, MANIFEST, {"from": provider}).return_value
    id33 = records.anchorBatch(root33, 2**32 - 1, MANIFEST, {"from": provider}).return_value
    assert records.verifyInBatch(*leaf_args(target), siblings[:32], id32)
    assert not records.verifyInBatch(*leaf_args(target), siblings, id33)
    with reverts_with(RecordRegistry, "ProofTooLong", 33, MAX_PROOF_LENGTH):
        records.attestBatchRecord(*leaf_args(target), siblings, id33, {"from": patient})
    records.attestBatchRecord(*leaf_args(target), siblings[:32], id32, {"from": patient})
    assert records.verify(target.record_id, target.content_hash)[0]


def test_batch_with_zero_leaves_or_zero_root(records, provider):
    root = keccak(text="root")
    with reverts_with(RecordRegistry, "InvalidBatch", root, 0):
        records.anchorBatch(root, 0, MANIFEST, {"from": provider})
    with reverts_with(RecordRegistry, "InvalidBatch", ZERO32, 5):
        records.anchorBatch(ZERO32, 5, MANIFEST, {"from": provider})


def test_batch_root_once_per_provider(records, provider):
    root = keccak(text="root")
    batch_id = records.anchorBatch(root, 3, MANIFEST, {"from": provider}).return_value
    with reverts_with(RecordRegistry, "BatchAlreadyAnchored", batch_id):
        records.anchorBatch(root, 3, MANIFEST, {"from": provider})


def test_only_active_providers_anchor_batches(records, care, provider, insurer, arbiter, stranger, registrar):
    root = keccak(text="root")
    for account in (insurer, arbiter, stranger):
        with reverts_with(RecordRegistry, "NotActiveProvider", account.address):
            records.anchorBatch(root, 3, MANIFEST, {"from": account})
    care.suspend(provider, REASON, {"from": registrar})
    with reverts_with(RecordRegistry, "NotActiveProvider", provider.address):
        records.anchorBatch(root, 3, MANIFEST, {"from": provider})


def test_batch_needs_no_patient_consent(records, patient2, provider, stranger):
    """A batch only proves existence and integrity; the consent check happens on promotion."""
    unconsented = leaf("no-consent", patient2, provider)
    tree, batch_id, _ = anchor_tree(records, [unconsented, leaf("other", patient2, provider)], provider)
    assert records.verifyInBatch(*leaf_args(unconsented), tree.get_proof(unconsented), batch_id)
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient2.address, provider.address, LABS):
        records.attestBatchRecord(*leaf_args(unconsented), tree.get_proof(unconsented), batch_id,
                                  {"from": patient2})


# --------------------------------------------------------------------------- attestBatchRecord


def test_attest_promotes_a_batched_record(records, patient, provider, stranger):
    target = leaf("promote", patient, provider, version=3, data_class=NOTES)
    tree, batch_id, batch_tx = anchor_tree(records, [target, leaf("x", patient, provider)], provider)
    batch_time = chain[batch_tx.block_number].timestamp
    chain.sleep(120)
    tx = records.attestBatchRecord(*leaf_args(target), tree.get_proof(target), batch_id, {"from": patient})
    assert tx.events["RecordAttested"] == {
        "recordId": "0x" + target.record_id.hex(), "patient": patient, "author": provider,
        "contentHash": "0x" + target.content_hash.hex(), "version": 3, "dataClass": NOTES,
        "batchId": batch_id, "attester": patient,
    }
    print(f"attestBatchRecord gas: {tx.gas_used}")
    # A regular anchor now, dated at the promotion (when consent was checked; interface 2), not the batch.
    promoted_at = chain[tx.block_number].timestamp
    assert promoted_at >= batch_time + 120
    assert records.verify(target.record_id, target.content_hash) == (True, 3, provider, promoted_at, True)
    assert records.recordInfo(target.record_id, target.content_hash)[2] == NOTES
    # It can be logged against and amended like any anchor.
    records.logAccess(patient, target.record_id, TREAT, {"from": provider})
    amended = records.amend(target.record_id, target.content_hash, h("promote:v4"), {"from": provider})
    assert amended.return_value == 4
    assert records.verify(target.record_id, target.content_hash)[4] is False


def test_attest_stores_the_author_by_care_registry_id(records, care, consent, patient, provider2, stranger):
    target = leaf("by-provider2", patient, provider2)
    tree, batch_id, batch_tx = anchor_tree(records, [target], provider2)
    tx = records.attestBatchRecord(*leaf_args(target), [], batch_id, {"from": patient})
    assert set(tx.events.keys()) == {"RecordAttested"}  # no enrolment event of any kind
    provider2_id = care.partyOf(provider2)[4]
    assert provider2_id != 0 and care.accountOf(provider2_id) == provider2
    assert stored_head(records, target.record_id) == {
        "contentTag": keccak(target.content_hash)[:20], "authorId": provider2_id, "version": 1, "dataClass": LABS,
        "anchoredAt": chain[tx.block_number].timestamp,
    }
    assert records.verify(target.record_id, target.content_hash)[2] == provider2
    # Authorship gives no write right of its own (interface 2): without consent, no amend.
    consent.revoke(patient, provider2, {"from": patient})
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider2.address, LABS):
        records.amend(target.record_id, target.content_hash, h("by-provider2:v2"), {"from": provider2})


def test_attest_rejects_bad_proofs_and_kinds(records, patient, provider, insurer, stranger):
    target = leaf("t", patient, provider)
    tree, batch_id, _ = anchor_tree(records, [target, leaf("u", patient, provider)], provider)
    with reverts_with(RecordRegistry, "NotInBatch", batch_id):
        records.attestBatchRecord(*leaf_args(target), [keccak(text="junk")], batch_id, {"from": patient})
    # One id per (submitter, root), whatever the kind.
    with reverts_with(RecordRegistry, "BatchAlreadyAnchored", batch_id):
        records.logAccessBatch(tree.root, 2, {"from": provider})
    # A record-shaped tree anchored as an access log never proves records.
    other = leaf("v", patient, insurer)
    log_tree = tree_of([other])
    log_batch = records.logAccessBatch(log_tree.root, 1, {"from": insurer}).return_value
    assert not records.verifyInBatch(*leaf_args(other), [], log_batch)
    with reverts_with(RecordRegistry, "NotInBatch", log_batch):
        records.attestBatchRecord(*leaf_args(other), [], log_batch, {"from": patient})


def test_attest_checks_authorisation_now(admin, records, consent, care, patient, patient2, provider, registrar,
                                         stranger):
    target = leaf("later", patient, provider)
    tree, batch_id, _ = anchor_tree(records, [target, leaf("y", patient, provider)], provider)
    proof = tree.get_proof(target)
    consent.revoke(patient, provider, {"from": patient})
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient.address, provider.address, LABS):
        records.attestBatchRecord(*leaf_args(target), proof, batch_id, {"from": patient})
    consent.grant(patient, provider, bit(TREAT), bit(LABS), 0, 0, DOC, {"from": patient})
    care.suspend(provider, REASON, {"from": registrar})
    with reverts_with(RecordRegistry, "NotActiveProvider", provider.address):
        records.attestBatchRecord(*leaf_args(target), proof, batch_id, {"from": patient})
    care.reinstate(provider, {"from": admin})
    records.attestBatchRecord(*leaf_args(target), proof, batch_id, {"from": patient})


def test_attest_not_under_break_glass(records, consent, patient2, provider2, stranger):
    """Interface 2: break-glass is reading only, so it promotes nothing."""
    target = leaf("er", patient2, provider2)
    tree, batch_id, _ = anchor_tree(records, [target], provider2)
    consent.openBreakGlass(patient2, 3600, REASON, {"from": provider2})
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient2.address, provider2.address, LABS):
        records.attestBatchRecord(*leaf_args(target), [], batch_id, {"from": patient2})


def test_attest_keeps_record_ids_unique(records, patient, provider, provider2, stranger):
    target = leaf("dup", patient, provider)
    tree, batch_id, _ = anchor_tree(records, [target], provider)
    records.attestBatchRecord(*leaf_args(target), [], batch_id, {"from": patient})
    with reverts_with(RecordRegistry, "RecordAlreadyAnchored", target.record_id):
        records.attestBatchRecord(*leaf_args(target), [], batch_id, {"from": patient})
    # Anchored singly first (by anyone): the batched copy cannot become a second version 1.
    single = leaf("single-first", patient, provider)
    records.anchor(single.record_id, h("something-else"), LABS, {"from": provider2})
    tree, batch_id, _ = anchor_tree(records, [single], provider)
    with reverts_with(RecordRegistry, "RecordAlreadyAnchored", single.record_id):
        records.attestBatchRecord(*leaf_args(single), [], batch_id, {"from": patient})


def test_attest_validates_leaf_values(records, patient, patient2, provider, stranger):
    """Each leaf is in the batch but not promotable; where a leaf breaks several rules, the first
    check in the contract's order (patient/id, content hash, data class, version) is the one reported."""
    p, a = patient.address, provider.address
    no_patient = bytes(20) + h("no-patient")[:12]
    others = rid("others", patient2)
    bad = {
        "zero id, zero patient": (RecordLeaf(ZERO32, h("d:v"), ZERO_ADDRESS, 1, LABS, a),
                                  error_message(RecordRegistry, "InvalidRecordId", ZERO32)),
        "no-patient id, zero patient, all else bad": (
            RecordLeaf(no_patient, ZERO32, ZERO_ADDRESS, 0, 11, a),
            error_message(RecordRegistry, "InvalidRecordId", no_patient),
        ),
        "zero patient, another patient's id": (RecordLeaf(others, h("z:v"), ZERO_ADDRESS, 1, LABS, a),
                                               error_message(RecordRegistry, "InvalidRecordId", others)),
        "zero id of a patient": (RecordLeaf(ZERO32, h("f:v"), p, 1, LABS, a),
                                 error_message(RecordRegistry, "RecordNotOfPatient", ZERO32, p)),
        "another patient's id, all else bad": (
            RecordLeaf(others, ZERO32, p, 0, 11, a),
            error_message(RecordRegistry, "RecordNotOfPatient", others, p),
        ),
        "zero hash, bad class and version": (RecordLeaf(rid("e", patient), ZERO32, p, 0, 11, a),
                                             error_message(RecordRegistry, "EmptyContentHash")),
        "data class, zero version": (RecordLeaf(rid("c", patient), h("c:v"), p, 0, 11, a),
                                     error_message(RecordRegistry, "InvalidDataClass", 11)),
        "zero version": (RecordLeaf(rid("a", patient), h("a:v"), p, 0, LABS, a),
                         error_message(RecordRegistry, "InvalidVersion", 0)),
        "version too big": (RecordLeaf(rid("b", patient), h("b:v"), p, UINT16_MAX + 1, LABS, a),
                            error_message(RecordRegistry, "InvalidVersion", UINT16_MAX + 1)),
        "largest uint32 version": (RecordLeaf(rid("b2", patient), h("b2:v"), p, 2**32 - 1, LABS, a),
                                   error_message(RecordRegistry, "InvalidVersion", 2**32 - 1)),
    }
    leaves = [value[0] for value in bad.values()]
    tree, batch_id, _ = anchor_tree(records, leaves, provider)
    for name, (record_leaf, error) in bad.items():
        proof = tree.get_proof(record_leaf)
        assert records.verifyInBatch(*leaf_args(record_leaf), proof, batch_id), name  # included...
        with brownie.reverts(error):  # ...but not promotable
            records.attestBatchRecord(*leaf_args(record_leaf), proof, batch_id, {"from": provider})


def test_attest_rejects_a_record_id_of_another_patient(records, consent, patient, patient2, provider, stranger):
    """provider holds patient's consent; a leaf naming patient cannot take (squat) one of patient2's
    record ids: the id's prefix must be the leaf's patient."""
    squat_id = rid("squat:id", patient2)
    squat = RecordLeaf(squat_id, h("squat:forged"), patient.address, 1, LABS, provider.address)
    honest = leaf("squat", patient2, provider)  # the same id, naming its own patient
    assert honest.record_id == squat_id
    tree, batch_id, _ = anchor_tree(records, [squat, honest], provider)
    proof = tree.get_proof(squat)
    assert records.verifyInBatch(*leaf_args(squat), proof, batch_id)  # inclusion only: no prefix check
    with reverts_with(RecordRegistry, "RecordNotOfPatient", squat_id, patient.address):
        records.attestBatchRecord(*leaf_args(squat), proof, batch_id, {"from": provider})
    assert records.latestOf(squat_id)[1][1] == 0  # nothing anchored
    # The honest leaf needs patient2's own consent.
    honest_proof = tree.get_proof(honest)
    with reverts_with(RecordRegistry, "NoTreatmentRelationship", patient2.address, provider.address, LABS):
        records.attestBatchRecord(*leaf_args(honest), honest_proof, batch_id, {"from": provider})
    consent.grant(patient2, provider, bit(TREAT), bit(LABS), 0, 0, DOC, {"from": patient2})
    tx = records.attestBatchRecord(*leaf_args(honest), honest_proof, batch_id, {"from": provider})
    assert tx.events["RecordAttested"]["patient"] == patient2
    assert records.verify(squat_id, honest.content_hash)[:3] == (True, 1, provider)


def test_version_limit(records, patient, provider, stranger):
    """Interface 2: promotion stops at MAX_PROMOTED_VERSION (255), so no promoted record starts at the
    storable limit (2^16 - 1) and every record keeps room for at least 65,280 amendments."""
    top = leaf("top", patient, provider, version=UINT16_MAX)
    highest = leaf("highest", patient, provider, version=255)
    tree, batch_id, _ = anchor_tree(records, [top, highest], provider)
    with reverts_with(RecordRegistry, "InvalidVersion", UINT16_MAX):
        records.attestBatchRecord(*leaf_args(top), tree.get_proof(top), batch_id, {"from": provider})
    records.attestBatchRecord(*leaf_args(highest), tree.get_proof(highest), batch_id, {"from": provider})
    assert stored_head(records, highest.record_id)["version"] == 255
    tx = records.amend(highest.record_id, highest.content_hash, h("highest:next"), {"from": provider})
    assert tx.return_value == 256


# --------------------------------------------------------------------------- logAccessBatch


def test_log_access_batch(records, provider, insurer):
    root = keccak(text="access-log:2025-01")
    tx = records.logAccessBatch(root, 250, {"from": insurer})
    batch_id = tx.return_value
    assert batch_id == records.batchIdOf(insurer, root)
    assert tx.events["AccessLogBatchAnchored"] == {
        "batchId": batch_id, "accessor": insurer, "root": "0x" + root.hex(), "count": 250,
    }
    assert records.batchOf(batch_id) == (insurer, 250, chain[tx.block_number].timestamp, ACCESS_LOG)
    print(f"logAccessBatch gas: {tx.gas_used}")
    assert tx.gas_used <= BATCH_GAS_BUDGET
    assert records.logAccessBatch(root, 250, {"from": provider}).return_value != batch_id
    with reverts_with(RecordRegistry, "BatchAlreadyAnchored", batch_id):
        records.logAccessBatch(root, 250, {"from": insurer})


def test_log_access_batch_rules(records, insurer, arbiter, stranger):
    root = keccak(text="access-log")
    for account in (arbiter, stranger):
        with reverts_with(RecordRegistry, "NotProviderOrInsurer", account.address):
            records.logAccessBatch(root, 1, {"from": account})
    with reverts_with(RecordRegistry, "InvalidBatch", root, 0):
        records.logAccessBatch(root, 0, {"from": insurer})
    with reverts_with(RecordRegistry, "InvalidBatch", ZERO32, 1):
        records.logAccessBatch(ZERO32, 1, {"from": insurer})


# --------------------------------------------------------------------------- property


@given(n=st.integers(min_value=1, max_value=10_000), seed=st.integers(min_value=0, max_value=2**32 - 1))
@example(n=1, seed=0)
@example(n=10_000, seed=1)
@settings(max_examples=6, deadline=None)
def test_random_trees_verify_on_chain(records, patient, patient2, provider, n, seed):
    rng = random.Random(seed)
    leaves = random_leaves(rng, n, [patient.address, patient2.address], provider.address)
    tree, batch_id, _ = anchor_tree(records, leaves, provider)
    for i in {0, n - 1, *rng.sample(range(n), min(n, 6))}:
        proof = tree.get_proof(leaves[i])
        assert len(proof) <= (n - 1).bit_length()  # depth ceil(log2 n) <= MAX_PROOF_LENGTH
        assert records.verifyInBatch(*leaf_args(leaves[i]), proof, batch_id)
        forged = replace(leaves[i], content_hash=rng.randbytes(32))
        assert not records.verifyInBatch(*leaf_args(forged), proof, batch_id)
