"""The gateway's database on its own (no chain, no server): Alembic migrations on open, on SQLite and on a real
PostgreSQL 15 started from a temp dir (`medledger.testing.postgres`).

- a fresh database gets the head revision, and the migrated schema is exactly the tables of `store.metadata`;
- a database made by the code before migrations (`metadata.create_all`) is stamped and upgraded in place,
  its rows kept;
- several processes' stores opening one new PostgreSQL database at once migrate it once (advisory lock);
- a database that cannot be opened is one clear line.
"""
from __future__ import annotations

import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, insert, inspect, select, text

from medledger.gateway import store as T
from medledger.gateway.migrations import BASELINE, VERSION_TABLE
from medledger.gateway.store import MIGRATIONS, Store, StoreError
from medledger.testing.postgres import PostgresServer

#: The tables `metadata.create_all` made before migrations existed (revision 0001, main at 8bb3fc3).
CREATE_ALL_TABLES = ("gw_login_nonces", "gw_request_nonces", "gw_sessions", "gw_records", "gw_resources",
                     "gw_key_wraps", "gw_audit_batches", "gw_audit_entries")


@pytest.fixture(autouse=True)
def isolation():
    """No chain state is touched here."""


@pytest.fixture(scope="module")
def pg():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("pg").create_database()


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def revision_of(store: Store) -> str:
    with store.read() as conn:
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one()


def schema_differences(store: Store) -> list:
    with store.read() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), T.metadata)


def test_fresh_database_gets_the_head_revision(db_url):
    store = Store(db_url)
    try:
        assert revision_of(store) == head_revision()
        assert schema_differences(store) == []  # the migrations make exactly the tables the code uses
    finally:
        store.close()
    again = Store(db_url)  # a second open changes nothing
    try:
        assert revision_of(again) == head_revision()
    finally:
        again.close()


def create_all_database(db_url: str) -> Engine:
    """A database as `metadata.create_all` made it before migrations existed: revision 0001 is exactly that
    schema (generated from it), without a version table."""
    engine = create_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, BASELINE)
        conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    assert sorted(inspect(engine).get_table_names()) == sorted(CREATE_ALL_TABLES)
    return engine


def test_a_create_all_database_is_stamped_and_upgraded_with_its_rows(db_url):
    engine = create_all_database(db_url)
    with engine.begin() as conn:
        conn.execute(insert(T.records).values(
            record_id="0x" + "ab" * 32, version=1, patient="0x" + "11" * 20, author="0x" + "22" * 20,
            content_id="0x" + "cd" * 32, classes_mask=6, primary_class=1, last_updated=1.5e9,
            anchor_tx="0x" + "ef" * 32, anchor_block=7))
        batch = conn.execute(insert(T.audit_batches).values(root="0x" + "01" * 32, count=1, status="anchored",
                                                              tree="{}", created_at=1.5e9)).inserted_primary_key[0]
        conn.execute(insert(T.audit_entries).values(
            time=1.5e9, reader="0x" + "33" * 20, patient="0x" + "11" * 20, record_id="0x" + "ab" * 32, version=1,
            purpose=0, basis="consent", classes_mask=6, decided_at_block=7, event="{}", event_hash="0x" + "00" * 32,
            batch_seq=batch, batch_index=0))
    assert VERSION_TABLE not in inspect(engine).get_table_names()
    engine.dispose()
    store = Store(db_url)
    try:
        assert revision_of(store) == head_revision()
        assert schema_differences(store) == []
        with store.read() as conn:
            row = conn.execute(select(T.records)).one()
            entry = conn.execute(select(T.audit_entries)).one()
        assert (row.record_id, row.anchor_block, entry.batch_seq) == ("0x" + "ab" * 32, 7, batch)
        with store.begin() as conn:  # and the old tables still take writes (sequences and keys intact)
            conn.execute(insert(T.audit_entries).values(
                time=1.6e9, reader="0x" + "33" * 20, patient="0x" + "11" * 20, record_id="0x" + "ab" * 32,
                version=1, purpose=0, basis="consent", classes_mask=6, decided_at_block=8, event="{}",
                event_hash="0x" + "01" * 32))
        with store.read() as conn:
            assert [r.seq for r in conn.execute(select(T.audit_entries.c.seq).order_by(T.audit_entries.c.seq))] \
                == [entry.seq, entry.seq + 1]
    finally:
        store.close()


def _entry(batch: int | None = None, **values) -> dict:
    return {"time": 1.5e9, "reader": "0x" + "33" * 20, "patient": "0x" + "11" * 20, "record_id": "0x" + "ab" * 32,
            "version": 1, "purpose": 0, "basis": "consent", "classes_mask": 6, "decided_at_block": 7, "event": "{}",
            "event_hash": "0x" + "00" * 32, "batch_seq": batch, "batch_index": None if batch is None else 0,
            **values}


def test_audit_sequence_numbers_go_past_32_bits(db_url):
    """Sequence numbers past 2^31 (25 days of reads at 1,000/s): 64-bit on both backends."""
    store = Store(db_url)
    past = 3_000_000_000
    try:
        with store.begin() as conn:
            if store.engine.dialect.name == "postgresql":  # the serial sequences themselves must go past it
                conn.execute(text(f"SELECT setval('gw_audit_batches_seq_seq', {past})"))
                conn.execute(text(f"SELECT setval('gw_audit_entries_seq_seq', {past})"))
            else:  # the rowid: the next automatic value follows the largest
                conn.execute(insert(T.audit_entries).values(**_entry(seq=past)))
            batch = conn.execute(insert(T.audit_batches).values(root="0x" + "02" * 32, count=1, status="built",
                                                                  tree="{}", created_at=1.5e9)).inserted_primary_key[0]
            seq = conn.execute(insert(T.audit_entries).values(**_entry(batch))).inserted_primary_key[0]
        assert seq == past + 1
        with store.read() as conn:
            stored = conn.execute(select(T.audit_entries.c.batch_seq).where(T.audit_entries.c.seq == seq))
            assert stored.scalar_one() == batch
    finally:
        store.close()


def test_concurrent_opens_of_one_new_postgres_database_migrate_once(pg):
    url = pg.create_database()
    errors: list[BaseException] = []
    stores: list[Store] = []

    def open_one() -> None:
        try:
            stores.append(Store(url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == [] and len(stores) == 4
        assert revision_of(stores[0]) == head_revision()
        with stores[0].read() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar_one() == 1
    finally:
        for s in stores:
            s.close()


def test_an_unreachable_database_is_one_clear_line():
    with pytest.raises(StoreError) as failed:
        Store("postgresql://nobody:secret@127.0.0.1:1/none")
    message = str(failed.value)
    assert message.startswith("cannot open the gateway database postgresql+psycopg://nobody:***@127.0.0.1:1/none: ")
    assert "\n" not in message and "secret" not in message
