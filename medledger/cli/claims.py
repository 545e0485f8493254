"""`medledger escrow | coverage | claim ...`: insurer funds, coverage, claims, rules, disputes, payouts.

Amounts on the command line are in token units (e.g. `125.50` USD) and are converted with the
token's decimals; on chain they are integers in the token's smallest unit.
"""
from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click
from eth_utils import keccak

from ..contracts import FREQ_ORIGINAL, FREQ_REPLACEMENT, FREQ_VOID, ClaimRequest, InsurerTerms
from ..errors import InsufficientEscrow, MedLedgerError
from ..scopes import DataClass, mask, names
from . import cli
from .app import App, parse_bytes32, resolve_address, tx_fields

DAY = 86400


class AmountInvalid(MedLedgerError):
    """An amount that is not a positive number with at most the token's decimals."""


def to_units(app: App, text: str, what: str = "amount", allow_zero: bool = False) -> int:
    decimals = app.escrow.token.decimals()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise AmountInvalid(f"{what} '{text}' is not a number") from None
    units = value * (Decimal(10) ** decimals)
    if units != units.to_integral_value() or value < 0 or (value == 0 and not allow_zero):
        raise AmountInvalid(f"{what} '{text}' must be {'non-negative' if allow_zero else 'positive'} "
                            f"with at most {decimals} decimals")
    if units >= 2**96:
        raise AmountInvalid(f"{what} '{text}' is too large")
    return int(units)


def from_units(app: App, units: int) -> str:
    decimals = app.escrow.token.decimals()
    return f"{Decimal(units) / (Decimal(10) ** decimals):.{decimals}f}"


def _commitment(file: Path | None, value: str | None, what: str, required: bool = True) -> bytes:
    """keccak256 of a document (hashed locally, never sent) or an explicit bytes32."""
    if file is not None:
        return keccak(file.read_bytes())
    if value:
        return parse_bytes32(value, what)
    if required:
        raise click.UsageError(f"give {what} HASH or the document file to commit to")
    return b"\x00" * 32


def _control(value: str) -> bytes:
    return parse_bytes32(value, "CONTROL") if value.startswith("0x") else keccak(text=value)


# ============================================================================ escrow

@cli.group()
def escrow() -> None:
    """Insurer funds in the claim escrow."""


@escrow.command()
@click.argument("amount")
@click.pass_obj
def deposit(app: App, amount: str) -> None:
    """The signer (an insurer) deposits AMOUNT (permit where the token supports it, else approve+deposit)."""
    units = to_units(app, amount)
    held = app.escrow.token.balance_of(app.signer.address)
    if held < units:
        raise InsufficientEscrow(f"{app.signer.address} holds {from_units(app, held)} tokens, "
                                 f"cannot deposit {from_units(app, units)}")
    result = app.escrow.deposit(app.signer, units)
    app.done(f"deposited {from_units(app, units)}", amount=units, **tx_fields(result))


@escrow.command()
@click.argument("amount")
@click.pass_obj
def withdraw(app: App, amount: str) -> None:
    """The signer (an insurer) withdraws AMOUNT of its free (unencumbered) balance."""
    units = to_units(app, amount)
    result = app.escrow.withdraw_free(app.signer, units)
    app.done(f"withdrew {from_units(app, units)}", amount=units, **tx_fields(result))


@escrow.command()
@click.argument("account", required=False)
@click.pass_obj
def balance(app: App, account: str | None) -> None:
    """Escrow balances of ACCOUNT (default: the signer): insurer free/encumbered, provider owed."""
    address = resolve_address(app, account, "ACCOUNT") if account else app.signer.address
    b = app.escrow.balances(address)
    if app.as_json:
        app.emit({k: getattr(b, k) for k in b.__dataclass_fields__})
        return
    app.emit({"account": b.account, "free": from_units(app, b.free), "encumbered": from_units(app, b.encumbered),
              "owed": from_units(app, b.owed), "paid_out": from_units(app, b.paid_out),
              "push_payments": b.push_payments, "wallet": from_units(app, b.wallet)}, title="Escrow balances")


