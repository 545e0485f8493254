"""`medledger record ...`: seal, anchor, read, verify and trace health records.

Every party points at the same vault directory (--vault / MEDLEDGER_VAULT). It stands in for a
shared object store such as S3: it only ever holds sealed envelopes, the record index and batch
manifests (random ids, hashes, addresses), so sharing it discloses nothing without a wrapped key.

Writes check everything they can before sending (registration, consent, published keys, the FHIR
itself), so a refusal never leaves half-done work on chain.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from eth_hash.auto import keccak
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from web3.exceptions import TransactionNotFound, Web3RPCError

from .. import crypto, fhir, pipeline
from ..chain import TRANSIENT, rpc_message
from ..errors import (
    AccountError,
    ChainError,
    ConsentMissing,
    DecryptionFailed,
    FhirInvalid,
    NotRegistered,
    RecordNotFound,
    RecordTampered,
)
from ..records import (
    Located,
    ReaderDirectory,
    Recipients,
    check_envelope,
    locate,
    publish_key_hint,
    read_blob,
)
from ..scopes import DataClass, Purpose, Role, data_class, purpose
from ..vault import LocalVault
from . import cli
from .app import App, err_console, parse_bytes32, resolve_address, tx_fields

FHIR_CHOICE = click.Choice(["auto", "R4", "R4B", "R5"], case_sensitive=False)
SEAL_CHUNK = 64


@cli.group()
def record() -> None:
    """Put, amend, batch, read, verify and trace sealed health records.

    \b
    Every party points at the same vault (--vault / MEDLEDGER_VAULT): it stands in for a shared
    store such as S3 and holds only sealed envelopes, the index and batch manifests. Each version
    is sealed for the patient, its author and every party with live access to its data class that
    published a key (`medledger registry publish-key`); the chain anchors keccak256 of the blob.
    """


# --------------------------------------------------------------------------- helpers


def _class_name(value: int) -> str:
    return DataClass(value).name.lower().replace("_", "-")


def _vault(app: App) -> LocalVault:
    return LocalVault(app.settings.vault_dir)


def _from_block(app: App) -> int:
    return app.deployment.contracts["RecordRegistry"].block


def _readers(app: App) -> ReaderDirectory:
    return ReaderDirectory(app.chain, app.care, app.consent, app.deployment.contracts["ConsentRegistry"].block)


def _locate(app: App, record_id: bytes, version: int | None = None) -> Located:
    return locate(app.records, app.settings.vault_dir, app.chain.chain_id, record_id, version, _from_block(app))


@contextmanager
def _node(app: App) -> Iterator[None]:
    """Direct node reads fail as one ChainError line, like the wrappers' calls."""
    try:
        yield
    except TransactionNotFound:
        raise  # an answer, not a failure: the caller decides
    except Web3RPCError as exc:
        raise ChainError(f"RPC {app.settings.rpc_url} refused the request: {rpc_message(exc)}") from None
    except TRANSIENT as exc:
        raise ChainError(f"RPC {app.settings.rpc_url} failed: {type(exc).__name__}") from None


def _private_key(app: App, what: str) -> bytes:
    key = getattr(app.signer, "private_key", None)
    if key is None:
        raise click.UsageError(f"{what} needs a local key (keystore, brownie or env account) to open records")
    return bytes(key)


def _author_key(app: App) -> bytes:
    """The key the author's own copy is wrapped to: its local key, else its published one."""
    key = getattr(app.signer, "private_key", None)
    if key is not None:
        return crypto.public_key_of(key)
    published = app.care.encryption_key(app.signer.address)
    if published:
        return published
    raise AccountError(f"{app.signer.address} has no local key and published no encryption key: run "
                       f"{publish_key_hint('YOU')}")


