"""`medledger audit PATIENT`: the patient's whole trail, from the event index (brought up to date first)
or, with --live, rebuilt by scanning chain events. `verify_gateway_log` is `medledger audit verify` with
--gateway (the command itself is the index's, cli/index.py): a record gateway's audit log against the chain."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress

from .. import audit as audit_mod
from ..errors import AuditMismatch
from . import indexdb
from .app import App
from .options import address_argument


@click.command()
@address_argument("patient", required=False)
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "table"]), default="table", show_default=True)
@click.option("--from-block", type=click.IntRange(0), default=0, show_default=True)
@click.option("--chunk", type=click.IntRange(1), default=audit_mod.DEFAULT_CHUNK, show_default=True,
              help="Blocks per log request.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.option("--live", is_flag=True, help="Scan the chain's events instead of reading the index.")
@click.option("--no-sync", is_flag=True, help="Answer from the index as it is (do not bring it up to date first).")
@indexdb.db_option
@click.pass_obj
def audit(app: App, patient: str, fmt: str, from_block: int, chunk: int, out: Path | None, live: bool,
          no_sync: bool, db_url: str | None) -> None:
    """PATIENT's consents, guardians, emergency accesses, anchors, access logs, claims and payouts.

    Without PATIENT: the signer's own trail; with --pairwise, across all of its pseudonyms, in chain order."""
    from .patient import pseudonyms_in_use
    addresses = [patient] if patient else pseudonyms_in_use(app) if app.pairwise else [app.signer.address]
    address = patient or (f"{app.signer.address} ({len(addresses)} pseudonyms)" if app.pairwise
                          else app.signer.address)
    if not live:
        trail = indexdb.index_trail(app, addresses, db_url, sync=not no_sync)
        _print(app, address, fmt, out, [r for r in trail if r.block >= from_block])
        return
    contracts = {name: app.deployment.address(name) for name in
                 ("CareRegistry", "ConsentRegistry", "RecordRegistry", "ClaimEscrow")}
    show = fmt == "table" and not app.as_json and out is None
    with Progress(console=app.console if show else None, transient=True, disable=not show) as progress:
        task = progress.add_task("reading chain events", total=None)
        events = audit_mod.fetch_events(app.chain, contracts, from_block, chunk=chunk,
                                        progress=lambda done, total: progress.update(task, completed=done, total=total))
    trail = [r for who in addresses for r in audit_mod.patient_trail(events, who)]
    trail.sort(key=lambda r: (r.block, r.log_index))
    _print(app, address, fmt, out, trail)


def _print(app: App, address: str, fmt: str, out: Path | None, trail: list[audit_mod.EventRecord]) -> None:
    if fmt == "csv":
        text = audit_mod.to_csv(trail)
    elif fmt == "json" or app.as_json:
        text = audit_mod.to_json(trail)
    else:
        app.emit([{"block": r.block, "contract": r.contract, "event": r.event,
                   "details": ", ".join(f"{k}={audit_mod._plain(v)}" for k, v in r.args.items() if k != "patient")}
                  for r in trail], title=f"Audit trail of {address}", columns=["block", "contract", "event", "details"])
        return
    if out:
        out.write_text(text)
        app.done(f"{len(trail)} events written to {out}", events=len(trail), file=out)
    else:
        click.echo(text, nl=False)


def verify_gateway_log(app: App, patient: str | None, max_pending: float | None) -> None:
    """`audit verify` with --gateway: the gateway's audit log against the chain, entry by entry.

    Each entry the caller may see is anchored (its Merkle proof leads to a root the chain holds as the
    custodian's access-log batch: block and tx from the chain), pending (not in an anchored batch yet: its
    age) or MISMATCH (a proof that does not verify, or a root not on chain). Raises `AuditMismatch` on a
    mismatch or an entry pending longer than `max_pending` (default: `default_max_pending` of the gateway's
    batch interval). Without `patient`: the caller's own reads and the reads of its records; with --pairwise,
    the reads of the records of every pseudonym of the signer's in use."""
    from ..gateway.auditcheck import EntryStatus, default_max_pending, verify_log
    from .patient import pseudonyms_in_use

    url = app.gateway_origin()
    health = app.gateway_health(url)
    if patient is not None:
        views = [(app.gateway(url, app.acting_patient(patient)[0]), patient)]
    elif app.pairwise:
        views = [(app.gateway(url, app.acting_patient(p)[0]), p) for p in pseudonyms_in_use(app)]
    else:
        own = app.gateway(url)
        views = [(own, app.signer.address), (own, None)]
    bound = max_pending if max_pending is not None else default_max_pending(health.get("batchSeconds", 10.0))
    report = verify_log(url, views, app.records, custodian=health["custodian"],
                        from_block=app.deployment.contracts["RecordRegistry"].block, max_pending=bound,
                        now=time.time())
    rows = [_row(e, app.as_json) for e in report.entries]
    if app.as_json:
        app.emit({"gateway": report.gateway, "custodian": report.custodian,
                  "max_pending": bound, "ok": report.ok, "entries": rows})
    else:
        app.emit(rows, title=f"Audit log of {report.gateway} (custodian {report.custodian}) "
                             f"against the chain",
                 columns=["seq", "status", "reader", "purpose", "block", "tx", "age", "detail"])
    bad, late = report.mismatches, report.overdue
    if bad or late:
        parts = [f"{len(bad)} entr{'y' if len(bad) == 1 else 'ies'} MISMATCH ({', '.join(str(e.seq) for e in bad)})"
                 ] if bad else []
        if late:
            parts.append(f"{len(late)} pending longer than {bound:g} s ({', '.join(str(e.seq) for e in late)})")
        raise AuditMismatch(f"the audit log of {report.gateway} does not check against the chain: "
                            + "; ".join(parts))
    if not app.as_json:
        anchored = sum(1 for e in report.entries if e.status is EntryStatus.ANCHORED)
        app.done(f"{len(report.entries)} entries checked: {anchored} anchored on chain, "
                 f"{len(report.entries) - anchored} pending within {bound:g} s")


def _row(e: Any, as_json: bool) -> dict[str, Any]:
    """One entry: in JSON its age in seconds and an `overdue` flag, in a table "12 s" or "12 s OVERDUE"."""
    age: Any = e.age
    if not as_json and e.age is not None:
        age = f"{e.age:.0f} s" + (" OVERDUE" if e.overdue else "")
    return {"seq": e.seq, "status": e.status.value, "reader": e.reader, "patient": e.patient, "record": e.record_id,
            "purpose": e.purpose, "time": e.time, "block": e.block, "tx": e.tx, "age": age, "overdue": e.overdue,
            "detail": e.reason}
