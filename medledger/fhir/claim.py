"""FHIR Claim in, ClaimResponse out: the Claim is the source of a submission, the chain the source of the answer.

Reading a Claim (`read_claim`) takes:

* patient / provider / insurer: ``Claim.patient`` / ``Claim.provider`` / ``Claim.insurer``, each a Reference
  whose ``identifier`` has the Ethereum-address system (a Reference without one leaves the party to the
  command-line flag);
* the amount: ``Claim.total`` (or the sum of ``item.net`` when there is no total), in USD, the escrow
  token's unit;
* the on-chain service code: the category of the *principal* item (largest ``net``, then lowest
  ``sequence``) under `SERVICE_CATEGORIES`: CPT and HCPCS codes map to a category by range; codes of
  MedLedger's own ``SERVICE_CODE_SYSTEM`` are the on-chain number itself.

`reconcile` then checks the command-line flags against it: a flag that contradicts the Claim is refused
with both values, and the amount must equal the Claim's total exactly.

`claim_response` writes what the escrow decided as a FHIR ClaimResponse (R5 or R4): outcome, the
adjudication amounts (submitted, benefit, deductible, copay, coinsurance, contested) and the reasons as
X12 Claim Adjustment Reason Codes (CARC).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from eth_utils import to_checksum_address

from medledger.errors import FhirMappingError
from medledger.fhir.versions import resolve

from .addresses import address_of, reference_to
from .systems import CPT_SYSTEM, ETHEREUM_ADDRESS_SYSTEM

HCPCS_SYSTEM: Final = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
SERVICE_CODE_SYSTEM: Final = "https://medledger.example/fhir/CodeSystem/service-code"
CLAIM_ID_SYSTEM: Final = "https://medledger.example/fhir/sid/claim-id"
CARC_SYSTEM: Final = "https://x12.org/codes/claim-adjustment-reason-codes"
ADJUDICATION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/adjudication"
MEDLEDGER_ADJUDICATION: Final = "https://medledger.example/fhir/CodeSystem/adjudication"
CLAIM_DECISION: Final = "http://terminology.hl7.org/CodeSystem/claim-decision"
CURRENCY: Final = "USD"

#: (name, on-chain service code, CPT / HCPCS pattern or numeric range). The first match wins.
SERVICE_CATEGORIES: Final = (
    ("Evaluation and Management (CPT 99202-99499)", 150, (99202, 99499)),
    ("Anesthesia (CPT 00100-01999)", 200, (100, 1999)),
    ("Surgery (CPT 10004-69990)", 300, (10004, 69990)),
    ("Radiology (CPT 70010-79999)", 310, (70010, 79999)),
    ("Pathology and Laboratory (CPT 80047-89398)", 320, (80047, 89398)),
    ("Medicine (CPT 90281-99199, 99500-99607)", 330, (90281, 99199)),
    ("Medicine (CPT 90281-99199, 99500-99607)", 330, (99500, 99607)),
    ("CPT Category II performance measures (####F)", 400, r"^\d{4}F$"),
    ("CPT Category III emerging technology (####T)", 410, r"^\d{4}T$"),
    ("HCPCS Level II (A0000-V9999)", 500, r"^[A-V]\d{4}$"),
)


def service_category(system: str | None, code: str) -> tuple[int, str] | None:
    """(on-chain service code, category name) of a CPT / HCPCS / MedLedger service code, or None."""
    if system == SERVICE_CODE_SYSTEM:
        if code.isdigit() and int(code) <= 0xFFFF:
            return int(code), "MedLedger service code"
        return None
    if system not in (CPT_SYSTEM, HCPCS_SYSTEM):
        return None
    for name, onchain, rule in SERVICE_CATEGORIES:
        if isinstance(rule, tuple):
            if re.fullmatch(r"\d{5}", code) and rule[0] <= int(code) <= rule[1]:
                return onchain, name
        elif re.fullmatch(rule, code):
            return onchain, name
    return None


@dataclass(frozen=True)
class ServiceLine:
    sequence: int
    system: str
    code: str
    net: Decimal
    service_code: int
    category: str


@dataclass(frozen=True)
class ClaimFacts:
    """What a FHIR Claim says about a submission (None: the Claim does not name it)."""

    patient: str | None
    provider: str | None
    insurer: str | None
    total: Decimal
    service_code: int
    lines: tuple[ServiceLine, ...]
    fhir_version: str
    principal: ServiceLine

    def describe(self) -> dict[str, Any]:
        return {"patient": self.patient or "(from --patient)", "provider": self.provider or "(the signer)",
                "insurer": self.insurer or "(from --insurer)", "total": f"{self.total} {CURRENCY}",
                "service_code": self.service_code,
                "services": ", ".join(f"{ln.code} -> {ln.service_code}" for ln in self.lines),
                "fhir_version": self.fhir_version}


def _money(value: Any, field: str) -> Decimal:
    if not isinstance(value, Mapping) or "value" not in value:
        raise FhirMappingError(f"{field}: no amount")
    currency = value.get("currency", CURRENCY)
    if currency != CURRENCY:
        raise FhirMappingError(f"{field}.currency: {currency!r}; the escrow pays in {CURRENCY}")
    try:
        return Decimal(str(value["value"]))
    except InvalidOperation:
        raise FhirMappingError(f"{field}.value: {value['value']!r} is not a number") from None


def read_claim(doc: Any, version: str = "auto") -> ClaimFacts:
    """What a FHIR Claim says; raises FhirInvalid (every path) or FhirMappingError naming the field."""
    report = resolve(doc, version)
    if report.resource_type != "Claim":
        raise FhirMappingError(f"resourceType: {report.resource_type!r}; a claim file must be a FHIR Claim")
    if doc.get("use") != "claim":
        raise FhirMappingError(f"Claim.use: {doc.get('use')!r}; only a claim (not a preauthorization or "
                               "predetermination) is submitted to the escrow")
    if doc.get("status") != "active":
        raise FhirMappingError(f"Claim.status: {doc.get('status')!r}; only an active Claim is submitted")
    lines = []
    for i, item in enumerate(doc.get("item") or ()):
        codings = (item.get("productOrService") or {}).get("coding") or []
        mapped = [(c, service_category(c.get("system"), str(c.get("code", "")))) for c in codings]
        hit = next(((c, m) for c, m in mapped if m is not None), None)
        if hit is None:
            shown = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in codings) or "no coding"
            raise FhirMappingError(f"Claim.item[{i}].productOrService: {shown} maps to no MedLedger service code "
                                   "(CPT, HCPCS or the MedLedger service-code system; see docs/FHIR.md)")
        coding, (onchain, category) = hit
        net = _money(item["net"], f"Claim.item[{i}].net") if "net" in item else Decimal(0)
        lines.append(ServiceLine(item.get("sequence", i + 1), coding["system"], coding["code"], net, onchain, category))
    if not lines:
        raise FhirMappingError("Claim.item: no items; the escrow needs at least one service")
    total = _money(doc["total"], "Claim.total") if "total" in doc else sum((ln.net for ln in lines), Decimal(0))
    principal = min(lines, key=lambda ln: (-ln.net, ln.sequence))
    return ClaimFacts(patient=address_of(doc.get("patient"), "Claim.patient"),
                      provider=address_of(doc.get("provider"), "Claim.provider"),
                      insurer=address_of(doc.get("insurer"), "Claim.insurer"), total=total,
                      service_code=principal.service_code, lines=tuple(lines), fhir_version=report.version,
                      principal=principal)


@dataclass(frozen=True)
class Submission:
    patient: str
    insurer: str
    amount: Decimal
    service_code: int


def reconcile(facts: ClaimFacts, *, signer: str, patient: str | None, insurer: str | None,
              amount: Decimal | None, service: int | None) -> Submission:
    """The submission the Claim and the flags agree on; any contradiction is refused with both values."""
    if facts.provider is not None and facts.provider != to_checksum_address(signer):
        raise FhirMappingError(f"Claim.provider: the Claim names provider {facts.provider}, but {signer} is "
                               "submitting it")
    resolved = {}
    for name, flag, from_claim in (("patient", patient, facts.patient), ("insurer", insurer, facts.insurer)):
        if flag is not None and from_claim is not None and flag != from_claim:
            raise FhirMappingError(f"--{name} {flag} contradicts Claim.{name} {from_claim}")
        value = flag or from_claim
        if value is None:
            raise FhirMappingError(f"Claim.{name}: names no account (identifier with system "
                                   f"{ETHEREUM_ADDRESS_SYSTEM}); give --{name}")
        resolved[name] = value
    if amount is not None and amount != facts.total:
        raise FhirMappingError(f"--amount {amount.normalize():f} does not equal the Claim's total "
                               f"{facts.total.normalize():f} {CURRENCY} "
                               "(Claim.total); the escrow pays what the Claim bills")
    if service is not None and service != facts.service_code:
        p = facts.principal
        raise FhirMappingError(f"--service {service} contradicts the Claim's principal service: item {p.sequence} "
                               f"{p.code}, {p.category} -> {facts.service_code} (docs/FHIR.md has the mapping)")
    return Submission(resolved["patient"], resolved["insurer"], facts.total, facts.service_code)


# --------------------------------------------------------------------------- ClaimResponse


@dataclass(frozen=True)
class Adjudicated:
    """What the escrow decided on one claim (amounts in USD; None where it has not happened)."""

    claim_id: str
    patient: str
    provider: str
    insurer: str
    status: str  # submitted | contestable | disputed | settled | voided
    billed: Decimal
    approved: Decimal | None = None
    contested: Decimal = Decimal(0)
    deductible: Decimal = Decimal(0)
    coinsurance: Decimal = Decimal(0)
    copay: Decimal = Decimal(0)
    reason_codes: tuple[int, ...] = ()
    award: Decimal | None = None
    kind: str = "manual"  # manual | automatic | deemed
    created: str = ""  # FHIR dateTime of the latest decision (or of the submission)


def _amount(value: Decimal) -> dict[str, Any]:
    return {"value": float(value), "currency": CURRENCY}


def _adj(code: str, amount: Decimal | None = None, *, system: str = ADJUDICATION_SYSTEM,
         reason: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"category": {"coding": [{"system": system, "code": code}]}}
    if reason is not None:
        out["reason"] = {"coding": [{"system": CARC_SYSTEM, "code": str(reason)}]}
    if amount is not None:
        out["amount"] = _amount(amount)
    return out


def claim_response(a: Adjudicated, version: str = "R5") -> dict[str, Any]:
    """The escrow's decision as a FHIR ClaimResponse (R5 or R4 / R4B) that validates."""
    decided = a.approved is not None
    paid = (a.approved or Decimal(0)) + (a.award or Decimal(0))
    adjudication = [_adj("submitted", a.billed)]
    if decided:
        adjudication.append(_adj("benefit", a.approved))
        for code, value in (("deductible", a.deductible), ("copay", a.copay)):
            if value:
                adjudication.append(_adj(code, value))
        if a.coinsurance:
            adjudication.append(_adj("coinsurance", a.coinsurance, system=MEDLEDGER_ADJUDICATION))
        for i, reason in enumerate(a.reason_codes):
            adjudication.append(_adj("contested", a.contested if i == 0 else None, system=MEDLEDGER_ADJUDICATION,
                                     reason=reason))
        if a.award is not None:
            adjudication.append(_adj("arbiter-award", a.award, system=MEDLEDGER_ADJUDICATION))
    if a.status == "voided":
        disposition, decision = "voided by the provider", "denied"
    elif not decided:
        disposition, decision = "pending adjudication", "pending"
    elif paid >= a.billed - a.deductible - a.copay - a.coinsurance:
        disposition, decision = f"approved ({a.kind})", "approved"
    elif paid == 0:
        disposition, decision = "denied", "denied"
    else:
        disposition, decision = f"partially approved ({a.kind})", "partial"
    if a.status == "disputed":
        disposition += "; disputed, awaiting the arbiter"
    out: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "identifier": [{"system": CLAIM_ID_SYSTEM, "value": a.claim_id}],
        "status": "cancelled" if a.status == "voided" else "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "use": "claim",
        "patient": reference_to(a.patient),
        "created": a.created,
        "insurer": reference_to(a.insurer),
        "requestor": reference_to(a.provider),
        "request": {"identifier": {"system": CLAIM_ID_SYSTEM, "value": a.claim_id}},
        "outcome": "complete" if decided or a.status == "voided" else "queued",
        "disposition": disposition,
        "adjudication": adjudication,
        "total": [{"category": {"coding": [{"system": ADJUDICATION_SYSTEM, "code": "submitted"}]},
                   "amount": _amount(a.billed)}],
    }
    if decided:
        out["total"].append({"category": {"coding": [{"system": ADJUDICATION_SYSTEM, "code": "benefit"}]},
                             "amount": _amount(paid)})
    if paid and a.status == "settled":
        out["payment"] = {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-paymenttype",
                                               "code": "complete"}]}, "amount": _amount(paid)}
    v = version.upper()
    if v == "R5":
        out["decision"] = {"coding": [{"system": CLAIM_DECISION, "code": decision}]}
    elif v not in ("R4", "R4B"):
        raise ValueError(f"unsupported FHIR version {version!r} for a ClaimResponse (R5, R4 or R4B)")
    resolve(out, v).raise_for_issues()  # what we write must validate
    return out


