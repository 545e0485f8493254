"""The event index: every event of the suite in SQLite (default) or PostgreSQL, reorg-safe, queryable.

* :mod:`.db` opens a database and applies the Alembic migrations shipped in ``migrations/``;
* :mod:`.models` holds the tables, :mod:`.projections` everything derived from events;
* :mod:`.rpc` reads logs within providers' limits, :mod:`.follower` keeps the index in step with a chain;
* :mod:`.queries` answers audit trails, record lists, claim queues and consent state;
* :mod:`.verify` compares the index with the chain, :mod:`.api` serves the queries as JSON over HTTP.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["IndexDB", "default_db_url", "follower_for", "open_index"]


def __getattr__(name: str) -> Any:
    # SQLAlchemy loads only when the index is used: the CLI's other commands start faster.
    if name in ("IndexDB", "default_db_url", "open_index"):
        from . import db
        return getattr(db, name)
    raise AttributeError(name)


def follower_for(db: Any, chain: Any, deployment: Any, *, confirmations: int | None = None,
                 reorg_window: int | None = None, chunk: int = 2_000, max_chunk: int = 10_000,
                 progress: Callable[..., None] | None = None) -> Any:
    """A :class:`~.follower.Follower` for the suite of `deployment` on the SDK `chain`."""
    from ..config import DEV_CHAIN_IDS
    from ..deployments import SUITE
    from .abi import Decoder
    from .follower import Follower
    from .rpc import RpcReader

    addresses = {name: deployment.address(name) for name in SUITE}
    start = min(deployment.contracts[name].block for name in SUITE)
    reader = RpcReader(chain.settings.rpc_url, timeout=chain.settings.rpc_timeout)
    return Follower(db, reader, Decoder.for_chain(chain, addresses), addresses, chain_id=chain.chain_id,
                    start_block=start, confirmations=confirmations, reorg_window=reorg_window, chunk=chunk,
                    max_chunk=max_chunk, progress=progress,
                    # a development chain is redeployed at will: its index follows the newest deployment
                    replace_deployment=chain.chain_id in DEV_CHAIN_IDS)
