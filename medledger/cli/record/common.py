"""What every `medledger record` command shares: the vault, the reader directory, locating a
version, node errors as one line, progress bars and the author's keys."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from web3.exceptions import TransactionNotFound, Web3RPCError

from ... import crypto, data_classes, fhir, messages
from ...chain import TRANSIENT, rpc_message
from ...errors import AccountError, ChainError, DataClassMismatch, FhirInvalid
from ...records import Located, ReaderDirectory, Recipients, class_label, locate, publish_key_hint
from ...scopes import DataClass
from ...vault import LocalVault
from ..app import App, err_console

__all__ = ["author_key", "class_label", "file_parts", "from_block", "locate_version", "node", "private_key", "progress",
           "read_fhir", "readers", "utc", "vault", "warn_unkeyed", "write_private"]


def vault(app: App) -> LocalVault:
    return LocalVault(app.settings.vault_dir)


def from_block(app: App) -> int:
    """The block the RecordRegistry was deployed in: event scans start there."""
    return app.deployment.contracts["RecordRegistry"].block


def readers(app: App) -> ReaderDirectory:
    return ReaderDirectory(app.chain, app.care, app.consent, app.deployment.contracts["ConsentRegistry"].block)


def locate_version(app: App, record_id: bytes, version: int | None = None) -> Located:
    return locate(app.records, app.settings.vault_dir, app.chain.chain_id, record_id, version, from_block(app))


@contextmanager
def node(app: App) -> Iterator[None]:
    """Direct node reads fail as one ChainError line, like the wrappers' calls."""
    try:
        yield
    except TransactionNotFound:
        raise  # an answer, not a failure: the caller decides
    except Web3RPCError as exc:
        raise ChainError(f"RPC {app.settings.rpc_url} refused the request: {rpc_message(exc)}") from None
    except TRANSIENT as exc:
        raise ChainError(f"RPC {app.settings.rpc_url} failed: {type(exc).__name__}") from None


def private_key(app: App, what: str) -> bytes:
    key = getattr(app.signer, "private_key", None)
    if key is None:
        raise click.UsageError(f"{what} needs a local key (keystore, brownie or env account) to open records")
    return bytes(key)


def author_key(app: App) -> bytes:
    """The key the author's own copy is wrapped to: its local key, else its published one."""
    key = getattr(app.signer, "private_key", None)
    if key is not None:
        return crypto.public_key_of(key)
    published = app.care.encryption_key(app.signer.address)
    if published:
        return published
    raise AccountError(f"{app.signer.address} has no local key and published no encryption key: run "
                       f"{publish_key_hint('YOU')}")


def read_fhir(path: Path, version: str, validate: bool) -> bytes:
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


def file_parts(path: Path, raw: bytes, declared: DataClass | None, version: str, validate: bool,
               declared_as: str | None = None) -> tuple[data_classes.Part, ...]:
    """The records FILE becomes (`data_classes.parts_of`): one per data class it holds, or a refusal
    naming FILE when the declared class (--class, unless ``declared_as`` says otherwise) does not cover
    it. With ``validate``, each part of a split Bundle must be valid FHIR on its own."""
    if declared is not None and declared_as is None:
        declared_as = f"--class {class_label(declared)}"
    try:
        parts = data_classes.parts_of(fhir.parse(raw), declared, declared_as)
    except DataClassMismatch as exc:
        raise DataClassMismatch(f"{path.name}: {exc}") from None
    if validate and len(parts) > 1:
        for part in parts:
            try:
                fhir.validate_document(part.document, version)
            except FhirInvalid as exc:
                raise FhirInvalid(f"{path.name}: its {part.label} part is not valid FHIR on its own ({exc})") \
                    from None
    return parts


def warn_unkeyed(*sealed_for: Recipients) -> None:
    """One warning per party that may read but published no key (once, however many records)."""
    for who in dict.fromkeys(w for recipients in sealed_for for w in recipients.unkeyed):
        err_console.print(f"[yellow]warning:[/yellow] {who} may read this record but published no encryption "
                          f"key; it is not sealed for them (it runs {publish_key_hint('GRANTEE')})", highlight=False,
                          soft_wrap=True)


def utc(timestamp: int) -> str:
    return messages.utc(timestamp) if timestamp else ""


@contextmanager
def progress(app: App) -> Iterator[Progress]:
    """A rich progress bar on stderr when it is a terminal (and not --json); silent otherwise."""
    show = err_console.is_terminal and not app.as_json
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not show) as bar:
        yield bar


def write_private(path: Path, data: bytes) -> None:
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