# ============================================================================ coverage

@cli.group()
def coverage() -> None:
    """Enrol patients under a policy."""


@coverage.command()
@click.argument("patient")
@click.option("--policy-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Policy / FHIR Coverage document (hashed locally).")
@click.option("--policy-hash", help="bytes32 commitment to the policy.")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=365, show_default=True)
@click.option("--per-claim-limit", default="0", help="Most approved on one claim (0: none).")
@click.option("--per-period-limit", default="0", help="Most approved per benefit period (0: none).")
@click.option("--period-days", type=click.FloatRange(min=0), default=0, help="Benefit period length in days.")
@click.pass_obj
def enroll(app: App, patient, policy_file, policy_hash, days, per_claim_limit, per_period_limit, period_days) -> None:
    """The signer (an insurer) enrols PATIENT (from now, for --days)."""
    p = resolve_address(app, patient, "PATIENT")
    policy = _commitment(policy_file, policy_hash, "--policy-hash")
    start = int(app.chain.w3.eth.get_block("latest")["timestamp"])
    result = app.escrow.set_coverage(app.signer, p, policy, start, start + int(days * DAY),
                                     to_units(app, per_claim_limit, "--per-claim-limit", allow_zero=True),
                                     to_units(app, per_period_limit, "--per-period-limit", allow_zero=True),
                                     int(period_days * DAY))
    app.done(f"enrolled {p} for {days:g} days", patient=p, **tx_fields(result))


@coverage.command()
@click.argument("patient")
@click.option("--insurer", help="Insurer (default: the signer).")
@click.pass_obj
def show(app: App, patient: str, insurer: str | None) -> None:
    """PATIENT's coverage with an insurer."""
    ins = resolve_address(app, insurer, "--insurer") if insurer else app.signer.address
    e = app.escrow.enrolment(ins, resolve_address(app, patient, "PATIENT"))
    app.emit({k: getattr(e, k) for k in e.__dataclass_fields__}, title="Coverage")


# ============================================================================ claims

@cli.group()
def claim() -> None:
    """Submit, adjudicate, dispute and get paid for claims."""


def _records(app: App, refs: tuple[str, ...]) -> tuple[tuple[bytes, bytes], ...]:
    """RECORD_ID or RECORD_ID:CONTENT_HASH; a bare id resolves to its latest version via the vault/chain."""
    from ..records import locate
    out = []
    for ref in refs:
        rid_text, _, hash_text = ref.partition(":")
        rid = parse_bytes32(rid_text, "--record")
        if hash_text:
            out.append((rid, parse_bytes32(hash_text, "--record content hash")))
        else:
            located = locate(app.records, app.settings.vault_dir, app.chain.chain_id, rid)
            out.append((rid, bytes.fromhex(located.cid.removeprefix("0x"))))
    return tuple(out)


@claim.command()
@click.option("--patient", help="Patient (default: Claim.patient of --claim-file).")
@click.option("--insurer", help="Insurer (default: Claim.insurer of --claim-file).")
@click.option("--amount", help="Billed amount (token units; with --claim-file it must equal the Claim's total).")
@click.option("--record", "records", multiple=True, required=True,
              help="Anchored record justifying the claim: RECORD_ID[:CONTENT_HASH] (repeatable).")
@click.option("--service", type=click.IntRange(0, 65535),
              help="Service category code (default: mapped from the Claim's principal CPT/HCPCS code).")
@click.option("--claim-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The FHIR Claim (R4/R4B/R5): the source of patient, insurer, amount and service; canonicalised "
                   "and hashed locally, never sent.")
@click.option("--claim-hash", help="bytes32 commitment to the canonical FHIR Claim (without --claim-file).")
@click.option("--fhir-version", type=click.Choice(["auto", "R4", "R4B", "R5"], case_sensitive=False), default="auto",
              show_default=True, help="FHIR version of --claim-file (auto: detected, see docs/FHIR.md).")
