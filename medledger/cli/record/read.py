"""`medledger record get`: verify a version against the chain, log the access, then decrypt it."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ... import crypto
from ...errors import DecryptionFailed
from ...records import check_envelope, read_blob, require_promoter, require_read, require_treatment
from ...scopes import Purpose
from ..app import App, err_console
from ..options import purpose_option
from ..paramtypes import BYTES32
from . import remote
from .common import locate_version, private_key, vault, write_private


@click.command("get")
@click.argument("record_id", type=BYTES32)
@click.option("--version", type=click.IntRange(1), help="Version to read (default: the latest).")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the decrypted FHIR JSON here (mode 0600) instead of stdout.")
@purpose_option
@click.pass_obj
def get(app: App, record_id: bytes, version: int | None, out: Path | None, why: Purpose) -> None:
    """Read RECORD_ID: verify it against the chain, log the access on chain, then decrypt it.

    Order, so that a refused reader gets nothing: (1) locate the version on chain and check the
    vault blob's hash against the anchor; (2) check consent for --purpose (patients read their own
    records without it) and that the version was sealed for the reader; (3) log the access on chain
    (`logAccess`, which the contract refuses without consent); only then (4) unwrap, decrypt and
    write. A batched record is promoted (`attestBatchRecord`) before its first logged access.

    With --gateway: fetch it from the gateway, which checks live consent for --purpose, commits an audit
    entry and answers only the resources the reader may see (the latest version).
    """
    if out is not None and out.exists():
        raise click.BadParameter(f"{out} exists already", param_hint="--out")
    if app.gateway_url:
        remote.get(app, record_id, version, out, why)
        return
    rid = record_id
    reader = app.signer.address
    key = private_key(app, "record get")
    located = locate_version(app, rid, version)
    own = app.identity.find(located.patient, app.parties) if app.pairwise else None
    if own is not None:  # the patient reads her own record as the pseudonym it names (no transaction)
        reader, key = own.address, bytes(own.account.key)
    envelope = crypto.Envelope.from_bytes(read_blob(vault(app), located))
    check_envelope(envelope, located)
    is_patient = reader == located.patient
    require_read(app.consent, located, reader, why)
    if reader not in envelope.wrapped_keys:
        raise DecryptionFailed(f"{located.label} holds no key for {reader}: it was sealed before its access "
                               f"began; a consented provider re-seals it for today's readers with "
                               f"`medledger record amend`")
    access = None
    if not is_patient:
        if located.batch is not None:
            require_promoter(located, reader)
            require_treatment(app.consent, located.patient, located.author, located.data_class)
            app.records.attest_batch_record(app.signer, located.batch.leaf, located.batch.proof,
                                            located.batch.batch_id)
        access = app.records.log_access(app.signer, located.patient, rid, why)
    plaintext = crypto.open_envelope(envelope, reader, key)
    fields: dict[str, Any] = {"record_id": located.rid, "version": located.version, "content_hash": located.cid,
                              "patient": located.patient, "reader": reader,
                              "purpose": None if is_patient else why.name,
                              "access_tx": access.tx_hash if access else None}
    logged = f"access logged in tx {access.tx_hash}" if access else "read by the patient (not logged)"
    if out is not None:
        write_private(out, plaintext)
        app.done(f"{located.label} verified and written to {out}; {logged}", out=out, **fields)
    elif app.as_json:
        click.echo(json.dumps({"ok": True, **fields, "document": json.loads(plaintext)}))
    else:
        sys.stdout.write(plaintext.decode() + "\n")
        err_console.print(f"[green]✓[/green] {located.label} verified; {logged}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- verify / history
