"""The gateway's core, without HTTP: create, read, search, explain, audit. `app.py` puts it on the wire.

Every read goes: authenticated caller -> `ConsentView.state` (live, within the freshness bound) ->
`decide` per data class -> open the envelope with the gateway key -> keep only the allowed classes ->
commit the AuditEvent -> answer.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import is_address, keccak, to_checksum_address
from sqlalchemy import delete, insert, select

from .. import crypto, data_classes, fhir
from ..accounts import Signer
from ..chain import Chain
from ..config import Settings
from ..contracts import CareRegistry, ConsentRegistry, RecordRegistry, batch_id_of
from ..deployments import require as require_deployment
from ..errors import AccountError, ContractReverted, DataClassMismatch, FhirInvalid, MedLedgerError
from ..merkle import RecordLeaf, StandardMerkleTree
from ..record_ids import new_record_id, patient_of
from ..records import PatientKeys, manifest_bytes, manifest_path, write_manifest
from ..scopes import DataClass, Purpose, Role
from ..vault import LocalVault, content_id
from . import store as T
from .auditlog import Anchorer, AuditLog, EventForms, Pending, fhir_instant
from .auth import Authenticator, Caller
from .consent import AccessState, ConsentView, Decision, LiveConsentView, decide
from .journal import RECONCILE_SECONDS, Journal
from .keys import Keyring, open_with
from .sealing import assign_ids, data_key_for, resource_rows, seal_for_custodian
from .store import Store

log = logging.getLogger("medledger.gateway")
#: Test hook: the write step at which the gateway stops and waits to be killed (see `Gateway._fault_point`).
FAULT_ENV = "MEDLEDGER_GATEWAY_FAULT"


class GatewayError(MedLedgerError):
    """A request the gateway refuses; ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class Hidden(GatewayError):
    """No such record, or not the caller's to know (the same 404, with no body)."""

    status = 404


class Refused(GatewayError):
    """The caller may know the record exists but may not read it; the message says why."""

    status = 403


@dataclass(frozen=True)
class GatewaySettings:
    """Everything `create_app` needs."""

    chain: Settings
    signer: Signer                 # the custodian's account: anchors records and audit batches
    origin: str                    # e.g. https://records.clinic.example (what SIWE messages name)
    data_dir: Path                 # blobs, keys and the default SQLite database
    key_password: str
    db_url: str | None = None      # default sqlite:///<data_dir>/gateway.db
    freshness_blocks: int = 0
    head_ttl: float = 1.0
    batch_size: int = 1000
    batch_seconds: float = 10.0
    session_ttl: float = 900.0
    request_ttl: float = 300.0
    max_body: int = 4 * 1024 * 1024
    durable: bool = True
    validate_fhir: bool = True
    anchorer: bool = True
    allowed_origins: tuple[str, ...] = ()  # web apps (besides `origin`) whose browser requests are accepted
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{Path(self.data_dir) / 'gateway.db'}"


@dataclass(frozen=True)
class Released:
    """What a read returns. ``raw``, when set, is ``body`` already serialised (compact JSON): the HTTP layer
    sends it as is. ``body`` may be shared with later reads of the same answer: do not mutate it."""

    body: dict[str, Any]
    audit_seqs: tuple[int, ...]
    raw: bytes | None = None


#: Filtered answers kept in memory (see `Gateway._filtered`): at most this many, and this many bytes.
ANSWER_CACHE_ENTRIES = 512
ANSWER_CACHE_BYTES = 64 << 20


def parse_purpose(value: str | None) -> Purpose:
    if not value:
        return Purpose.TREAT
    try:
        return Purpose[value.strip().upper().replace("-", "_")]
    except KeyError:
        known = ", ".join(p.name for p in Purpose)
        raise GatewayError(f"unknown purpose of use '{value[:40]}' (known: {known})") from None


def parse_record_id(value: str) -> str:
    """A Bundle id is the record id's 64 hex digits (with or without 0x); anything else is simply
    not found, so a malformed or traversal id never reaches the blob store."""
    text = value.lower().removeprefix("0x")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise Hidden("not found")
    return "0x" + text


