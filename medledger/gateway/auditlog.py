"""The write-ahead audit log: one IHE BALP-style AuditEvent per released record, committed before the
answer leaves, anchored on chain in Merkle batches with RecordRegistry.logAccessBatch.

Life of an entry:

1. `AuditLog.record` inserts it (``synchronous=FULL`` on SQLite: durable at commit) and only then does
   the gateway send the response. A crash before the commit means no answer was sent.
2. The `Anchorer` thread takes pending entries every ``batch_size`` entries or ``batch_seconds``, builds
   a StandardMerkleTree over their leaves (`LEAF_TYPES`), stores the batch as ``built`` and assigns its
   entries in one transaction, then sends ``logAccessBatch(root, count)``.
3. On receipt the batch becomes ``anchored`` with its tx, block and on-chain batch id. After a crash, a
   ``built`` batch is first looked up on chain (``batchOf(batchIdOf(gateway, root))``); it is sent
   again only if the chain does not hold it. So every answered read reaches the chain.

Anyone holding an entry can check it: leaf = keccak(keccak(abi.encode(seq, reader, patient, recordId,
version, purpose, time, keccak(AuditEvent JSON)))), its proof leads to the root, and the root is the
gateway's AccessLog batch on chain.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from eth_utils import keccak
from sqlalchemy import bindparam, func, insert, select, update

from .. import fhir
from ..contracts import BatchKind, RecordRegistry, batch_id_of
from ..merkle import StandardMerkleTree
from ..scopes import Purpose
from . import store as T
from .consent import Decision
from .store import Store

log = logging.getLogger("medledger.gateway.audit")

LEAF_TYPES = ("uint256", "address", "address", "bytes32", "uint32", "uint8", "uint64", "bytes32")
DCM = "http://dicom.nema.org/resources/ontology/DCM"


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    event: dict[str, Any]


def did(chain_id: int, address: str) -> str:
    return f"did:pkh:eip155:{chain_id}:{address}"


def audit_event(*, chain_id: int, origin: str, consent_registry: str, reader: str, patient: str, record_id: str,
                version: int, decision: Decision, released: list[str], recorded: float,
                consent_origin: tuple[int, str] | None, interaction: str = "read") -> dict[str, Any]:
    """A BALP PatientRead-style AuditEvent (FHIR R5 shape) for one release."""
    policy = []
    state = decision.state
    if decision.basis == "consent" and state.granted_at:
        ref = f"eip155:{chain_id}:{consent_registry}/consent/{patient}/{reader}?grantedAt={state.granted_at}"
        if consent_origin:
            ref += f"&block={consent_origin[0]}&tx={consent_origin[1]}"
        policy.append(ref)
    elif decision.basis == "break-glass":
        policy.append(f"eip155:{chain_id}:{consent_registry}/break-glass/{patient}/{reader}"
                      f"?expiresAt={state.break_glass_until}")
    else:
        policy.append(f"urn:medledger:basis:{decision.basis}")
    when = fhir_instant(recorded)
    return {
        "resourceType": "AuditEvent",
        "category": [{"coding": [{"system": DCM, "code": "110110", "display": "Patient Record"}]}],
        "code": {"coding": [{"system": "http://hl7.org/fhir/restful-interaction", "code": interaction}]},
        "action": "R",
        "recorded": when,
        "outcome": {"code": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-outcome", "code": "0"}},
        "authorization": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                       "code": decision.purpose.name}]}],
        "agent": [
            {"type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
             "who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": did(chain_id, reader)}},
             "requestor": True, "policy": policy},
            {"type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
             "who": {"display": origin}, "requestor": False},
        ],
        "source": {"observer": {"display": origin}},
        "entity": [
            {"what": {"reference": f"Bundle/{record_id[2:]}/_history/{version}"},
             "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "4"}]},
             "detail": [{"type": {"text": "released-classes"}, "valueString": ",".join(released)},
                        {"type": {"text": "decided-at-block"}, "valueString": str(state.block)},
                        {"type": {"text": "basis"}, "valueString": decision.basis}]},
            {"what": {"identifier": {"system": "urn:ietf:rfc:3986", "value": did(chain_id, patient)}},
             "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"}]}},
        ],
    }


def fhir_instant(recorded: float) -> str:
    """A POSIX time as a FHIR instant (UTC, milliseconds, "Z")."""
    return datetime.fromtimestamp(recorded, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Stands for the ``recorded`` instant in a cached canonical AuditEvent (see `EventForms`); no other value of an
#: event can contain it (addresses, hex ids, numbers, URLs without '@').
_RECORDED_SLOT = "@medledger-recorded@"


class EventForms:
    """The RFC 8785 canonical bytes of `audit_event`, per read, from a bounded cache of templates.

    Reads of one record by one reader under one decision (same block, same grant) differ only in ``recorded``.
    A template is the canonical form of the event with a placeholder string there, split around it; a read
    joins the two halves around its own instant. JCS writes an ASCII string without escapes as itself in
    quotes, and the instant is such a string, so the bytes equal `fhir.canonicalize` of the full event (a test
    checks it) without walking the event per read."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._templates: dict[tuple, tuple[bytes, bytes]] = {}

    def __call__(self, *, chain_id: int, origin: str, consent_registry: str, reader: str, patient: str,
                 record_id: str, version: int, decision: Decision, released: list[str], recorded: float,
                 consent_origin: tuple[int, str] | None, interaction: str = "read") -> bytes:
        state = decision.state
        key = (chain_id, origin, consent_registry, reader, patient, record_id, version, decision.purpose,
               decision.basis, state.block, state.granted_at, state.break_glass_until, tuple(released),
               consent_origin, interaction)
        halves = self._templates.get(key)
        if halves is None:
            event = audit_event(chain_id=chain_id, origin=origin, consent_registry=consent_registry, reader=reader,
                                patient=patient, record_id=record_id, version=version, decision=decision,
                                released=released, recorded=recorded, consent_origin=consent_origin,
                                interaction=interaction)
            full = fhir.canonicalize(event)
            event["recorded"] = _RECORDED_SLOT
            before, slot, after = fhir.canonicalize(event).partition(f'"{_RECORDED_SLOT}"'.encode())
            if not slot or _RECORDED_SLOT.encode() in after:  # an origin holding the placeholder: no template
                return full
            halves = (before, after)
            if len(self._templates) >= self.size:
                self._templates.clear()  # a new block renews every key anyway; dict writes are atomic
            self._templates[key] = halves
        return b"".join((halves[0], b'"', fhir_instant(recorded).encode(), b'"', halves[1]))


