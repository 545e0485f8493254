"""The gateway's own tables (SQLAlchemy 2 Core): sign-in nonces, sessions, used request nonces, the
record catalogue, the write journal, idempotent creates, the gateway key wraps, and the write-ahead audit log
with its Merkle batches.

SQLite by default (WAL, ``synchronous=FULL``: a committed audit entry survives a crash and a power
cut), PostgreSQL by URL (``postgresql://...``, driven by psycopg 3). Every open applies the Alembic
migrations shipped in ``medledger/gateway/migrations`` (on PostgreSQL under an advisory lock); a database
made by ``metadata.create_all`` before migrations existed is stamped with the first revision, not recreated.
The index's tables may live beside these in the same database: the gateway keeps its own version table.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import MedLedgerError
from ..index.db import normalise_url, redacted, upgrade
from .migrations import BASELINE, VERSION_TABLE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

CHECKPOINT_SECONDS = 0.5


class StoreError(MedLedgerError):
    """The gateway database cannot be opened or written."""


metadata = MetaData()

login_nonces = Table(
    "gw_login_nonces", metadata,
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
)

request_nonces = Table(
    "gw_request_nonces", metadata,
    Column("signer", String(42), primary_key=True),
    Column("nonce", String(66), primary_key=True),
    Column("expires_at", Float, nullable=False),
)

sessions = Table(
    "gw_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("address", String(42), nullable=False, index=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("origin", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

records = Table(
    "gw_records", metadata,
    Column("record_id", String(66), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("patient", String(42), nullable=False, index=True),
    Column("author", String(42), nullable=False),
    Column("content_id", String(66), nullable=False),
    Column("classes_mask", Integer, nullable=False),
    Column("primary_class", Integer, nullable=False),
    Column("last_updated", Float, nullable=False),
    Column("anchor_tx", String(66)),
    Column("anchor_block", BigInteger),
)

resources = Table(
    "gw_resources", metadata,
    Column("record_id", String(66), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("data_class", Integer, nullable=False),
    Column("patient", String(42), nullable=False),
    Column("last_updated", Float, nullable=False),
    Index("gw_resources_lookup", "resource_type", "resource_id"),
    Index("gw_resources_patient", "patient", "resource_type"),
)

key_wraps = Table(
    "gw_key_wraps", metadata,
    Column("content_id", String(66), primary_key=True),
    Column("key_address", String(42), primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),
)

#: Audit sequence numbers: 64-bit on PostgreSQL (a 32-bit serial would run out after 2^31 reads: 25 days at
#: 1,000 reads/s); SQLite's INTEGER PRIMARY KEY is the 64-bit rowid already, and must stay INTEGER to be it.
SEQ = BigInteger().with_variant(Integer, "sqlite")

audit_batches = Table(
    "gw_audit_batches", metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("root", String(66), nullable=False, unique=True),
    Column("count", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # built | anchored
    Column("tree", Text, nullable=False),           # StandardMerkleTree.dump() as JSON
    Column("created_at", Float, nullable=False),
    Column("tx_hash", String(66)),
    Column("block", BigInteger),
    Column("batch_id", String(80)),
)

audit_entries = Table(
    "gw_audit_entries", metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("reader", String(42), nullable=False, index=True),
    Column("patient", String(42), nullable=False, index=True),
    Column("record_id", String(66), nullable=False),
    Column("version", Integer, nullable=False),
    Column("purpose", Integer, nullable=False),
    Column("basis", String(16), nullable=False),
    Column("classes_mask", Integer, nullable=False),
    Column("decided_at_block", BigInteger, nullable=False),
    Column("consent_granted_at", BigInteger),
    Column("consent_block", BigInteger),
    Column("consent_tx", String(66)),
    Column("event", Text, nullable=False),         # the AuditEvent JSON (canonical)
    Column("event_hash", String(66), nullable=False),
    Column("batch_seq", SEQ, ForeignKey("gw_audit_batches.seq"), index=True),
    Column("batch_index", Integer),
)


intents = Table(
    "gw_intents", metadata,  # a create or amendment between its durable intent and its catalogue rows (journal.py)
    Column("record_id", String(66), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("content_id", String(66), nullable=False),     # the sealed blob: vault/blobs/<2 hex>/<64 hex>
    Column("previous_content_id", String(66)),            # an amendment's previous version (None: a create)
    Column("patient", String(42), nullable=False),
    Column("author", String(42), nullable=False),
    Column("classes_mask", Integer, nullable=False),
    Column("primary_class", Integer, nullable=False),
    Column("resources", Text, nullable=False),            # JSON [[type, id, class], ...] for gw_resources
    Column("from_block", BigInteger, nullable=False),     # the head before the anchor was sent
    Column("boot", String(32), nullable=False),           # the gateway process that wrote it
    Column("created_at", Float, nullable=False),
    Column("batch_root", String(66)),                     # a create of a Merkle batch: its root (else None)
)


creates = Table(
    "gw_creates", metadata,  # idempotent creates: the record a key made (service.Gateway.create_once)
    Column("author", String(42), primary_key=True),       # keys are the caller's own: another caller's never match
    Column("key", String(300), primary_key=True),         # "key:<Idempotency-Key>" | "batch:<Idempotency-Key>"
                                                          # | "identifier:<patient>:<system>|<value>"
    Column("request_hash", String(66)),                   # sha256 of the request (Idempotency-Key only)
    Column("record_id", String(66), nullable=False),      # the record the first request made (or is making)
    Column("batch_root", String(66)),                     # a batch: its root (record_id is its first record)
    Column("created_at", Float, nullable=False),
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA wal_autocheckpoint=0")  # `Store._checkpoints` does it, off the commit path
    cur.close()


#: The advisory lock the gateway's migrations run under on PostgreSQL.
MIGRATION_LOCK = 7262937
#: PostgreSQL connections kept open, and opened beyond them under load.
POOL_SIZE, POOL_OVERFLOW = 16, 32


class Store:
    """An engine plus the gateway's tables, migrated to the newest revision on open."""

    def __init__(self, url: str) -> None:
        url = normalise_url(url)
        try:
            kwargs: dict[str, Any] = {"future": True}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
            else:
                # Reads run in up to 40 worker threads (anyio's default) beside the committer and the anchorer:
                # SQLAlchemy's default pool (5 + 10) would make some of them wait up to 30 s for a connection.
                kwargs.update(pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                              connect_args={"connect_timeout": 10})
            self.engine: Engine = create_engine(url, **kwargs)
            if url.startswith("sqlite"):
                event.listen(self.engine, "connect", _sqlite_pragmas)
            upgrade(self.engine, MIGRATIONS, lock_id=MIGRATION_LOCK, version_table=VERSION_TABLE,
                    baseline=(records.name, BASELINE))
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreError(f"cannot open the gateway database {redacted(url)}: {reason}") from None
        self.url = url
        self._writer: Any = threading.Lock() if url.startswith("sqlite") else contextlib.nullcontext()
        self._closed = threading.Event()
        if url.startswith("sqlite"):
            threading.Thread(target=self._checkpoints, name="medledger-wal-checkpoint", daemon=True).start()

    def _checkpoints(self) -> None:
        """Copies the SQLite WAL into the database every `CHECKPOINT_SECONDS`, in this thread. Left to SQLite,
        the checkpoint (and its fsync of the database file) would run inside whichever commit crosses 1,000 WAL
        pages: an audit commit that readers are waiting for. PASSIVE never blocks writers or readers."""
        while not self._closed.wait(CHECKPOINT_SECONDS):
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except SQLAlchemyError:  # busy or closing: the next round catches up
                continue

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction (committed on exit, rolled back on error). On SQLite the writers of this process
        take turns on a lock first: SQLite has one writer, and a writer that finds the database busy sleeps
        in growing steps (up to 100 ms) instead of starting the moment the other commits."""
        with self._writer, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self._closed.set()
        self.engine.dispose()
