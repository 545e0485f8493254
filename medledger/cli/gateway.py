"""`medledger gateway serve | rotate-key`: run a custodian's record gateway, rotate its sealing key."""
from __future__ import annotations

import fcntl
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from ..errors import ConfigError
from ..scopes import Purpose
from .app import App
from .options import address_option, purpose_option
from .paramtypes import BYTES32

KEY_PASSWORD_ENV = "MEDLEDGER_GATEWAY_KEY_PASSWORD"
SWITCH_INTERVAL = 0.0005  # seconds; CPython's default is 0.005
GC_THRESHOLD = (20_000, 50, 100)  # CPython's default is (700, 10, 10)


def _default_data() -> Path:
    return Path(os.environ.get("MEDLEDGER_HOME", Path.home() / ".medledger")) / "gateway"


def _password() -> str:
    value = os.environ.get(KEY_PASSWORD_ENV)
    if value is not None:
        return value
    return click.prompt("Gateway key password", hide_input=True)


@contextmanager
def _exclusive(data: Path) -> Iterator[IO[str]]:
    """One process at a time per gateway data directory (serve and rotate-key exclude each other)."""
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "gateway.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another gateway process holds {data}; stop it first") from None
        yield lock


data_option = click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path), default=None,
                           help="Gateway data directory: blobs, keys, SQLite database (default ~/.medledger/gateway).")
db_option = click.option("--db", "db_url", envvar="MEDLEDGER_GATEWAY_DB", default=None,
                         help="Database URL (default sqlite in --data; postgresql+psycopg://... for PostgreSQL).")


@click.group("gateway")
def gateway() -> None:
    """Run a record gateway: FHIR REST with wallet sign-in, live consent and on-chain audit."""


@gateway.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True)
@click.option("--origin", help="Public origin readers sign in to (default http://HOST:PORT); put TLS in front.")
@data_option
@db_option
@click.option("--freshness-blocks", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="How many blocks a cached consent answer may lag the chain head.")
@click.option("--head-ttl", type=click.FloatRange(0, 60), default=1.0, show_default=True,
              help="Seconds between polls of the chain head.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="Anchor the audit log every N reads ...")
@click.option("--batch-seconds", type=click.FloatRange(0.1, 86_400), default=10.0, show_default=True,
              help="... or every T seconds, whichever comes first.")
@click.option("--session-ttl", type=click.FloatRange(10, 86_400), default=900.0, show_default=True,
              help="Longest sign-in session, seconds.")
@click.option("--max-body", type=click.IntRange(1024, 1 << 30), default=4 << 20, show_default=True,
              help="Largest request body, bytes.")
@click.option("--allow-origin", "allow_origins", multiple=True, metavar="ORIGIN",
              help="A web app origin whose browser requests are accepted (repeatable); sign-in stays on --origin.")
@click.option("--no-durable", is_flag=True, help="Skip blob fsyncs (tests and benchmarks only).")
@click.option("--publish", is_flag=True,
              help="Publish the origin as the custodian's gateway endpoint in the CareRegistry before serving "
                   "(no transaction when it is published already).")
@click.pass_obj
def serve(app: App, host: str, port: int, origin: str | None, data: Path | None, db_url: str | None,
          freshness_blocks: int, head_ttl: float, batch_size: int, batch_seconds: float, session_ttl: float,
          max_body: int, allow_origins: tuple[str, ...], no_durable: bool, publish: bool) -> None:
    """Serve the gateway until interrupted (the --account is the custodian: it anchors records and audit)."""
    import faulthandler
    import signal

    import uvicorn

    from ..gateway.app import create_app
    from ..gateway.service import GatewaySettings

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # operators: `kill -USR1 PID` dumps every thread's stack
    # A read hops event loop -> worker thread -> audit committer -> worker -> event loop. With CPython's default
    # 5 ms switch interval each hop can wait that long for the GIL while another thread runs Python code;
    # a shorter interval cuts that wait (docs/GATEWAY.md, "Benchmark").
    sys.setswitchinterval(SWITCH_INTERVAL)
    data = data or _default_data()
    origin = origin or f"http://{host}:{port}"
    if publish:
        from ..endpoints import check_gateway_url
        origin = check_gateway_url(origin)  # before anything starts: a bad origin is one line, nothing published
    with _exclusive(data):
        settings = GatewaySettings(chain=app.settings, signer=app.signer, origin=origin,
                                   data_dir=data, key_password=_password(), db_url=db_url,
                                   freshness_blocks=freshness_blocks, head_ttl=head_ttl, batch_size=batch_size,
                                   batch_seconds=batch_seconds, session_ttl=session_ttl, max_body=max_body,
                                   allowed_origins=allow_origins, durable=not no_durable)
        asgi = create_app(settings)
        gw = asgi.state.gateway
        click.echo(f"gateway for {settings.signer.address} on chain {gw.chain_id}: {gw.origin} "
                   f"(listening on {host}:{port}, key {gw.key.address})", err=True)
        if publish:
            published = app.care.set_gateway_endpoint(settings.signer, origin)
            click.echo(f"gateway endpoint {origin} " + (f"published (tx {published.tx_hash})" if published
                                                        else "was published already (nothing sent)"), err=True)
        # The process holds a large, long-lived object graph (web3, the ABIs, FastAPI and pydantic models): a
        # full garbage collection walks all of it and stalls every request for 100 ms or more. Freeze what is
        # alive now so collections only walk objects made while serving, and collect the young generation less
        # often (docs/GATEWAY.md, "Benchmark").
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLD)
        # httptools (C HTTP parser) and uvloop (libuv event loop) instead of the pure-Python h11 and asyncio loop:
        # the protocol layer was half of the event loop's CPU per read (docs/GATEWAY.md, "Benchmark").
        uvicorn.run(asgi, host=host, port=port, log_level="warning", access_log=False, http="httptools",
                    loop="uvloop")