def parse_if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` header names (``W/"3"``, ``"3"`` or ``3``); None without the header."""
    if value is None or not value.strip():
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 6:
        raise GatewayError(f"If-Match: '{value[:40]}' is not a version (use W/\"<versionId>\")")
    return int(text)


def parse_last_updated(values: list[str]) -> list[tuple[str, float]]:
    """FHIR ``_lastUpdated`` date search (prefixes eq, ge, gt, le, lt; dates or instants)."""
    from datetime import datetime, timezone

    out = []
    for raw in values:
        prefix = raw[:2] if raw[:2] in ("eq", "ge", "gt", "le", "lt") else "eq"
        text = raw[2:] if raw[:2] == prefix else raw
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise GatewayError(f"_lastUpdated: '{raw[:40]}' is not a FHIR date or instant") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        out.append((prefix, moment.timestamp()))
    return out


class Gateway:
    """One custodian's gateway."""

    def __init__(self, settings: GatewaySettings, *, consent_view: ConsentView | None = None,
                 chain: Chain | None = None) -> None:
        self.settings = settings
        self.chain = chain or Chain(settings.chain)
        self.chain.check_connected()
        self.chain_id = self.chain.chain_id
        deployment = require_deployment(settings.chain.deployments_path, self.chain_id)
        self.care = CareRegistry(self.chain, deployment.address("CareRegistry"))
        self.consent = ConsentRegistry(self.chain, deployment.address("ConsentRegistry"))
        self.records = RecordRegistry(self.chain, deployment.address("RecordRegistry"))
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.database_url)
        self.vault = LocalVault(data_dir / "vault", durable=settings.durable)
        self.vault.clean_temp()  # leftovers of writes a crash interrupted (one process per data directory)
        self.keyring = Keyring(data_dir / "keys", settings.key_password)
        self.key = self.keyring.current(create=True)
        self.view: ConsentView = consent_view or LiveConsentView(
            self.chain, self.care, self.consent, freshness_blocks=settings.freshness_blocks,
            head_ttl=settings.head_ttl)
        self.auth = Authenticator(self.store, self.chain.w3, self.chain_id, settings.origin,
                                  session_ttl=settings.session_ttl, request_ttl=settings.request_ttl)
        self.origin = self.auth.origin
        self.audit = AuditLog(self.store)
        self._events = EventForms()  # each read's AuditEvent, canonical, from a template per (reader, record, decision)
        # one transaction at a time from the custodian's account (record anchors and audit batches share its nonce)
        self.tx_lock = threading.Lock()
        self.journal = Journal(self.store, self.vault, self.records, settings.signer.address,
                               on_finished=self._catalogued)
        self._fault = os.environ.get(FAULT_ENV)
        self._stopping = threading.Event()
        self._amending = threading.Lock()
        self._creating = threading.Lock()
        self._in_flight: set[str] = set()  # record ids of creates under way in this process (create_once)
        self.anchorer = Anchorer(self.audit, self.records, settings.signer, batch_size=settings.batch_size,
                                 batch_seconds=settings.batch_seconds, tx_lock=self.tx_lock)
        self.patient_keys = PatientKeys(self.care, self.consent)  # what records are sealed to (cache rule there)
        self._keys: OrderedDict[str, bytes] = OrderedDict()
        self._catalogue: dict[str, Any] = {}
        self._keys_lock = threading.Lock()
        # (content id, version, lastUpdated, allowed classes) -> (filtered Bundle, its JSON): bounded LRU
        self._answers: OrderedDict[tuple[str, int, float, int], tuple[dict[str, Any], bytes]] = OrderedDict()
        self._answer_bytes = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.journal.reconcile()  # before the first request: every version anchored before a crash is listed
        threading.Thread(target=self._reconciling, name="medledger-journal", daemon=True).start()
        if self.settings.anchorer:
            self.anchorer.start()
        start_view = getattr(self.view, "start", None)  # LiveConsentView's head poller
        if start_view is not None:
            start_view()

    def _reconciling(self) -> None:
        """Further rounds while intents wait for a pending transaction or a send failed without a revert."""
        while not self._stopping.wait(RECONCILE_SECONDS):
            if self.journal.has_orphans():
                try:
                    self.journal.reconcile()
                except Exception as exc:  # noqa: BLE001 - the node may be away; the next round retries
                    log.warning("write journal: reconciliation failed, will retry: %s", exc)

    def stop(self) -> None:
        self._stopping.set()
        stop_view = getattr(self.view, "stop", None)
        if stop_view is not None:
            stop_view()
        self.audit.close()
        if self.settings.anchorer:
            self.anchorer.stop(flush=True)
        self.store.close()

    # ------------------------------------------------------------------ helpers
    def _decision(self, caller: Caller, patient: str, purpose: Purpose, classes: frozenset[DataClass]) -> Decision:
        return decide(self.view.state(patient, caller.address), purpose, classes)

    def _open(self, content_id: str) -> dict[str, Any]:
        blob = self.vault.get(content_id)
        envelope = crypto.Envelope.from_bytes(blob)
        with self._keys_lock:
            data_key = self._keys.get(content_id)
        if data_key is None:
            data_key = data_key_for(self.store, None, content_id, self.key, envelope)
            with self._keys_lock:
                self._keys[content_id] = data_key
                if len(self._keys) > 10_000:
                    self._keys.popitem(last=False)
        return json.loads(open_with(data_key, envelope))

    def _latest(self, record_id: str) -> Any:
        """The catalogue row of a record's latest version (rows are cached: only this process writes them)."""
        cached = self._catalogue.get(record_id)
        if cached is not None:
            return cached
        with self.store.read() as conn:
            row = conn.execute(select(T.records).where(T.records.c.record_id == record_id)
                               .order_by(T.records.c.version.desc()).limit(1)).first()
        if row is not None:
            self._cache_row(row)
        return row

    def _cache_row(self, row: Any) -> None:
        """Caches a catalogue row unless a newer version of its record is cached already (a read that loaded
        the row before an amendment's commit may come here after it)."""
        with self._keys_lock:
            if len(self._catalogue) > 100_000:
                self._catalogue.clear()
            cached = self._catalogue.get(row.record_id)
            if cached is None or cached.version < row.version:
                self._catalogue[row.record_id] = row

    def _catalogued(self, record_id: str, version: int) -> None:
        """A journaled write finished (here or by recovery): the version becomes the cached latest row."""
        row = self._version(record_id, version)
        if row is not None:
            self._cache_row(row)

    def _version(self, record_id: str, version: int) -> Any:
        with self.store.read() as conn:
            return conn.execute(select(T.records).where(T.records.c.record_id == record_id,
                                                        T.records.c.version == version)).first()

    def _release(self, caller: Caller, row: Any, decision: Decision, purpose: Purpose, body: dict[str, Any],
                 interaction: str) -> int:
        origin = self.view.consent_origin(decision.state) if decision.basis == "consent" else None
        item = self._submit(caller, row, decision, purpose, interaction, origin, None)
        item.done.wait()
        return item.result()

    def _submit(self, caller: Caller, row: Any, decision: Decision, purpose: Purpose, interaction: str,
                origin: tuple[int, str] | None, on_done: Callable[[], None] | None) -> Pending:
        released = sorted(c.name.lower().replace("_", "-") for c in decision.allowed
                          if row.classes_mask >> int(c) & 1)
        now = time.time()
        event = self._events(chain_id=self.chain_id, origin=self.origin, consent_registry=self.consent.address,
                             reader=caller.address, patient=row.patient, record_id=row.record_id,
                             version=row.version, decision=decision, released=released, recorded=now,
                             consent_origin=origin, interaction=interaction)
        return self.audit.submit(reader=caller.address, patient=row.patient, record_id=row.record_id,
                                 version=row.version, purpose=purpose, decision=decision,
                                 classes_mask=data_classes.mask_of(decision.allowed) & row.classes_mask,
                                 event=event, recorded=now, consent_origin=origin, on_done=on_done)

    @staticmethod
    def _refuse(decision: Decision) -> GatewayError:
        return Refused(decision.message()) if decision.may_know else Hidden("not found")

    # ------------------------------------------------------------------ reads
    def read_record(self, caller: Caller, record_id: str, purpose: Purpose) -> Released:
        row, decision = self._authorize_record(caller, record_id, purpose, self._latest(parse_record_id(record_id)),
                                               None)
        body, raw = self._filtered(row, decision.allowed)
        seq = self._release(caller, row, decision, purpose, body, "read")
        return Released(body, (seq,), raw)

    def read_version(self, caller: Caller, record_id: str, version: int, purpose: Purpose) -> Released:
        """``vread``: one version of a record, decided and audited as a read of that version."""
        rid = parse_record_id(record_id)
        row, decision = self._authorize_record(caller, rid, purpose, self._version(rid, version), None)
        body, raw = self._filtered(row, decision.allowed)
        seq = self._release(caller, row, decision, purpose, body, "vread")
        return Released(body, (seq,), raw)

    def history(self, caller: Caller, record_id: str, purpose: Purpose, base: str) -> Released:
        """``GET Bundle/{id}/_history``: every version of a record the caller may see, newest first, as a FHIR
        ``history`` Bundle. Decided like a read (one consent state for all versions, each version's own classes),
        and each version returned is a read with its own committed audit entry. A version holding nothing the
        caller may see is left out and not counted; a record the caller may not read at all is refused exactly
        as a read of it is (the same 404 for a stranger, so nothing leaks about its existence)."""
        rid = parse_record_id(record_id)
        with self.store.read() as conn:
            rows = list(conn.execute(select(T.records).where(T.records.c.record_id == rid)
                                     .order_by(T.records.c.version.desc())))
        state = self.view.state(patient_of(bytes.fromhex(rid[2:])), caller.address)
        decisions = [(row, decide(state, purpose, _classes_of(row.classes_mask))) for row in rows]
        shown = [(row, d) for row, d in decisions if d.allowed]
        if not rows:
            raise Hidden("not found")
        if not shown:  # the refusal a read of the latest version gets
            latest = decisions[0][1]
            raise Refused(latest.message()) if state.suspended else self._refuse(latest)
        origin = self.view.consent_origin(state) if any(d.basis == "consent" for _r, d in shown) else None
        entries, pending = [], []
        for row, decision in shown:
            body, _raw = self._filtered(row, decision.allowed)
            pending.append(self._submit(caller, row, decision, purpose, "history-instance",
                                        origin if decision.basis == "consent" else None, None))
            url = f"{base}/Bundle/{rid[2:]}"
            entries.append({"fullUrl": url, "resource": body,
                            "request": {"method": "POST" if row.version == 1 else "PUT",
                                        "url": "Bundle" if row.version == 1 else f"Bundle/{rid[2:]}"},
                            "response": {"status": "201 Created" if row.version == 1 else "200 OK",
                                         "etag": f'W/"{row.version}"', "lastModified": fhir_instant(row.last_updated),
                                         "location": f"{url}/_history/{row.version}"}})
        seqs = []
        for item in pending:  # submitted together: one group commit for all of them
            item.done.wait()
            seqs.append(item.result())
        return Released({"resourceType": "Bundle", "type": "history", "total": len(entries), "entry": entries},
                        tuple(seqs))

    def read_record_nowait(self, caller: Caller, record_id: str, purpose: Purpose, on_done: Callable[[], None]
                           ) -> tuple[dict[str, Any], bytes, Pending] | None:
        """`read_record` for an event loop: the same decision and the same audit entry, but only when every
        input is already in memory (catalogue row, consent answer within the freshness bound, its grant's
        origin, the filtered answer), else None and nothing is done (use `read_record` in a thread).

        Returns (body, JSON, pending audit entry). ``on_done`` is called from the committer thread once the
        entry is durably committed or failed; the answer may only be sent after that (`Pending.result`)."""
        rid = parse_record_id(record_id)
        row = self._catalogue.get(rid)
        cached = getattr(self.view, "cached", None)
        # the row's patient is the record id's (the catalogue is written from it): no second derivation per read
        known = cached(row.patient, caller.address) if row is not None and cached else None
        if known is None:
            return None
        state, origin = known
        row, decision = self._authorize_record(caller, rid, purpose, row, state)
        with self._keys_lock:
            answer = self._answers.get(_answer_key(row, decision.allowed))
        if answer is None:
            return None
        item = self._submit(caller, row, decision, purpose, "read", origin if decision.basis == "consent" else None,
                            on_done)
        return answer[0], answer[1], item

    def _authorize_record(self, caller: Caller, record_id: str, purpose: Purpose, row: Any,
                          state: AccessState | None) -> tuple[Any, Decision]:
        """The decision on reading record ``row`` (None: no such record) for ``purpose``, from ``state``
        (None: ask the consent view); raises the refusal."""
        classes = _classes_of(row.classes_mask) if row is not None else frozenset()
        if state is None:
            rid = parse_record_id(record_id)
            decision = self._decision(caller, patient_of(bytes.fromhex(rid[2:])), purpose, classes)
        else:
            decision = decide(state, purpose, classes)
        if row is None:
            raise Hidden("not found")
        if decision.state.suspended:
            raise Refused(decision.message())
        if not decision.allowed:
            raise self._refuse(decision)
        return row, decision

    def _filtered(self, row: Any, allowed: frozenset[DataClass]) -> tuple[dict[str, Any], bytes]:
        """The record version ``row`` with only the ``allowed`` classes, and its compact JSON.

        Kept in a bounded in-memory LRU keyed by (blob, version, lastUpdated, allowed classes): a version is
        immutable, so repeated reads skip the AES-GCM open, the JSON parse, the filtering and the
        serialisation. Only the answer is cached, never the decision: consent and the audit entry are still
        decided and committed per read. The plaintext stays in this process, as the data keys in `_keys` do."""
        key = _answer_key(row, allowed)
        with self._keys_lock:
            hit = self._answers.get(key)
            if hit is not None:
                self._answers.move_to_end(key)
                return hit
        body = data_classes.filter_bundle(self._open(row.content_id), allowed)
        body["meta"] = {**body.get("meta", {}), "versionId": str(row.version),
                        "lastUpdated": fhir_instant(row.last_updated)}
        raw = json.dumps(body, separators=(",", ":")).encode()
        with self._keys_lock:
            if key not in self._answers:
                self._answers[key] = (body, raw)
                self._answer_bytes += len(raw)
            while self._answers and (len(self._answers) > ANSWER_CACHE_ENTRIES
                                     or self._answer_bytes > ANSWER_CACHE_BYTES):
                _old, (_b, dropped) = self._answers.popitem(last=False)
                self._answer_bytes -= len(dropped)
        return body, raw

    def read_resource(self, caller: Caller, rtype: str, rid: str, purpose: Purpose) -> Released:
        if rtype == "Bundle":
            return self.read_record(caller, rid, purpose)
        if len(rid) > 64:
            raise Hidden("not found")
        with self.store.read() as conn:
            hit = conn.execute(select(T.resources).where(T.resources.c.resource_type == rtype,
                                                         T.resources.c.resource_id == rid)
                               .order_by(T.resources.c.last_updated.desc()).limit(1)).first()
        if hit is None:
            raise Hidden("not found")
        cls = DataClass(hit.data_class)
        decision = self._decision(caller, hit.patient, purpose, frozenset({cls}))
        if decision.state.suspended:
            raise Refused(decision.message())
        if cls not in decision.allowed:
            raise self._refuse(decision)
        row = self._latest(hit.record_id)
        doc = self._open(row.content_id)
        found = next((r for r in data_classes.resources_of(doc)
                      if r.get("resourceType") == rtype and r.get("id") == rid), None)
        if found is None:  # superseded in a later version
            raise Hidden("not found")
        seq = self._release(caller, row, decision, purpose, found, "read")
        return Released(dict(found), (seq,))

    def search(self, caller: Caller, rtype: str, patient: str | None, last_updated: list[str],
               purpose: Purpose, base: str) -> Released:
        if not patient:
            raise GatewayError("search needs ?patient=<address> (the gateway decides consent per patient)")
        ref = patient.removeprefix("Patient/")
        if not is_address(ref):
            raise GatewayError(f"patient: '{patient[:60]}' is not an Ethereum address")
        patient = to_checksum_address(ref)
        bounds = parse_last_updated(last_updated)
        empty = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
        decision = self._decision(caller, patient, purpose, frozenset(DataClass))
        if decision.state.suspended:
            raise Refused(decision.message())
        if not decision.allowed:
            return Released(empty, ())
        q = select(T.records).where(T.records.c.patient == patient)
        with self.store.read() as conn:
            rows = list(conn.execute(q.order_by(T.records.c.last_updated, T.records.c.record_id)))
        latest: dict[str, Any] = {}
        for r in rows:
            if r.record_id not in latest or r.version > latest[r.record_id].version:
                latest[r.record_id] = r
        entries, seqs = [], []
        for row in latest.values():
            if not _in_bounds(row.last_updated, bounds):
                continue
            visible = decision.allowed & {c for c in DataClass if row.classes_mask >> int(c) & 1}
            if not visible:
                continue
            if rtype == "Bundle":
                found = [(f"{base}/Bundle/{row.record_id[2:]}", self._filtered(row, decision.allowed)[0])]
            else:
                doc = self._open(row.content_id)
                found = [(f"{base}/{rtype}/{r.get('id')}", dict(r)) for r in data_classes.resources_of(doc)
                         if r.get("resourceType") == rtype and data_classes.class_of(r) in decision.allowed]
            if not found:
                continue
            seqs.append(self._release(caller, row, decision, purpose, {}, "search-type"))
            entries.extend({"fullUrl": url, "resource": res, "search": {"mode": "match"}} for url, res in found)
        return Released({"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries},
                        tuple(seqs))

    # ------------------------------------------------------------------ writes
    def create(self, caller: Caller, doc: Any, patient: str | None) -> dict[str, Any]:
        patient = _create_target(doc, patient)
        doc, classes, canonical = self._admit(caller, doc, patient)
        return self._write(caller, doc, classes, canonical, patient, new_record_id(patient), None)

    def create_once(self, caller: Caller, doc: Any, patient: str | None, *, idempotency_key: str | None = None,
                    if_none_exist: str | None = None, request_hash: str | None = None
                    ) -> tuple[dict[str, Any], bool]:
        """`create`, made safe to retry: (the answer, whether it is a replay of an earlier create).

        ``idempotency_key`` (the ``Idempotency-Key`` header, with ``request_hash`` the SHA-256 of the request) and
        ``if_none_exist`` (FHIR conditional create: ``identifier=[system|]value``) each name the record the first
        request with them made, in ``gw_creates`` (durable: a retry after a timeout or a restart finds it). A
        replay answers that record's version 1 and writes nothing. Keys belong to the caller (another caller's
        never match, so nothing leaks) and an identifier to the patient too. A key reused for another request
        is refused (422); a retry while the first request is still being written gets 409, to retry shortly."""
        patient = _create_target(doc, patient)
        keys = []
        if idempotency_key is not None:
            keys.append((f"key:{_idempotency_key(idempotency_key)}", request_hash))
        if if_none_exist is not None:
            keys.append((f"identifier:{patient}:{_identifier_query(if_none_exist)}", None))
        if not keys:
            return self.create(caller, doc, patient), False
        found = self._created_by(caller.address, keys)
        if found is not None:
            return found, True
        doc, classes, canonical = self._admit(caller, doc, patient)
        record_id = new_record_id(patient)
        rid = "0x" + record_id.hex()
        found = self._reserve(caller.address, keys, rid, None)
        if found is not None:
            return found, True
        try:
            return self._write(caller, doc, classes, canonical, patient, record_id, None), False
        finally:
            self._in_flight.discard(rid)

    def create_batch(self, caller: Caller, bundle: Any, *, idempotency_key: str | None = None,
                     request_hash: str | None = None) -> tuple[dict[str, Any], bool]:
        """``POST [base]`` with a FHIR ``batch`` Bundle whose entries each create a record (``request``: ``POST
        Bundle?patient=0x…``): checked all-or-nothing, then sealed, stored and anchored as ONE Merkle batch
        (``anchorBatch``), journaled like a create. Returns the ``batch-response`` Bundle and whether it is a
        replay. The first bad entry refuses the whole batch, naming it, before anything is written. An
        ``Idempotency-Key`` works as for `create_once`: a retry answers the batch the first request made."""
        entries = _batch_entries(bundle)
        keys = [(f"batch:{_idempotency_key(idempotency_key)}", request_hash)] if idempotency_key is not None else []
        found = self._created_by(caller.address, keys) if keys else None
        if found is not None:
            return found, True
        admitted = []
        custodian = self.settings.signer.address
        for i, entry in enumerate(entries):
            try:
                doc, patient = _batch_entry(entry)
                doc, classes, canonical = self._admit(caller, doc, patient)
                key = self.patient_keys(patient)
                primary = data_classes.primary_class(doc)
                # `anchor` checks the custodian's consent on chain; `anchorBatch` cannot (it sees only a root)
                own = decide(self.view.state(patient, custodian), Purpose.TREAT, frozenset({primary}))
                if primary not in own.allowed:
                    raise Refused(f"the custodian {custodian} holds no TREAT consent of {patient} for "
                                  f"{_names(frozenset({primary}))[0]}, so it cannot anchor this record")
            except AccountError as exc:
                raise GatewayError(f"Bundle.entry[{i}]: {exc}; nothing was stored or anchored", 422) from None
            except GatewayError as exc:
                raise type(exc)(f"Bundle.entry[{i}]: {exc}; nothing was stored or anchored", exc.status) from None
            admitted.append((doc, classes, canonical, patient, primary, key))
        sealed = []
        for doc, classes, canonical, patient, primary, key in admitted:
            record_id = new_record_id(patient)
            blob = seal_for_custodian(canonical, record_id, 1, patient, key, self.key).to_bytes()
            sealed.append((doc, classes, patient, primary, record_id, blob))
        tree = StandardMerkleTree.of_records(
            RecordLeaf(record_id, bytes.fromhex(content_id(blob)[2:]), patient, 1, int(primary), custodian)
            for _doc, _classes, patient, primary, record_id, blob in sealed)
        manifest = manifest_bytes(self.chain_id, self.records.address, custodian, tree)
        first = "0x" + sealed[0][4].hex()
        if keys:
            found = self._reserve(caller.address, keys, first, tree.root_hex)
            if found is not None:
                return found, True
        try:
            return self._anchor_batch(caller, sealed, tree, manifest), False
        finally:
            self._in_flight.discard(first)

    def _anchor_batch(self, caller: Caller, sealed: list[tuple[Any, ...]], tree: StandardMerkleTree,
                      manifest: bytes) -> dict[str, Any]:
        """Journals, stores and anchors a checked and sealed batch; its batch-response."""
        head = self.chain.w3.eth.block_number
        intents = [self.journal.new_intent(
            record_id="0x" + record_id.hex(), version=1, content_id=content_id(blob), previous_content_id=None,
            patient=patient, author=caller.address, classes_mask=data_classes.mask_of(classes),
            primary_class=int(primary), batch_root=tree.root_hex, from_block=head,
            resources=[(rtype, res_id, int(data_classes.class_of(res))) for (rtype, res_id), res
                       in zip(resource_rows(doc), data_classes.resources_of(doc), strict=True)])
            for doc, classes, patient, primary, record_id, blob in sealed]
        self.journal.begin(*intents)
        try:
            for *_rest, blob in sealed:
                self.vault.put(blob)
            write_manifest(self.vault.directory, manifest, tree.root)
            self._fault_point("blob")
            with self.tx_lock:
                result = self.records.anchor_batch(self.settings.signer, tree.root, len(sealed),
                                                   keccak(manifest))
        except ContractReverted as exc:
            for intent in intents:
                self.journal.drop(intent)
            raise GatewayError(f"the chain refused to anchor the batch: {exc}", 409) from None
        except BaseException:
            for intent in intents:
                self.journal.abandon(intent)  # whether the batch was anchored is for `Journal.reconcile`
            raise
        self._fault_point("anchored")
        try:
            for intent in intents:
                self.journal.finish(intent, result.tx_hash, result.block_number)
        except BaseException:
            for intent in intents:
                self.journal.abandon(intent)
            raise
        return self._batch_response(tree.root_hex, manifest, result.tx_hash, result.block_number,
                                    [(i.record_id, i.created_at) for i in intents])

    def _batch_response(self, root: str, manifest: bytes, tx: str | None, block: int | None,
                        records: list[tuple[str, float]]) -> dict[str, Any]:
        """The batch-response Bundle of an anchored batch: (record id, lastUpdated) per entry, in order."""
        batch_id = hex(batch_id_of(self.settings.signer.address, bytes.fromhex(root[2:])))
        return {"resourceType": "Bundle", "type": "batch-response",
                "extension": [{"url": BATCH_EXTENSION, "extension": [
                    {"url": "batchId", "valueString": batch_id}, {"url": "root", "valueString": root},
                    {"url": "manifestHash", "valueString": "0x" + keccak(manifest).hex()},
                    {"url": "tx", "valueString": tx or ""},
                    {"url": "block", "valueInteger64": str(block or 0)}]}],
                "entry": [{"response": {"status": "201 Created", "location": f"Bundle/{rid[2:]}/_history/1",
                                        "etag": 'W/"1"', "lastModified": fhir_instant(at)}} for rid, at in records]}

    def _replayed_batch(self, root: str, first: Any) -> dict[str, Any]:
        """The batch-response of the anchored batch ``root`` (``first``: its first record's catalogue row),
        rebuilt from its manifest (the leaves, in order) and the catalogue."""
        manifest = manifest_path(self.vault.directory, bytes.fromhex(root[2:])).read_bytes()
        rids = [str(item["value"][0]).lower() for item in json.loads(manifest)["tree"]["values"]]
        with self.store.read() as conn:
            at = dict(conn.execute(select(T.records.c.record_id, T.records.c.last_updated)
                                   .where(T.records.c.record_id.in_(rids), T.records.c.version == 1)).all())
        return self._batch_response(root, manifest, first.anchor_tx, first.anchor_block,
                                    [(rid, at.get(rid, first.last_updated)) for rid in rids])

    def _reserve(self, author: str, keys: list[tuple[str, str | None]], record_id: str, batch_root: str | None
                 ) -> dict[str, Any] | None:
        """Looks ``keys`` up again and, if no earlier create made a record with them, reserves them for
        ``record_id`` (durably; stale reservations replaced) and marks it in flight: atomically within this
        process (one per data directory). Returns the earlier answer instead, if there is one."""
        with self._creating:
            found = self._created_by(author, keys)
            if found is not None:
                return found
            with self.store.begin() as conn:
                conn.execute(delete(T.creates).where(T.creates.c.author == author,
                                                     T.creates.c.key.in_([k for k, _h in keys])))  # stale ones
                conn.execute(insert(T.creates), [{"author": author, "key": k, "request_hash": h,
                                                  "record_id": record_id, "batch_root": batch_root,
                                                  "created_at": time.time()} for k, h in keys])
            self._in_flight.add(record_id)
        return None

    def _created_by(self, author: str, keys: list[tuple[str, str | None]]) -> dict[str, Any] | None:
        """The answer of the record an earlier create with one of ``keys`` made, or None when none did (a
        reservation whose write was refused or dropped is stale: the caller's create goes ahead)."""
        with self.store.read() as conn:
            rows = list(conn.execute(select(T.creates).where(T.creates.c.author == author,
                                                             T.creates.c.key.in_([k for k, _h in keys]))))
        hashes = dict(keys)
        for row in rows:
            if row.request_hash is not None and hashes.get(row.key) not in (None, row.request_hash):
                raise GatewayError(f"Idempotency-Key '{row.key.partition(':')[2]}' was used for a different "
                                   "request: send a new key for a new record", 422)
        for row in rows:
            first = self._version(row.record_id, 1)
            if first is not None:
                return self._created_answer(first) if row.batch_root is None else \
                    self._replayed_batch(row.batch_root, first)
            with self.store.read() as conn:
                pending = conn.execute(select(T.intents.c.version).where(T.intents.c.record_id == row.record_id)
                                       ).first()
            if row.record_id in self._in_flight or pending is not None:
                raise GatewayError("the same create is still being written (its anchor is on its way): retry in a "
                                   "few seconds to get its answer", 409)
        return None

    @staticmethod
    def _created_answer(row: Any) -> dict[str, Any]:
        """The create answer of catalogue row ``row`` (a version 1), as `_write` gave it."""
        return {"id": row.record_id[2:], "recordId": row.record_id, "version": row.version,
                "contentHash": row.content_id, "patient": row.patient, "classes": _names(_classes_of(row.classes_mask)),
                "anchoredClass": DataClass(row.primary_class).name.lower().replace("_", "-"),
                "tx": row.anchor_tx, "block": row.anchor_block}

    def amend(self, caller: Caller, record_id: str, doc: Any, if_match: str | None) -> dict[str, Any]:
        """FHIR versioned update: the document becomes version n+1 of the record, anchored with
        ``RecordRegistry.amend``. Only the record's author (the caller who created version 1) may amend it, and
        only while it may still write for the patient; ``If-Match`` (``W/"n"``) must name the latest version."""
        rid = parse_record_id(record_id)
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
            raise GatewayError("the body must be a FHIR resource or Bundle (a JSON object with a resourceType)")
        expected = parse_if_match(if_match)
        with self._amending:  # one amendment at a time: each names the version it supersedes
            latest = self._latest(rid)
            first = self._version(rid, 1)
            patient = patient_of(bytes.fromhex(rid[2:]))
            if latest is None or first is None:
                raise Hidden("not found")
            if caller.address != first.author:
                state = self.view.state(patient, caller.address)
                if not (state.is_patient or state.guardian or decide(state, Purpose.TREAT, frozenset()).may_know):
                    raise Hidden("not found")
                raise Refused(f"only the record's author {first.author} may amend it; {caller.address} is not its "
                              "author")
            if expected is not None and expected != latest.version:
                raise GatewayError(f"If-Match names version {expected}, but the latest version of the record is "
                                   f"{latest.version}: read it again and amend that", 412)
            doc, classes, canonical = self._admit(caller, doc, patient)
            return self._write(caller, doc, classes, canonical, patient, bytes.fromhex(rid[2:]), latest)

    def _admit(self, caller: Caller, doc: dict[str, Any], patient: str
               ) -> tuple[dict[str, Any], frozenset[DataClass], bytes]:
        """The document with server-assigned ids, its classes and canonical bytes, once the caller may write it
        for ``patient``: the custodian, or an active provider consented (TREAT) for every class in it."""
        doc = assign_ids(doc)
        try:  # the classes a record holds: the same derivation as `record put` (the gateway filters per class)
            classes = data_classes.contents(doc).classes
        except DataClassMismatch as exc:
            raise GatewayError(str(exc)) from None
        try:
            canonical = fhir.canonical_document(doc, validate=self.settings.validate_fhir).canonical
        except FhirInvalid as exc:
            raise GatewayError(str(exc), 422) from None
        state = self.view.state(patient, caller.address)
        if caller.address != self.settings.signer.address:
            if state.role != Role.PROVIDER or not state.active:
                raise GatewayError(f"{caller.address} is not an active provider, so it cannot write records", 403)
            decision = decide(state, Purpose.TREAT, classes)
            if decision.allowed != classes:
                raise Refused(decision.message())
        return doc, classes, canonical

    def _write(self, caller: Caller, doc: dict[str, Any], classes: frozenset[DataClass], canonical: bytes,
               patient: str, record_id: bytes, previous: Any) -> dict[str, Any]:
        """Seal, journal, store and anchor one version: version 1 of a new record (``previous`` None), or the
        version after the catalogue row ``previous``. See `journal` for the crash safety."""
        try:
            patient_key = self.patient_keys(patient)
        except AccountError as exc:
            raise GatewayError(str(exc), 422) from None
        version = 1 if previous is None else previous.version + 1
        blob = seal_for_custodian(canonical, record_id, version, patient, patient_key, self.key).to_bytes()
        primary = data_classes.primary_class(doc)
        rid = "0x" + record_id.hex()
        intent = self.journal.new_intent(
            record_id=rid, version=version, content_id=content_id(blob),
            previous_content_id=None if previous is None else previous.content_id, patient=patient,
            author=caller.address, classes_mask=data_classes.mask_of(classes), primary_class=int(primary),
            resources=[(rtype, res_id, int(data_classes.class_of(res))) for (rtype, res_id), res
                       in zip(resource_rows(doc), data_classes.resources_of(doc), strict=True)])
        self.journal.begin(intent)
        try:
            self.vault.put(blob)
            self._fault_point("blob")
            with self.tx_lock:
                if previous is None:
                    result = self.records.anchor(self.settings.signer, record_id, patient,
                                                 bytes.fromhex(intent.content_id[2:]), int(primary))
                else:
                    result = self.records.amend(self.settings.signer, record_id, patient,
                                                bytes.fromhex(previous.content_id[2:]),
                                                bytes.fromhex(intent.content_id[2:]))
        except ContractReverted as exc:
            self.journal.drop(intent)
            what = "anchor the record" if previous is None else f"amend the record to version {version}"
            raise GatewayError(f"the chain refused to {what}: {exc}", 409) from None
        except BaseException:
            self.journal.abandon(intent)  # blob, send or receipt failed: `Journal.reconcile` asks the chain
            raise
        self._fault_point("anchored")
        try:
            self.journal.finish(intent, result.tx_hash, result.block_number)
        except BaseException:
            self.journal.abandon(intent)  # anchored: the next reconciliation round catalogues it
            raise
        return {"id": rid[2:], "recordId": rid, "version": version, "contentHash": intent.content_id,
                "patient": patient, "classes": _names(classes),
                "anchoredClass": primary.name.lower().replace("_", "-"),
                "tx": result.tx_hash, "block": result.block_number}

    def _fault_point(self, point: str) -> None:
        """Test hook (docs/GATEWAY.md, "Journaled writes"): with ``MEDLEDGER_GATEWAY_FAULT=<point>`` a write stops
        here, says so on stderr and waits for the test to kill the process (``blob``: the intent and the blob are
        durable, no transaction sent; ``anchored``: the version is anchored, not yet catalogued)."""
        if self._fault == point:
            print(f"medledger gateway: fault point '{point}' reached; waiting to be killed", file=sys.stderr,
                  flush=True)
            threading.Event().wait()

    # ------------------------------------------------------------------ explain / audit
    def explain(self, caller: Caller, record_id: str, purpose: Purpose) -> dict[str, Any]:
        rid = parse_record_id(record_id)
        row = self._latest(rid)
        patient = patient_of(bytes.fromhex(rid[2:]))
        state = self.view.state(patient, caller.address)
        if row is None:
            raise Hidden("not found")
        classes = frozenset(DataClass(c) for c in DataClass if row.classes_mask >> int(c) & 1)
        own = decide(state, purpose, classes)
        if not (state.is_patient or state.guardian):
            if not own.may_know or state.suspended:
                raise Hidden("not found") if not state.suspended else Refused(own.message())
            return {"record": rid, "purpose": purpose.name, "readers": [_explained(own, classes)]}
        readers = [{"reader": patient, "basis": "patient", "classes": _names(classes), "reasons": []}]
        for who in self._candidates(patient):
            decision = decide(self.view.state(patient, who), purpose, classes)
            readers.append(_explained(decision, classes))
        return {"record": rid, "purpose": purpose.name, "classes": _names(classes), "readers": readers,
                "freshnessBlocks": self.view.freshness_blocks, "block": state.block}

    def _candidates(self, patient: str) -> list[str]:
        seen: dict[str, None] = {}
        for name, key in (("ConsentGranted", "grantee"), ("BreakGlassOpened", "provider")):
            event = getattr(self.consent.contract.events, name)
            for log in event.get_logs(argument_filters={"patient": patient}, from_block=0):
                seen[to_checksum_address(log["args"][key])] = None
        return list(seen)

    def audit_proof(self, caller: Caller, seq: int) -> dict[str, Any]:
        row = self.audit.entry(seq)
        if row is None or caller.address not in (row.reader, row.patient):
            if row is None or not self.view.state(row.patient, caller.address).guardian:
                raise Hidden("not found")
        out = self.audit.proof(seq)
        out.update(chainId=self.chain_id, registry=self.records.address, gateway=self.settings.signer.address)
        return out

    def audit_list(self, caller: Caller, patient: str | None, before: int | None = None) -> dict[str, Any]:
        if patient:
            if not is_address(patient):
                raise GatewayError(f"patient: '{patient[:60]}' is not an Ethereum address")
            patient = to_checksum_address(patient)
            state = self.view.state(patient, caller.address)
            rows = self.audit.entries(patient=patient, before=before) if (state.is_patient or state.guardian) else \
                self.audit.entries(patient=patient, reader=caller.address, before=before)
        else:
            rows = self.audit.entries(reader=caller.address, before=before)
        return {"entries": [{"seq": r.seq, "time": fhir_instant(r.time), "reader": r.reader, "patient": r.patient,
                             "recordId": r.record_id, "version": r.version, "purpose": Purpose(r.purpose).name,
                             "basis": r.basis, "anchored": r.batch_seq is not None} for r in rows]}

    def sweep_nonces(self) -> None:
        with self.store.begin() as conn:
            conn.execute(delete(T.login_nonces).where(T.login_nonces.c.expires_at < time.time()))


@functools.lru_cache(maxsize=1024)
def _classes_of(mask: int) -> frozenset[DataClass]:
    """The data classes a catalogue row's ``classes_mask`` holds (a few hundred masks at most: cached)."""
    return frozenset(c for c in DataClass if mask >> int(c) & 1)


def _answer_key(row: Any, allowed: frozenset[DataClass]) -> tuple[str, int, float, int]:
    return row.content_id, int(row.version), float(row.last_updated), data_classes.mask_of(allowed)


#: The batch-response extension naming the Merkle batch a `POST [base]` anchored.
BATCH_EXTENSION = "https://medledger.example/fhir/StructureDefinition/merkle-batch"
#: Entries a batch may hold (the body limit, 4 MiB by default, usually comes first).
MAX_BATCH_ENTRIES = 1000


def _batch_entries(bundle: Any) -> list[Any]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or bundle.get("type") != "batch":
        raise GatewayError("POST [base] takes a Bundle of type batch (each entry: request POST Bundle?patient=0x…, "
                           "resource: the record's Bundle)")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise GatewayError("Bundle.entry: a batch needs at least one entry")
    if len(entries) > MAX_BATCH_ENTRIES:
        raise GatewayError(f"Bundle.entry: {len(entries)} entries, at most {MAX_BATCH_ENTRIES} in one batch", 413)
    return entries


def _batch_entry(entry: Any) -> tuple[dict[str, Any], str]:
    """(the record's document, its checksummed patient) of one batch entry."""
    request = entry.get("request") if isinstance(entry, dict) else None
    if not isinstance(request, dict) or request.get("method") != "POST":
        raise GatewayError("request.method must be POST (a batch here creates records)")
    url = request.get("url")
    rtype, _, query = url.partition("?") if isinstance(url, str) else ("", "", "")
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    doc = entry.get("resource")
    if not isinstance(doc, dict) or rtype != doc.get("resourceType"):
        raise GatewayError("request.url must be <the resource's type>?patient=0x… and resource that resource")
    return doc, _create_target(doc, params.get("patient"))


def _create_target(doc: Any, patient: str | None) -> str:
    """The checksummed patient of a create, once its body is a FHIR object."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise GatewayError("the body must be a FHIR resource or Bundle (a JSON object with a resourceType)")
    if not patient or not is_address(patient):
        raise GatewayError("create needs ?patient=<the patient's address>")
    return to_checksum_address(patient)


#: What an Idempotency-Key may hold (a UUID, a ULID, any client token of up to 100 such characters).
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def _idempotency_key(value: str) -> str:
    if not IDEMPOTENCY_KEY.fullmatch(value.strip()):
        raise GatewayError(f"Idempotency-Key: '{value[:40]}' is not 1 to 100 letters, digits or ._:-")
    return value.strip()


def _identifier_query(value: str) -> str:
    """``system|value`` (or ``value``) of an ``If-None-Exist: identifier=[system|]value`` header."""
    name, _, wanted = value.strip().partition("=")
    if name != "identifier" or not wanted or len(wanted) > 250 or any(ord(c) < 32 for c in wanted):
        raise GatewayError(f"If-None-Exist: '{value[:60]}' is not identifier=[system|]value (the only "
                           "conditional-create search this gateway supports)")
    return wanted if "|" in wanted else f"|{wanted}"


def _names(classes: frozenset[DataClass]) -> list[str]:
    return sorted(c.name.lower().replace("_", "-") for c in classes)


def _explained(decision: Decision, classes: frozenset[DataClass]) -> dict[str, Any]:
    s = decision.state
    return {"reader": s.reader, "basis": decision.basis, "classes": _names(decision.allowed),
            "withheld": _names(classes - decision.allowed), "reasons": list(decision.reasons),
            "consentValidUntil": s.valid_until or None, "breakGlassUntil": s.break_glass_until or None}




def _in_bounds(ts: float, bounds: list[tuple[str, float]]) -> bool:
    checks: dict[str, Callable[[float, float], bool]] = {
        "eq": lambda a, b: abs(a - b) < 1.0, "ge": lambda a, b: a >= b, "gt": lambda a, b: a > b,
        "le": lambda a, b: a <= b, "lt": lambda a, b: a < b}
    return all(checks[p](ts, v) for p, v in bounds)
