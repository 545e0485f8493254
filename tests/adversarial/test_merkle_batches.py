"""Merkle batches: huge proofs and roots with no leaves behind them.
"""
from __future__ import annotations

import brownie
from brownie import RecordRegistry
from support.errors import reverts_with
from support.escrow import h
from support.records import leaf_args
from support.world import MANIFEST


def test_a_huge_proof_is_refused_before_any_hashing(world):
    """A 4,096-sibling proof: verifyInBatch answers false and attestBatchRecord reverts ProofTooLong
    within a gas limit of the calldata's intrinsic cost plus 50,000 - hashing 4,096 siblings would
    not fit in it, so the length is checked before any hashing."""
    w = world
    proof = [h(f"sibling:{i}") for i in range(4096)]
    args = (*leaf_args(w.batch_leaf), proof, w.batch_id)
    assert not w.records.verifyInBatch(*args)
    calldata = bytes.fromhex(w.records.attestBatchRecord.encode_input(*args)[2:])
    intrinsic = 21_000 + sum(16 if byte else 4 for byte in calldata)
    with reverts_with(RecordRegistry, "ProofTooLong", 4096, 32):
        w.records.attestBatchRecord(*args, {"from": w.patient, "gas_limit": intrinsic + 50_000})
    tx = brownie.history[-1]
    assert tx.status == 0 and tx.gas_limit == intrinsic + 50_000 and tx.gas_used < intrinsic + 50_000


def test_a_batch_root_with_no_leaves_behind_it_proves_nothing(world):
    """Zero leaves are refused (InvalidBatch, see test_records_batch); a root that commits to nothing
    real (count 1, junk root) can be anchored but no leaf, proof or empty proof ever verifies."""
    w = world
    junk = h("junk-root")
    batch_id = w.records.anchorBatch(junk, 1, MANIFEST, {"from": w.provider}).return_value
    for proof in ([], w.batch_proof, [junk]):
        assert not w.records.verifyInBatch(*leaf_args(w.batch_leaf), proof, batch_id)
        with reverts_with(RecordRegistry, "NotInBatch", batch_id):
            w.records.attestBatchRecord(*leaf_args(w.batch_leaf), proof, batch_id, {"from": w.patient})
    with reverts_with(RecordRegistry, "InvalidBatch", junk, 0):
        w.records.anchorBatch(junk, 0, MANIFEST, {"from": w.provider2})
