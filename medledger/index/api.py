"""The index's read API: JSON over HTTP, a Starlette app the gateway mounts (``app.mount("/index", …)``).

Routes (all GET, all read-only; ``{chain}`` is a chain id):

* ``/status``: every followed chain, how far it is indexed and the head it saw;
* ``/chains/{chain}/patients/{address}/audit?limit=&offset=``: a patient's audit trail;
* ``/chains/{chain}/records?patient=|author=&limit=&offset=``: record list (latest versions);
* ``/chains/{chain}/claims/queue?insurer=|provider=&limit=``: a claim work queue;
* ``/chains/{chain}/consents?patient=|grantee=&block=``: consent state as of a block.

Bad input gets a 400 with ``{"error": "..."}``; a chain the index does not follow gets a 404. The
app applies no authentication: the gateway that mounts it decides who may ask what.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..errors import IndexerError
from . import queries
from .db import IndexDB, open_index

MAX_LIMIT = 10_000


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, queries.IndexStatus):
            out["lag"] = value.lag
        return out
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, int) and abs(value) > 2**53:
        return str(value)  # amounts beyond a JavaScript number's exact range
    return value


def _int(request: Request, name: str, default: int | None, low: int = 0, high: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise IndexerError(f"{name} must be an integer, got '{raw}'") from None
    if value < low or (high is not None and value > high):
        raise IndexerError(f"{name} must be between {low} and {high if high is not None else 'any'}, got {value}")
    return value


def _chain(request: Request) -> int:
    raw = request.path_params["chain"]
    try:
        return int(raw)
    except ValueError:
        raise IndexerError(f"chain must be a chain id (an integer), got '{raw}'") from None


Handler = Callable[[IndexDB, Request], Any]


def _endpoint(db: IndexDB, fn: Handler, chain_scoped: bool = True) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        try:
            if chain_scoped:
                chain = _chain(request)
                if not queries.status(db, chain):
                    return JSONResponse({"error": f"the index does not follow chain {chain}"}, status_code=404)
            result = await run_in_threadpool(fn, db, request)
        except IndexerError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(_json(result))
    return endpoint


def _status(db: IndexDB, request: Request) -> Any:
    return queries.status(db)


def _audit(db: IndexDB, request: Request) -> Any:
    limit = _int(request, "limit", None, 1, MAX_LIMIT)
    offset = _int(request, "offset", 0)
    trail = queries.patient_trail(db, _chain(request), request.path_params["address"], limit=limit, offset=offset or 0)
    return [r.as_dict() for r in trail]


def _records(db: IndexDB, request: Request) -> Any:
    q = request.query_params
    return queries.records(db, _chain(request), patient=q.get("patient"), author=q.get("author"),
                           limit=_int(request, "limit", 1_000, 1, MAX_LIMIT), offset=_int(request, "offset", 0) or 0)


def _queue(db: IndexDB, request: Request) -> Any:
    q = request.query_params
    return queries.claim_queue(db, _chain(request), insurer=q.get("insurer"), provider=q.get("provider"),
                               limit=_int(request, "limit", 100, 1, MAX_LIMIT) or 100)


def _consents(db: IndexDB, request: Request) -> Any:
    q = request.query_params
    return queries.consent_state(db, _chain(request), patient=q.get("patient"), grantee=q.get("grantee"),
                                 as_of_block=_int(request, "block", None))


def routes(db: IndexDB) -> list[Route]:
    """The API's routes over `db` (to add to an existing Starlette/FastAPI app)."""
    return [
        Route("/status", _endpoint(db, _status, chain_scoped=False)),
        Route("/chains/{chain}/patients/{address}/audit", _endpoint(db, _audit)),
        Route("/chains/{chain}/records", _endpoint(db, _records)),
        Route("/chains/{chain}/claims/queue", _endpoint(db, _queue)),
        Route("/chains/{chain}/consents", _endpoint(db, _consents)),
    ]


def create_index_app(db_url: str | IndexDB | None = None) -> Starlette:
    """The read API as an ASGI app over the index at `db_url` (default: the user's SQLite index)."""
    db = db_url if isinstance(db_url, IndexDB) else open_index(db_url)
    app = Starlette(routes=routes(db))
    app.state.index_db = db
    return app
