"""Opening the index database: URL resolution, engine settings and migrations on open.

SQLite is the default (``index.sqlite`` in the MedLedger home, nothing to install); PostgreSQL is
chosen by URL (``postgresql://…`` or ``postgresql+psycopg://…``, driven by psycopg 3). Every open
brings the schema to the newest Alembic revision shipped in ``medledger/index/migrations``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import IndexerError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Environment variable naming the index database (else the default SQLite file).
DB_ENV = "MEDLEDGER_INDEX_DB"
#: WAL pages written between automatic checkpoints on SQLite (10,000 pages of 4 KiB).
WAL_CHECKPOINT_PAGES = 10_000


def default_db_url() -> str:
    """``$MEDLEDGER_INDEX_DB``, else SQLite at ``$MEDLEDGER_HOME/index.sqlite`` (``~/.medledger``)."""
    configured = os.environ.get(DB_ENV)
    if configured:
        return configured
    home = Path(os.environ.get("MEDLEDGER_HOME", Path.home() / ".medledger"))
    return f"sqlite:///{home / 'index.sqlite'}"


def normalise_url(url: str) -> str:
    """The SQLAlchemy URL for `url`: a bare path means SQLite, ``postgresql://`` means psycopg 3."""
    url = url.strip()
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


@dataclass
class IndexDB:
    """An open index: the engine, a session factory and the dialect name."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> IndexDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI connection
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")   # readers (gateway, CLI) never block the indexer
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at each commit under WAL, minus fsync per write
    cur.execute("PRAGMA busy_timeout=10000")
    # Checkpoint (copy the WAL into the database, with an fsync) every ~40 MB of writes instead of SQLite's
    # ~4 MB: a catch-up writes ~1.2 KB per event, so the default fsynced every ~3,500 events.
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    cur.close()


def create(url: str) -> Engine:
    """An engine for `url` (no schema work)."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise IndexerError(f"'{url}' is not a database URL (use sqlite:///PATH or postgresql://USER@HOST/DB)") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise IndexerError(f"PostgreSQL is driven by psycopg 3: use postgresql+psycopg://… (got {_redacted(url)})")
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    raise IndexerError(f"unsupported index database '{backend}' in {_redacted(url)} (use SQLite or PostgreSQL)")


def upgrade(engine: Engine) -> None:
    """Applies every Alembic migration the schema lacks (idempotent; serialised on PostgreSQL)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Several gateways may open one database at once: one migrates, the others wait.
            connection.execute(text("SELECT pg_advisory_xact_lock(7262936)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_index(url: str | None = None, *, migrate: bool = True) -> IndexDB:
    """Opens (and by default migrates) the index at `url` (default: :func:`default_db_url`)."""
    url = normalise_url(url or default_db_url())
    engine = create(url)
    try:
        if migrate:
            upgrade(engine)
        else:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
    except (OperationalError, ProgrammingError) as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise IndexerError(f"cannot open the index database {_redacted(url)}: {reason}") from None
    return IndexDB(url, engine, sessionmaker(engine, expire_on_commit=False))
