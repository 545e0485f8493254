"""The index database option and the index-backed audit trail, shared by `audit` and `medledger index`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .app import App

#: Same as medledger.index.db.DB_ENV (not imported: SQLAlchemy loads only when the index is used).
DB_ENV = "MEDLEDGER_INDEX_DB"

db_option = click.option("--db", "db_url", envvar=DB_ENV, metavar="URL",
                         help="Index database: sqlite:///PATH or postgresql://USER@HOST/DB "
                              "(default: index.sqlite in the MedLedger home). Env: MEDLEDGER_INDEX_DB.")


def open_db(db_url: str | None) -> Any:
    """The index database at `db_url` (default: the user's SQLite index), migrated."""
    from ..index.db import open_index
    return open_index(db_url)



def index_trail(app: App, address: str | list[str], db_url: str | None, sync: bool = True) -> list[Any]:
    """The audit trail of `address` (or of several, merged in chain order) from the index, brought up to
    date first unless `sync` is False (then a
    note on stderr says how far the index lags the chain)."""
    from ..index import queries
    return _synced(app, db_url, sync, lambda db, chain_id: queries.patient_trail(db, chain_id, address))


def index_record_versions(app: App, patients: list[str], db_url: str | None, sync: bool = True) -> list[Any]:
    """Every record version of `patients` from the index (brought up to date first unless `sync` is False)."""
    from ..index import queries
    return _synced(app, db_url, sync, lambda db, chain_id: queries.record_versions(db, chain_id, patients))


def _synced(app: App, db_url: str | None, sync: bool, answer: Callable[[Any, int], list[Any]]) -> list[Any]:
    from ..errors import IndexBusy
    from ..index import follower_for, queries
    from .app import err_console
    db = open_db(db_url)
    try:
        chain_id = app.chain.chain_id
        if sync:
            try:
                follower_for(db, app.chain, app.deployment).sync_once()
            except IndexBusy as exc:  # a dedicated indexer feeds this database: answer from it as is
                err_console.print(f"[yellow]note:[/yellow] the index was not brought up to date: {exc}",
                                  highlight=False)
        state = queries.require_chain(db, chain_id)
        head = app.chain.w3.eth.block_number
        if head - state.indexed_to > 0 and not app.as_json:
            err_console.print(f"[yellow]note:[/yellow] the index is at block {state.indexed_to:,}, the chain at "
                              f"{head:,}: run `medledger index` (or pass --live) for the newest events",
                              highlight=False)
        return answer(db, chain_id)
    finally:
        db.close()
