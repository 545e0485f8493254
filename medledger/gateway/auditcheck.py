"""Compare a gateway's audit log with the chain (`medledger audit verify`; the web app can call it too).

For every entry the caller may see (`GET /audit`, all pages), the gateway's inclusion proof
(`GET /audit/{seq}/proof`) is checked with `client.proof_problem`: the AuditEvent hashes to the leaf's event
hash, the leaf leads to the batch root, and the chain holds that root as the custodian's access-log batch.
The batch's block and transaction come from its `AccessLogBatchAnchored` event on chain, not from the gateway.

Each entry ends up `ANCHORED` (block, tx), `PENDING` (in no anchored batch yet; its age) or `MISMATCH`
(why). What this cannot see: an entry the gateway leaves out of its listing altogether (see docs/GATEWAY.md).
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

from eth_utils import to_checksum_address

from ..contracts import RecordRegistry, batch_id_of
from .client import GatewayClient, proof_problem

#: `audit verify --max-pending` by default: this many batch intervals of the gateway ...
PENDING_INTERVALS = 5
#: ... but never less than this many seconds (a batch's transaction waits for a block, and on a public chain
#: for a busy mempool).
PENDING_FLOOR = 60.0


def default_max_pending(batch_seconds: float) -> float:
    """How long an entry may wait for its batch before `audit verify` calls it overdue."""
    return max(PENDING_INTERVALS * float(batch_seconds), PENDING_FLOOR)


class EntryStatus(str, Enum):
    ANCHORED = "anchored"
    PENDING = "pending"
    MISMATCH = "MISMATCH"


@dataclass(frozen=True)
class EntryCheck:
    """One audit entry as checked against the chain."""

    seq: int
    status: EntryStatus
    reader: str
    patient: str
    record_id: str
    purpose: str
    time: int
    block: int | None = None
    tx: str | None = None
    age: float | None = None
    overdue: bool = False
    reason: str = ""


@dataclass(frozen=True)
class AuditReport:
    gateway: str
    custodian: str
    max_pending: float
    entries: tuple[EntryCheck, ...] = field(default_factory=tuple)

    @property
    def mismatches(self) -> list[EntryCheck]:
        return [e for e in self.entries if e.status is EntryStatus.MISMATCH]

    @property
    def overdue(self) -> list[EntryCheck]:
        return [e for e in self.entries if e.overdue]

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.overdue


class _Batches:
    """The RecordRegistry's `batch_of`, asked once per batch (many entries share a batch)."""

    def __init__(self, records: RecordRegistry) -> None:
        self.batch_of = lru_cache(maxsize=4096)(records.batch_of)


def verify_log(gateway: str, views: Iterable[tuple[GatewayClient, str | None]], records: RecordRegistry, *,
               custodian: str, from_block: int, max_pending: float, now: float | None = None) -> AuditReport:
    """Checks every entry of the gateway at `gateway` seen through `views`: (a signed-in client, the patient
    whose log it reads, or None for the client's own reads). Entries seen twice are checked once."""
    custodian = to_checksum_address(custodian)
    now = time.time() if now is None else now
    batches = _Batches(records)
    on_chain = records.access_log_batches(custodian, from_block)
    checked: dict[int, EntryCheck] = {}
    for client, patient in views:
        for entry in client.audit_entries(patient):
            seq = int(entry["seq"])
            if seq not in checked:
                checked[seq] = _check(client, entry, batches, on_chain, custodian, now, max_pending)
    return AuditReport(gateway, custodian, max_pending, tuple(checked[s] for s in sorted(checked)))


def _check(client: GatewayClient, entry: dict[str, Any], batches: _Batches, on_chain: dict[int, dict],
           custodian: str, now: float, max_pending: float) -> EntryCheck:
    seq = int(entry["seq"])
    proof = client.audit_proof(seq)
    leaf = proof.get("leaf") or [None] * 8
    base = dict(seq=seq, reader=entry["reader"], patient=entry["patient"], record_id=entry["recordId"],
                purpose=entry["purpose"], time=int(leaf[6]) if isinstance(leaf[6], int) else 0)

    def mismatch(reason: str) -> EntryCheck:
        return EntryCheck(status=EntryStatus.MISMATCH, reason=reason, **base)

    listed = (entry["reader"], entry["patient"], entry["recordId"].lower())
    leafed = (leaf[1], leaf[2], str(leaf[3]).lower())
    if listed != leafed:
        return mismatch(f"the listing says {listed}, the proof's leaf {leafed}")
    if proof.get("gateway") and to_checksum_address(proof["gateway"]) != custodian:
        return mismatch(f"the proof names the anchoring account {proof['gateway']}, not the custodian {custodian}")
    if not proof.get("anchored"):
        age = max(0.0, now - base["time"])
        why = "in a batch whose transaction is not confirmed yet" if proof.get("root") else "in no batch yet"
        return EntryCheck(status=EntryStatus.PENDING, age=age, overdue=age > max_pending, reason=why, **base)
    problem = proof_problem({**proof, "gateway": custodian}, batches)
    if problem is not None:
        return mismatch(problem)
    event = on_chain.get(batch_id_of(custodian, proof["root"]))
    if event is None:
        return mismatch(f"no AccessLogBatchAnchored event of {custodian} holds the root {proof['root']}")
    if proof.get("tx") and str(proof["tx"]).lower() != event["tx"].lower():
        return mismatch(f"the gateway names tx {proof['tx']}, the chain logged the batch in tx {event['tx']}")
    return EntryCheck(status=EntryStatus.ANCHORED, block=event["block"], tx=event["tx"], **base)


__all__ = ["PENDING_FLOOR", "PENDING_INTERVALS", "AuditReport", "EntryCheck", "EntryStatus",
           "default_max_pending", "verify_log"]
