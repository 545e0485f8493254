"""Everything the index derives from events, in one place: adapt this module when an event changes.

* :func:`column_keys` names the args that fill an event's indexed columns (patient, subject, party);
* record versions and consent changes are append-only rows (a reorg deletes them by block number);
* a claim is folded from its events by :func:`fold_claim` (a reorg rebuilds it from its remaining events);
* :func:`reproject` re-derives every projection from the stored events, with no RPC call, so a
  changed fold is applied to an existing index by ``medledger index --reproject``.

Handlers read args with ``.get`` so that an event gaining or losing a field does not stop the indexer.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from .models import Claim, ConsentChange, Event, RecordVersion, bulk_insert

#: Args that name the patient an event concerns.
PATIENT_KEYS = ("patient",)
#: Args that name the thing an event is about (a claim or a record): events of one subject are linked.
SUBJECT_KEYS = ("claimId", "recordId")
#: Args that name the counterpart (first present wins).
PARTY_KEYS = ("grantee", "provider", "author", "accessor", "insurer", "guardian", "account", "arbiter")

#: Append-only projections: rolled back by deleting rows above the common ancestor.
APPEND_ONLY = (RecordVersion, ConsentChange)
#: Events that change a claim (its subject is the claim id).
CLAIM_EVENTS = frozenset({"ClaimSubmitted", "ClaimVoided", "ClaimAdjudicated", "ClaimDisputed", "DisputeResolved",
                          "EncumbranceReleased", "PatientResponsibility"})
#: Pushed payouts belong to the trail of the patient whose claim caused them (same transaction).
PAYOUT_EVENTS = frozenset({"PaymentPushed", "PushFailed"})
#: Provider balance movements: credits come from claims, debits from these.
PROVIDER_DEBITS = frozenset({"PaymentPushed", "PayoutWithdrawn"})
ADJUDICATION = ("manual", "automatic", "deemed")

Row = Mapping[str, Any]


def column_keys(args: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Which args hold (patient, subject, party), or None. It depends only on the event's ABI (which
    names it has, and which of them decode to text), so a caller may reuse it for every event of a kind."""
    patient = next((k for k in PATIENT_KEYS if isinstance(args.get(k), str)), None)
    subject = next((k for k in SUBJECT_KEYS if isinstance(args.get(k), str)), None)
    party = next((k for k in PARTY_KEYS if isinstance(args.get(k), str)), None)
    return patient, subject, party


# ----------------------------------------------------------------------------- records and consents
def _base(row: Row) -> dict[str, Any]:
    return {"chain_id": row["chain_id"], "block_number": row["block_number"], "log_index": row["log_index"],
            "tx_hash": row["tx_hash"]}


