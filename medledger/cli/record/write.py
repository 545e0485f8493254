"""`medledger record put | amend`: seal one FHIR document for its readers and anchor it."""
from __future__ import annotations

from pathlib import Path

import click

from ... import pipeline
from ...errors import MedLedgerError
from ...records import require_amend, require_provider, require_treatment
from ...scopes import DataClass
from ..app import App, tx_fields
from ..options import address_option, class_option, emergency_reader_option, fhir_options
from ..paramtypes import BYTES32
from . import remote
from .common import author_key, class_label, file_parts, locate_version, read_fhir, readers, vault, warn_unkeyed


@click.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@address_option("--patient", required=True, help="The patient (address or account name).")
@class_option
@fhir_options
@emergency_reader_option
@click.pass_obj
def put(app: App, file: Path, patient: str, data_class: DataClass | None, fhir_version: str, no_validate: bool,
        emergency: tuple[str, ...]) -> None:
    """Seal FILE (FHIR JSON) for the patient, the author and every current reader, then anchor it.

    A record holds one data class, the class of what it contains (docs/RECORDS.md, "Data classes"): a
    Bundle of several classes becomes one record per class, each sealed only for that class's readers.
    --class declares the class: it is refused, and nothing is sealed or sent, unless it covers every
    resource in FILE.

    With --gateway: POST it to the gateway, which validates, seals it for the patient and its own key, stores
    and anchors it, and releases it per class at each read (--emergency-reader does not apply; --class is
    still checked against the contents before anything is sent)."""
    if app.gateway_url:
        remote.put(app, file, patient, fhir_version, not no_validate, data_class)
        return
    raw = read_fhir(file, fhir_version, not no_validate)
    parts = file_parts(file, raw, data_class, fhir_version, not no_validate)
    author = app.signer.address
    require_provider(app.care, author)
    for part in parts:
        require_treatment(app.consent, patient, author, int(part.data_class))
    directory, own_key = readers(app), author_key(app)
    sealed_for = [directory.recipients(patient, int(part.data_class), author, own_key, emergency) for part in parts]
    warn_unkeyed(*sealed_for)
    store = vault(app)
    prepared = [pipeline.prepare_record(raw if len(parts) == 1 else part.document, patient=patient,
                                        recipients=recipients.keys, data_class=int(part.data_class), vault=store,
                                        validate=False, fhir_version=fhir_version,  # type: ignore[arg-type]
                                        index=False)
                for part, recipients in zip(parts, sealed_for, strict=True)]
    made: list[dict[str, object]] = []
    for part, recipients, record in zip(parts, sealed_for, prepared, strict=True):
        rid = "0x" + record.record_id.hex()
        try:
            result = app.records.anchor(app.signer, record.record_id, patient, record.content_hash,
                                        int(part.data_class))
        except MedLedgerError as exc:
            if made:  # the one line says which parts are on chain (their records stand on their own)
                done = ", ".join(f"{m['record_id']} ({m['data_class']})" for m in made)
                exc.args = (f"{exc} (the {part.label} record was not anchored; already anchored: {done})",)
            raise
        store.index.add(record.record_id, record.version, record.vault_id)
        made.append({"record_id": rid, "data_class": part.label, "version": 1, "content_hash": record.vault_id,
                     "readers": list(recipients.addresses), **tx_fields(result)})
    if len(made) == 1:
        one = made[0]
        app.done(f"record {one['record_id']} v1 anchored: contentHash {one['content_hash']}, tx {one['tx']}",
                 **one, patient=patient, split=False, records=made)
        return
    lines = "".join(f"\n  {m['data_class']}: record {m['record_id']} v1, tx {m['tx']}" for m in made)
    app.done(f"{file.name} holds {len(made)} data classes: {len(made)} records anchored, one per class{lines}",
             patient=patient, split=True, count=len(made), records=made)


@click.command("amend")
@click.argument("record_id", type=BYTES32)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@fhir_options
@emergency_reader_option
@click.option("--if-version", "if_version", type=click.IntRange(min=1), default=None,
              help="With --gateway: amend only if the latest version is this one (FHIR If-Match).")
@click.pass_obj
def amend(app: App, record_id: bytes, file: Path, fhir_version: str, no_validate: bool,
          emergency: tuple[str, ...], if_version: int | None) -> None:
    """Anchor FILE as the next version of RECORD_ID, sealed afresh for today's readers.

    FILE must hold only the record's data class (a record's class never changes); anything else is
    refused with the list of what FILE holds.

    The signer needs live TREAT consent of the patient for the record's class, even if it wrote the
    earlier versions: a revoked author may not amend. The new version is sealed only for the patient,
    the signer and grantees whose consent is live now: no key for revoked grantees, and none through
    break-glass unless named with --emergency-reader (while its window is open).

    With --gateway: PUT to the gateway (its author only), which seals, stores and anchors the new version."""
    if app.gateway_url:
        remote.amend(app, record_id, file, fhir_version, not no_validate, if_version)
        return
    if if_version is not None:
        raise click.UsageError("--if-version applies with --gateway (the local mode amends the latest version)")
    rid = record_id
    raw = read_fhir(file, fhir_version, not no_validate)
    current = locate_version(app, rid)
    file_parts(file, raw, DataClass(current.data_class), fhir_version, False,
               f"{current.label}'s class {class_label(current.data_class)}")
    author = app.signer.address
    require_amend(app.care, app.consent, current, author)
    recipients = readers(app).recipients(current.patient, current.data_class, author, author_key(app), emergency)
    warn_unkeyed(recipients)
    store = vault(app)
    prepared = pipeline.prepare_record(raw, patient=current.patient, recipients=recipients.keys,
                                       data_class=current.data_class, vault=store, version=current.version + 1,
                                       record_id=rid, validate=False, fhir_version=fhir_version,  # type: ignore[arg-type]
                                       index=False)
    if current.batch is not None:  # promoted first: amend needs a regular anchor to link to
        app.records.attest_batch_record(app.signer, current.batch.leaf, current.batch.proof, current.batch.batch_id)
    result = app.records.amend(app.signer, rid, current.patient, current.content_hash, prepared.content_hash)
    version = int(app.records.events(result, "RecordAmended")[0]["version"])
    store.index.add(rid, version, prepared.vault_id)
    app.done(f"record {current.rid} amended to v{version}: contentHash {prepared.vault_id}, tx {result.tx_hash}",
             record_id=current.rid, version=version, previous_content_hash=current.cid,
             content_hash=prepared.vault_id, readers=list(recipients.addresses), **tx_fields(result))
