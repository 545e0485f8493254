"""`medledger index` and the index-backed commands: `record list`, `claim queue`, `consent state`,
`audit` (index first, `--live` for a chain scan) and `audit verify`. With --gateway, `record list` and
`audit verify` ask that record gateway instead (cli/record/remote.py, cli/audit.py).

The database is `--db URL`, else ``$MEDLEDGER_INDEX_DB``, else SQLite in the MedLedger home.
"""
from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from ..scopes import Purpose
from .app import App
from .indexdb import db_option, open_db
from .options import purpose_option
from .paramtypes import ADDRESS


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# ----------------------------------------------------------------------------- medledger index
@click.command("index")
@db_option
@click.option("--once/--follow", default=True, show_default=True,
              help="Catch up and exit, or keep following the chain.")
@click.option("--confirmations", type=click.IntRange(0, 1_000),
              help="Blocks to stay behind the head (default per chain: 12 on L1, 10 on L2s, 0 on dev chains).")
@click.option("--reorg-window", type=click.IntRange(1, 100_000),
              help="Deepest rollback allowed (default per chain: 64 on L1, 200 on L2s, unlimited on dev chains).")
@click.option("--chunk", type=click.IntRange(1, 1_000_000), default=2_000, show_default=True,
              help="First block range per eth_getLogs (halved on limit errors, doubled after successes).")
