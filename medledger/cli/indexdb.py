"""The index database option and the index-backed audit trail, shared by `audit` and `medledger index`."""
from __future__ import annotations

from typing import Any

import click

from ..index import db as index_db
from ..index import queries
from .app import App

db_option = click.option("--db", "db_url", envvar=index_db.DB_ENV, metavar="URL",
                         help="Index database: sqlite:///PATH or postgresql://USER@HOST/DB "
                              "(default: index.sqlite in the MedLedger home). Env: MEDLEDGER_INDEX_DB.")


def open_db(db_url: str | None) -> index_db.IndexDB:
    return index_db.open_index(db_url)



def index_trail(app: App, address: str, db_url: str | None) -> list[Any]:
    """`address`'s audit trail from the index; warns on stderr when the index lags the chain."""
    from .app import err_console
    db = open_db(db_url)
    try:
        chain_id = app.chain.chain_id
        state = queries.require_chain(db, chain_id)
        head = app.chain.w3.eth.block_number
        if head - state.indexed_to > 0 and not app.as_json:
            err_console.print(f"[yellow]note:[/yellow] the index is at block {state.indexed_to:,}, the chain at "
                              f"{head:,}: run `medledger index` (or pass --live) for the newest events",
                              highlight=False)
        return queries.patient_trail(db, chain_id, address)
    finally:
        db.close()