def _read_fhir(path: Path, version: str, validate: bool) -> bytes:
    """FILE's bytes once they parse (and, unless told not to, validate) as FHIR `version`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FhirInvalid(f"{path}: cannot read ({exc.strerror})") from None
    try:
        fhir.canonical_document(raw, validate=validate, version=version)  # type: ignore[arg-type]
    except FhirInvalid as exc:
        raise FhirInvalid(f"{path.name}: {exc}") from None
    return raw


def _require_provider(app: App, who: str) -> None:
    if not app.care.is_active(who, Role.PROVIDER):
        raise NotRegistered(f"{who} is not an active provider in the CareRegistry: only providers anchor records")


def _has_treatment(app: App, patient: str, provider: str, dc: int) -> bool:
    return app.consent.has_consent(patient, provider, Purpose.TREAT, DataClass(dc)) or \
        app.consent.has_consent(patient, provider, Purpose.ETREAT, DataClass(dc))


def _require_treatment(app: App, patient: str, provider: str, dc: int) -> None:
    if not _has_treatment(app, patient, provider, dc):
        name = _class_name(dc)
        raise ConsentMissing(f"{provider} holds neither TREAT consent of patient {patient} for {name} nor open "
                             f"emergency access: the patient runs `medledger --account PATIENT consent grant "
                             f"{provider} -p treat -c {name}`")


def _warn_unkeyed(recipients: Recipients) -> None:
    for who in recipients.unkeyed:
        err_console.print(f"[yellow]warning:[/yellow] {who} may read this record but published no encryption "
                          f"key; it is not sealed for them (it runs {publish_key_hint('GRANTEE')})", highlight=False,
                          soft_wrap=True)


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if timestamp else ""


@contextmanager
def _progress(app: App) -> Iterator[Progress]:
    """A rich progress bar on stderr when it is a terminal (and not --json); silent otherwise."""
    show = err_console.is_terminal and not app.as_json
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not show) as progress:
        yield progress


def _write_private(path: Path, data: bytes) -> None:
    """Writes decrypted PHI readable by the owner only, all or nothing."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fhir_options(fn):
    fn = click.option("--no-validate", is_flag=True, help="Skip FHIR validation (pre-validated sources).")(fn)
    return click.option("--fhir-version", type=FHIR_CHOICE, default="auto", show_default=True,
                        callback=lambda _c, _p, v: fhir.normalize(v),
                        help="FHIR version of the document(s); auto detects it from the content "
                             "(R4 is read through R4B; see docs/FHIR.md).")(fn)


def _class_option(fn):
    return click.option("--class", "class_name", default="conditions", show_default=True,
                        help="Data class, e.g. conditions, labs, medications, billing.")(fn)


# --------------------------------------------------------------------------- put / amend


@record.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--patient", required=True, help="The patient (address or account name).")
@_class_option
@_fhir_options
@click.pass_obj
def put(app: App, file: Path, patient: str, class_name: str, fhir_version: str, no_validate: bool) -> None:
    """Seal FILE (FHIR JSON) for the patient, the author and every current reader, then anchor it."""
    raw = _read_fhir(file, fhir_version, not no_validate)
    dc = int(data_class(class_name))
    patient_addr = resolve_address(app, patient, "--patient")
    author = app.signer.address
    _require_provider(app, author)
    _require_treatment(app, patient_addr, author, dc)
    recipients = _readers(app).recipients(patient_addr, dc, author, _author_key(app))
    _warn_unkeyed(recipients)
    vault = _vault(app)
    prepared = pipeline.prepare_record(raw, patient=patient_addr, recipients=recipients.keys, data_class=dc,
                                       vault=vault, validate=False, fhir_version=fhir_version,  # type: ignore[arg-type]
                                       index=False)
    result = app.records.anchor(app.signer, prepared.record_id, patient_addr, prepared.content_hash, dc)
    vault.index.add(prepared.record_id, prepared.version, prepared.vault_id)
    rid = "0x" + prepared.record_id.hex()
    app.done(f"record {rid} v1 anchored: contentHash {prepared.vault_id}, tx {result.tx_hash}",
             record_id=rid, version=1, content_hash=prepared.vault_id, patient=patient_addr,
             data_class=_class_name(dc), readers=list(recipients.addresses), **tx_fields(result))