@click.option("--max-chunk", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@click.option("--poll", type=click.FloatRange(0.05, 3_600), default=2.0, show_default=True,
              help="Seconds between polls with --follow.")
@click.option("--rebuild", is_flag=True, help="Drop this chain's index and re-index it from the deployment block.")
@click.option("--reproject", is_flag=True,
              help="Re-derive records, consents and claims from the stored events (no RPC), then exit.")
@click.pass_obj
def index(app: App, db_url: str | None, once: bool, confirmations: int | None, reorg_window: int | None, chunk: int,
          max_chunk: int, poll: float, rebuild: bool, reproject: bool) -> None:
    """Follow the deployment's events into the index database (SQLite or PostgreSQL)."""
    from ..index import follower_for, queries
    db = open_db(db_url)
    try:
        if reproject:
            from ..index.projections import reproject as run
            chain_id = app.chain.chain_id
            queries.require_chain(db, chain_id)
            with db.engine.begin() as conn:
                count = run(conn, chain_id)
            app.done(f"re-derived records, consents and claims of chain {chain_id} from {count} events", events=count)
            return
        show = not app.as_json
        with Progress(TextColumn("[bold]indexing[/bold] {task.fields[span]}"), BarColumn(), TaskProgressColumn(),
                      TextColumn("{task.fields[rate]} blocks/s  ETA {task.fields[eta]}  {task.fields[events]} events"),
                      console=app.console, transient=True, disable=not show) as progress:
            task = progress.add_task("index", total=None, span="", rate="-", eta="-:--:--", events=0)

            def report(p: Any) -> None:
                progress.update(task, completed=p.blocks_done, total=max(1, p.blocks_total),
                                span=f"{p.start:,}→{p.target:,}", rate=f"{p.blocks_per_second:,.0f}",
                                eta=_eta(p.eta), events=f"{p.events:,}")

            follower = follower_for(db, app.chain, app.deployment, confirmations=confirmations,
                                    reorg_window=reorg_window, chunk=chunk, max_chunk=max_chunk, progress=report)
            started = time.monotonic()
            if once:
                result = follower.sync_once(rebuild=rebuild)
            else:
                stop = threading.Event()
                if rebuild:
                    follower.sync_once(rebuild=True)

                def round_done(r: Any) -> None:
                    if show:
                        progress.update(task, span=f"at {r.to_block:,} (head {r.head:,})")

                try:
                    with _stop_on_signals(stop):
                        follower.follow(poll=poll, stop=stop, on_round=round_done)
                except KeyboardInterrupt:
                    stop.set()
                result = None
        if result is None:
            app.done("stopped following")
            return
        elapsed = time.monotonic() - started
        blocks = max(0, result.to_block - result.from_block + 1)
        app.done(f"chain {result.chain_id} indexed to block {result.to_block:,} (head {result.head:,}): "
                 f"{result.events:,} new events, {blocks:,} blocks in {elapsed:.1f} s"
                 + (f", {result.rollbacks} reorg rollback(s)" if result.rollbacks else ""),
                 chain_id=result.chain_id, indexed_to=result.to_block, head=result.head, events=result.events,
                 rollbacks=result.rollbacks)
    finally:
        db.close()


# ----------------------------------------------------------------------------- audit verify
class _DefaultGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, goes to its default command."""

    def __init__(self, *args: Any, default: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@click.command("verify")
@db_option
@click.option("--samples", type=click.IntRange(1, 1_000), default=8, show_default=True,
              help="Block ranges to compare event by event.")
@click.option("--span", type=click.IntRange(1, 100_000), default=1_000, show_default=True,
              help="Blocks per sampled range.")
@click.option("--seed", type=int, help="Random seed for the sampled ranges (reproducible runs).")
@click.option("--patient", type=ADDRESS, help="With --gateway: check the reads of this patient's records (you are "
                                              "the patient or a guardian); default: your reads and your records'.")
@click.option("--max-pending", type=click.FloatRange(0), metavar="SECONDS",
              help="With --gateway: fail when an entry has waited longer than this for its batch (default: 5 of "
                   "the gateway's batch intervals, at least 60 s).")
@click.pass_obj
def audit_verify(app: App, db_url: str | None, samples: int, span: int, seed: int | None, patient: str | None,
                 max_pending: float | None) -> None:
    """Check that the index agrees with the chain: block hashes at checkpoints, events in sampled ranges.

    With --gateway (MEDLEDGER_GATEWAY): check that gateway's audit log against the chain instead, entry by
    entry: anchored (block, tx), pending (its age) or MISMATCH; exit 1 on a mismatch or an overdue entry."""
    if app.gateway_url:
        from .audit import verify_gateway_log
        verify_gateway_log(app, patient, max_pending)
        return
    if patient is not None or max_pending is not None:
        raise click.UsageError("--patient and --max-pending check a record gateway's audit log: pass --gateway URL")
    from ..index import queries
    from ..index.abi import Decoder
    from ..index.rpc import RpcReader
    from ..index.verify import verify

    db = open_db(db_url)
    try:
        chain_id = app.chain.chain_id
        state = queries.require_chain(db, chain_id)
        reader = RpcReader(app.settings.rpc_url, timeout=app.settings.rpc_timeout)
        report = verify(db, reader, Decoder.for_chain(app.chain, state.addresses), chain_id, samples=samples,
                        span=span, seed=seed)
    finally:
        db.close()
    rows = [{"check": f"block {n:,} hash", "index": h[:18] + "…", "chain": (c or "missing")[:18] + "…",
             "ok": "yes" if h == c else "NO"} for n, h, c in report.checkpoints]
    rows += [{"check": f"events {r.start:,}-{r.end:,}", "index": str(r.indexed), "chain": str(r.on_chain),
              "ok": "yes" if r.ok else "NO"} for r in report.ranges]
    if app.as_json:
        app.emit({"ok": report.ok, "chain_id": chain_id, "indexed_to": report.indexed_to,
                  "checkpoints": [{"block": n, "index": h, "chain": c} for n, h, c in report.checkpoints],
                  "ranges": [{"start": r.start, "end": r.end, "indexed": r.indexed, "on_chain": r.on_chain,
                              "missing": list(r.missing), "extra": list(r.extra)} for r in report.ranges]})
    else:
        app.emit(rows, title=f"Index of chain {chain_id} vs the chain", columns=["check", "index", "chain", "ok"])
    if not report.ok:
        bad = len(report.bad_checkpoints) + sum(not r.ok for r in report.ranges)
        raise click.ClickException(f"the index disagrees with the chain in {bad} check(s): "
                                   "re-index with `medledger index --rebuild`")
    if not app.as_json:
        app.done(f"the index agrees with the chain ({len(report.checkpoints)} checkpoints, "
                 f"{len(report.ranges)} ranges)")


# ----------------------------------------------------------------------------- record list
def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else ""


def _chain_and_db(app: App, db_url: str | None) -> tuple[int, Any]:
    from ..index import queries
    db = open_db(db_url)
    try:
        chain_id = app.chain.chain_id
        queries.require_chain(db, chain_id)
    except Exception:
        db.close()
        raise
    return chain_id, db


@click.command("list")
@click.argument("patient_arg", metavar="[PATIENT]", type=ADDRESS, required=False)
@click.option("--patient", type=ADDRESS, help="The patient (address or account name), as PATIENT.")
@click.option("--author", type=ADDRESS, help="The authoring provider (address or account name).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1_000, show_default=True)
@purpose_option
@db_option
@click.pass_obj
def record_list(app: App, patient_arg: str | None, patient: str | None, author: str | None, limit: int,
                why: Purpose, db_url: str | None) -> None:
    """The records of a patient, or those a provider authored (latest version of each), from the index.

    With --gateway (MEDLEDGER_GATEWAY): the patient's records the signer may see at that gateway (its FHIR
    search, audited like a read); with --pairwise and no PATIENT, the signer's pseudonym for its custodian."""
    from ..index import queries
    if patient_arg and patient and patient_arg != patient:
        raise click.UsageError(f"PATIENT {patient_arg} and --patient {patient} differ: give one")
    patient = patient or patient_arg
    if app.gateway_url:
        if author:
            raise click.UsageError("a gateway lists the records of a PATIENT, not by --author (drop --gateway)")
        from .record.remote import list_records
        list_records(app, patient, why)
        return
    if not patient and not author:
        raise click.UsageError("pass --patient or --author")
    who = {"patient": patient, "author": author}
    chain_id, db = _chain_and_db(app, db_url)
    try:
        found = queries.records(db, chain_id, **who, limit=limit)
    finally:
        db.close()
    app.emit([{"record_id": r.record_id, "patient": r.patient, "author": r.author, "version": r.version,
               "data_class": r.data_class, "batch": r.batch_id, "anchored_block": r.first_block,
               "latest_block": r.last_block} for r in found],
             title=f"{len(found)} record(s)",
             columns=["record_id", "patient", "author", "version", "data_class", "anchored_block", "latest_block"])


