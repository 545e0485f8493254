"""The index's tables (SQLAlchemy 2 declarative models; Alembic migrations create them).

Three layers:

* ``events``: every event of the suite, decoded generically from the ABIs, unique by
  (chain id, tx hash, log index), with the block number and hash it was seen in;
* ``blocks`` and ``cursors``: the block hashes the indexer has seen (reorg detection, `audit verify`
  checkpoints) and, per chain, the next block to read, committed with each chunk;
* projections (``record_versions``, ``consent_changes``, ``claims``): derived from events by
  :mod:`medledger.index.projections`, the one module to adapt when an event changes.

Amounts (uint96/uint256) are stored as decimal text: they overflow a 64-bit integer column.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, BigInteger, Connection, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: An auto-incrementing 64-bit key (SQLite only auto-increments an INTEGER PRIMARY KEY).
BigId = BigInteger().with_variant(Integer(), "sqlite")

ADDRESS = 42
HASH = 66


class Base(DeclarativeBase):
    pass


class Cursor(Base):
    """Per chain: the deployment followed and the next block to read (moves with each committed chunk)."""

    __tablename__ = "cursors"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    next_block: Mapped[int] = mapped_column(BigInteger)
    start_block: Mapped[int] = mapped_column(BigInteger)
    addresses: Mapped[dict[str, Any]] = mapped_column(JSON)
    head_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=0)


class Block(Base):
    """A block hash the index relies on: every block holding an indexed event and every chunk's last block."""

    __tablename__ = "blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(HASH))


class Event(Base):
    """One log of a suite contract, decoded against its ABI (``args`` is JSON: hex bytes, checksum addresses)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index", name="uq_events_chain_tx_log"),
        Index("ix_events_chain_block", "chain_id", "block_number", "log_index"),
        Index("ix_events_chain_patient", "chain_id", "patient"),
        Index("ix_events_chain_subject", "chain_id", "subject"),
        Index("ix_events_chain_party", "chain_id", "party"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(HASH))
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    log_index: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(ADDRESS))
    contract: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(64))
    args: Mapped[str] = mapped_column(Text)  # JSON text, parsed by the reader only when needed
    patient: Mapped[str | None] = mapped_column(String(ADDRESS), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(HASH), nullable=True)
    party: Mapped[str | None] = mapped_column(String(ADDRESS), nullable=True)


class RecordVersion(Base):
    """A record version anchored, amended or attested from a batch (append-only; rolled back by block)."""

    __tablename__ = "record_versions"
    __table_args__ = (
        Index("ix_records_chain_patient", "chain_id", "patient"),
        Index("ix_records_chain_author", "chain_id", "author"),
        Index("ix_records_chain_record", "chain_id", "record_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    record_id: Mapped[str] = mapped_column(String(HASH))
    patient: Mapped[str] = mapped_column(String(ADDRESS))
    author: Mapped[str] = mapped_column(String(ADDRESS))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(HASH))
    data_class: Mapped[int | None] = mapped_column(Integer, nullable=True)
    batch_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # anchored | amended | attested


class ConsentChange(Base):
    """A consent grant or revocation, or a break-glass opening or closing (append-only)."""

    __tablename__ = "consent_changes"
    __table_args__ = (
        Index("ix_consents_patient", "chain_id", "patient", "grantee", "block_number"),
        Index("ix_consents_grantee", "chain_id", "grantee", "block_number"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    patient: Mapped[str] = mapped_column(String(ADDRESS))
    grantee: Mapped[str] = mapped_column(String(ADDRESS))
    actor: Mapped[str | None] = mapped_column(String(ADDRESS), nullable=True)
    kind: Mapped[str] = mapped_column(String(24))  # grant | revoke | break_glass_open | break_glass_close
    purposes: Mapped[int] = mapped_column(Integer, default=0)
    data_classes: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_until: Mapped[int] = mapped_column(BigInteger, default=0)
    doc_hash: Mapped[str | None] = mapped_column(String(HASH), nullable=True)


class Claim(Base):
    """A claim's current state, folded from its events (rebuilt from them after a reorg)."""

    __tablename__ = "claims"
    __table_args__ = (
        Index("ix_claims_insurer", "chain_id", "insurer", "status", "deadline"),
        Index("ix_claims_provider", "chain_id", "provider", "status", "deadline"),
        Index("ix_claims_patient", "chain_id", "patient"),
    )

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    claim_id: Mapped[str] = mapped_column(String(HASH), primary_key=True)
    provider: Mapped[str] = mapped_column(String(ADDRESS))
    insurer: Mapped[str] = mapped_column(String(ADDRESS))
    patient: Mapped[str] = mapped_column(String(ADDRESS))
    control_number: Mapped[str] = mapped_column(String(HASH))
    status: Mapped[str] = mapped_column(String(16))  # submitted | contestable | disputed | settled | voided
    billed: Mapped[str] = mapped_column(String(80), default="0")
    approved: Mapped[str] = mapped_column(String(80), default="0")
    contested: Mapped[str] = mapped_column(String(80), default="0")
    awarded: Mapped[str] = mapped_column(String(80), default="0")
    service_code: Mapped[int] = mapped_column(Integer, default=0)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    deadline: Mapped[int] = mapped_column(BigInteger, default=0)
    adjudication: Mapped[str | None] = mapped_column(String(16), nullable=True)
    claim_hash: Mapped[str | None] = mapped_column(String(HASH), nullable=True)
    submitted_block: Mapped[int] = mapped_column(BigInteger)
    updated_block: Mapped[int] = mapped_column(BigInteger)


def bulk_insert(conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]],
                keys: Mapping[str, str] | None = None) -> None:
    """Inserts `rows` (all with the same keys) with one DBAPI executemany: the ingest hot path, which skips
    SQLAlchemy's per-row parameter processing (every value is already a plain int or str) and takes each
    row's values with one C-level `itemgetter`. `keys` maps a column to the row key that holds its value
    where the two differ (other row keys are ignored)."""
    if not rows:
        return
    keys = keys or {}
    columns = [c for c in model.__table__.columns.keys() if keys.get(c, c) in rows[0]]
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {model.__tablename__} ({', '.join(columns)}) "
           f"VALUES ({', '.join([mark] * len(columns))})")
    names = [keys.get(c, c) for c in columns]
    values = itemgetter(*names)
    conn.exec_driver_sql(sql, list(map(values, rows)) if len(names) > 1 else [(values(r),) for r in rows])
