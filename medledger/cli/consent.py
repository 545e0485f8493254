"""`medledger consent ...` and `medledger emergency ...`: the patient decides."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ..commitments import salted_file
from ..contracts import SignedConsent
from ..eip712 import MAX_SIGNATURE_LIFETIME
from ..errors import ConsentMissing, FhirMappingError
from ..scopes import DataClass, Purpose, names
from .app import App, tx_fields
from .options import SCOPE_HELP, ScopeMask, ScopeName, address_argument, address_option, bytes32_option
from .paramtypes import ADDRESS, TIMESTAMP, parse_bytes32


def _validity(valid_from: int | None, days: float | None, until: int | None) -> tuple[int, int]:
    start = valid_from or 0
    if days is not None and until is not None:
        raise click.UsageError("give --days or --until, not both")
    if days is not None:
        if days <= 0:
            raise click.BadParameter("must be positive", param_hint="--days")
        end = int(max(start, time.time()) + days * 86400)
    else:
        end = until or 0
    return start, end


@click.group()
def consent() -> None:
    """Grant, revoke, inspect and relay patient consent."""


def _scope_options(fn=None, *, required: bool = True):
    if fn is None:
        return lambda f: _scope_options(f, required=required)
    for decorator in reversed([
        click.option("--purposes", "-p", type=ScopeMask(Purpose), required=required, help=SCOPE_HELP),
        click.option("--classes", "-c", "classes", type=ScopeMask(DataClass), required=required, help=SCOPE_HELP),
        click.option("--from", "valid_from", type=TIMESTAMP,
                     help="When the consent starts: Unix seconds or an ISO date, e.g. 2027-01-31 (default now)."),
        click.option("--days", type=float, help="Consent lasts this many days."),
        click.option("--until", type=TIMESTAMP,
                     help="When the consent ends: Unix seconds or an ISO date (default: no expiry)."),
        bytes32_option("--doc-hash", help="bytes32 commitment to the off-chain FHIR Consent."),
        address_option("--patient", help="Patient (default: the signer; a guardian names the patient)."),
    ]):
        fn = decorator(fn)
    return fn


@consent.command()
@click.argument("grantee", type=ADDRESS, required=False)
@_scope_options(required=False)
@click.option("--from-fhir", "from_fhir", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read grantee, purposes, classes and period from this FHIR Consent (R4/R4B/R5) and commit to "
                   "it with a salted hash (salt kept beside it in FILE.salt.json).")
@click.option("--fhir-version", type=click.Choice(["auto", "R4", "R4B", "R5"], case_sensitive=False), default="auto",
              show_default=True, help="FHIR version of --from-fhir (auto: detected, see docs/FHIR.md).")
@click.option("--dry-run", is_flag=True, help="With --from-fhir: show what would be granted, send nothing.")
@click.pass_obj
def grant(app: App, grantee, purposes, classes, valid_from, days, until, doc_hash, patient, from_fhir, fhir_version,
          dry_run) -> None:
    """Grant GRANTEE access (replaces any earlier scope for that grantee), or grant what a FHIR Consent says."""
    if from_fhir is not None:
        if any(v is not None for v in (purposes, classes, valid_from, days, until, doc_hash)):
            raise click.UsageError("--from-fhir reads purposes, classes, period and commitment from the Consent: "
                                   "drop the other scope options")
        _grant_from_fhir(app, from_fhir, grantee, patient, fhir_version, dry_run)
        return
    if grantee is None or purposes is None or classes is None:
        raise click.UsageError("name GRANTEE, --purposes and --classes (or give --from-fhir FILE)")
    grantee_addr = grantee
    p_mask, c_mask = purposes, classes
    start, end = _validity(valid_from, days, until)
    doc = doc_hash or b"\x00" * 32
    patient_addr = patient or app.signer.address
    result = app.consent.grant(app.signer, patient_addr, grantee_addr, p_mask, c_mask, start, end, doc)
    app.done(f"{grantee_addr} may now {','.join(names(p_mask, Purpose)).lower()} on "
             f"{','.join(names(c_mask, DataClass)).lower()} of {patient_addr}", **tx_fields(result))


def _grant_from_fhir(app: App, file: Path, grantee: str | None, patient: str | None, version: str,
                     dry_run: bool) -> None:
    from ..fhir import consent as fhir_consent
    from ..fhir import parse

    doc = parse(file.read_bytes())
    now = app.chain.w3.eth.get_block("latest")["timestamp"]
    plan = fhir_consent.grant_from_fhir(doc, now=now, version=version,
                                        is_party=lambda addr: fhir_consent.party_problem(app.care.party(addr)))
    patient_addr = patient or app.signer.address
    if plan.patient != patient_addr:
        raise FhirMappingError(f"Consent.{'subject' if plan.fhir_version == 'R5' else 'patient'}: the Consent is "
                               f"for {plan.patient}, not for {patient_addr} (pass --patient for a guardian grant)")
    if grantee is not None and grantee != plan.grantee:
        raise FhirMappingError(f"GRANTEE {grantee} contradicts the Consent's actor {plan.grantee}")
    committed = salted_file(file)
    shown = {**plan.describe(), "doc_hash": "0x" + committed.commitment.hex(), "salt_file": str(committed.sidecar)}
    app.emit(shown, title=f"FHIR Consent {file.name} grants")
    if dry_run:
        return
    result = app.consent.grant(app.signer, plan.patient, plan.grantee, plan.purposes, plan.data_classes,
                               plan.valid_from, plan.valid_until, committed.commitment)
    committed.save(chain_id=app.chain.chain_id, tx=result.tx_hash)
    app.done(f"{plan.grantee} may now {shown['purposes']} on {shown['classes']} of {plan.patient} "
             f"(committed to {file.name})", doc_hash=committed.commitment, **tx_fields(result))


@consent.command()
@address_argument("grantee")
@address_option("--patient", help="Patient (default: the signer).")
@click.pass_obj
def revoke(app: App, grantee: str, patient: str | None) -> None:
    """Revoke every consent of GRANTEE, effective in this block."""
    grantee_addr = grantee
    patient_addr = patient or app.signer.address
    result = app.consent.revoke(app.signer, patient_addr, grantee_addr)
    app.done(f"revoked {grantee_addr} for {patient_addr}", **tx_fields(result))


@consent.command()
@address_argument("patient", required=False)
@click.pass_obj
def list(app: App, patient: str | None) -> None:  # noqa: A001 - the command is called `list`
    """List PATIENT's grantees with their current scope (rebuilt from events)."""
    from ..audit import consent_grantees
    patient_addr = patient or app.signer.address
    now = app.chain.w3.eth.get_block("latest")["timestamp"]
    rows = []
    for grantee in consent_grantees(app.chain, app.consent, patient_addr):
        c = app.consent.consent(patient_addr, grantee)
        rows.append({"grantee": grantee, "purposes": ",".join(names(c.purposes, Purpose)).lower(),
                     "classes": ",".join(names(c.data_classes, DataClass)).lower(),
                     "valid_from": app.date(c.valid_from, "always"), "valid_until": app.date(c.valid_until, "never")
                     if c.valid_until or not app.as_json else "never",
                     "live": c.live(now)})
    app.emit(rows, title=f"Consents of {patient_addr}",
             columns=["grantee", "purposes", "classes", "valid_from", "valid_until", "live"])