# ----------------------------------------------------------------------------- claim queue
@click.command("queue")
@click.option("--insurer", type=ADDRESS, help="An insurer: claims to adjudicate by deadline, disputes.")
@click.option("--provider", type=ADDRESS,
              help="A provider: what it is owed, claims awaiting adjudication, disputable ones.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Rows per list.")
@db_option
@click.pass_obj
def claim_queue(app: App, insurer: str | None, provider: str | None, limit: int, db_url: str | None) -> None:
    """A claim work queue from the index, oldest deadline first. A migrated party is found by any account it
    has had (claims name its home account) and every party is shown under its current account."""
    from ..index import queries
    if bool(insurer) == bool(provider):
        raise click.UsageError("pass exactly one of --insurer or --provider")
    party = app.care.home_of(insurer or provider or "")
    chain_id, db = _chain_and_db(app, db_url)
    try:
        queue = queries.claim_queue(db, chain_id, insurer=party if insurer else None,
                                    provider=party if provider else None, limit=limit)
    finally:
        db.close()
    decimals = app.escrow.token.decimals()

    def money(units: int) -> str:
        return f"{units / 10**decimals:,.2f}"

    current: dict[str, str] = {}

    def shown(account: str) -> str:
        """The party's current account (events name its home account)."""
        if account not in current:
            current[account] = app.care.resolve(account).current
        return current[account]

    rows = []
    for label, claims in (("open", queue.open), ("contestable", queue.contestable), ("disputed", queue.disputed)):
        for c in claims:
            rows.append({"list": label, "claim_id": c.claim_id, "patient": c.patient,
                         "counterpart": shown(c.provider if insurer else c.insurer), "billed": money(c.billed),
                         "approved": money(c.approved), "contested": money(c.contested),
                         "deadline": _utc(c.deadline)})
    if app.as_json:
        app.emit({"party": shown(queue.party), "role": queue.role, "counts": queue.counts, "owed": queue.owed,
                  "open": queue.open, "contestable": queue.contestable, "disputed": queue.disputed})
        return
    counts = ", ".join(f"{n} {s}" for s, n in sorted(queue.counts.items())) or "no claims"
    title = f"Claim queue of {queue.role} {shown(queue.party)} ({counts})"
    if provider:
        title += f"; owed {money(queue.owed)}"
    app.emit(rows, title=title,
             columns=["list", "claim_id", "patient", "counterpart", "billed", "approved", "contested", "deadline"])