def _record(row: Row, args: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = {"RecordAnchored": "anchored", "RecordAmended": "amended", "RecordAttested": "attested"}[row["event"]]
    if not args.get("recordId"):
        return None
    batch = args.get("batchId")
    return {**_base(row), "record_id": args["recordId"], "patient": args.get("patient", ""),
            "author": args.get("author", ""), "version": int(args.get("version", 1)),
            "content_hash": args.get("contentHash", ""), "data_class": args.get("dataClass"),
            "batch_id": None if batch is None else str(batch), "kind": kind}


def _consent(row: Row, args: Mapping[str, Any]) -> dict[str, Any] | None:
    event, get = row["event"], args.get
    patient, grantee = get("patient"), get("grantee") or get("provider")
    if not patient or not grantee:
        return None
    kind, purposes, classes, valid_from, valid_until, doc_hash = "break_glass_close", 0, 0, 0, 0, None
    if event == "ConsentGranted":
        kind, purposes, classes = "grant", int(get("purposes", 0)), int(get("dataClasses", 0))
        valid_from, valid_until, doc_hash = int(get("validFrom", 0)), int(get("validUntil", 0)), get("consentDocHash")
    elif event == "ConsentRevoked":
        kind = "revoke"
    elif event == "BreakGlassOpened":
        kind, valid_until, doc_hash = "break_glass_open", int(get("expiresAt", 0)), get("reasonCode")
    return {**_base(row), "patient": patient, "grantee": grantee, "actor": get("actor"), "kind": kind,
            "purposes": purposes, "data_classes": classes, "valid_from": valid_from, "valid_until": valid_until,
            "doc_hash": doc_hash}


APPEND_HANDLERS: dict[str, tuple[type, Callable[[Row, Mapping[str, Any]], dict[str, Any] | None]]] = {
    "RecordAnchored": (RecordVersion, _record),
    "RecordAmended": (RecordVersion, _record),
    "RecordAttested": (RecordVersion, _record),
    "ConsentGranted": (ConsentChange, _consent),
    "ConsentRevoked": (ConsentChange, _consent),
    "BreakGlassOpened": (ConsentChange, _consent),
    "BreakGlassClosed": (ConsentChange, _consent),
}


# ----------------------------------------------------------------------------- claims
def fold_claim(state: dict[str, Any] | None, row: Row, args: Mapping[str, Any]) -> dict[str, Any] | None:
    """The claim after event `row` (None while the claim is unknown: its submission was not seen)."""
    event, block = row["event"], row["block_number"]
    if event == "ClaimSubmitted":
        first = state is None
        state = dict(state or {})
        state.update(chain_id=row["chain_id"], claim_id=args["claimId"], provider=args.get("provider", ""),
                     insurer=args.get("insurer", ""), patient=args.get("patient", ""),
                     control_number=args.get("controlNumber", ""), status="submitted",
                     billed=str(args.get("billed", 0)), service_code=int(args.get("serviceCode", 0)),
                     revision=int(args.get("revision", 0)), deadline=int(args.get("deadline", 0)),
                     claim_hash=args.get("claimHash"), updated_block=block)
        if first:
            state.update(submitted_block=block, approved="0", contested="0", awarded="0", adjudication=None)
        return state
    if state is None:
        return None
    state = {**state, "updated_block": block}
    if event == "ClaimVoided":
        state.update(status="voided", deadline=0)
    elif event == "ClaimAdjudicated":
        contested = int(args.get("contested", 0))
        kind = int(args.get("kind", 0))
        state.update(approved=str(args.get("approved", 0)), contested=str(contested),
                     adjudication=ADJUDICATION[kind] if 0 <= kind < len(ADJUDICATION) else str(kind),
                     status="contestable" if contested else "settled",
                     deadline=int(args.get("disputeDeadline", 0)) if contested else 0)
    elif event == "ClaimDisputed":
        state.update(status="disputed")
    elif event == "DisputeResolved":
        state.update(status="settled", awarded=str(args.get("award", 0)), deadline=0)
    elif event == "EncumbranceReleased":
        state.update(status="settled", deadline=0)
    return state


CLAIM_DEFAULTS = {"billed": "0", "approved": "0", "contested": "0", "awarded": "0", "service_code": 0, "revision": 0,
                  "deadline": 0, "adjudication": None, "claim_hash": None}


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _load_claims(conn: Connection, chain_id: int, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    for part in _chunks(list(ids)):
        for r in conn.execute(select(Claim).where(Claim.chain_id == chain_id, Claim.claim_id.in_(part))).mappings():
            states[r["claim_id"]] = {k: r[k] for k in Claim.__table__.columns.keys()}
    return states


def _store_claims(conn: Connection, chain_id: int, states: Mapping[str, dict[str, Any] | None]) -> None:
    ids = list(states)
    for part in _chunks(ids):
        conn.execute(delete(Claim).where(Claim.chain_id == chain_id, Claim.claim_id.in_(part)))
    rows = [{**CLAIM_DEFAULTS, **s} for s in states.values() if s is not None]
    if rows:
        conn.execute(insert(Claim), rows)


# ----------------------------------------------------------------------------- entry points
def project(conn: Connection, chain_id: int, rows: Sequence[Row]) -> None:
    """Applies new event `rows` (in chain order, args as dicts) to every projection."""
    appended: dict[type, list[dict[str, Any]]] = {}
    claim_rows = []
    for row in rows:
        handler = APPEND_HANDLERS.get(row["event"])
        if handler is not None:
            model, fn = handler
            out = fn(row, row["args"])
            if out is not None:
                appended.setdefault(model, []).append(out)
        elif row["event"] in CLAIM_EVENTS and row.get("subject"):
            claim_rows.append(row)
    for model, values in appended.items():
        bulk_insert(conn, model, values)
    if claim_rows:
        states: dict[str, Any] = _load_claims(conn, chain_id, sorted({r["subject"] for r in claim_rows}))
        for row in claim_rows:
            states[row["subject"]] = fold_claim(states.get(row["subject"]), row, row["args"])
        _store_claims(conn, chain_id, states)


def _replay_claims(conn: Connection, chain_id: int, ids: Sequence[str]) -> None:
    states: dict[str, Any] = dict.fromkeys(ids)
    for part in _chunks(list(ids)):
        query = (select(Event).where(Event.chain_id == chain_id, Event.subject.in_(part),
                                     Event.event.in_(CLAIM_EVENTS))
                 .order_by(Event.block_number, Event.log_index))
        for r in conn.execute(query).mappings():
            states[r["subject"]] = fold_claim(states[r["subject"]], r, json.loads(r["args"]))
    _store_claims(conn, chain_id, states)


def rollback(conn: Connection, chain_id: int, ancestor: int) -> None:
    """Removes every event and projection above block `ancestor` (claims are rebuilt from what remains)."""
    touched = [s for (s,) in conn.execute(
        select(Event.subject).distinct().where(Event.chain_id == chain_id, Event.block_number > ancestor,
                                               Event.event.in_(CLAIM_EVENTS), Event.subject.is_not(None)))]
    conn.execute(delete(Event).where(Event.chain_id == chain_id, Event.block_number > ancestor))
    for model in APPEND_ONLY:
        conn.execute(delete(model).where(model.chain_id == chain_id, model.block_number > ancestor))
    if touched:
        _replay_claims(conn, chain_id, touched)


def reproject(conn: Connection, chain_id: int, batch: int = 5_000) -> int:
    """Rebuilds every projection of `chain_id` from the stored events; returns how many events were read."""
    for model in (*APPEND_ONLY, Claim):
        conn.execute(delete(model).where(model.chain_id == chain_id))
    count, last = 0, -1
    while True:
        query = select(Event).where(Event.chain_id == chain_id, Event.id > last).order_by(Event.id).limit(batch)
        rows = [dict(r) for r in conn.execute(query).mappings()]
        if not rows:
            return count
        for r in rows:
            r["args"] = json.loads(r["args"])
        rows.sort(key=lambda r: (r["block_number"], r["log_index"]))
        project(conn, chain_id, rows)
        count += len(rows)
        last = max(r["id"] for r in rows)