@consent.command()
@address_argument("grantee")
@address_option("--patient", help="Patient (default: the signer... or give it when reading without an account).")
@click.option("--fhir", "as_fhir", is_flag=True, help="Write the consent as a FHIR Consent resource.")
@click.option("--fhir-version", type=click.Choice(["R5", "R4", "R4B"], case_sensitive=False), default="R5",
              show_default=True, help="FHIR version of the written Consent.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default stdout).")
@click.pass_obj
def show(app: App, grantee: str, patient: str | None, as_fhir: bool, fhir_version: str, out: Path | None) -> None:
    """Show the current consent of GRANTEE for a patient (as a FHIR Consent with --fhir)."""
    from eth_utils import to_checksum_address

    from ..audit import fetch_events
    from ..fhir.consent import consent_to_fhir

    grantee_addr = grantee
    patient_addr = patient or app.signer.address
    c = app.consent.consent(patient_addr, grantee_addr)
    if c.purposes == 0:
        raise ConsentMissing(f"{patient_addr} has no consent for {grantee_addr}")
    now = app.chain.w3.eth.get_block("latest")["timestamp"]
    doc_hash = None
    for ev in fetch_events(app.chain, {"ConsentRegistry": app.consent.address}, from_block=0):
        if (ev.event == "ConsentGranted" and to_checksum_address(ev.args["patient"]) == patient_addr
                and to_checksum_address(ev.args["grantee"]) == grantee_addr):
            doc_hash = bytes(ev.args["consentDocHash"])
    if not as_fhir:
        app.emit({"patient": patient_addr, "grantee": grantee_addr,
                  "purposes": ",".join(names(c.purposes, Purpose)).lower(),
                  "classes": ",".join(names(c.data_classes, DataClass)).lower(),
                  "valid_from": c.valid_from, "valid_until": c.valid_until or "never", "live": c.live(now),
                  "doc_hash": doc_hash}, title="Consent")
        return
    resource = consent_to_fhir(patient=patient_addr, grantee=grantee_addr, purposes=c.purposes,
                               data_classes=c.data_classes, valid_from=c.valid_from, valid_until=c.valid_until,
                               granted_at=c.granted_at, live=c.live(now), doc_hash=doc_hash,
                               version=fhir_version.upper())
    text = json.dumps(resource, indent=2)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n")
        app.done(f"FHIR {fhir_version.upper()} Consent written to {out}", file=out)