@click.option("--control", help="Claim control number (opaque; default: a new random one).")
@click.option("--replace", "is_replacement", is_flag=True, help="Replace the open claim --control (X12 frequency 7).")
@click.pass_obj
def submit(app: App, patient, insurer, amount, records, service, claim_file, claim_hash, fhir_version, control,
           is_replacement) -> None:
    """The signer (a provider) submits a claim (or, with --replace, a replacement)."""
    if is_replacement and not control:
        raise click.UsageError("--replace needs the --control of the claim it replaces")
    patient_addr = resolve_address(app, patient, "--patient") if patient else None
    insurer_addr = resolve_address(app, insurer, "--insurer") if insurer else None
    if claim_file is not None:
        if claim_hash:
            raise click.UsageError("give --claim-file or --claim-hash, not both")
        from .. import fhir
        from ..fhir.claim import read_claim, reconcile

        doc = fhir.parse(claim_file.read_bytes())
        facts = read_claim(doc, fhir_version)
        billed = Decimal(amount) if amount is not None and to_units(app, amount) else None
        agreed = reconcile(facts, signer=app.signer.address, patient=patient_addr, insurer=insurer_addr,
                           amount=billed, service=service)
        patient_addr, insurer_addr, service = agreed.patient, agreed.insurer, agreed.service_code
        units = to_units(app, str(agreed.amount), "Claim.total")
        claim_commitment = fhir.keccak256(fhir.canonicalize(doc))
    else:
        missing = [n for n, v in (("--patient", patient_addr), ("--insurer", insurer_addr), ("--amount", amount),
                                  ("--service", service)) if v is None]
        if missing:
            raise click.UsageError(f"give {', '.join(missing)} (or a --claim-file to read them from)")
        units = to_units(app, amount)
        claim_commitment = _commitment(None, claim_hash, "--claim-hash")
    control_number = _control(control) if control else os.urandom(32)
    request = ClaimRequest(control_number, patient_addr, insurer_addr, units, service,  # type: ignore[arg-type]
                           claim_commitment, _records(app, records),
                           FREQ_REPLACEMENT if is_replacement else FREQ_ORIGINAL)
    result = app.escrow.submit(app.signer, request)
    state = app.escrow.claim(app.signer.address, control_number)
    app.done(f"claim {state.claim_id} is {state.status} (control {'0x' + control_number.hex()})",
             claim_id=state.claim_id, control="0x" + control_number.hex(), status=state.status,
             billed=from_units(app, units), service=service, **tx_fields(result))


@claim.command("void")
@click.argument("control")
@click.option("--patient", required=True)
@click.option("--insurer", required=True)
@click.option("--claim-hash", default="0x" + "11" * 32, help="bytes32 commitment to the void claim document.")
@click.pass_obj
def void(app: App, control: str, patient: str, insurer: str, claim_hash: str) -> None:
    """The signer (a provider) voids its open claim CONTROL (X12 frequency 8)."""
    request = ClaimRequest(_control(control), resolve_address(app, patient, "--patient"),
                           resolve_address(app, insurer, "--insurer"), 0, 0, parse_bytes32(claim_hash, "--claim-hash"),
                           (), FREQ_VOID)
    result = app.escrow.submit(app.signer, request)
    app.done(f"claim {control} voided", **tx_fields(result))


def _claim_args(fn):
    fn = click.argument("control")(fn)
    return click.argument("provider")(fn)


@claim.command()
@_claim_args
@click.option("--amount", help="Approved amount (default: the full billed amount).")
@click.option("--deductible", default="0")
@click.option("--coinsurance", default="0")
@click.option("--copay", default="0")
@click.option("--reason", "reasons", type=click.IntRange(1, 65535), multiple=True,
              help="CARC code for what is not paid (needed for a partial approval).")