@record.command("amend")
@click.argument("record_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_fhir_options
@click.pass_obj
def amend(app: App, record_id: str, file: Path, fhir_version: str, no_validate: bool) -> None:
    """Anchor FILE as the next version of RECORD_ID, sealed afresh for today's readers (a revoked
    grantee gets no key to it)."""
    rid = parse_bytes32(record_id, "RECORD_ID")
    raw = _read_fhir(file, fhir_version, not no_validate)
    current = _locate(app, rid)
    author = app.signer.address
    _require_provider(app, author)
    if author != current.author and not app.consent.has_consent(current.patient, author, Purpose.TREAT,
                                                                DataClass(current.data_class)):
        raise ConsentMissing(f"{author} neither authored {current.label} nor holds TREAT consent of patient "
                             f"{current.patient} for {_class_name(current.data_class)}: it may not amend it")
    if current.batch is not None:  # promoted first: amend needs a regular anchor to link to
        _require_treatment(app, current.patient, current.author, current.data_class)
    recipients = _readers(app).recipients(current.patient, current.data_class, author, _author_key(app))
    _warn_unkeyed(recipients)
    vault = _vault(app)
    prepared = pipeline.prepare_record(raw, patient=current.patient, recipients=recipients.keys,
                                       data_class=current.data_class, vault=vault, version=current.version + 1,
                                       record_id=rid, validate=False, fhir_version=fhir_version,  # type: ignore[arg-type]
                                       index=False)
    if current.batch is not None:
        app.records.attest_batch_record(app.signer, current.batch.leaf, current.batch.proof, current.batch.batch_id)
    result = app.records.amend(app.signer, rid, current.patient, current.content_hash, prepared.content_hash)
    version = int(app.records.events(result, "RecordAmended")[0]["version"])
    vault.index.add(rid, version, prepared.vault_id)
    app.done(f"record {current.rid} amended to v{version}: contentHash {prepared.vault_id}, tx {result.tx_hash}",
             record_id=current.rid, version=version, previous_content_hash=current.cid,
             content_hash=prepared.vault_id, readers=list(recipients.addresses), **tx_fields(result))


# --------------------------------------------------------------------------- get


@record.command("get")
@click.argument("record_id")
@click.option("--version", type=click.IntRange(1), help="Version to read (default: the latest).")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the decrypted FHIR JSON here (mode 0600) instead of stdout.")
@click.option("--purpose", "purpose_name", default="treat", show_default=True,
              help="Purpose of use logged on chain: treat, etreat (break-glass), hpaymt, ...")
@click.pass_obj
def get(app: App, record_id: str, version: int | None, out: Path | None, purpose_name: str) -> None:
    """Read RECORD_ID: verify it against the chain, log the access on chain, then decrypt it.

    Order, so that a refused reader gets nothing: (1) locate the version on chain and check the
    vault blob's hash against the anchor; (2) check consent for --purpose (patients read their own
    records without it) and that the version was sealed for the reader; (3) log the access on chain
    (`logAccess`, which the contract refuses without consent); only then (4) unwrap, decrypt and
    write. A batched record is promoted (`attestBatchRecord`) before its first logged access.
    """
    rid = parse_bytes32(record_id, "RECORD_ID")
    why = purpose(purpose_name)
    if out is not None and out.exists():
        raise click.BadParameter(f"{out} exists already", param_hint="--out")
    reader = app.signer.address
    private_key = _private_key(app, "record get")
    located = _locate(app, rid, version)
    envelope = crypto.Envelope.from_bytes(read_blob(_vault(app), located))
    check_envelope(envelope, located)
    is_patient = reader == located.patient
    cls = _class_name(located.data_class)
    if not is_patient and not app.consent.has_consent(located.patient, reader, why, DataClass(located.data_class)):
        raise ConsentMissing(f"{reader} has no {why.name} consent of patient {located.patient} for {cls} "
                             f"({located.label}): nothing was read")
    if reader not in envelope.wrapped_keys:
        raise DecryptionFailed(f"{located.label} holds no key for {reader}: it was sealed before its access "
                               f"began; a consented provider re-seals it for today's readers with "
                               f"`medledger record amend`")
    access = None
    if not is_patient:
        if located.batch is not None:
            _require_treatment(app, located.patient, located.author, located.data_class)
            app.records.attest_batch_record(app.signer, located.batch.leaf, located.batch.proof,
                                            located.batch.batch_id)
        access = app.records.log_access(app.signer, located.patient, rid, why)
    plaintext = crypto.open_envelope(envelope, reader, private_key)
    fields: dict[str, Any] = {"record_id": located.rid, "version": located.version, "content_hash": located.cid,
                              "patient": located.patient, "reader": reader,
                              "purpose": None if is_patient else why.name,
                              "access_tx": access.tx_hash if access else None}
    logged = f"access logged in tx {access.tx_hash}" if access else "read by the patient (not logged)"
    if out is not None:
        _write_private(out, plaintext)
        app.done(f"{located.label} verified and written to {out}; {logged}", out=out, **fields)
    elif app.as_json:
        click.echo(json.dumps({"ok": True, **fields, "document": json.loads(plaintext)}))
    else:
        sys.stdout.write(plaintext.decode() + "\n")
        err_console.print(f"[green]✓[/green] {located.label} verified; {logged}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- verify / history


@record.command("verify")
@click.argument("target", metavar="FILE|RECORD_ID")
@click.option("--version", type=click.IntRange(1), help="With RECORD_ID: the version to check (default latest).")
@click.pass_obj
def verify(app: App, target: str, version: int | None) -> None:
    """Check a sealed blob FILE, or RECORD_ID's blob in the vault, against the chain. Exit 1 if tampered."""
    path = Path(target)
    if path.is_file():
        blob = path.read_bytes()
        source = str(path)
        try:
            claimed = crypto.Envelope.from_bytes(blob)
        except DecryptionFailed as exc:
            raise RecordTampered(f"{path} is not a readable sealed record ({exc}): tampered, or not a MedLedger "
                                 f"blob (keccak256 0x{keccak(blob).hex()})") from None
        try:
            located = _locate(app, claimed.record_id, claimed.version)
        except RecordNotFound:
            if app.records.latest_of(claimed.record_id) is None:
                raise
            raise RecordTampered(f"{path} claims record 0x{claimed.record_id.hex()} v{claimed.version}, a version "
                                 f"the chain never anchored: tampered or forged (keccak256 0x{keccak(blob).hex()})") \
                from None
    else:
        located = _locate(app, parse_bytes32(target, "FILE|RECORD_ID"), version)
        vault = _vault(app)
        source = f"the vault blob {vault.path_of(located.content_hash)}"
        try:
            blob = vault.path_of(located.content_hash).read_bytes()
        except FileNotFoundError:
            raise RecordNotFound(f"{located.label} (blob {located.cid}) is not in the vault {vault.directory}") \
                from None
    found = keccak(blob)
    if found != located.content_hash:
        raise RecordTampered(f"{located.label} is TAMPERED: the chain anchors contentHash {located.cid}, "
                             f"{source} hashes to 0x{found.hex()}")
    envelope = crypto.Envelope.from_bytes(blob)
    check_envelope(envelope, located)
    report = {"status": "intact", "record_id": located.rid, "version": located.version,
              "content_hash": located.cid, "anchored": True,
              "how": f"batch {hex(located.batch.batch_id)} (not promoted)" if located.batch else "anchor",
              "author": located.author, "anchored_at": located.anchored_at,
              "anchored_at_utc": _utc(located.anchored_at),
              "latest": located.latest, "latest_version": located.latest_version, "patient": located.patient,
              "data_class": _class_name(located.data_class), "readers": list(envelope.recipients)}
    app.emit(report, title=f"{located.label}: intact")


@record.command("history")
@click.argument("record_id")
@click.pass_obj
def history(app: App, record_id: str) -> None:
    """RECORD_ID's versions, from chain events (or its batch, if never promoted)."""
    rid = parse_bytes32(record_id, "RECORD_ID")
    events = app.records.history(rid, _from_block(app))
    rows: list[dict[str, Any]] = []
    for ev in events:
        with _node(app):
            stamp = int(app.chain.w3.eth.get_block(ev.block)["timestamp"])
        rows.append({"version": ev.version, "event": ev.event, "content_hash": ev.content_hash,
                     "previous": ev.previous_content_hash, "author": ev.author, "patient": ev.patient,
                     "block": ev.block, "time": _utc(stamp), "tx": ev.tx_hash,
                     "batch_id": hex(ev.batch_id) if ev.batch_id is not None else None})
    if not rows:
        located = _locate(app, rid)  # a batch member, or RecordNotFound
        assert located.batch is not None
        rows.append({"version": located.version, "event": "in batch (not promoted)", "content_hash": located.cid,
                     "previous": None, "author": located.author, "patient": located.patient, "block": None,
                     "time": _utc(located.anchored_at), "tx": None, "batch_id": hex(located.batch.batch_id)})
    app.emit(rows, title=f"History of record 0x{rid.hex()}",
             columns=["version", "event", "content_hash", "author", "block", "time", "tx"])


from . import record_batch  # noqa: E402,F401 - attaches `record put-batch` to the group
