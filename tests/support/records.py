"""Shared constants and builders for the RecordRegistry tests (not a test module itself)."""
from __future__ import annotations

import random

from eth_utils import keccak

from medledger import record_ids
from medledger.merkle import RecordLeaf, StandardMerkleTree

ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
DOC = keccak(text="fhir:Consent/records-test")
REASON = keccak(text="ER:unconscious")
MAX_PROOF_LENGTH = 32
UINT16_MAX = 2**16 - 1  # the largest storable version

# Anchoring budgets (gas, from receipts): the targets.
ANCHOR_GAS_BUDGET = 60_000
BATCH_GAS_BUDGET = 70_000


def h(label: str) -> bytes:
    """A deterministic 32-byte value (a record id or a content hash) named by `label`."""
    return keccak(text=label)


def rid(label: str, patient) -> bytes:
    """A deterministic record id of `patient` named by `label`: the patient's address (20 bytes)
    then 12 bytes derived from the label, as the RecordRegistry requires."""
    address = patient if isinstance(patient, str) else patient.address
    return record_ids.record_id(address, keccak(text=label)[:12])


def tagged_twin(content_hash: bytes) -> bytes:
    """A different hash sharing the first 20 bytes (the stored tag) of `content_hash`."""
    return content_hash[:20] + bytes(b ^ 0xFF for b in content_hash[20:])


def random_leaves(rng: random.Random, n: int, patients: list[str], author: str) -> list[RecordLeaf]:
    """`n` record leaves with random ids and hashes, spread over `patients`, authored by `author`."""
    return [
        RecordLeaf(
            record_id=record_ids.record_id(patients[i % len(patients)], rng.randbytes(12)),
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


def stored_head(records, record_id: bytes) -> dict:
    """The RecordRegistry's packed head slot of `record_id` (`_heads`, storage slot 0), unpacked:
    contentTag (bits 0-159) | authorId (160-191) | version (192-207) | dataClass (208-215) |
    anchoredAt (216-255). Reads storage directly, so it shows what is stored, not what views say."""
    from brownie import web3  # only with a connected network

    slot = keccak(record_id + (0).to_bytes(32, "big"))
    word = int.from_bytes(web3.eth.get_storage_at(records.address, slot), "big")
    return {
        "contentTag": (word & (2**160 - 1)).to_bytes(20, "big"),
        "authorId": (word >> 160) & 0xFFFFFFFF,
        "version": (word >> 192) & 0xFFFF,
        "dataClass": (word >> 208) & 0xFF,
        "anchoredAt": word >> 216,
    }


def stored_past_author_id(records, record_id: bytes, content_hash: bytes) -> int:
    """The authorId (CareRegistry party id) stored for a superseded version (`_past`, storage slot 1,
    keyed by keccak256(abi.encode(recordId, contentHash)); authorId is the slot's low 32 bits)."""
    from brownie import web3

    key = keccak(record_id + content_hash)
    slot = keccak(key + (1).to_bytes(32, "big"))
    return int.from_bytes(web3.eth.get_storage_at(records.address, slot), "big") & 0xFFFFFFFF
