"""The HTTP face of the gateway (FastAPI on uvicorn): FHIR REST, sign-in, audit proofs, OpenAPI at
``/openapi.json``.

Answers without a body: 401 for an unauthenticated caller (the reason is only in ``WWW-Authenticate``),
404 for "no such record" and "not yours to know" alike, 413 for an oversized body. Other refusals carry a
FHIR OperationOutcome naming what is wrong.
"""

import asyncio
import functools
import hashlib
import json
import logging
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ChainError, ContractReverted, MedLedgerError
from .auth import REQUEST_SCHEME, AuthError, Caller
from .service import Gateway, GatewayError, GatewaySettings, Released, parse_purpose

log = logging.getLogger("medledger.gateway")
FHIR_JSON = "application/fhir+json"
FHIR_JSON_BYTES = FHIR_JSON.encode()
SAFE_ID = r"^[A-Za-z0-9\-\.]{1,64}$"
RESOURCE_TYPE = r"^[A-Z][A-Za-z]{1,63}$"


class Unauthenticated(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class SiweLogin(BaseModel):
    message: str
    signature: str


class Session(BaseModel):
    token: str
    address: str
    expiresAt: float


class Nonce(BaseModel):
    nonce: str


def outcome(message: str, code: str = "processing", severity: str = "error") -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": message}]}


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type=FHIR_JSON,
                    headers=headers)


