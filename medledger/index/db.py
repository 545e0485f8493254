"""Opening the index database: URL resolution, engine settings and migrations on open.

SQLite is the default (``index.sqlite`` in the MedLedger home, nothing to install); PostgreSQL is
chosen by URL (``postgresql://…`` or ``postgresql+psycopg://…``, driven by psycopg 3). Every open
brings the schema to the newest Alembic revision shipped in ``medledger/index/migrations``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, event, text
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


def redacted(url: str) -> str:
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
            raise IndexerError(f"PostgreSQL is driven by psycopg 3: use postgresql+psycopg://… (got {redacted(url)})")
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    raise IndexerError(f"unsupported index database '{backend}' in {redacted(url)} (use SQLite or PostgreSQL)")


#: The advisory lock the index's migrations run under on PostgreSQL (the gateway's uses its own).
MIGRATION_LOCK = 7262936


def upgrade(engine: Engine, migrations: Path = MIGRATIONS, *, lock_id: int = MIGRATION_LOCK,
            version_table: str = "alembic_version", baseline: tuple[str, str] | None = None) -> None:
    """Applies every Alembic migration in `migrations` the schema lacks (idempotent; serialised on PostgreSQL
    by the advisory lock `lock_id`). `baseline` = (a table, a revision): a database that has that table but no
    `version_table` was made before migrations existed, with the schema of that revision; it is stamped with
    it (not recreated), then upgraded."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    config = Config()
    config.set_main_option("script_location", str(migrations))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Several processes may open one database at once: one migrates, the others wait.
            connection.execute(text("SELECT pg_advisory_xact_lock(CAST(:id AS bigint))"), {"id": lock_id})
        config.attributes["connection"] = connection
        if baseline is not None:
            tables = set(inspect(connection).get_table_names())
            if baseline[0] in tables and version_table not in tables:
                command.stamp(config, baseline[1])
        command.upgrade(config, "head")


def run_migrations(target_metadata: MetaData, version_table: str = "alembic_version") -> None:
    """The body of a shipped ``migrations/env.py``: runs on the connection `upgrade` hands over (no
    alembic.ini), or on ``sqlalchemy.url`` when ``alembic`` is run by hand."""
    from alembic import context

    config = context.config
    options = {"target_metadata": target_metadata, "render_as_batch": True, "version_table": version_table}
    connection = config.attributes.get("connection")
    if connection is None:  # pragma: no cover - only `alembic` run by hand takes this path
        with create_engine(config.get_main_option("sqlalchemy.url")).connect() as conn:
            context.configure(connection=conn, **options)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


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
        raise IndexerError(f"cannot open the index database {redacted(url)}: {reason}") from None
    return IndexDB(url, engine, sessionmaker(engine, expire_on_commit=False))