# ----------------------------------------------------------------------------- consent state
@click.command("state")
@click.option("--patient", type=ADDRESS, help="The patient (address or account name).")
@click.option("--grantee", type=ADDRESS, help="The grantee (address or account name).")
@click.option("--block", type=click.IntRange(0), help="As of this block (default: the newest indexed).")
@db_option
@click.pass_obj
def consent_state(app: App, patient: str | None, grantee: str | None, block: int | None, db_url: str | None) -> None:
    """Consent per patient and grantee as of a block, from the index."""
    from ..index import queries
    if not patient and not grantee:
        raise click.UsageError("pass --patient or --grantee")
    chain_id, db = _chain_and_db(app, db_url)
    try:
        states = queries.consent_state(db, chain_id,
                                       patient=patient,
                                       grantee=grantee,
                                       as_of_block=block)
    finally:
        db.close()
    app.emit([{"patient": s.patient, "grantee": s.grantee, "granted": s.granted, "purposes": s.purposes,
               "data_classes": s.data_classes, "valid_until": _utc(s.valid_until), "since_block": s.block,
               "break_glass_until": _utc(s.break_glass_until)} for s in states],
             title="Consent" + (f" as of block {block:,}" if block is not None else ""),
             columns=["patient", "grantee", "granted", "purposes", "data_classes", "valid_until", "since_block"])


def attach(root: click.Group) -> None:
    """Adds the index's commands to the root group: `index`; `audit` becomes a group whose default
    command is the trail (`medledger audit PATIENT`) beside `audit verify`; `record list`,
    `claim queue` and `consent state` join their groups."""
    root.add_command(index)
    trail = root.commands.get("audit")
    if trail is not None and not isinstance(trail, click.Group):
        root.commands.pop("audit")
        trail.name = "trail"
        root.add_command(_DefaultGroup(
            "audit", default="trail", commands={"trail": trail, "verify": audit_verify},
            help="A patient's audit trail (`medledger audit PATIENT`, from the index; --live scans the chain), "
                 "and `audit verify` to check the index against the chain (with --gateway: that gateway's audit "
                 "log)."))
    for name, command in (("record", record_list), ("claim", claim_queue), ("consent", consent_state)):
        parent = root.commands.get(name)
        if isinstance(parent, click.Group) and command.name not in parent.commands:
            parent.add_command(command)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While following, Ctrl-C (SIGINT) and SIGTERM set `stop`: the follower finishes the request in hand,
    commits, and returns at its next check. A KeyboardInterrupt raised inside a library call (an RPC retry,
    a database pool) could be swallowed there and leave the loop running. Only the main thread may install
    handlers; elsewhere KeyboardInterrupt stays the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda _signum, _frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