def leaf_values(row: Any) -> tuple:
    return (int(row.seq), row.reader, row.patient, bytes.fromhex(row.record_id[2:]), int(row.version),
            int(row.purpose), int(row.time), bytes.fromhex(row.event_hash[2:]))


class Pending:
    """One entry on its way to the durable commit: ``done`` is set (and ``on_done`` called, from the committer
    thread) once ``seq`` is committed or ``error`` says why not; no answer may be sent before that."""

    __slots__ = ("values", "done", "seq", "error", "on_done")

    def __init__(self, values: dict[str, Any], on_done: Callable[[], None] | None = None) -> None:
        self.values = values
        self.done = threading.Event()
        self.seq: int | None = None
        self.error: BaseException | None = None
        self.on_done = on_done

    def result(self) -> int:
        """The committed sequence number (after ``done``), or the commit's error raised."""
        if self.error is not None:
            raise self.error
        return int(self.seq)  # type: ignore[arg-type]


class AuditLog:
    """Writes entries (group commit: concurrent reads share one durable commit) and answers proofs."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending = threading.Condition()
        self.pending_count = 0
        self.notify_at = 1  # wake the anchorer at this many pending entries (it sets its batch size)
        self._queue: list[Pending] = []
        self._queue_lock = threading.Condition()
        self._committer: threading.Thread | None = None
        self._closing = False

    def record(self, *, reader: str, patient: str, record_id: str, version: int, purpose: Purpose,
               decision: Decision, classes_mask: int, event: dict[str, Any], recorded: float,
               consent_origin: tuple[int, str] | None) -> int:
        """Commit one entry durably and return its sequence number; returns only after the commit."""
        item = self.submit(reader=reader, patient=patient, record_id=record_id, version=version, purpose=purpose,
                           decision=decision, classes_mask=classes_mask, event=event, recorded=recorded,
                           consent_origin=consent_origin)
        item.done.wait()
        return item.result()

    def submit(self, *, reader: str, patient: str, record_id: str, version: int, purpose: Purpose,
               decision: Decision, classes_mask: int, event: dict[str, Any] | bytes, recorded: float,
               consent_origin: tuple[int, str] | None, on_done: Callable[[], None] | None = None) -> Pending:
        """Queue one entry for the next group commit without waiting (see `Pending`). ``event`` is the
        AuditEvent, or its canonical bytes already (`EventForms`)."""
        canonical = event if isinstance(event, bytes) else fhir.canonicalize(event)
        item = Pending(dict(
            time=recorded, reader=reader, patient=patient, record_id=record_id, version=version,
            purpose=int(purpose), basis=decision.basis, classes_mask=classes_mask,
            decided_at_block=decision.state.block, consent_granted_at=decision.state.granted_at or None,
            consent_block=consent_origin[0] if consent_origin else None,
            consent_tx=consent_origin[1] if consent_origin else None,
            event=canonical.decode(), event_hash="0x" + keccak(canonical).hex()), on_done)
        with self._queue_lock:
            if self._committer is None or not self._committer.is_alive():
                self._committer = threading.Thread(target=self._commit_loop, name="medledger-audit-commit",
                                                   daemon=True)
                self._committer.start()
            self._queue.append(item)
            self._queue_lock.notify()
        return item

    def _commit_loop(self) -> None:
        while True:
            with self._queue_lock:
                while not self._queue:
                    if self._closing:
                        return
                    self._queue_lock.wait(timeout=1.0)
                group, self._queue = self._queue, []
            try:
                with self.store.begin() as conn:  # one transaction, one durable commit for the whole group
                    seqs = conn.execute(insert(T.audit_entries).returning(T.audit_entries.c.seq,
                                                                          sort_by_parameter_order=True),
                                        [item.values for item in group]).scalars().all()
                    for item, seq in zip(group, seqs, strict=True):
                        item.seq = seq
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting request; none is answered
                for item in group:
                    item.error, item.seq = exc, None
            else:
                with self.pending:
                    before = self.pending_count
                    self.pending_count += len(group)
                    if before == 0 or self.pending_count >= self.notify_at:
                        self.pending.notify()  # the anchorer: a batch's clock starts, or a batch is full
            for item in group:
                item.done.set()
                if item.on_done is not None:
                    try:
                        item.on_done()
                    except Exception:  # noqa: BLE001 - e.g. the request's event loop is gone; nothing to answer
                        log.debug("audit completion callback failed", exc_info=True)

    def close(self) -> None:
        with self._queue_lock:
            self._closing = True
            self._queue_lock.notify_all()
        if self._committer is not None:
            self._committer.join(timeout=30)

    def entry(self, seq: int) -> Any:
        with self.store.read() as conn:
            return conn.execute(select(T.audit_entries).where(T.audit_entries.c.seq == seq)).first()

    def entries(self, *, patient: str | None = None, reader: str | None = None, limit: int = 100,
                before: int | None = None) -> list[Any]:
        """The newest `limit` entries (below sequence number `before`, for the next page)."""
        q = select(T.audit_entries).order_by(T.audit_entries.c.seq.desc()).limit(limit)
        if before is not None:
            q = q.where(T.audit_entries.c.seq < before)
        if patient:
            q = q.where(T.audit_entries.c.patient == patient)
        if reader:
            q = q.where(T.audit_entries.c.reader == reader)
        with self.store.read() as conn:
            return list(conn.execute(q))

    def proof(self, seq: int) -> dict[str, Any]:
        """The inclusion proof of entry ``seq`` (``anchored: False`` while its batch is pending)."""
        row = self.entry(seq)
        out: dict[str, Any] = {"seq": seq, "leaf": [_jsonable(v) for v in leaf_values(row)],
                               "leafEncoding": list(LEAF_TYPES), "event": json.loads(row.event), "anchored": False}
        if row.batch_seq is None:
            return out
        with self.store.read() as conn:
            batch = conn.execute(select(T.audit_batches).where(T.audit_batches.c.seq == row.batch_seq)).first()
        tree = StandardMerkleTree.load(json.loads(batch.tree))
        out.update(root=batch.root, proof=tree.get_proof_hex(row.batch_index), batchCount=batch.count,
                   anchored=batch.status == "anchored", tx=batch.tx_hash, block=batch.block, batchId=batch.batch_id)
        return out

    @staticmethod
    def _unbatched(conn: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(T.audit_entries)
                                .where(T.audit_entries.c.batch_seq.is_(None))).scalar_one())

    def unbatched_entries(self) -> int:
        """Audit entries in no batch yet."""
        with self.store.read() as conn:
            return self._unbatched(conn)

    def pending_entries(self) -> int:
        """Audit entries not yet anchored on chain: those in no batch yet, and those whose batch is built
        but not yet confirmed by its logAccessBatch receipt. The unbatched are counted first: an entry batched
        between the two reads (PostgreSQL's READ COMMITTED gives each its own snapshot) is then counted twice,
        never missed, so 0 means that every entry is anchored."""
        with self.store.read() as conn:
            unbatched = self._unbatched(conn)
            unanchored = conn.execute(select(func.coalesce(func.sum(T.audit_batches.c.count), 0))
                                      .where(T.audit_batches.c.status != "anchored")).scalar_one()
            return unbatched + int(unanchored)


def _jsonable(v: Any) -> Any:
    return "0x" + v.hex() if isinstance(v, (bytes, bytearray)) else v


class Anchorer:
    """Background thread: pending entries -> Merkle batch -> logAccessBatch, crash-safe."""

    def __init__(self, log_: AuditLog, records: RecordRegistry, signer: Any, *, batch_size: int = 1000,
                 batch_seconds: float = 10.0, tx_lock: threading.Lock | None = None) -> None:
        self.log, self.records, self.signer = log_, records, signer
        self.tx_lock = tx_lock or threading.Lock()
        self.batch_size, self.batch_seconds = batch_size, batch_seconds
        log_.notify_at = batch_size
        self._built_left = True  # built batches may be left from a previous run or a failed send: look first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.gas_used: list[int] = []

    def start(self) -> None:
        # Entries a crash left in no batch count as pending from the start: otherwise they would wait for the
        # next read to wake the anchorer (a crash that left only built batches is covered by `_built_left`).
        with self.log.pending:
            self.log.pending_count = self.log.unbatched_entries()
        self._thread = threading.Thread(target=self._run, name="medledger-anchorer", daemon=True)
        self._thread.start()

    def stop(self, flush: bool = True) -> None:
        self._stop.set()
        with self.log.pending:
            self.log.pending.notify()
        if self._thread:
            self._thread.join(timeout=60)
        if flush:
            self.flush()

    def _run(self) -> None:
        oldest: float | None = None
        while not self._stop.is_set():
            with self.log.pending:
                self.log.pending.wait(timeout=min(self.batch_seconds, 1.0))
                count = self.log.pending_count
            if count and oldest is None:
                oldest = time.monotonic()
            due = count >= self.batch_size or (oldest is not None and time.monotonic() - oldest >= self.batch_seconds)
            if not due and not (self._built_left and self._has_built()):
                self._built_left = False
                continue
            try:
                self.flush()
                oldest = None
                self.last_error = None
                self._built_left = False
            except Exception as exc:  # noqa: BLE001 - keep the thread alive; retried on the next tick
                self._built_left = True
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("audit anchoring failed, will retry: %s", self.last_error)
                self._stop.wait(1.0)

    def _has_built(self) -> bool:
        with self.log.store.read() as conn:
            return conn.execute(select(T.audit_batches.c.seq).where(T.audit_batches.c.status == "built")).first() \
                is not None

    def flush(self) -> int:
        """Anchor every built batch and every pending entry now; returns the number of batches sent."""
        sent = 0
        for batch in self._built():
            self._send(batch)
            sent += 1
        while True:
            batch = self._build()
            if batch is None:
                return sent
            self._send(batch, fresh=True)
            sent += 1

    def _built(self) -> list[Any]:
        with self.log.store.read() as conn:
            return list(conn.execute(select(T.audit_batches).where(T.audit_batches.c.status == "built")
                                     .order_by(T.audit_batches.c.seq)))

    def _build(self) -> Any:
        # The tree is built outside the write transaction: SQLite has one writer, and the audit commits of
        # concurrent reads must not wait for the hashing. Only this thread assigns entries to batches, so the
        # rows read here are still unassigned when the transaction below assigns them.
        with self.log.store.read() as conn:
            rows = list(conn.execute(select(T.audit_entries).where(T.audit_entries.c.batch_seq.is_(None))
                                     .order_by(T.audit_entries.c.seq).limit(self.batch_size)))
        if not rows:
            with self.log.pending:
                self.log.pending_count = 0
            return None
        tree = StandardMerkleTree.of([leaf_values(r) for r in rows], LEAF_TYPES)
        dumped = json.dumps(tree.dump())
        with self.log.store.begin() as conn:
            seq = conn.execute(insert(T.audit_batches).values(
                root=tree.root_hex, count=len(rows), status="built", tree=dumped,
                created_at=time.time())).inserted_primary_key[0]
            conn.execute(update(T.audit_entries).where(T.audit_entries.c.seq == bindparam("entry"))
                         .values(batch_seq=seq, batch_index=bindparam("index")),
                         [{"entry": r.seq, "index": i} for i, r in enumerate(rows)])
        with self.log.pending:
            self.log.pending_count = max(0, self.log.pending_count - len(rows))
        with self.log.store.read() as conn:
            return conn.execute(select(T.audit_batches).where(T.audit_batches.c.seq == seq)).first()

    def _send(self, batch: Any, fresh: bool = False) -> None:
        """Sends ``logAccessBatch`` for a built batch and marks it anchored. A batch left built by a crash or a
        failed send is first looked up on chain (it may be there already); a ``fresh`` one, built just now by
        this thread and never sent, cannot be, so that view call is skipped."""
        root = bytes.fromhex(batch.root[2:])
        batch_id = batch_id_of(self.signer.address, root)
        if fresh or self.records.batch_of(batch_id).kind == BatchKind.NONE:
            with self.tx_lock:
                result = self.records.log_access_batch(self.signer, root, batch.count)
            tx, block = result.tx_hash, result.block_number
            self.gas_used.append(result.gas_used)
        else:  # sent before a crash: the chain already holds it
            tx, block = None, None
        with self.log.store.begin() as conn:
            conn.execute(update(T.audit_batches).where(T.audit_batches.c.seq == batch.seq).values(
                status="anchored", tx_hash=tx, block=block, batch_id=str(batch_id)))