@gateway.command("rotate-key")
@data_option
@db_option
@click.pass_obj
def rotate_key(app: App, data: Path | None, db_url: str | None) -> None:
    """Create a new gateway key, re-wrap every stored record for it, delete the old key (gateway stopped)."""
    from ..gateway.keys import Keyring
    from ..gateway.store import Store
    from ..vault import LocalVault

    data = data or _default_data()
    with _exclusive(data):
        store = Store(db_url or f"sqlite:///{data / 'gateway.db'}")
        try:
            old, new, count = Keyring(data / "keys", _password()).rotate(store, LocalVault(data / "vault"))
        finally:
            store.close()
    app.done(f"gateway key rotated: {old.address} -> {new.address}; {count} record version(s) re-wrapped; "
             "the old key file is deleted", old=old.address, new=new.address, rewrapped=count)


# ---------------------------------------------------------------------- talking to a gateway
# `record put/get/list` with the global --gateway are the commands; these are their earlier spellings and
# `proof`. Every one signs in through `App.gateway`.

gateway_url_option = click.option("--gateway", "gateway_url", default=None, metavar="URL",
                                  help="Gateway origin, e.g. https://records.example (default: the global "
                                       "--gateway / MEDLEDGER_GATEWAY).")


@gateway.command("put")
@gateway_url_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@address_option("--patient", required=True, help="The patient (address or account name).")
@click.pass_obj
def gw_put(app: App, gateway_url: str | None, file: Path, patient: str) -> None:
    """Create a record at a gateway from a FHIR JSON FILE (as `record put` with --gateway)."""
    import json

    try:
        doc = json.loads(file.read_text())
    except ValueError as exc:
        raise click.BadParameter(f"{file} is not JSON ({exc})", param_hint="FILE") from None
    created = app.gateway(gateway_url).put_record(doc, patient)
    app.done(f"created record {created['recordId']} (classes {', '.join(created['classes'])}; tx {created['tx']})",
             **created)


@gateway.command("get")
@gateway_url_option
@click.argument("record_id", type=BYTES32)
@purpose_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the FHIR JSON here (0600).")
@click.pass_obj
def gw_get(app: App, gateway_url: str | None, record_id: bytes, why: Purpose, out: Path | None) -> None:
    """Read a record through a gateway (as `record get` with --gateway)."""
    from .record import remote

    if out is not None and out.exists():
        raise click.BadParameter(f"{out} exists already", param_hint="--out")
    remote.get(app, record_id, None, out, why, gateway_url)


@gateway.command("list")
@gateway_url_option
@address_option("--patient", help="The patient (address or account name).")
@purpose_option
@click.pass_obj
def gw_list(app: App, gateway_url: str | None, patient: str | None, why: Purpose) -> None:
    """List the records of a patient you may see at a gateway (as `record list` with --gateway)."""
    from .record import remote

    remote.list_records(app, patient, why, gateway_url)


@gateway.command("proof")
@gateway_url_option
@click.argument("seq", type=click.IntRange(1))
@click.pass_obj
def gw_proof(app: App, gateway_url: str | None, seq: int) -> None:
    """Fetch the inclusion proof of audit entry SEQ and check it against the chain."""
    from ..gateway.client import proof_problem

    proof = app.gateway(gateway_url).audit_proof(seq)
    problem = proof_problem(proof, app.records)
    proof["verifiedOnChain"], proof["problem"] = problem is None, problem
    app.emit(proof if app.as_json else {k: proof.get(k) for k in ("seq", "anchored", "root", "batchId", "tx", "block",
                                                                  "verifiedOnChain", "problem")})
