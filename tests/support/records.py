"""Shared constants and builders for the RecordRegistry tests (not a test module itself)."""
from __future__ import annotations

import random

from eth_utils import keccak

from medledger.merkle import RecordLeaf, StandardMerkleTree

# Purposes and data classes (bit indexes), as fixed in the shared constants.
TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, COVERAGE = range(6)
DEMOGRAPHICS, CONDITIONS, MEDICATIONS, ALLERGIES, LABS, IMAGING, NOTES, BILLING = range(8)
GENOMICS, MENTAL_HEALTH, SUBSTANCE_USE = 8, 9, 10

ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
DOC = keccak(text="fhir:Consent/records-test")
REASON = keccak(text="ER:unconscious")
MAX_PROOF_LENGTH = 32
UINT24_MAX = 2**24 - 1

# Anchoring budgets (gas, from receipts). The 60k anchor target is not reachable with the shared
# ConsentRegistry (its hasConsent alone costs ~12.4k from another contract); see docs/RECORDS.md.
ANCHOR_GAS_BUDGET = 63_000
BATCH_GAS_BUDGET = 70_000


def bit(*indexes: int) -> int:
    """A bitmask with the given bit indexes set."""
    mask = 0
    for i in indexes:
        mask |= 1 << i
    return mask


def h(label: str) -> bytes:
    """A deterministic 32-byte value (a record id or a content hash) named by `label`."""
    return keccak(text=label)


def tagged_twin(content_hash: bytes) -> bytes:
    """A different hash sharing the first 20 bytes (the stored tag) of `content_hash`."""
    return content_hash[:20] + bytes(b ^ 0xFF for b in content_hash[20:])


def random_leaves(rng: random.Random, n: int, patients: list[str], author: str) -> list[RecordLeaf]:
    """`n` record leaves with random ids and hashes, spread over `patients`, authored by `author`."""
    return [
        RecordLeaf(
            record_id=rng.randbytes(32),
            content_hash=rng.randbytes(32),
            patient=patients[i % len(patients)],
            version=rng.randint(1, 5),
            data_class=rng.randint(0, 10),
            author=author,
        )
        for i in range(n)
    ]


def leaf_args(leaf: RecordLeaf) -> tuple:
    """The six leaf arguments of verifyInBatch / attestBatchRecord, in order."""
    return (leaf.record_id, leaf.content_hash, leaf.patient, leaf.version, leaf.data_class, leaf.author)


def tree_of(leaves: list[RecordLeaf]) -> StandardMerkleTree:
    """The OpenZeppelin StandardMerkleTree of record leaves."""
    return StandardMerkleTree.of_records(leaves)
