"""`medledger audit PATIENT`: the patient's whole trail, from the event index (brought up to date first)
or, with --live, rebuilt by scanning chain events."""
from __future__ import annotations

from pathlib import Path

import click
from rich.progress import Progress

from .. import audit as audit_mod
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
