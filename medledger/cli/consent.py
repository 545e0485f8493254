"""`medledger consent ...` and `medledger emergency ...`: the patient decides."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import click

from ..commitments import salted_file
from ..contracts import SignedConsent
from ..eip712 import MAX_SIGNATURE_LIFETIME
from ..errors import ConsentMissing, FhirMappingError
from ..labels import LabelKeyStore, label_keys_dir, seal_for_grantee
from ..records import publish_key_hint
from ..scopes import DataClass, Purpose, names
from .app import App, tx_fields
from .options import SCOPE_HELP, ScopeMask, ScopeName, address_argument, address_option, bytes32_option
from .paramtypes import ADDRESS, TIMESTAMP, parse_bytes32
from .signed import sign_options, sign_to_file


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
    signer, patient_addr = app.acting_patient(patient, grantee_addr)
    app.refuse_pseudonym_transaction(signer, f"sign the consent with `consent sign {grantee_addr} ...` and have "
                                             "the grantee (or any relayer) run `consent relay`")
    result = app.consent.grant(signer, patient_addr, grantee_addr, p_mask, c_mask, start, end, doc)
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
    signer, patient_addr = app.acting_patient(patient, grantee_addr)
    app.refuse_pseudonym_transaction(signer, f"sign the revocation with `consent sign {grantee_addr} --revoke` "
                                             "and have any relayer run `consent relay`")
    result = app.consent.revoke(signer, patient_addr, grantee_addr)
    app.done(f"revoked {grantee_addr} for {patient_addr}", **tx_fields(result))


@consent.command()
@address_argument("patient", required=False)
@click.pass_obj
def list(app: App, patient: str | None) -> None:  # noqa: A001 - the command is called `list`
    """List PATIENT's grantees with their current scope (rebuilt from events)."""
    from ..audit import consent_grantees
    from .patient import pseudonyms_in_use
    patients = [patient] if patient else pseudonyms_in_use(app) if app.pairwise else [app.signer.address]
    patient_addr = patient or ("your pseudonyms" if app.pairwise else app.signer.address)
    now = app.chain.w3.eth.get_block("latest")["timestamp"]
    rows = []
    for who, grantee in ((p, g) for p in patients for g in consent_grantees(app.chain, app.consent, p)):
        c = app.consent.consent(who, grantee)
        rows.append({"patient": who, "grantee": grantee, "purposes": ",".join(names(c.purposes, Purpose)).lower(),
                     "classes": ",".join(names(c.data_classes, DataClass)).lower(),
                     "valid_from": app.date(c.valid_from, "always"), "valid_until": app.date(c.valid_until, "never")
                     if c.valid_until or not app.as_json else "never",
                     "live": c.live(now)})
    app.emit(rows, title=f"Consents of {patient_addr}",
             columns=["patient", "grantee", "purposes", "classes", "valid_from", "valid_until", "live"])


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
@address_option("--billed-to", help="With --pairwise: sign as the pseudonym of this insurer relationship (the one "
                                     "its coverage and claims name), e.g. for a provider that bills it.")
@click.pass_obj
def sign(app: App, grantee, purposes, classes, valid_from, days, until, doc_hash, patient, is_revoke,
         deadline_minutes, out: Path, billed_to: str | None) -> None:
    """Sign an EIP-712 consent off-chain (no gas) and write it to --out for anyone to relay.

    With --pairwise the patient's pseudonym for GRANTEE (or for --billed-to) signs, and the file names that
    pseudonym as the patient. Any later grant, revoke or `consent cancel` for the same patient and grantee
    voids it."""
    grantee_addr = grantee
    if billed_to and (not app.pairwise or patient):
        raise click.UsageError("--billed-to picks a pairwise pseudonym: give it with --pairwise and without --patient")
    signer, patient_addr = app.acting_patient(patient, billed_to or grantee_addr)
    deadline = app.now() + 60 * deadline_minutes
    if is_revoke:
        signed = app.consent.sign_revoke(signer, patient_addr, grantee_addr, deadline)
    else:
        if not purposes or not classes:
            raise click.UsageError("a signed grant needs --purposes and --classes")
        start, end = _validity(valid_from, days, until)
        doc = doc_hash or b"\x00" * 32
        signed = app.consent.sign_grant(signer, patient_addr, grantee_addr, purposes, classes, start, end, doc,
                                        deadline)
    note = ""
    if not is_revoke and signer is not app.signer:  # a pseudonym grants: deliver its label key to the grantee
        grantee_key = app.care.encryption_key(grantee_addr)
        if grantee_key:
            signed = replace(signed, label_key=seal_for_grantee(app.identity.root, signer, grantee_addr, grantee_key))
            note = "; its label key is sealed for the grantee"
        else:
            note = (f"; no label key sealed: {grantee_addr} published no encryption key (it runs "
                    f"{publish_key_hint('GRANTEE')}, then sign again)")
    if out.exists():
        raise click.BadParameter(f"{out} exists already", param_hint="--out")
    out.write_text(json.dumps(signed.to_json(), indent=2))
    app.done(f"signed {signed.kind} for {grantee_addr} on {patient_addr} written to {out}{note}", file=out,
             patient=patient_addr, label_key=signed.label_key is not None)