@click.pass_obj
def approve(app: App, provider, control, amount, deductible, coinsurance, copay, reasons) -> None:
    """The signer (the claim's insurer) approves PROVIDER's claim CONTROL in full or in part."""
    prov = resolve_address(app, provider, "PROVIDER")
    cn = _control(control)
    state = app.escrow.claim(prov, cn)
    approved = to_units(app, amount) if amount else state.amount
    share = tuple(to_units(app, v, n, allow_zero=True) for v, n in
                  ((deductible, "--deductible"), (coinsurance, "--coinsurance"), (copay, "--copay")))
    result = app.escrow.adjudicate(app.signer, prov, cn, approved, share, reasons)  # type: ignore[arg-type]
    after = app.escrow.claim(prov, cn)
    app.done(f"approved {from_units(app, approved)} on claim {after.claim_id} ({after.status})",
             approved=approved, status=after.status, **tx_fields(result))


@claim.command()
@_claim_args
@click.option("--reason", "reasons", type=click.IntRange(1, 65535), multiple=True, required=True,
              help="CARC reason code (repeatable), e.g. 96 (non-covered charge).")
@click.pass_obj
def deny(app: App, provider, control, reasons) -> None:
    """The signer (the claim's insurer) denies PROVIDER's claim CONTROL with CARC reason codes."""
    prov, cn = resolve_address(app, provider, "PROVIDER"), _control(control)
    result = app.escrow.adjudicate(app.signer, prov, cn, 0, (0, 0, 0), reasons)
    app.done(f"denied claim {app.escrow.claim_id(prov, cn)} (CARC {', '.join(map(str, reasons))})",
             **tx_fields(result))


@claim.command("dispute")
@click.argument("control")
@click.option("--evidence-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--evidence-hash")
@click.pass_obj
def dispute_cmd(app: App, control, evidence_file, evidence_hash) -> None:
    """The signer (a provider) disputes the contested part of its claim CONTROL."""
    evidence = _commitment(evidence_file, evidence_hash, "--evidence-hash")
    result = app.escrow.dispute(app.signer, _control(control), evidence)
    app.done(f"claim {control} disputed", **tx_fields(result))


@claim.command()
@_claim_args
@click.option("--award", required=True, help="Amount of the contested sum awarded to the provider.")
@click.option("--decision-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--decision-hash")
@click.pass_obj
def resolve(app: App, provider, control, award, decision_file, decision_hash) -> None:
    """The signer (an arbiter) resolves the dispute on PROVIDER's claim CONTROL."""
    prov, cn = resolve_address(app, provider, "PROVIDER"), _control(control)
    decision = _commitment(decision_file, decision_hash, "--decision-hash")
    result = app.escrow.resolve(app.signer, prov, cn, to_units(app, award, "--award", allow_zero=True), decision)
    app.done(f"dispute on claim {app.escrow.claim_id(prov, cn)} resolved", **tx_fields(result))


@claim.command()
@_claim_args
@click.option("--fhir", "as_fhir", is_flag=True, help="Write the decision as a FHIR ClaimResponse.")
@click.option("--fhir-version", type=click.Choice(["R5", "R4", "R4B"], case_sensitive=False), default="R5",
              show_default=True, help="FHIR version of the ClaimResponse.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default stdout).")
@click.pass_obj
def status(app: App, provider, control, as_fhir, fhir_version, out) -> None:
    """Status of PROVIDER's claim CONTROL (as a FHIR ClaimResponse with --fhir)."""
    prov = resolve_address(app, provider, "PROVIDER")
    s = app.escrow.claim(prov, _control(control))
    if s.status == "none":
        raise click.BadParameter(f"no claim {control} from {provider}")
    if as_fhir:
        import json

        from ..audit import fetch_events
        from ..fhir.claim import adjudicated_from_events, claim_response

        events = fetch_events(app.chain, {"ClaimEscrow": app.escrow.address})
        decided = adjudicated_from_events(events, s.claim_id, s.status, lambda u: Decimal(from_units(app, u)),
                                          lambda block: app.chain.w3.eth.get_block(block)["timestamp"])
        text = json.dumps(claim_response(decided, fhir_version.upper()), indent=2)
        if out is None:
            click.echo(text)
        else:
            out.write_text(text + "\n")
            app.done(f"FHIR {fhir_version.upper()} ClaimResponse written to {out}", file=out)
        return
    data = {k: getattr(s, k) for k in s.__dataclass_fields__}
    if not app.as_json:
        data["amount"] = from_units(app, s.amount)
    app.emit(data, title="Claim")


