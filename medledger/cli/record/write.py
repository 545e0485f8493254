"""`medledger record put | amend`: seal one FHIR document for its readers and anchor it."""
from __future__ import annotations

from pathlib import Path

import click

from ... import pipeline
from ...records import require_amend, require_provider, require_treatment
from ...scopes import DataClass
from ..app import App, tx_fields
from ..options import address_option, class_option, emergency_reader_option, fhir_options
from ..paramtypes import BYTES32
from . import remote
from .common import author_key, class_label, locate_version, read_fhir, readers, vault, warn_unkeyed


@click.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@address_option("--patient", required=True, help="The patient (address or account name).")
@class_option
@fhir_options
@emergency_reader_option
@click.pass_obj
def put(app: App, file: Path, patient: str, data_class: DataClass, fhir_version: str, no_validate: bool,
        emergency: tuple[str, ...]) -> None:
    """Seal FILE (FHIR JSON) for the patient, the author and every current reader, then anchor it.

    With --gateway: POST it to the gateway, which validates, seals it for the patient and its own key, stores
    and anchors it (--class and --emergency-reader do not apply: the gateway reads the classes from the FHIR)."""
    if app.gateway_url:
        remote.put(app, file, patient, fhir_version, not no_validate)
        return
    raw = read_fhir(file, fhir_version, not no_validate)
    dc = int(data_class)
    author = app.signer.address
    require_provider(app.care, author)
    require_treatment(app.consent, patient, author, dc)
    recipients = readers(app).recipients(patient, dc, author, author_key(app), emergency)
    warn_unkeyed(recipients)
    store = vault(app)
    prepared = pipeline.prepare_record(raw, patient=patient, recipients=recipients.keys, data_class=dc,
                                       vault=store, validate=False, fhir_version=fhir_version,  # type: ignore[arg-type]
                                       index=False)
    result = app.records.anchor(app.signer, prepared.record_id, patient, prepared.content_hash, dc)
    store.index.add(prepared.record_id, prepared.version, prepared.vault_id)
    rid = "0x" + prepared.record_id.hex()
    app.done(f"record {rid} v1 anchored: contentHash {prepared.vault_id}, tx {result.tx_hash}",
             record_id=rid, version=1, content_hash=prepared.vault_id, patient=patient,
             data_class=class_label(dc), readers=list(recipients.addresses), **tx_fields(result))


@click.command("amend")
@click.argument("record_id", type=BYTES32)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@fhir_options
@emergency_reader_option
@click.pass_obj
def amend(app: App, record_id: bytes, file: Path, fhir_version: str, no_validate: bool,
          emergency: tuple[str, ...]) -> None:
    """Anchor FILE as the next version of RECORD_ID, sealed afresh for today's readers.

    The signer needs live TREAT consent of the patient for the record's class, even if it wrote the
    earlier versions: a revoked author may not amend. The new version is sealed only for the patient,
    the signer and grantees whose consent is live now: no key for revoked grantees, and none through
    break-glass unless named with --emergency-reader (while its window is open)."""
    rid = record_id
    raw = read_fhir(file, fhir_version, not no_validate)
    current = locate_version(app, rid)
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