@consent.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def relay(app: App, file: Path) -> None:
    """Submit a signed FILE: a consent, or a guardian or emergency action signed with --sign (the relayer,
    e.g. a provider, pays the gas)."""
    signed = SignedConsent.load(file)
    result = app.consent.relay(app.signer, signed)
    filed = ""
    if signed.label_key is not None:  # sealed to the grantee: it opens it from the vault when it needs it
        LabelKeyStore(label_keys_dir(app.settings.vault_dir)).put(signed.label_key)
        filed = f"; label key filed for {signed.label_key.recipient}"
    app.done(f"relayed signed {signed.kind} of {signed.signer}{filed}", **tx_fields(result))


@consent.command()
@address_argument("grantee")
@address_option("--patient", help="Patient (default: the signer).")
@click.pass_obj
def cancel(app: App, grantee: str, patient: str | None) -> None:
    """Void every signed, not yet relayed action for GRANTEE: grants and revokes, and guardian or emergency
    actions naming GRANTEE as the guardian or provider (the consent itself is unchanged)."""
    grantee_addr = grantee
    signer, patient_addr = app.acting_patient(patient, grantee_addr)
    app.refuse_pseudonym_transaction(signer, "a signed request lapses at its deadline (at most 7 days); sign a "
                                             "newer grant or revoke to supersede it")
    result = app.consent.cancel_signatures(signer, patient_addr, grantee_addr)
    app.done(f"pending signatures for {grantee_addr} on {patient_addr} cancelled", **tx_fields(result))


@consent.group()
def guardian() -> None:
    """Appoint or remove a guardian (who may grant and revoke on the patient's behalf)."""


RELAY_HINT = "add --sign -o FILE and have anyone run `consent relay FILE`"
PSEUDONYM_OPTION = address_option("--patient", help="With --pairwise: which of your pseudonyms acts (each "
                                                   "relationship has its own guardians).")


@guardian.command("add")
@address_argument("guardian_account", metavar="GUARDIAN")
@PSEUDONYM_OPTION
@sign_options
@click.pass_obj
def guardian_add(app: App, guardian_account: str, patient: str | None, sign: bool, out: Path | None,
                 deadline_minutes: int) -> None:
    """The signer (a patient) appoints GUARDIAN (or, with --sign, signs that for anyone to relay)."""
    _guardian_change(app, "add", guardian_account, patient, sign, out, deadline_minutes)


@guardian.command("remove")
@address_argument("guardian_account", metavar="GUARDIAN")
@PSEUDONYM_OPTION
@sign_options
@click.pass_obj
def guardian_remove(app: App, guardian_account: str, patient: str | None, sign: bool, out: Path | None,
                    deadline_minutes: int) -> None:
    """The signer (a patient) removes GUARDIAN (or, with --sign, signs that for anyone to relay)."""
    _guardian_change(app, "remove", guardian_account, patient, sign, out, deadline_minutes)


def _guardian_change(app: App, kind: str, guardian_account: str, patient: str | None, sign: bool,
                     out: Path | None, deadline_minutes: int) -> None:
    signer = _patient_signer(app, patient, sign, f"guardian {kind}")
    sign_fn, send_fn, done = {
        "add": (app.consent.sign_appoint_guardian, app.consent.appoint_guardian, "is now a guardian of"),
        "remove": (app.consent.sign_remove_guardian, app.consent.remove_guardian, "is no longer a guardian of"),
    }[kind]
    if sign_to_file(app, sign, out, deadline_minutes, lambda deadline: sign_fn(signer, guardian_account, deadline)):
        return
    result = send_fn(signer, guardian_account)
    app.done(f"{guardian_account} {done} {signer.address}", **tx_fields(result))


def _patient_signer(app: App, patient: str | None, sign: bool, command: str):
    """The key a patient's own action is signed with: under --pairwise the pseudonym --patient names (which
    then only signs, never sends), else the signer (and --patient is refused)."""
    if not app.pairwise:
        if patient is not None:
            raise click.UsageError("--patient picks one of your pseudonyms: give it with --pairwise")
        return app.signer
    if patient is None:
        raise click.UsageError(f"with --pairwise name the pseudonym that acts: `{command} ... --patient PSEUDONYM` "
                               "(see `medledger patient pseudonyms`)")
    signer, _ = app.acting_patient(patient)
    if signer is app.signer:
        raise click.UsageError(f"{patient} is not one of your pseudonyms (see `medledger patient pseudonyms`)")
    if not sign:
        app.refuse_pseudonym_transaction(signer, RELAY_HINT)
    return signer


