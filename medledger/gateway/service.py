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
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import is_address, to_checksum_address
from sqlalchemy import delete, select

from .. import crypto, data_classes, fhir
from ..accounts import Signer
from ..chain import Chain
from ..config import Settings
from ..contracts import CareRegistry, ConsentRegistry, RecordRegistry
from ..deployments import require as require_deployment
from ..errors import AccountError, ContractReverted, DataClassMismatch, FhirInvalid, MedLedgerError
from ..record_ids import new_record_id, patient_of
from ..records import PatientKeys
from ..scopes import DataClass, Purpose, Role
from ..vault import LocalVault, content_id
from . import store as T
from .auditlog import Anchorer, AuditLog, EventForms, Pending
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
                        "lastUpdated": _instant(row.last_updated)}
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
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
            raise GatewayError("the body must be a FHIR resource or Bundle (a JSON object with a resourceType)")
        if not patient or not is_address(patient):
            raise GatewayError("create needs ?patient=<the patient's address>")
        patient = to_checksum_address(patient)
        doc, classes, canonical = self._admit(caller, doc, patient)
        return self._write(caller, doc, classes, canonical, patient, new_record_id(patient), None)

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
        return {"entries": [{"seq": r.seq, "time": _instant(r.time), "reader": r.reader, "patient": r.patient,
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


def _names(classes: frozenset[DataClass]) -> list[str]:
    return sorted(c.name.lower().replace("_", "-") for c in classes)


def _explained(decision: Decision, classes: frozenset[DataClass]) -> dict[str, Any]:
    s = decision.state
    return {"reader": s.reader, "basis": decision.basis, "classes": _names(decision.allowed),
            "withheld": _names(classes - decision.allowed), "reasons": list(decision.reasons),
            "consentValidUntil": s.valid_until or None, "breakGlassUntil": s.break_glass_until or None}


def _instant(ts: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _in_bounds(ts: float, bounds: list[tuple[str, float]]) -> bool:
    checks: dict[str, Callable[[float, float], bool]] = {
        "eq": lambda a, b: abs(a - b) < 1.0, "ge": lambda a, b: a >= b, "gt": lambda a, b: a > b,
        "le": lambda a, b: a <= b, "lt": lambda a, b: a < b}
    return all(checks[p](ts, v) for p, v in bounds)
