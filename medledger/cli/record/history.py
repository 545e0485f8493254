"""`medledger record history [PATIENT | RECORD_ID]`: a patient's records across custodians, or one record's versions.

With PATIENT (or nothing: the signer itself; with --pairwise, every pseudonym of the signer that a consent names)
the records are resolved from the event index (or a chain scan), each custodian's gateway endpoint is read from
the CareRegistry and each record is fetched from its custodian's gateway, signed by the caller's own key. The
work is `medledger.federation`; this command only prints it. With RECORD_ID it lists that record's versions.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ... import federation
from ...accounts import Signer
from ...errors import IndexerError
from ...scopes import Purpose
from ..app import App, err_console
from ..indexdb import db_option, index_record_versions
from ..options import purpose_option
from ..paramtypes import parse_bytes32
from .common import from_block, locate_version, node, utc, write_private


def _is_record_id(text: str) -> bool:
    digits = text.strip().removeprefix("0x")
    return len(digits) == 64 and all(c in "0123456789abcdefABCDEF" for c in digits)


@click.command("history")
@click.argument("target", required=False, metavar="[PATIENT|RECORD_ID]")
@purpose_option
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write each fetched record's FHIR to DIR/<record id>.json (readable by you only).")
@click.option("--live", is_flag=True, help="Resolve the records by scanning the chain's events, not the index.")
@click.option("--no-sync", is_flag=True, help="Answer from the index as it is (do not bring it up to date first).")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True,
              help="Seconds to wait for each gateway.")
@db_option
@click.pass_obj
def history(app: App, target: str | None, why: Purpose, out_dir: Path | None, live: bool, no_sync: bool,
            timeout: float, db_url: str | None) -> None:
    """PATIENT's records from every custodian's gateway, as one timeline; or RECORD_ID's versions.

    \b
    Each record's custodian is its anchoring author; its gateway is the endpoint the custodian publishes
    (`medledger registry endpoint set`). Each record is fetched signed by your key: you see what the
    custodian's gateway gives you (consent is checked there and the read is audited). Without PATIENT: your
    own records (with --pairwise, across your pseudonyms). A custodian with no endpoint, an unreachable
    gateway or a refusal is one line on stderr; the others still print. Exit 1 unless every record was fetched.
    """
    if target is not None and _is_record_id(target):
        _record_versions(app, parse_bytes32(target, "RECORD_ID"))
        return
    patients = _patients(app, target)
    versions = _versions(app, patients, live, no_sync, db_url)
    records = federation.custody(versions)
    with node(app):
        found = federation.fetch_history(records, app.care, _reader_of(app), purpose=why.name, timeout=timeout)
    written = _write(found, out_dir) if out_dir else {}
    who = target or (f"{app.signer.address} ({len(patients)} pseudonyms)" if app.pairwise else app.signer.address)
    _print(app, found, who, written)
    if not found.complete:
        click.get_current_context().exit(1)


def _patients(app: App, target: str | None) -> list[str]:
    if target is not None:
        return [app.address_of(target, "PATIENT")]
    if app.pairwise:
        from ..patient import pseudonyms_in_use
        return pseudonyms_in_use(app)
    return [app.signer.address]


def _reader_of(app: App) -> Any:
    """Who signs the fetch of a patient's record: under --pairwise the signer's own pseudonym for that address,
    else the signer (the patient, a guardian or a consented party)."""
    def reader(patient: str) -> Signer:
        if app.pairwise:
            own = app.identity.find(patient, app.parties)
            if own is not None:
                return own.signer
        return app.signer
    return reader


def _versions(app: App, patients: list[str], live: bool, no_sync: bool, db_url: str | None) -> list[Any]:
    if not live:
        try:
            return index_record_versions(app, patients, db_url, sync=not no_sync)
        except IndexerError as exc:
            err_console.print(f"[yellow]note:[/yellow] the index cannot answer ({exc}); scanning the chain",
                              highlight=False)
    with node(app):
        return app.records.patient_versions(patients, from_block(app))


def _write(found: federation.History, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for e in found.entries:
        if e.document is not None:
            path = out_dir / f"{e.record.record_id.removeprefix('0x')}.json"
            write_private(path, json.dumps(e.document, indent=2).encode())
            written[e.record.record_id] = path
    return written


def _print(app: App, found: federation.History, who: str, written: dict[str, Path]) -> None:
    names = app.account_names
    if app.as_json:
        app.emit({"patients": list(found.patients), "complete": found.complete,
                  "entries": [{"record_id": e.record.record_id, "patient": e.record.patient,
                               "custodian": e.record.custodian, "endpoint": e.endpoint, "version": e.record.version,
                               "anchored_block": e.record.anchored_block, "anchored_at": e.anchored_at,
                               "status": e.status.value, "reason": e.reason, "last_updated": e.last_updated,
                               "resource_types": e.resource_types,
                               "resources": len((e.document or {}).get("entry", [])),
                               "file": str(written[e.record.record_id]) if e.record.record_id in written else None}
                              for e in found.entries],
                  "custodians": [{"custodian": c.custodian, "name": names.get(c.custodian), "endpoint": c.endpoint,
                                  "status": c.status.value, "records": c.records, "fetched": c.fetched,
                                  "reason": c.reason} for c in found.custodians]})
    else:
        rows = [{"anchored": utc(e.anchored_at), "custodian": names.get(e.record.custodian, e.record.custodian),
                 "record": e.record.record_id, "v": e.record.version, "status": e.status.value,
                 "resources": ", ".join(e.resource_types) if e.document is not None else e.reason}
                for e in found.entries]
        fetched = sum(c.fetched for c in found.custodians)
        app.emit(rows, title=f"History of {who}: {fetched} of {len(found.entries)} record(s) from "
                             f"{len(found.custodians)} custodian(s)",
                 columns=["anchored", "custodian", "record", "v", "status", "resources"])
        if written:
            app.done(f"wrote {len(written)} FHIR record(s) to {next(iter(written.values())).parent}")
    for c in found.custodians:
        if c.status is not federation.CustodianStatus.OK:
            err_console.print(c.line(names.get(c.custodian)), highlight=False, soft_wrap=True, markup=False)


def _record_versions(app: App, rid: bytes) -> None:
    """RECORD_ID's versions, from chain events (or its batch, if never promoted)."""
    events = app.records.history(rid, from_block(app))
    rows: list[dict[str, Any]] = []
    for ev in events:
        with node(app):
            stamp = int(app.chain.w3.eth.get_block(ev.block)["timestamp"])
        rows.append({"version": ev.version, "event": ev.event, "content_hash": ev.content_hash,
                     "previous": ev.previous_content_hash, "author": ev.author, "patient": ev.patient,
                     "block": ev.block, "time": utc(stamp), "tx": ev.tx_hash,
                     "batch_id": hex(ev.batch_id) if ev.batch_id is not None else None})
    if not rows:
        located = locate_version(app, rid)  # a batch member, or RecordNotFound
        assert located.batch is not None
        rows.append({"version": located.version, "event": "in batch (not promoted)", "content_hash": located.cid,
                     "previous": None, "author": located.author, "patient": located.patient, "block": None,
                     "time": utc(located.anchored_at), "tx": None, "batch_id": hex(located.batch.batch_id)})
    app.emit(rows, title=f"History of record 0x{rid.hex()}",
             columns=["version", "event", "content_hash", "author", "block", "time", "tx"])