@click.group()
def emergency() -> None:
    """Break-glass: bounded, always-visible emergency reading (ETREAT only, at most 3 windows per 30 days)."""


@emergency.command("open")
@address_argument("patient")
@click.option("--hours", type=float, default=4.0, show_default=True, help="How long (bounded by the admin's max).")
@click.option("--reason", required=True,
              help="Why, e.g. UNCONSCIOUS: committed on chain with fresh salt (the opening is written to "
                   "--opening), or a 0x... bytes32 you committed yourself.")
@click.option("--opening", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the reason's opening (salt and text) for the patient; default "
                   "VAULT/openings/break-glass-PATIENT-TIME.json.")
@click.pass_obj
def emergency_open(app: App, patient: str, hours: float, reason: str, opening: Path | None) -> None:
    """The signer (an active provider) opens emergency access to PATIENT.

    The reason goes on chain as keccak256(salt ‖ canonical {"patient", "provider", "reason"}): an observer
    cannot test a guess such as UNCONSCIOUS against it; the provider hands the opening to the patient."""
    from .. import commitments
    from ..cli.record.common import write_private
    p = patient
    if hours <= 0:
        raise click.BadParameter("must be positive", param_hint="--hours")
    if reason.startswith("0x"):
        code, opened = parse_bytes32(reason, "--reason"), None
    else:
        opened = commitments.commit({"patient": p, "provider": app.signer.address, "reason": reason.upper()})
        code = opened.commitment
        opening = opening or app.settings.vault_dir / "openings" / f"break-glass-{p}-{int(time.time())}.json"
        if opening.exists():
            raise click.BadParameter(f"{opening} exists already", param_hint="--opening")
    if opened is not None and opening is not None:  # kept before sending: a sent reason is never unopenable
        opening.parent.mkdir(parents=True, exist_ok=True)
        write_private(opening, json.dumps({**opened.to_json(), "commitment": "0x" + code.hex()}, indent=2).encode())
    try:
        result = app.consent.open_break_glass(app.signer, p, int(hours * 3600), code)
    except BaseException:
        if opened is not None and opening is not None:
            opening.unlink(missing_ok=True)
        raise
    app.done(f"emergency access to {p} open for {hours:g} h" +
             (f"; the reason's opening is in {opening}" if opened is not None else ""),
             reason_commitment=code, opening=opening if opened is not None else None, **tx_fields(result))


@emergency.command("close")
@address_argument("patient")
@address_argument("provider")
@sign_options
@click.pass_obj
def emergency_close(app: App, patient: str, provider: str, sign: bool, out: Path | None,
                    deadline_minutes: int) -> None:
    """The patient or a guardian closes PROVIDER's emergency access early; PROVIDER cannot reopen it
    until `emergency allow`. With --sign, signs the close for anyone to relay."""
    _break_glass_decision(app, "close", patient, provider, sign, out, deadline_minutes)


@emergency.command("allow")
@address_argument("patient")
@address_argument("provider")
@sign_options
@click.pass_obj
def emergency_allow(app: App, patient: str, provider: str, sign: bool, out: Path | None,
                    deadline_minutes: int) -> None:
    """The patient or a guardian lets PROVIDER open emergency access again after a close. With --sign,
    signs the allowance for anyone to relay."""
    _break_glass_decision(app, "allow", patient, provider, sign, out, deadline_minutes)


def _break_glass_decision(app: App, kind: str, patient: str, provider: str, sign: bool, out: Path | None,
                          deadline_minutes: int) -> None:
    """`emergency close|allow`: sent by the patient or a guardian, or signed (--sign) for anyone to relay;
    under --pairwise a pseudonym PATIENT of the signer's signs and never sends."""
    signer, p = app.acting_patient(patient)
    if not sign:
        app.refuse_pseudonym_transaction(signer, RELAY_HINT)
    sign_fn, send_fn, done = {
        "close": (app.consent.sign_close_break_glass, app.consent.close_break_glass,
                  f"emergency access of {provider} to {p} closed; it cannot reopen until `emergency allow`"),
        "allow": (app.consent.sign_allow_break_glass, app.consent.allow_break_glass,
                  f"{provider} may open emergency access to {p} again"),
    }[kind]
    if sign_to_file(app, sign, out, deadline_minutes, lambda deadline: sign_fn(signer, p, provider, deadline)):
        return
    result = send_fn(signer, p, provider)
    app.done(done, **tx_fields(result))
