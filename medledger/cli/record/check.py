"""`medledger record verify`: is a blob what the chain anchored."""
from __future__ import annotations

from pathlib import Path

import click
from eth_hash.auto import keccak

from ... import crypto
from ...errors import DecryptionFailed, RecordNotFound, RecordTampered
from ...records import check_envelope
from ..app import App
from ..paramtypes import parse_bytes32
from .common import class_label, locate_version, utc, vault


@click.command("verify")
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
            located = locate_version(app, claimed.record_id, claimed.version)
        except RecordNotFound:
            if app.records.latest_of(claimed.record_id) is None:
                raise
            raise RecordTampered(f"{path} claims record 0x{claimed.record_id.hex()} v{claimed.version}, a version "
                                 f"the chain never anchored: tampered or forged (keccak256 0x{keccak(blob).hex()})") \
                from None
    else:
        located = locate_version(app, parse_bytes32(target, "FILE|RECORD_ID"), version)
        store = vault(app)
        source = f"the vault blob {store.path_of(located.content_hash)}"
        try:
            blob = store.path_of(located.content_hash).read_bytes()
        except FileNotFoundError:
            raise RecordNotFound(f"{located.label} (blob {located.cid}) is not in the vault {store.directory}") \
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
              "anchored_at_utc": utc(located.anchored_at),
              "latest": located.latest, "latest_version": located.latest_version, "patient": located.patient,
              "data_class": class_label(located.data_class), "readers": list(envelope.recipients)}
    app.emit(report, title=f"{located.label}: intact")
