"""The write journal: a record version's intent is durable before its anchor is sent, so a crash between the
anchoring transaction and the catalogue insert never leaves an anchored version the gateway does not list.

Life of a write (`Gateway.create` and `Gateway.amend`):

1. `Journal.begin` commits the intent: record id, version, content hash (which names the blob in the
   content-addressed vault), the previous version's hash for an amendment, author, patient, data classes,
   resource rows, the chain head, and the id of this gateway process (``boot``).
2. The blob is written (a temporary file, fsynced, renamed into place), then ``anchor`` or ``amend`` is sent.
3. `Journal.finish` inserts the catalogue rows and deletes the intent in one transaction; only then does the
   client get its ``201``/``200``. If the chain refuses the transaction, `Journal.drop` deletes the intent and
   the blob.

Recovery (`Journal.reconcile`): at start-up before the first request, then every `RECONCILE_SECONDS` while
intents of an earlier process (or of a send that failed without a revert) are left:

- anchored on chain (``RecordRegistry.verify``; for a record of a Merkle batch, ``batchOf`` of its batch):
  finished, with the tx and block of its event;
- not anchored and no transaction of the custodian pending (its pending nonce equals its mined one): dropped
  with its blob;
- not anchored but a transaction pending: left for the next round.

Dropped rather than retried: the client never got an answer for it, so it will send the write again (a retry
here would then anchor the same document twice under two record ids), and the consent that allowed the write
was decided at that moment, not now.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select

from ..contracts import RecordRegistry, batch_id_of
from ..records import manifest_path
from ..vault import LocalVault
from . import store as T
from .store import Store

log = logging.getLogger("medledger.gateway.journal")

#: Seconds between reconciliation rounds while intents are left.
RECONCILE_SECONDS = 5.0


@dataclass(frozen=True)
class Intent:
    """One record version on its way to the chain and the catalogue."""

    record_id: str                       # 0x + 64 hex
    version: int
    content_id: str                      # keccak of the sealed envelope: the blob's name in the vault
    previous_content_id: str | None      # an amendment's previous version (None: a create)
    patient: str
    author: str                          # the gateway caller who wrote it
    classes_mask: int
    primary_class: int
    resources: tuple[tuple[str, str, int], ...]  # (type, id, data class) of each resource, in order
    from_block: int
    boot: str
    created_at: float
    batch_root: str | None = None        # a create of a Merkle batch (`Gateway.create_batch`): the batch's root

    @classmethod
    def of_row(cls, row: Any) -> Intent:
        return cls(row.record_id, row.version, row.content_id, row.previous_content_id, row.patient, row.author,
                   row.classes_mask, row.primary_class, tuple(tuple(r) for r in json.loads(row.resources)),
                   row.from_block, row.boot, row.created_at, row.batch_root)


@dataclass(frozen=True)
class Reconciled:
    """What one reconciliation round did: record versions finished, dropped, and still waiting."""

    finished: tuple[tuple[str, int], ...] = ()
    dropped: tuple[tuple[str, int], ...] = ()
    waiting: tuple[tuple[str, int], ...] = ()


class Journal:
    """The intents table, and the recovery of what a crash or a failed send left in it."""

    def __init__(self, store: Store, vault: LocalVault, records: RecordRegistry, custodian: str,
                 on_finished: Callable[[str, int], None] | None = None) -> None:
        self.store, self.vault, self.records, self.custodian = store, vault, records, custodian
        self.on_finished = on_finished  # (record id, version) once its catalogue rows are committed
        self.boot = uuid.uuid4().hex
        self._abandoned: set[tuple[str, int]] = set()
        self._lock = threading.Lock()  # one reconciliation at a time

    def new_intent(self, *, record_id: str, version: int, content_id: str, previous_content_id: str | None,
                   patient: str, author: str, classes_mask: int, primary_class: int,
                   resources: list[tuple[str, str, int]], batch_root: str | None = None,
                   from_block: int | None = None) -> Intent:
        head = self.records.chain.w3.eth.block_number if from_block is None else from_block
        return Intent(record_id, version, content_id, previous_content_id, patient, author, classes_mask,
                      primary_class, tuple(resources), head, self.boot, time.time(), batch_root)

    def begin(self, *intents: Intent) -> None:
        """Commits the intents durably, in one transaction (before their blobs are written and their
        transaction sent)."""
        with self.store.begin() as conn:
            conn.execute(insert(T.intents), [dict(
                record_id=intent.record_id, version=intent.version, content_id=intent.content_id,
                previous_content_id=intent.previous_content_id, patient=intent.patient, author=intent.author,
                classes_mask=intent.classes_mask, primary_class=intent.primary_class,
                resources=json.dumps(intent.resources), from_block=intent.from_block, boot=intent.boot,
                created_at=intent.created_at, batch_root=intent.batch_root) for intent in intents])

    def finish(self, intent: Intent, tx: str | None, block: int | None) -> None:
        """The catalogue rows of the anchored version, and the intent deleted, in one transaction."""
        with self.store.begin() as conn:
            conn.execute(insert(T.records).values(
                record_id=intent.record_id, version=intent.version, patient=intent.patient, author=intent.author,
                content_id=intent.content_id, classes_mask=intent.classes_mask, primary_class=intent.primary_class,
                last_updated=intent.created_at, anchor_tx=tx, anchor_block=block))
            if intent.resources:
                conn.execute(insert(T.resources), [
                    {"record_id": intent.record_id, "version": intent.version, "position": i, "resource_type": rtype,
                     "resource_id": rid[:64], "data_class": cls, "patient": intent.patient,
                     "last_updated": intent.created_at}
                    for i, (rtype, rid, cls) in enumerate(intent.resources)])
            self._delete(conn, intent)
        self._abandoned.discard((intent.record_id, intent.version))
        if self.on_finished is not None:
            self.on_finished(intent.record_id, intent.version)

    def drop(self, intent: Intent) -> None:
        """The version will never be anchored: its blob (and a batch's manifest) and its intent go (the files
        first: an intent left by a crash in between is dropped again at the next round)."""
        self.vault.path_of(intent.content_id).unlink(missing_ok=True)
        if intent.batch_root is not None:  # the batch's manifest (shared by its intents; the first drop removes it)
            manifest_path(self.vault.directory, bytes.fromhex(intent.batch_root[2:])).unlink(missing_ok=True)
        with self.store.begin() as conn:
            self._delete(conn, intent)
        self._abandoned.discard((intent.record_id, intent.version))

    def abandon(self, intent: Intent) -> None:
        """The send failed without a revert (the node went away): whether it was anchored is for `reconcile`."""
        self._abandoned.add((intent.record_id, intent.version))

    @staticmethod
    def _delete(conn: Any, intent: Intent) -> None:
        conn.execute(delete(T.intents).where(T.intents.c.record_id == intent.record_id,
                                             T.intents.c.version == intent.version))

    def pending(self) -> int:
        with self.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(T.intents)).scalar_one())

    def has_orphans(self) -> bool:
        return bool(self._orphans())

    def _orphans(self) -> list[Intent]:
        """Intents no request of this process is still working on."""
        with self.store.read() as conn:
            rows = list(conn.execute(select(T.intents).order_by(T.intents.c.created_at)))
        return [Intent.of_row(r) for r in rows
                if r.boot != self.boot or (r.record_id, r.version) in self._abandoned]

    def reconcile(self) -> Reconciled:
        """One round of recovery (see the module's docstring)."""
        finished, dropped, waiting = [], [], []
        with self._lock:
            for intent in self._orphans():
                key = (intent.record_id, intent.version)
                if intent.batch_root is not None:  # one of a Merkle batch: is the batch on chain?
                    anchored = self.records.batch_of(self._batch_id(intent)).exists
                else:
                    anchored = self.records.verify(bytes.fromhex(intent.record_id[2:]),
                                                   bytes.fromhex(intent.content_id[2:])).anchored
                if anchored:
                    self.finish(intent, *self._anchor_of(intent))
                    finished.append(key)
                elif self._custodian_has_pending_tx():
                    waiting.append(key)
                else:
                    self.drop(intent)
                    dropped.append(key)
        done = Reconciled(tuple(finished), tuple(dropped), tuple(waiting))
        if finished or dropped or waiting:
            log.warning("write journal: %d version(s) anchored before a crash were catalogued, %d never anchored "
                        "were dropped, %d wait for a pending transaction", len(finished), len(dropped), len(waiting))
        return done

    def _batch_id(self, intent: Intent) -> int:
        return batch_id_of(self.custodian, bytes.fromhex((intent.batch_root or "")[2:]))

    def _anchor_of(self, intent: Intent) -> tuple[str | None, int | None]:
        """The tx and block of the event that anchored the intent's version (None if the node has no logs)."""
        if intent.batch_root is not None:
            found = self.records.batch_anchored_events(self._batch_id(intent), intent.from_block)
            return (found[0]["tx"], int(found[0]["block"])) if found else (None, None)
        name = "RecordAnchored" if intent.previous_content_id is None else "RecordAmended"
        event = getattr(self.records.contract.events, name)
        for entry in event.get_logs(argument_filters={"recordId": bytes.fromhex(intent.record_id[2:])},
                                    from_block=intent.from_block):
            if "0x" + bytes(entry["args"]["contentHash"]).hex() == intent.content_id:
                return "0x" + bytes(entry["transactionHash"]).hex(), int(entry["blockNumber"])
        return None, None

    def _custodian_has_pending_tx(self) -> bool:
        eth = self.records.chain.w3.eth
        return eth.get_transaction_count(self.custodian, "pending") > eth.get_transaction_count(self.custodian,
                                                                                                "latest")
