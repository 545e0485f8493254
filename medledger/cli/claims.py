"""`medledger escrow | coverage | claim ...`: insurer funds, coverage, claims, rules, disputes, payouts.

Amounts on the command line are in token units (e.g. `125.50` USD) and are converted with the
token's decimals; on chain they are integers in the token's smallest unit.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click

from ..commitments import random_control_number
from ..contracts import ClaimRequest, InsurerTerms
from ..errors import CommitmentMismatch, ControlNumberError, InsufficientEscrow
from ..scopes import ClaimFrequency, ClaimStatus, DataClass, Role, names
from .app import App, tx_fields
from .options import (
    ScopeMask,
    address_argument,
    address_option,
    amount_argument,
    amount_option,
    bytes32_option,
    claim_arguments,
    commitment,
)
from .paramtypes import CONTROL, RECORD_REF, ControlText

DAY = 86400


def from_units(app: App, units: int) -> str:
    """Base units as a plain decimal in token units (no separators, all decimals), as the CLI always showed."""
    decimals = app.token.decimals
    return f"{Decimal(units) / (Decimal(10) ** decimals):.{decimals}f}"


def control_number(app: App, control: bytes | ControlText, *, provider: str, insurer: str | None = None) -> bytes:
    """The bytes32 of a claim's control number. A 0x value is used as is. Text ("RIV-0001") is keyed:
    ``HMAC-SHA256(control_key(own key, counterparty's published key), text)``, which only the claim's
    provider and insurer can compute (docs/CLI.md, docs/PRIVACY.md item 3). ``insurer`` None: a signer that
    is not the provider must be an insurer (then it is the claim's insurer); the provider itself tries the
    insurers of its claims (ClaimSubmitted events) and takes the one that has a claim under this text."""
    if isinstance(control, bytes):
        return control
    from ..commitments import control_key, keyed_control_number

    text = control.text
    hint = f"give the claim's 0x control number instead of {text!r} (`claim submit` prints it)"
    if not app.account_spec:
        raise ControlNumberError(f"control number {text!r} is keyed by the claim's provider and insurer: pass "
                                 f"--account of one of them, or {hint}")
    me = app.signer.address
    if me == provider and insurer is None:
        return _find_control(app, control, provider)
    if insurer is None and app.care.party(me).role == Role.INSURER:
        insurer = me
    if me not in (provider, insurer):
        raise ControlNumberError(f"control number {text!r} is keyed by the claim's provider and insurer, and "
                                 f"{me} is neither: {hint}")
    counterparty = insurer if me == provider else provider
    own = getattr(app.signer, "private_key", None)
    if own is None:
        raise ControlNumberError(f"keying control number {text!r} needs the signer's local key (keystore, brownie "
                                 f"or env account): {hint}")
    published = app.care.encryption_key(counterparty)  # type: ignore[arg-type]
    if not published:
        raise ControlNumberError(f"{counterparty} published no encryption key (`medledger registry publish-key`), "
                                 f"so control number {text!r} cannot be keyed: {hint}")
    return keyed_control_number(control_key(bytes(own), published), text)


def _find_control(app: App, control: ControlText, provider: str) -> bytes:
    """The provider's own claim under text ``control`` when it did not name the insurer."""
    from eth_utils import to_checksum_address

    from ..audit import fetch_events

    insurers = sorted({to_checksum_address(e.args["insurer"])
                       for e in fetch_events(app.chain, {"ClaimEscrow": app.escrow.address})
                       if e.event == "ClaimSubmitted" and to_checksum_address(e.args["provider"]) == provider})
    found = set()
    for insurer in insurers:
        if app.care.encryption_key(insurer):
            cn = control_number(app, control, provider=provider, insurer=insurer)
            if app.escrow.claim(provider, cn).status != ClaimStatus.NONE:
                found.add(cn)
    if len(found) != 1:
        raise ControlNumberError(f"{'no' if not found else 'more than one'} claim of {provider} under control "
                                 f"number {control.text!r}: name its insurer with --insurer, or give the 0x control")
    return found.pop()


# ============================================================================ escrow

@click.group()
def escrow() -> None:
    """Insurer funds in the claim escrow."""


@escrow.command()
@amount_argument()
@click.pass_obj
def deposit(app: App, amount: int) -> None:
    """The signer (an insurer) deposits AMOUNT (permit where the token supports it, else approve+deposit)."""
    units = amount
    result = app.escrow.deposit(app.signer, units)
    app.done(f"deposited {from_units(app, units)}", amount=units, **tx_fields(result))


@escrow.command()
@amount_argument()
@click.pass_obj
def withdraw(app: App, amount: int) -> None:
    """The signer (an insurer) withdraws AMOUNT of its free (unencumbered) balance."""
    units = amount
    result = app.escrow.withdraw_free(app.signer, units)
    app.done(f"withdrew {from_units(app, units)}", amount=units, **tx_fields(result))


@escrow.command()
@address_argument("account", required=False)
@click.pass_obj
def balance(app: App, account: str | None) -> None:
    """Escrow balances of ACCOUNT (default: the signer): insurer free/encumbered, provider owed."""
    address = account or app.signer.address
    b = app.escrow.balances(address)
    if app.as_json:
        app.emit({k: getattr(b, k) for k in b.__dataclass_fields__})
        return
    app.emit({"account": b.account, "free": from_units(app, b.free), "encumbered": from_units(app, b.encumbered),
              "owed": from_units(app, b.owed), "paid_out": from_units(app, b.paid_out),
              "push_payments": b.push_payments, "wallet": from_units(app, b.wallet)}, title="Escrow balances")


@escrow.command()
@click.pass_obj
def pause(app: App) -> None:
    """Pause the escrow (pausers only): no new claims or adjudication; money stays withdrawable and the
    escrow clocks stop (see docs/OPERATIONS.md)."""
    result = app.escrow.pause(app.signer)
    app.done("escrow paused", **tx_fields(result))


@escrow.command()
@click.pass_obj
def unpause(app: App) -> None:
    """Resume the escrow (pausers only)."""
    result = app.escrow.unpause(app.signer)
    app.done("escrow resumed", **tx_fields(result))


# ============================================================================ coverage

@click.group()
def coverage() -> None:
    """Enrol patients under a policy."""


@coverage.command()
@address_argument("patient")
@click.option("--policy-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Policy / FHIR Coverage document (committed locally with a salt kept in FILE.salt.json).")
@bytes32_option("--policy-hash", help="bytes32 commitment to the policy.")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=365, show_default=True)
@click.option("--backdate-days", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Start the coverage this many days ago (claims may cite only records anchored while "
                   "the coverage was in force).")
@amount_option("--per-claim-limit", allow_zero=True, default="0", help="Most approved on one claim (0: none).")
@amount_option("--per-period-limit", allow_zero=True, default="0", help="Most approved per benefit period (0: none).")
@click.option("--period-days", type=click.FloatRange(min=0), default=0, help="Benefit period length in days.")
@click.option("--auto-classes", type=ScopeMask(DataClass), help="Data classes a claim may cite and still be approved "
                                                                 "automatically under the insurer's rule, e.g. "
                                                                 "conditions,labs (default: none).")
@click.pass_obj
def enroll(app: App, patient, policy_file, policy_hash, days, backdate_days, per_claim_limit, per_period_limit,
           period_days, auto_classes) -> None:
    """The signer (an insurer) enrols PATIENT (from now, or --backdate-days ago, for --days). The coverage holds
    which data classes auto-approval accepts (--auto-classes); the amount, service and velocity limits are the
    insurer's rule (`claim rules set`)."""
    p = patient
    policy = commitment(policy_file, policy_hash, "--policy-hash")
    now = int(app.chain.w3.eth.get_block("latest")["timestamp"])
    start = max(0, now - int(backdate_days * DAY))
    result = app.escrow.set_coverage(app.signer, p, policy.value, start, now + int(days * DAY), per_claim_limit,
                                     per_period_limit, int(period_days * DAY), auto_classes or 0)
    app.done(f"enrolled {p} for {days:g} days{policy.note()}", patient=p, **policy.saved(app, result),
             **tx_fields(result))


@coverage.command()
@address_argument("patient")
@address_option("--insurer", help="Insurer (default: the signer).")
@click.pass_obj
def show(app: App, patient: str, insurer: str | None) -> None:
    """PATIENT's coverage with an insurer."""
    ins = insurer or app.signer.address
    e = app.escrow.enrolment(ins, patient)
    data = {k: getattr(e, k) for k in e.__dataclass_fields__}
    if not app.as_json:
        data.update(valid_from=app.date(e.valid_from), valid_until=app.date(e.valid_until, "never"),
                    per_claim_limit=app.amount(e.per_claim_limit) if e.per_claim_limit else "none",
                    per_period_limit=app.amount(e.per_period_limit) if e.per_period_limit else "none",
                    period_used=app.amount(e.period_used), period_length=f"{e.period_length / DAY:g} days")
    data["auto_data_classes"] = ",".join(names(e.auto_data_classes, DataClass)).lower()
    app.emit(data, title="Coverage")


# ============================================================================ claims

@click.group()
def claim() -> None:
    """Submit, adjudicate, dispute and get paid for claims."""


def _records(app: App, refs: tuple[tuple[bytes, bytes | None], ...]) -> tuple[tuple[bytes, bytes], ...]:
    """(record id, content hash); a bare id resolves to its latest version via the vault/chain."""
    from ..records import locate
    return tuple((rid, digest if digest is not None else
                  locate(app.records, app.settings.vault_dir, app.chain.chain_id, rid).content_hash)
                 for rid, digest in refs)


@claim.command()
@address_option("--patient", help="Patient (default: Claim.patient of --claim-file).")
@address_option("--insurer", help="Insurer (default: Claim.insurer of --claim-file).")
@amount_option("--amount", help="Billed amount (token units; with --claim-file it must equal the Claim's total).")
@click.option("--record", "records", type=RECORD_REF, multiple=True, required=True,
              help="Anchored record justifying the claim: RECORD_ID[:CONTENT_HASH] (repeatable).")
@click.option("--service", type=click.IntRange(0, 65535),
              help="Service category code (default: mapped from the Claim's principal CPT/HCPCS code).")
@click.option("--claim-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The FHIR Claim (R4/R4B/R5): the source of patient, insurer, amount and service; committed "
                   "locally with a random salt (kept in FILE.salt.json), never sent.")
@bytes32_option("--claim-hash", help="bytes32 commitment to the canonical FHIR Claim (without --claim-file).")
@click.option("--fhir-version", type=click.Choice(["auto", "R4", "R4B", "R5"], case_sensitive=False), default="auto",
              show_default=True, help="FHIR version of --claim-file (auto: detected, see docs/FHIR.md).")
@click.option("--control", type=CONTROL, help="Claim control number: 0x bytes32, or your text (e.g. RIV-0001), keyed "
              "with the insurer so only the two of you can match it (default: a new random one).")
@click.option("--replace", "is_replacement", is_flag=True, help="Replace the open claim --control (X12 frequency 7).")
@click.pass_obj
def submit(app: App, patient, insurer, amount, records, service, claim_file, claim_hash, fhir_version, control,
           is_replacement) -> None:
    """The signer (a provider) submits a claim (or, with --replace, a replacement)."""
    if is_replacement and not control:
        raise click.UsageError("--replace needs the --control of the claim it replaces")
    patient_addr, insurer_addr = patient, insurer
    if claim_file is not None:
        claim_commitment = commitment(claim_file, claim_hash, "--claim-hash")
        from .. import fhir
        from ..fhir.claim import read_claim, reconcile

        doc = fhir.parse(claim_file.read_bytes())
        facts = read_claim(doc, fhir_version)
        billed = Decimal(from_units(app, amount)) if amount is not None else None
        agreed = reconcile(facts, signer=app.signer.address, patient=patient_addr, insurer=insurer_addr,
                           amount=billed, service=service)
        patient_addr, insurer_addr, service = agreed.patient, agreed.insurer, agreed.service_code
        units = app.token.parse(str(agreed.amount), what="Claim.total")
    else:
        missing = [n for n, v in (("--patient", patient_addr), ("--insurer", insurer_addr), ("--amount", amount),
                                  ("--service", service)) if v is None]
        if missing:
            raise click.UsageError(f"give {', '.join(missing)} (or a --claim-file to read them from)")
        units = amount
        claim_commitment = commitment(None, claim_hash, "--claim-hash")
    control_number_ = control_number(app, control, provider=app.signer.address, insurer=insurer_addr) \
        if control else random_control_number()
    request = ClaimRequest(control_number_, patient_addr, insurer_addr, units, service,  # type: ignore[arg-type]
                           claim_commitment.value, _records(app, records),
                           ClaimFrequency.REPLACEMENT if is_replacement else ClaimFrequency.ORIGINAL)
    result = app.escrow.submit(app.signer, request)
    state = app.escrow.claim(app.signer.address, control_number_)
    app.done(f"claim {state.claim_id} is {state.status.label} (control {'0x' + control_number_.hex()})"
             f"{claim_commitment.note()}", claim_id=state.claim_id, control="0x" + control_number_.hex(),
             status=state.status.label, billed=from_units(app, units), service=service,
             **claim_commitment.saved(app, result), **tx_fields(result))


@claim.command("void")
@click.argument("control", type=CONTROL)
@address_option("--patient", required=True)
@address_option("--insurer", required=True)
@bytes32_option("--claim-hash", default="0x" + "11" * 32, help="bytes32 commitment to the void claim document.")
@click.pass_obj
def void(app: App, control: bytes | ControlText, patient: str, insurer: str, claim_hash: bytes) -> None:
    """The signer (a provider) voids its open claim CONTROL (X12 frequency 8)."""
    control = control_number(app, control, provider=app.signer.address, insurer=insurer)
    request = ClaimRequest(control, patient, insurer, 0, 0, claim_hash, (), ClaimFrequency.VOID)
    result = app.escrow.submit(app.signer, request)
    app.done(f"claim {app.escrow.claim_id(app.signer.address, control)} voided", **tx_fields(result))


@claim.command()
@claim_arguments
@amount_option("--amount", help="Approved amount (default: the full billed amount).")
@amount_option("--deductible", allow_zero=True, default="0")
@amount_option("--coinsurance", allow_zero=True, default="0")
@amount_option("--copay", allow_zero=True, default="0")
@click.option("--reason", "reasons", type=click.IntRange(1, 65535), multiple=True,
              help="CARC code for what is not paid (needed for a partial approval).")
@click.pass_obj
def approve(app: App, provider, control, amount, deductible, coinsurance, copay, reasons) -> None:
    """The signer (the claim's insurer) approves PROVIDER's claim CONTROL in full or in part."""
    prov, cn = provider, control_number(app, control, provider=provider)
    state = app.escrow.claim(prov, cn)
    approved = amount if amount is not None else state.amount
    result = app.escrow.adjudicate(app.signer, prov, cn, approved, (deductible, coinsurance, copay), reasons)
    after = app.escrow.claim(prov, cn)
    app.done(f"approved {from_units(app, approved)} on claim {after.claim_id} ({after.status.label})",
             approved=approved, status=after.status.label, **tx_fields(result))


@claim.command()
@claim_arguments
@click.option("--reason", "reasons", type=click.IntRange(1, 65535), multiple=True, required=True,
              help="CARC reason code (repeatable), e.g. 96 (non-covered charge).")
@click.pass_obj
def deny(app: App, provider, control, reasons) -> None:
    """The signer (the claim's insurer) denies PROVIDER's claim CONTROL with CARC reason codes."""
    prov, cn = provider, control_number(app, control, provider=provider)
    result = app.escrow.adjudicate(app.signer, prov, cn, 0, (0, 0, 0), reasons)
    app.done(f"denied claim {app.escrow.claim_id(prov, cn)} (CARC {', '.join(map(str, reasons))})",
             **tx_fields(result))


@claim.command("dispute")
@click.argument("control", type=CONTROL)
@click.option("--evidence-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Evidence document (committed locally with a salt kept in FILE.salt.json).")
@bytes32_option("--evidence-hash")
@address_option("--insurer", help="The claim's insurer, to key a text CONTROL (default: found from your claims).")
@click.pass_obj
def dispute_cmd(app: App, control, evidence_file, evidence_hash, insurer) -> None:
    """The signer (a provider) disputes the contested part of its claim CONTROL."""
    control = control_number(app, control, provider=app.signer.address, insurer=insurer)
    evidence = commitment(evidence_file, evidence_hash, "--evidence-hash")
    result = app.escrow.dispute(app.signer, control, evidence.value)
    app.done(f"claim {app.escrow.claim_id(app.signer.address, control)} disputed{evidence.note()}",
             **evidence.saved(app, result), **tx_fields(result))


@claim.command()
@claim_arguments
@amount_option("--award", allow_zero=True, required=True, help="Amount of the contested sum awarded to the provider.")
@click.option("--decision-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Decision document (committed locally with a salt kept in FILE.salt.json).")
@bytes32_option("--decision-hash")
@click.pass_obj
def resolve(app: App, provider, control, award, decision_file, decision_hash) -> None:
    """The signer (an arbiter) resolves the dispute on PROVIDER's claim CONTROL (its 0x control number: a text
    one is keyed by the provider and insurer only)."""
    prov, cn = provider, control_number(app, control, provider=provider)
    decision = commitment(decision_file, decision_hash, "--decision-hash")
    result = app.escrow.resolve(app.signer, prov, cn, award, decision.value)
    app.done(f"dispute on claim {app.escrow.claim_id(prov, cn)} resolved{decision.note()}",
             **decision.saved(app, result), **tx_fields(result))


@claim.command()
@claim_arguments
@click.option("--fhir", "as_fhir", is_flag=True, help="Write the decision as a FHIR ClaimResponse.")
@click.option("--fhir-version", type=click.Choice(["R5", "R4", "R4B"], case_sensitive=False), default="R5",
              show_default=True, help="FHIR version of the ClaimResponse.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default stdout).")
@click.option("--claim-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check that this Claim and its FILE.salt.json (the package the provider sent) open the claim's "
                   "on-chain commitment; refused if they do not.")
@click.pass_obj
def status(app: App, provider, control, as_fhir, fhir_version, out, claim_file) -> None:
    """Status of PROVIDER's claim CONTROL (as a FHIR ClaimResponse with --fhir)."""
    s = app.escrow.claim(provider, control_number(app, control, provider=provider))
    if s.status == ClaimStatus.NONE:
        raise click.BadParameter(f"no claim {s.claim_id} from {provider}")
    if claim_file is not None:
        _check_claim_file(app, s.claim_id, claim_file)
    if as_fhir:
        import json

        from ..audit import fetch_events
        from ..fhir.claim import adjudicated_from_events, claim_response

        events = fetch_events(app.chain, {"ClaimEscrow": app.escrow.address})
        decided = adjudicated_from_events(events, s.claim_id, s.status.label, lambda u: Decimal(from_units(app, u)),
                                          lambda block: app.chain.w3.eth.get_block(block)["timestamp"])
        text = json.dumps(claim_response(decided, fhir_version.upper()), indent=2)
        if out is None:
            click.echo(text)
        else:
            out.write_text(text + "\n")
            app.done(f"FHIR {fhir_version.upper()} ClaimResponse written to {out}", file=out)
        return
    data = {k: getattr(s, k) for k in s.__dataclass_fields__}
    data["status"] = s.status.label
    if not app.as_json:
        data["amount"] = from_units(app, s.amount)
        data["deadline"] = app.date(s.deadline, "none")
    app.emit(data, title="Claim")


def _check_claim_file(app: App, claim_id: str, claim_file: Path) -> None:
    """Raises CommitmentMismatch unless the file and its sidecar open the claim's latest claimHash."""
    from ..audit import fetch_events
    from ..commitments import open_file, verify

    opened = open_file(claim_file)
    hashes = [bytes(e.args["claimHash"]) for e in fetch_events(app.chain, {"ClaimEscrow": app.escrow.address})
              if e.event == "ClaimSubmitted" and "0x" + bytes(e.args["claimId"]).hex() == claim_id]
    if not hashes:
        raise CommitmentMismatch(f"claim {claim_id} has no ClaimSubmitted event to check {claim_file.name} against")
    try:
        verify(hashes[-1], opened.opening)
    except CommitmentMismatch:
        raise CommitmentMismatch(f"{claim_file.name} with {opened.sidecar.name} does not open claim {claim_id}'s "
                                 f"commitment 0x{hashes[-1].hex()}: not the document that was submitted") from None


@claim.command("withdraw")
@amount_option("--amount", help="Amount to withdraw (default: everything owed).")
@address_option("--to", "recipient", help="Pay everything owed to this address instead of the signer's.")
@click.pass_obj
def withdraw_payout(app: App, amount: int | None, recipient: str | None) -> None:
    """The signer (a provider) withdraws what it is owed."""
    if amount and recipient:
        raise click.UsageError("--to pays everything owed; leave out --amount")
    units = amount
    owed = app.escrow.balances(app.signer.address).owed
    if owed == 0:
        raise InsufficientEscrow(f"{app.signer.address} is owed nothing")
    if recipient:
        result = app.escrow.withdraw_to(app.signer, recipient)
        app.done(f"withdrew {from_units(app, owed)} to {recipient}", **tx_fields(result))
        return
    result = app.escrow.withdraw(app.signer, units)
    app.done(f"withdrew {from_units(app, units if units is not None else owed)}", **tx_fields(result))


@claim.command("finalize-expired")
@claim_arguments
@click.pass_obj
def finalize_expired(app: App, provider, control) -> None:
    """Anyone: approve PROVIDER's claim CONTROL after the insurer's prompt-pay deadline passed."""
    prov, cn = provider, control_number(app, control, provider=provider)
    result = app.escrow.finalize_deemed(app.signer, prov, cn)
    state = app.escrow.claim(prov, cn)
    what = "deemed approved, unfunded: paid from the insurer's next deposits (run this again then)" \
        if state.status is ClaimStatus.DEEMED_UNFUNDED else f"deemed approved ({state.status.label})"
    app.done(f"claim {state.claim_id} {what}", status=state.status.label, **tx_fields(result))


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
@amount_option("--auto-max", allow_zero=True, default="0", help="Auto-approve claims up to this amount (0: off); "
                                                                   "the eligible classes are each coverage's "
                                                                   "(`coverage enroll --auto-classes`).")
@click.option("--auto-service", default="0-65535", show_default=True, help="Eligible service codes, MIN-MAX.")
@click.option("--auto-cap", type=click.IntRange(1, 65535), default=20, show_default=True,
              help="Velocity cap: most automatic approvals per provider and coverage per --auto-period-days.")
@click.option("--auto-period-days", type=click.FloatRange(1 / 24, 49_000), default=30, show_default=True,
              help="Length of the velocity cap's window.")
@click.pass_obj
def rules_set(app: App, prompt_pay_days, dispute_days, auto_max, auto_service, auto_cap, auto_period_days) -> None:
    """The signer (an insurer) sets its prompt-pay deadline, dispute window and auto-approval rule.

    Only claims citing records the submitting provider anchored itself are auto-approved."""
    try:
        low, high = (int(x) for x in auto_service.split("-", 1))
    except ValueError:
        raise click.BadParameter("use MIN-MAX, e.g. 100-199", param_hint="--auto-service") from None
    terms = InsurerTerms(int(prompt_pay_days * DAY), int(dispute_days * DAY), auto_max, low, high, auto_cap,
                         int(auto_period_days * DAY))
    result = app.escrow.set_terms(app.signer, terms)
    app.done("terms set", **tx_fields(result))


@rules.command("show")
@address_argument("insurer", required=False)
@click.pass_obj
def rules_show(app: App, insurer: str | None) -> None:
    """INSURER's terms (default: the signer)."""
    ins = insurer or app.signer.address
    t = app.escrow.terms(ins)
    app.emit({"insurer": ins, "prompt_pay_days": t.prompt_pay_window / DAY, "dispute_days": t.dispute_window / DAY,
              "auto_max": t.auto_max_amount if app.as_json else from_units(app, t.auto_max_amount),
              "auto_service": f"{t.auto_service_min}-{t.auto_service_max}",
              "auto_cap": t.auto_max_per_period, "auto_period_days": t.auto_period / DAY}, title="Insurer terms")