class BodyLimit:
    """Pure-ASGI guard: refuses any request body over ``limit`` bytes with an empty 413."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await Response(status_code=413)(scope, receive, send)
                    return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await Response(status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(settings: GatewaySettings, gateway: Gateway | None = None) -> FastAPI:
    """The ASGI app of one custodian gateway (opens the chain, the database and the keyring)."""
    gw = gateway or Gateway(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        gw.start()
        try:
            yield
        finally:
            await run_in_threadpool(gw.stop)

    app = FastAPI(title="MedLedger record gateway", version="1",
                  description="A custodian's FHIR gateway: wallet sign-in, live on-chain consent per read, "
                              "write-ahead audit anchored on chain. See docs/GATEWAY.md.",
                  lifespan=lifespan)
    app.state.gateway = gw

    # ---------------------------------------------------------------- errors
    @app.exception_handler(Unauthenticated)
    async def _unauth(_req: Request, exc: Unauthenticated) -> Response:
        reason = exc.reason.replace('"', "'")
        return Response(status_code=401, headers={
            "WWW-Authenticate": f'Bearer realm="medledger", error="invalid_token", error_description="{reason}"'})

    @app.exception_handler(GatewayError)
    async def _gw_error(_req: Request, exc: GatewayError) -> Response:
        if exc.status == 404:
            return Response(status_code=404)
        code = {403: "forbidden", 409: "conflict", 412: "conflict", 422: "invalid"}.get(exc.status, "invalid")
        return fhir_response(outcome(str(exc), code), exc.status)

    @app.exception_handler(MedLedgerError)
    async def _ml_error(_req: Request, exc: MedLedgerError) -> Response:
        log.warning("request failed: %s", exc)
        unavailable = isinstance(exc, ChainError) and not isinstance(exc, ContractReverted)
        return fhir_response(outcome(str(exc)), 503 if unavailable else 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> Response:
        # unknown routes and methods: a status, no body (nothing to learn about the service's data)
        return Response(status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return fhir_response(outcome(f"{where}: {first.get('msg', 'invalid request')}", "invalid"), 400)

    # ---------------------------------------------------------------- who is calling
    accepted_origins = {gw.origin, *(o.rstrip("/") for o in settings.allowed_origins)}

    def authenticate(request: Request, body: bytes = b"") -> Caller:
        origin = request.headers.get("origin")
        if origin and origin.rstrip("/") not in accepted_origins:
            raise Unauthenticated(f"requests from {origin} are not accepted by {gw.origin}")
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and credential:
            caller = gw.auth.session(credential.strip())
            if caller is None:
                raise Unauthenticated("unknown, expired or revoked session")
            return caller
        if scheme == REQUEST_SCHEME and credential:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            try:
                return gw.auth.signed_request(credential.strip(), request.method, path, body)
            except AuthError as exc:
                raise Unauthenticated(str(exc)) from None
        raise Unauthenticated("sign in with Ethereum (POST /auth/siwe) or sign the request (EIP-712)")

    def caller_dep(request: Request) -> Caller:
        return authenticate(request)

    async def caller_fast(request: Request) -> Caller:
        """`caller_dep` without a worker thread when the bearer session is already known to this process
        (an in-memory lookup; expiry is still checked); anything else goes through `authenticate`."""
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        origin = request.headers.get("origin")
        if scheme.lower() == "bearer" and credential and (not origin or origin.rstrip("/") in accepted_origins):
            known = gw.auth.known_session(credential.strip())
            if known is not None:
                return known
        return await run_in_threadpool(authenticate, request)

    async def caller_with_body(request: Request) -> Caller:
        return await run_in_threadpool(authenticate, request, await request.body())

    CallerDep = Annotated[Caller, Depends(caller_dep)]
    FastCallerDep = Annotated[Caller, Depends(caller_fast)]
    BodyCallerDep = Annotated[Caller, Depends(caller_with_body)]
    IdempotencyKey = Annotated[str | None, Header(
        alias="Idempotency-Key", max_length=128,
        description="makes a retry safe: the same key answers what the first request made instead of writing again")]
    PurposeHeader = Annotated[str | None, Header(alias="X-Purpose-Of-Use", description="HL7 PurposeOfUse (TREAT, "
                                                 "ETREAT, HPAYMT, HOPERAT, HRESCH, COVERAGE); default TREAT")]

    def released(r: Released) -> Response:
        headers = {"X-MedLedger-Audit": ",".join(str(s) for s in r.audit_seqs)} if r.audit_seqs else None
        if r.raw is not None:
            return Response(r.raw, media_type=FHIR_JSON, headers=headers)
        return fhir_response(r.body, headers=headers)

    # ---------------------------------------------------------------- sign-in
    @app.get("/auth/nonce", response_model=Nonce, tags=["auth"])
    def nonce() -> Nonce:
        """A single-use nonce (5 minutes) for a Sign-In with Ethereum message."""
        return Nonce(nonce=gw.auth.new_nonce())

    @app.post("/auth/siwe", response_model=Session, tags=["auth"],
              responses={401: {"description": "refused; the reason is in WWW-Authenticate"}})
    def siwe_login(login: SiweLogin) -> Session:
        """Exchange a signed EIP-4361 message for a short bearer session."""
        try:
            token, caller = gw.auth.sign_in(login.message, login.signature)
        except AuthError as exc:
            raise Unauthenticated(str(exc)) from None
        return Session(token=token, address=caller.address, expiresAt=caller.expires_at)

    @app.post("/auth/logout", status_code=204, tags=["auth"])
    def logout(request: Request, caller: CallerDep) -> Response:
        """Revoke the bearer session used for this call."""
        _scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if caller.via == "session":
            gw.auth.sign_out(token.strip())
        return Response(status_code=204)

    # ---------------------------------------------------------------- service
    @app.get("/healthz", tags=["service"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "chainId": gw.chain_id, "custodian": settings.signer.address,
                "gatewayKey": gw.key.address, "freshnessBlocks": gw.view.freshness_blocks,
                "auditPending": gw.audit.pending_entries(), "anchorError": gw.anchorer.last_error,
                "batchSize": gw.anchorer.batch_size, "batchSeconds": gw.anchorer.batch_seconds,
                "journalPending": gw.journal.pending()}

    @app.get("/fhir/metadata", tags=["fhir"])
    def metadata() -> Response:
        """A minimal CapabilityStatement."""
        types = [{"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"},
                                             *([{"code": "vread"}, {"code": "update"}, {"code": "history-instance"}]
                                               if t == "Bundle" else [])],
                  "conditionalCreate": True,
                  "searchParam": [{"name": "patient", "type": "reference"},
                                  {"name": "_lastUpdated", "type": "date"}]}
                 for t in ("Bundle", "Patient", "Condition", "Observation", "MedicationRequest", "Encounter",
                           "Coverage", "Claim", "AllergyIntolerance", "Procedure")]
        return fhir_response({"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
                              "fhirVersion": "5.0.0", "format": ["json"],
                              "rest": [{"mode": "server", "resource": types, "interaction": [{"code": "batch"}],
                                        "security": {"description": "SIWE sessions or EIP-712 signed requests; "
                                                     "on-chain consent per read"}}]})

    # ---------------------------------------------------------------- FHIR
    @app.post("/fhir", tags=["fhir"],
              responses={401: {"description": "unauthenticated (no body)"}, 403: {"description": "an entry refused"},
                         409: {"description": "the chain refused the batch"}, 413: {"description": "too large"},
                         422: {"description": "an entry is invalid FHIR"}})
    async def batch(request: Request, caller: BodyCallerDep, idempotency_key: IdempotencyKey = None) -> Response:
        """A FHIR ``batch`` Bundle whose entries each create a record (``POST Bundle?patient=0x…``): checked
        all-or-nothing, sealed, stored and anchored as ONE Merkle batch; a ``batch-response`` Bundle with one
        ``Location`` per record. A bad entry refuses the whole batch, naming the entry; nothing is written. A
        retry with the same ``Idempotency-Key`` answers the batch the first request made."""
        body = await request.body()
        try:
            doc = json.loads(body)
        except ValueError:
            raise GatewayError("the body is not JSON") from None
        answer, _replayed = await run_in_threadpool(functools.partial(
            gw.create_batch, caller, doc, idempotency_key=idempotency_key, request_hash=_request_hash("", body)))
        return fhir_response(answer)

    @app.post("/fhir/{rtype}", status_code=201, tags=["fhir"],
              responses={200: {"description": "a replay: the record this Idempotency-Key or identifier made"},
                         401: {"description": "unauthenticated (no body)"},
                         409: {"description": "the chain refused the anchor, or the same create is still under way"},
                         413: {"description": "too large"},
                         422: {"description": "invalid FHIR, or an Idempotency-Key reused for another request"}})
    async def create(request: Request, caller: BodyCallerDep, rtype: Annotated[str, Path(pattern=RESOURCE_TYPE)],
                     patient: Annotated[str | None, Query(max_length=64)] = None,
                     idempotency_key: IdempotencyKey = None,
                     if_none_exist: Annotated[str | None, Header(
                         alias="If-None-Exist", max_length=300,
                         description="FHIR conditional create: identifier=[system|]value; a record you created "
                                     "for the patient with it is answered (200) instead")] = None) -> Response:
        """Create a record: validate, seal for the patient and this gateway, store, anchor on chain (201). A retry
        with the same ``Idempotency-Key``, or a conditional create whose ``If-None-Exist`` identifier made a
        record already, answers that record (200, the same Location) and changes nothing."""
        body = await request.body()
        try:
            doc = json.loads(body)
        except ValueError:
            raise GatewayError("the body is not JSON") from None
        if not isinstance(doc, dict) or doc.get("resourceType") != rtype:
            raise GatewayError(f"the body's resourceType must be {rtype}")
        created, replayed = await run_in_threadpool(
            functools.partial(gw.create_once, caller, doc, patient, idempotency_key=idempotency_key,
                              if_none_exist=if_none_exist, request_hash=_request_hash(f"{rtype}\n{patient}", body)))
        return JSONResponse(created, status_code=200 if replayed else 201,
                            headers={"Location": f"/fhir/{rtype}/{created['id']}"})

    @app.put("/fhir/Bundle/{rid}", tags=["fhir"],
             responses={401: {"description": "unauthenticated (no body)"}, 403: {"description": "not the author"},
                        404: {"description": "not found"}, 409: {"description": "the chain refused the amendment"},
                        412: {"description": "If-Match names a superseded version"},
                        422: {"description": "invalid FHIR"}})
    async def amend(request: Request, caller: BodyCallerDep, rid: Annotated[str, Path(pattern=SAFE_ID)],
                    if_match: Annotated[str | None, Header(alias="If-Match", max_length=64,
                                                           description='W/"<versionId>" of the latest version')]
                    = None) -> Response:
        """Amend a record (FHIR versioned update): the body becomes version n+1, sealed, stored and anchored with
        ``RecordRegistry.amend``. Only the record's author may amend it."""
        try:
            doc = json.loads(await request.body())
        except ValueError:
            raise GatewayError("the body is not JSON") from None
        amended = await run_in_threadpool(gw.amend, caller, rid, doc, if_match)
        version = amended["version"]
        return JSONResponse(amended, headers={"ETag": f'W/"{version}"',
                                              "Location": f"/fhir/Bundle/{amended['id']}/_history/{version}"})

    @app.get("/fhir/Bundle/{rid}/_history/{version}", tags=["fhir"],
             responses={401: {"description": "unauthenticated (no body)"}, 403: {"description": "refused, with why"},
                        404: {"description": "no such version, or not yours to know"}})
    async def vread(rid: Annotated[str, Path(pattern=SAFE_ID)], version: Annotated[int, Path(ge=1, le=65_535)],
                    caller: FastCallerDep, purpose: PurposeHeader = None) -> Response:
        """Read one version of a record (``vread``), minus what the reader may not see; audited as a read."""
        return released(await run_in_threadpool(gw.read_version, caller, rid, version, parse_purpose(purpose)))

    @app.get("/fhir/Bundle/{rid}/_history", tags=["fhir"],
             responses={401: {"description": "unauthenticated (no body)"}, 403: {"description": "refused, with why"},
                        404: {"description": "no such record, or not yours to know"}})
    async def history(request: Request, rid: Annotated[str, Path(pattern=SAFE_ID)], caller: FastCallerDep,
                      purpose: PurposeHeader = None) -> Response:
        """A record's versions (FHIR ``history``), newest first, each minus what the reader may not see; every
        version returned is audited as a read. ``total`` counts only the versions returned."""
        base = str(request.base_url).rstrip("/") + "/fhir"
        return released(await run_in_threadpool(gw.history, caller, rid, parse_purpose(purpose), base))

    @app.get("/fhir/Bundle/{rid}/$explain-access", tags=["fhir"],
             responses={401: {"description": "unauthenticated (no body)"}, 404: {"description": "not found"}})
    def explain(rid: Annotated[str, Path(pattern=SAFE_ID)], caller: CallerDep,
                purpose: PurposeHeader = None) -> dict[str, Any]:
        """Who may read this record now, and why (the patient and guardians see every reader)."""
        return gw.explain(caller, rid, parse_purpose(purpose))

    @app.get("/fhir/{rtype}/{rid}", tags=["fhir"],
             responses={401: {"description": "unauthenticated (no body)"}, 403: {"description": "refused, with why"},
                        404: {"description": "no such record, or not yours to know"}})
    async def read(rtype: Annotated[str, Path(pattern=RESOURCE_TYPE)], rid: Annotated[str, Path(pattern=SAFE_ID)],
                   caller: FastCallerDep, purpose: PurposeHeader = None) -> Response:
        """Read a record (``Bundle/{record id}``) or one resource of it, minus what the reader may not see."""
        # `FastReads` answers a Bundle read whose inputs are all in memory before it gets here. Otherwise one
        # worker thread: the consent view may call the chain, and the audit commit blocks.
        return released(await run_in_threadpool(gw.read_resource, caller, rtype, rid, parse_purpose(purpose)))

    @app.get("/fhir/{rtype}", tags=["fhir"],
             responses={401: {"description": "unauthenticated (no body)"}})
    def search(request: Request, rtype: Annotated[str, Path(pattern=RESOURCE_TYPE)], caller: CallerDep,
               patient: Annotated[str | None, Query(max_length=80)] = None,
               last_updated: Annotated[list[str] | None, Query(alias="_lastUpdated", max_length=8)] = None,
               purpose: PurposeHeader = None) -> Response:
        """Search by patient, type and ``_lastUpdated``; the total counts only what the reader sees."""
        base = str(request.base_url).rstrip("/") + "/fhir"
        return released(gw.search(caller, rtype, patient, [v[:64] for v in last_updated or []],
                                  parse_purpose(purpose), base))

    # ---------------------------------------------------------------- audit
    @app.get("/audit", tags=["audit"], responses={401: {"description": "unauthenticated (no body)"}})
    def audit_list(caller: CallerDep, patient: Annotated[str | None, Query(max_length=64)] = None,
                   before: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> dict[str, Any]:
        """Audit entries, newest first, 100 a page (``before``: the next page, below that sequence number): the
        patient's (for the patient or a guardian), else the caller's own reads."""
        return gw.audit_list(caller, patient, before)

    @app.get("/audit/{seq}/proof", tags=["audit"],
             responses={401: {"description": "unauthenticated (no body)"}, 404: {"description": "not found"}})
    def audit_proof(seq: Annotated[int, Path(ge=1, le=2**62)], caller: CallerDep) -> dict[str, Any]:
        """The Merkle inclusion proof of one audit entry, for its reader or its patient."""
        return gw.audit_proof(caller, seq)

    return BodyLimitApp(FastReads(app, gw, accepted_origins), settings.max_body)


def _request_hash(what: str, body: bytes) -> str:
    """What an Idempotency-Key is bound to: SHA-256 of the request's target and body."""
    return "0x" + hashlib.sha256(what.encode() + b"\n" + body).hexdigest()


class _Forwarding:
    """Attribute access reaches the wrapped app (``.state``, ``.openapi``)."""

    app: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


class FastReads(_Forwarding):
    """Pure-ASGI fast path of ``GET /fhir/Bundle/{64 hex digits}`` (the route and its OpenAPI entry stay in the
    FastAPI app).

    It answers only when everything is already in memory: a known bearer session from an accepted origin, a
    valid purpose, and what `Gateway.read_record_nowait` needs. The decision and the audit entry are the same
    as the route's; the answer is sent only after the entry's durable commit, awaited through a future that
    the committer settles, so no worker thread is used. In any other case (including every refusal and a
    failed commit) it has sent nothing and the request goes on to the FastAPI route, which decides afresh."""

    PREFIX = "/fhir/Bundle/"

    def __init__(self, app: Any, gw: Gateway, accepted_origins: set[str]) -> None:
        self.app, self.gw, self.accepted_origins = app, gw, accepted_origins

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (scope["type"] == "http" and scope["method"] == "GET" and not scope.get("query_string")
                and scope["path"].startswith(self.PREFIX) and len(scope["path"]) == len(self.PREFIX) + 64
                and await self._answer(scope, receive, send)):
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: dict, receive: Any, send: Any) -> bool:
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in (b"authorization", b"origin", b"x-purpose-of-use"):
                headers.setdefault(name, value)  # the first, as the route reads it
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        origin = headers.get(b"origin", b"").decode("latin-1")
        if scheme.lower() != "bearer" or not token or (origin and origin.rstrip("/") not in self.accepted_origins):
            return False
        caller = self.gw.auth.known_session(token.strip())
        if caller is None:
            return False
        loop = asyncio.get_running_loop()
        committed = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(_settle, committed)

        try:
            purpose = parse_purpose(headers.get(b"x-purpose-of-use", b"").decode("latin-1") or None)
            fast = self.gw.read_record_nowait(caller, scope["path"][len(self.PREFIX):], purpose, wake)
        except MedLedgerError:
            return False  # the route answers with the same refusal
        if fast is None:
            return False
        _body, raw, entry = fast
        await committed
        if entry.error is not None:
            return False  # not committed: nothing was sent; the route tries again
        # The same status and headers as the route's `Response(raw, media_type=FHIR_JSON, headers=...)`, sent as
        # the two ASGI messages directly: no Response object and no header normalisation per read.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(raw)).encode()), (b"content-type", FHIR_JSON_BYTES),
                                (b"x-medledger-audit", str(entry.result()).encode())]})
        await send({"type": "http.response.body", "body": raw})
        return True


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class BodyLimitApp(_Forwarding, BodyLimit):
    """The FastAPI app behind the body limit."""