@consent.command()
@address_argument("patient")
@address_argument("grantee")
@click.argument("purpose", type=ScopeName(Purpose))
@click.argument("data_class", type=ScopeName(DataClass))
@click.pass_obj
def check(app: App, patient: str, grantee: str, purpose: Purpose, data_class: DataClass) -> None:
    """Does GRANTEE hold PURPOSE consent on DATA_CLASS of PATIENT right now? Exit 0 yes, 3 no."""
    p, g = patient, grantee
    allowed = app.consent.has_consent(p, g, purpose, data_class)
    app.emit({"patient": p, "grantee": g, "purpose": purpose.name, "data_class": data_class.name,
              "allowed": allowed}, title="Consent check")
    if not allowed:
        raise click.exceptions.Exit(3)


@consent.command()
@address_argument("grantee")
@_scope_options(required=False)
@click.option("--revoke", "is_revoke", is_flag=True, help="Sign a revocation instead of a grant.")
@click.option("--deadline-minutes", type=click.IntRange(1, MAX_SIGNATURE_LIFETIME // 60), default=60,
              show_default=True, help="Relayable for this long (at most 7 days, the contract's limit).")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write the signed consent to.")
@click.pass_obj
def sign(app: App, grantee, purposes, classes, valid_from, days, until, doc_hash, patient, is_revoke,
         deadline_minutes, out: Path) -> None:
    """Sign an EIP-712 consent off-chain (no gas) and write it to --out for anyone to relay.

    Any later grant, revoke or `consent cancel` for the same patient and grantee voids it."""
    grantee_addr = grantee
    patient_addr = patient or app.signer.address
    deadline = int(time.time()) + 60 * deadline_minutes
    if is_revoke:
        signed = app.consent.sign_revoke(app.signer, patient_addr, grantee_addr, deadline)
    else:
        if not purposes or not classes:
            raise click.UsageError("a signed grant needs --purposes and --classes")
        start, end = _validity(valid_from, days, until)
        doc = doc_hash or b"\x00" * 32
        signed = app.consent.sign_grant(app.signer, patient_addr, grantee_addr, purposes, classes, start, end, doc,
                                        deadline)
    if out.exists():
        raise click.BadParameter(f"{out} exists already", param_hint="--out")
    out.write_text(json.dumps(signed.to_json(), indent=2))
    app.done(f"signed {signed.kind} for {grantee_addr} written to {out}", file=out)


@consent.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def relay(app: App, file: Path) -> None:
    """Submit a signed consent FILE (the relayer, e.g. a provider, pays the gas)."""
    signed = SignedConsent.load(file)
    result = app.consent.relay(app.signer, signed)
    app.done(f"relayed signed {signed.kind} of {signed.message['signer']}", **tx_fields(result))


@consent.command()
@address_argument("grantee")
@address_option("--patient", help="Patient (default: the signer).")
@click.pass_obj
def cancel(app: App, grantee: str, patient: str | None) -> None:
    """Void every signed, not yet relayed grant or revoke for GRANTEE (the consent itself is unchanged)."""
    grantee_addr = grantee
    patient_addr = patient or app.signer.address
    result = app.consent.cancel_signatures(app.signer, patient_addr, grantee_addr)
    app.done(f"pending signatures for {grantee_addr} on {patient_addr} cancelled", **tx_fields(result))


@consent.group()
def guardian() -> None:
    """Appoint or remove a guardian (who may grant and revoke on the patient's behalf)."""


@guardian.command("add")
@address_argument("guardian_account", metavar="GUARDIAN")
@click.pass_obj
def guardian_add(app: App, guardian_account: str) -> None:
    """The signer (a patient) appoints GUARDIAN."""
    addr = guardian_account
    result = app.consent.appoint_guardian(app.signer, addr)
    app.done(f"{addr} is now a guardian of {app.signer.address}", **tx_fields(result))


@guardian.command("remove")
@address_argument("guardian_account", metavar="GUARDIAN")
@click.pass_obj
def guardian_remove(app: App, guardian_account: str) -> None:
    """The signer (a patient) removes GUARDIAN."""
    addr = guardian_account
    result = app.consent.remove_guardian(app.signer, addr)
    app.done(f"{addr} is no longer a guardian of {app.signer.address}", **tx_fields(result))


@click.group()
def emergency() -> None:
    """Break-glass: bounded, always-visible emergency reading (ETREAT only, at most 3 windows per 30 days)."""


@emergency.command("open")
@address_argument("patient")
@click.option("--hours", type=float, default=4.0, show_default=True, help="How long (bounded by the admin's max).")
@click.option("--reason", required=True, help="Reason code, e.g. UNCONSCIOUS (hashed to bytes32) or 0x... bytes32.")
@click.pass_obj
def emergency_open(app: App, patient: str, hours: float, reason: str) -> None:
    """The signer (an active provider) opens emergency access to PATIENT."""
    from eth_utils import keccak
    p = patient
    code = parse_bytes32(reason, "--reason") if reason.startswith("0x") else keccak(text=reason.upper())
    if hours <= 0:
        raise click.BadParameter("must be positive", param_hint="--hours")
    result = app.consent.open_break_glass(app.signer, p, int(hours * 3600), code)
    app.done(f"emergency access to {p} open for {hours:g} h", **tx_fields(result))


@emergency.command("close")
@address_argument("patient")
@address_argument("provider")
@click.pass_obj
def emergency_close(app: App, patient: str, provider: str) -> None:
    """The patient or a guardian closes PROVIDER's emergency access early; PROVIDER cannot reopen it
    until `emergency allow`."""
    p, prov = patient, provider
    result = app.consent.close_break_glass(app.signer, p, prov)
    app.done(f"emergency access of {prov} to {p} closed; it cannot reopen until `emergency allow`",
             **tx_fields(result))


@emergency.command("allow")
@address_argument("patient")
@address_argument("provider")
@click.pass_obj
def emergency_allow(app: App, patient: str, provider: str) -> None:
    """The patient or a guardian lets PROVIDER open emergency access again after a close."""
    p, prov = patient, provider
    result = app.consent.allow_break_glass(app.signer, p, prov)
    app.done(f"{prov} may open emergency access to {p} again", **tx_fields(result))