@claim.command("withdraw")
@click.option("--amount", help="Amount to withdraw (default: everything owed).")
@click.pass_obj
def withdraw_payout(app: App, amount: str | None) -> None:
    """The signer (a provider) withdraws what it is owed."""
    units = to_units(app, amount) if amount else None
    owed = app.escrow.balances(app.signer.address).owed
    if owed == 0:
        raise InsufficientEscrow(f"{app.signer.address} is owed nothing")
    result = app.escrow.withdraw(app.signer, units)
    app.done(f"withdrew {from_units(app, units if units is not None else owed)}", **tx_fields(result))


@claim.command("finalize-expired")
@_claim_args
@click.pass_obj
def finalize_expired(app: App, provider, control) -> None:
    """Anyone: approve PROVIDER's claim CONTROL after the insurer's prompt-pay deadline passed."""
    prov, cn = resolve_address(app, provider, "PROVIDER"), _control(control)
    result = app.escrow.finalize_deemed(app.signer, prov, cn)
    app.done(f"claim {app.escrow.claim_id(prov, cn)} deemed approved", **tx_fields(result))


@claim.command("push-payments")
@click.argument("enabled", type=click.Choice(["on", "off"]))
@click.pass_obj
def push_payments(app: App, enabled: str) -> None:
    """The signer (a provider) opts in or out of being paid in the approving transaction."""
    result = app.escrow.set_push_payments(app.signer, enabled == "on")
    app.done(f"push payments {enabled}", **tx_fields(result))


@claim.group()
def rules() -> None:
    """The insurer's deadlines and auto-approval rule."""


@rules.command("set")
@click.option("--prompt-pay-days", type=click.FloatRange(1, 90), default=30, show_default=True)
@click.option("--dispute-days", type=click.FloatRange(7, 180), default=30, show_default=True)
@click.option("--auto-max", default="0", help="Auto-approve claims up to this amount (0: off).")
@click.option("--auto-classes", default="", help="Data classes eligible for auto-approval, e.g. conditions,labs.")
@click.option("--auto-service", default="0-65535", show_default=True, help="Eligible service codes, MIN-MAX.")
@click.option("--auto-require-authored", is_flag=True, help="Cited records must be anchored by the submitter.")
@click.pass_obj
def rules_set(app: App, prompt_pay_days, dispute_days, auto_max, auto_classes, auto_service,
              auto_require_authored) -> None:
    """The signer (an insurer) sets its prompt-pay deadline, dispute window and auto-approval rule."""
    try:
        low, high = (int(x) for x in auto_service.split("-", 1))
    except ValueError:
        raise click.BadParameter("use MIN-MAX, e.g. 100-199", param_hint="--auto-service") from None
    auto_units = to_units(app, auto_max, "--auto-max", allow_zero=True)
    classes = mask(auto_classes, DataClass) if auto_classes else 0
    terms = InsurerTerms(int(prompt_pay_days * DAY), int(dispute_days * DAY), auto_units, classes, low, high,
                         auto_require_authored)
    result = app.escrow.set_terms(app.signer, terms)
    app.done("terms set", **tx_fields(result))


@rules.command("show")
@click.argument("insurer", required=False)
@click.pass_obj
def rules_show(app: App, insurer: str | None) -> None:
    """INSURER's terms (default: the signer)."""
    ins = resolve_address(app, insurer, "INSURER") if insurer else app.signer.address
    t = app.escrow.terms(ins)
    app.emit({"insurer": ins, "prompt_pay_days": t.prompt_pay_window / DAY, "dispute_days": t.dispute_window / DAY,
              "auto_max": t.auto_max_amount if app.as_json else from_units(app, t.auto_max_amount),
              "auto_classes": ",".join(names(t.auto_data_classes, DataClass)).lower(),
              "auto_service": f"{t.auto_service_min}-{t.auto_service_max}",
              "auto_require_authored": t.auto_require_authored}, title="Insurer terms")


