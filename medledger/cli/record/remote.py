"""`medledger record put | get | list` through a record gateway (global --gateway / MEDLEDGER_GATEWAY).

The gateway does the work the local vault mode does in the CLI: it validates, seals (for the patient and
its own key), stores and anchors a new record, decides each read from live on-chain consent, and commits
an audit entry before it answers (docs/GATEWAY.md). The CLI signs in through `App.gateway`, the one place
that builds an SDK `GatewayClient`. Under --pairwise a patient acts as her pseudonym for the record.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ...record_ids import patient_of
from ...scopes import DataClass, Purpose
from ..app import App, err_console
from .common import file_parts, read_fhir, write_private


def put(app: App, file: Path, patient: str, fhir_version: str, validate: bool, declared: DataClass | None = None,
        url: str | None = None) -> None:
    """POST FILE to the gateway, which validates, seals, stores and anchors it (and releases it per class at
    each read). A declared class that does not cover FILE is refused here, before anything is sent."""
    raw = read_fhir(file, fhir_version, validate)
    file_parts(file, raw, declared, fhir_version, False)  # the refusal only: the gateway keeps the Bundle whole
    client = app.gateway(url)
    created = client.put_record(json.loads(raw), patient)  # idempotent: a retry never makes a second record
    done = "was stored and anchored already (a retry answered by the gateway)" if created["replayed"] else \
        "stored and anchored"
    app.done(f"record {created['recordId']} v{created['version']} {done} by the gateway "
             f"{client.base_url}: contentHash {created['contentHash']}, tx {created['tx']}",
             record_id=created["recordId"], version=created["version"], content_hash=created["contentHash"],
             patient=created["patient"], classes=created["classes"], data_class=created["anchoredClass"],
             gateway=client.base_url, tx=created["tx"], block=created["block"], replayed=created["replayed"])


def amend(app: App, record_id: bytes, file: Path, fhir_version: str, validate: bool,
          if_match: int | None = None) -> None:
    """PUT FILE as the next version of RECORD_ID at the gateway (FHIR versioned update): only the record's
    author may; the gateway seals, stores and anchors it with `RecordRegistry.amend`."""
    raw = read_fhir(file, fhir_version, validate)  # refused here, before anything is sent
    client = app.gateway()
    rid = "0x" + record_id.hex()
    made = client.update_record(rid, json.loads(raw), if_match)
    app.done(f"record {made['recordId']} amended to v{made['version']} by the gateway {client.base_url}: "
             f"contentHash {made['contentHash']}, tx {made['tx']}",
             record_id=made["recordId"], version=made["version"], content_hash=made["contentHash"],
             patient=made["patient"], classes=made["classes"], data_class=made["anchoredClass"],
             gateway=client.base_url, tx=made["tx"], block=made["block"])


def get(app: App, record_id: bytes, version: int | None, out: Path | None, why: Purpose,
        url: str | None = None) -> None:
    """Read the latest version through the gateway: only what the signer may see; the read is audited."""
    if version is not None:
        raise click.UsageError("a gateway serves the latest version of a record; --version reads from the local "
                               "vault (drop --gateway)")
    rid = "0x" + record_id.hex()
    patient = patient_of(record_id)
    reader, _ = app.acting_patient(patient)  # under --pairwise, her pseudonym when the record is hers
    client = app.gateway(url, reader)
    released = client.read(rid, why.name)
    fields: dict[str, Any] = {"record_id": rid, "version": _version(released.document), "patient": patient,
                              "reader": reader.address, "purpose": why.name, "gateway": client.base_url,
                              "audit": list(released.audit_seqs)}
    logged = f"read audited by the gateway as entry {', '.join(map(str, released.audit_seqs)) or '-'}"
    if out is not None:
        write_private(out, released.body)
        app.done(f"record {rid} written to {out}; {logged}", out=out, **fields)
    elif app.as_json:
        click.echo(json.dumps({"ok": True, **fields, "document": released.document}))
    else:
        sys.stdout.write(released.body.decode() + "\n")
        err_console.print(f"[green]✓[/green] record {rid} from {client.base_url}; {logged}", highlight=False,
                          soft_wrap=True)


def list_records(app: App, patient: str | None, why: Purpose, url: str | None = None) -> None:
    """The patient's records the signer may see at the gateway (its FHIR search; each listed record is a read)."""
    if patient is None and not app.pairwise:
        raise click.UsageError("name the PATIENT (with --pairwise, without it: your pseudonym for the gateway's "
                               "custodian)")
    custodian = app.gateway_health(url)["custodian"] if patient is None else None  # asked without signing in
    reader, patient = app.acting_patient(patient, custodian)
    client = app.gateway(url, reader)
    rows = [{"record_id": "0x" + r["id"], "version": r["versionId"], "last_updated": r["lastUpdated"],
             "resources": r["resources"]} for r in client.list_records(patient, why.name)]
    app.emit(rows, title=f"Records of {patient} at {client.base_url}",
             columns=["record_id", "version", "last_updated", "resources"])


def _version(doc: dict[str, Any]) -> int | None:
    value = doc.get("meta", {}).get("versionId")
    return int(value) if isinstance(value, str) and value.isdigit() else value