def _hex(value: Any) -> str:
    return value.lower() if isinstance(value, str) else "0x" + bytes(value).hex()


def adjudicated_from_events(events: Any, claim_id: str, status: str, units: Any, block_time: Any) -> Adjudicated:
    """Rebuild what the escrow decided on ``claim_id`` from its events (audit.EventRecord, chain order).

    ``units(int) -> Decimal`` converts token units to USD, ``block_time(block) -> int`` gives a block's
    timestamp; ``status`` is the claim's current status.
    """
    from datetime import datetime, timezone

    def when(ts: int) -> str:
        return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    cid = claim_id.lower()
    mine = [e for e in events if _hex(e.args.get("claimId", b"")) == cid]
    submitted = [e for e in mine if e.event == "ClaimSubmitted"]
    if not submitted:
        raise FhirMappingError(f"claim {claim_id}: no ClaimSubmitted event on this chain")
    sub = submitted[-1]
    fields: dict[str, Any] = {"claim_id": cid, "patient": sub.args["patient"], "insurer": sub.args["insurer"],
                              "provider": sub.args["provider"], "status": status,
                              "billed": units(sub.args["billed"]), "created": when(block_time(sub.block))}
    kinds = ("manual", "automatic", "deemed")
    after = [e for e in mine if e.block >= sub.block]
    for e in after:
        if e.event == "ClaimAdjudicated":
            fields.update(approved=units(e.args["approved"]), contested=units(e.args["contested"]),
                          reason_codes=tuple(int(c) for c in e.args["reasonCodes"]),
                          kind=kinds[int(e.args["kind"])] if int(e.args["kind"]) < 3 else "manual")
        elif e.event == "PatientResponsibility":
            fields.update(deductible=units(e.args["deductible"]), coinsurance=units(e.args["coinsurance"]),
                          copay=units(e.args["copay"]))
        elif e.event == "DisputeResolved":
            fields.update(award=units(e.args["award"]))
        if e.event in ("ClaimAdjudicated", "DisputeResolved", "ClaimVoided"):
            fields["created"] = when(block_time(e.block))
    return Adjudicated(**fields)
