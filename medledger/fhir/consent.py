"""FHIR Consent <-> MedLedger consent: what a Consent resource grants, its salted commitment, and back.

Mapping (docs/FHIR.md has the table):

=====================  ===========================================  ==========================================
MedLedger              FHIR R5                                      FHIR R4 / R4B
=====================  ===========================================  ==========================================
patient                ``subject`` (Reference.identifier, the       ``patient``
                       Ethereum-address system below)
grantee                ``provision[0].actor[0].reference``          ``provision.actor[0].reference``
purposes               ``provision[0].purpose`` (v3-ActReason:      ``provision.purpose``
                       TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH,
                       COVERAGE)
data classes           ``provision[0].resourceType`` (resource      ``provision.class`` (resource types) and
                       types) and ``provision[0].securityLabel``    ``provision.securityLabel``
                       (v3-ActCode ETH, PSY / MH, GDIS)
validity               ``period`` (or ``provision[0].period``)      ``provision.period``
decision               ``decision`` = permit                        ``provision.type`` = permit
=====================  ===========================================  ==========================================

Codes of MedLedger's own data-class system (``DATA_CLASS_SYSTEM``) are accepted wherever a resource
type is. A ``deny`` decision, nested provisions, a status other than active, a period already over, no
purpose or no data class, several actors, and anything MedLedger cannot express are refused with the
FHIR path of the field.

The commitment on chain is ``keccak256(salt || RFC 8785 canonical bytes)`` with 32 random bytes of
salt kept off chain beside the resource (`medledger.commitments.salted_file`, the one implementation every
committed document uses): without the salt, a guess of the Consent's content cannot be confirmed against
the chain.
"""
from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from medledger.data_classes import RESOURCE_CLASSES
from medledger.errors import FhirMappingError
from medledger.fhir.versions import resolve
from medledger.scopes import SENSITIVE, DataClass, Purpose, names

from .addresses import address_of, reference_to
from .systems import ETHEREUM_ADDRESS_SYSTEM

ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
R4_RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
R5_RESOURCE_TYPES: Final = "http://hl7.org/fhir/fhir-types"
DATA_CLASS_SYSTEM: Final = "https://medledger.example/fhir/CodeSystem/data-class"
COMMITMENT_SYSTEM: Final = "https://medledger.example/fhir/sid/consent-commitment"
PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

#: FHIR resource type -> data class (reading): the records' table (docs/RECORDS.md, "Data classes"), so a
#: Consent for a type grants the class a record of that type holds. RESOURCE_FOR_CLASS is the one written back.
CLASS_FOR_RESOURCE: Final = RESOURCE_CLASSES
RESOURCE_FOR_CLASS: Final = {
    DataClass.DEMOGRAPHICS: "Patient", DataClass.CONDITIONS: "Condition", DataClass.MEDICATIONS: "MedicationRequest",
    DataClass.ALLERGIES: "AllergyIntolerance", DataClass.LABS: "Observation", DataClass.IMAGING: "ImagingStudy",
    DataClass.NOTES: "DocumentReference", DataClass.BILLING: "Claim",
}
#: HL7 v3 sensitivity codes (provision.securityLabel) -> the sensitive data classes.
CLASS_FOR_LABEL: Final = {"ETH": DataClass.SUBSTANCE_USE, "SUD": DataClass.SUBSTANCE_USE,
                          "PSY": DataClass.MENTAL_HEALTH, "MH": DataClass.MENTAL_HEALTH,
                          "GDIS": DataClass.GENOMICS}
LABEL_FOR_CLASS: Final = {DataClass.SUBSTANCE_USE: "ETH", DataClass.MENTAL_HEALTH: "MH", DataClass.GENOMICS: "GDIS"}


@dataclass(frozen=True)
class ConsentGrant:
    """What a FHIR Consent grants, in MedLedger's terms (masks as on chain; 0 = from now / no expiry)."""

    patient: str
    grantee: str
    purposes: int
    data_classes: int
    valid_from: int
    valid_until: int
    fhir_version: str

    def describe(self) -> dict[str, Any]:
        return {"patient": self.patient, "grantee": self.grantee,
                "purposes": ",".join(names(self.purposes, Purpose)).lower(),
                "classes": ",".join(names(self.data_classes, DataClass)).lower(),
                "valid_from": _iso(self.valid_from) if self.valid_from else "now",
                "valid_until": _iso(self.valid_until) if self.valid_until else "no expiry",
                "fhir_version": self.fhir_version}


def party_problem(party: Any) -> str | None:
    """None when a CareRegistry party may be a grantee, else why not (for the refusal message)."""
    if getattr(party, "role", 0) == 0:
        return "is not a registered party (a registrar adds it with `medledger registry add-provider` / add-insurer)"
    if not party.active:
        return "is a suspended party"
    return None


# --------------------------------------------------------------------------- dates


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fhir_instant(value: str, *, end: bool, field: str) -> int:
    """Unix time of a FHIR date / dateTime. A partial value covers its whole span: as a period end
    "2026-12-31" means up to the end of that day (the first second after it is returned)."""
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", value)
    try:
        if m:
            y, mo, d = int(m[1]), int(m[2] or 1), int(m[3] or 1)
            start = calendar.timegm((y, mo, d, 0, 0, 0))
            if not end:
                return start
            if m[3]:
                return start + 86400
            if m[2]:
                return calendar.timegm((y + mo // 12, mo % 12 + 1, 1, 0, 0, 0))
            return calendar.timegm((y + 1, 1, 1, 0, 0, 0))
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FhirMappingError(f"{field}: {value!r} is not a FHIR dateTime") from None
    if parsed.tzinfo is None:
        raise FhirMappingError(f"{field}: {value!r} has no time zone")
    return int(parsed.timestamp())


# --------------------------------------------------------------------------- FHIR -> grant


def _account(ref: Any, field: str, who: str) -> str:
    address = address_of(ref, field)
    if address is not None:
        return address
    raise FhirMappingError(f"{field}: names no {who} account; give identifier {{system: {ETHEREUM_ADDRESS_SYSTEM}, "
                           f"value: 0x...}}")


def _codings(items: Any) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i, c) for i, c in enumerate(items or ()) if isinstance(c, Mapping)]


def _own_class(code: Any, field: str) -> DataClass:
    try:
        return DataClass[str(code).upper().replace("-", "_")]
    except KeyError:
        raise FhirMappingError(f"{field}: {code!r} is not a MedLedger data class") from None


def _classes(provision: Mapping[str, Any], base: str, r5: bool) -> int:
    bits = 0
    type_field = "resourceType" if r5 else "class"
    for i, coding in _codings(provision.get(type_field)):
        code, system = coding.get("code"), coding.get("system")
        if system == DATA_CLASS_SYSTEM:
            bits |= 1 << _own_class(code, f"{base}.{type_field}[{i}].code")
        elif code in CLASS_FOR_RESOURCE and system in (None, R4_RESOURCE_TYPES, R5_RESOURCE_TYPES):
            bits |= 1 << CLASS_FOR_RESOURCE[code]
        else:
            raise FhirMappingError(f"{base}.{type_field}[{i}]: {system}|{code} maps to no MedLedger data class "
                                   "(see docs/FHIR.md)")
    for i, cc in _codings(provision.get("code")):
        for j, coding in _codings(cc.get("coding")):
            if coding.get("system") == DATA_CLASS_SYSTEM:
                bits |= 1 << _own_class(coding.get("code"), f"{base}.code[{i}].coding[{j}].code")
    for i, coding in _codings(provision.get("securityLabel")):
        code = coding.get("code")
        if coding.get("system") == ACT_CODE and code in CLASS_FOR_LABEL:
            bits |= 1 << CLASS_FOR_LABEL[code]
        else:
            raise FhirMappingError(f"{base}.securityLabel[{i}]: {coding.get('system')}|{code} maps to no MedLedger "
                                   "data class (known: v3-ActCode ETH, SUD, PSY, MH, GDIS)")
    if not bits:
        raise FhirMappingError(f"{base}.{type_field}: names no data class; a grant needs at least one "
                               f"({type_field} or securityLabel, see docs/FHIR.md)")
    return bits


def _purposes(provision: Mapping[str, Any], base: str) -> int:
    bits = 0
    for i, coding in _codings(provision.get("purpose")):
        code = coding.get("code")
        if coding.get("system") != ACT_REASON or code not in Purpose.__members__:
            raise FhirMappingError(f"{base}.purpose[{i}]: {coding.get('system')}|{code} is not a purpose MedLedger "
                                   f"knows (v3-ActReason {', '.join(Purpose.__members__)})")
        bits |= 1 << Purpose[code]
    if not bits:
        raise FhirMappingError(f"{base}.purpose: names no purpose of use; a grant needs at least one")
    return bits


def grant_from_fhir(
    doc: Any,
    *,
    now: int,
    version: str = "auto",
    is_party: Callable[[str], str | None] | None = None,
) -> ConsentGrant:
    """Read what a FHIR Consent grants. ``now`` is the chain's time; ``is_party(address)`` returns
    None for an active registered party, else a reason the address cannot be a grantee.

    Raises FhirInvalid (not valid FHIR, every path) or FhirMappingError naming the field.
    """
    report = resolve(doc, version)
    if report.resource_type != "Consent":
        raise FhirMappingError(f"resourceType: {report.resource_type!r}; a consent grant reads a FHIR Consent")
    r5 = report.version == "R5"
    if doc.get("status") != "active":
        raise FhirMappingError(f"Consent.status: {doc.get('status')!r}; only an active Consent can be granted")
    patient = _account(doc.get("subject" if r5 else "patient"), f"Consent.{'subject' if r5 else 'patient'}",
                       "patient")
    provisions = doc.get("provision")
    if r5:
        provisions = provisions or []
        if len(provisions) != 1:
            raise FhirMappingError(f"Consent.provision: {len(provisions)} provisions; MedLedger grants exactly one")
        provision, base = provisions[0], "Consent.provision[0]"
        decision = doc.get("decision", "permit")
        decision_field = "Consent.decision"
    else:
        if not isinstance(provisions, Mapping):
            raise FhirMappingError("Consent.provision: missing; the grant is read from the provision")
        provision, base = provisions, "Consent.provision"
        decision = provision.get("type", "permit")
        decision_field = "Consent.provision.type"
    if decision != "permit":
        raise FhirMappingError(f"{decision_field}: {decision!r}; MedLedger grants only permit consents (to withdraw "
                               "access use `medledger consent revoke`)")
    if provision.get("provision"):
        raise FhirMappingError(f"{base}.provision: nested provisions (exceptions) cannot be expressed on chain")
    for unsupported in ("data", "dataPeriod", "action", "expression", "documentType"):
        if provision.get(unsupported):
            raise FhirMappingError(f"{base}.{unsupported}: MedLedger consent cannot restrict by {unsupported}")
    actors = provision.get("actor") or []
    if len(actors) != 1:
        raise FhirMappingError(f"{base}.actor: {len(actors)} actors; MedLedger grants one grantee per Consent")
    grantee = _account(actors[0].get("reference"), f"{base}.actor[0].reference", "grantee")
    if is_party is not None and (why := is_party(grantee)) is not None:
        raise FhirMappingError(f"{base}.actor[0].reference: {grantee} {why}")
    purposes = _purposes(provision, base)
    classes = _classes(provision, base, r5)

    period_field = "Consent.period" if r5 and doc.get("period") else f"{base}.period"
    period = (doc.get("period") if r5 and doc.get("period") else provision.get("period")) or {}
    start = fhir_instant(period["start"], end=False, field=f"{period_field}.start") if "start" in period else 0
    end = fhir_instant(period["end"], end=True, field=f"{period_field}.end") if "end" in period else 0
    if end and end <= now:
        raise FhirMappingError(f"{period_field}.end: {period['end']} is in the past (now {_iso(now)}); "
                               "the consent would never be in force")
    if end and start >= end:
        raise FhirMappingError(f"{period_field}: starts {period.get('start')} after it ends {period.get('end')}")
    if purposes >> Purpose.ETREAT & 1:
        raise FhirMappingError(f"{base}.purpose: ETREAT is break-glass access (`medledger emergency`), not a "
                               "standing consent")
    return ConsentGrant(patient=patient, grantee=grantee, purposes=purposes, data_classes=classes,
                        valid_from=start if start > now else 0, valid_until=end, fhir_version=report.version)


# --------------------------------------------------------------------------- on chain -> FHIR


def consent_to_fhir(
    *,
    patient: str,
    grantee: str,
    purposes: int,
    data_classes: int,
    valid_from: int,
    valid_until: int,
    granted_at: int,
    live: bool,
    doc_hash: bytes | None = None,
    version: str = "R5",
) -> dict[str, Any]:
    """The on-chain consent of (patient, grantee) as a FHIR Consent (R5, or the R4 form)."""
    purpose = [{"system": ACT_REASON, "code": n} for n in names(purposes, Purpose)]
    classes = [DataClass(i) for i in range(len(DataClass)) if data_classes >> i & 1]
    labels = [{"system": ACT_CODE, "code": LABEL_FOR_CLASS[c]} for c in classes if c in SENSITIVE]
    period: dict[str, str] = {"start": _iso(valid_from or granted_at)}
    if valid_until:
        period["end"] = _iso(valid_until)
    actor_role = {"coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]}
    provision: dict[str, Any] = {"actor": [{"role": actor_role, "reference": reference_to(grantee)}],
                                 "purpose": purpose}
    if labels:
        provision["securityLabel"] = labels
    identifier = [{"system": COMMITMENT_SYSTEM, "value": "0x" + doc_hash.hex()}] if doc_hash and any(doc_hash) else []
    category = [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}]
    v = version.upper()
    if v == "R5":
        rtypes = [{"system": R5_RESOURCE_TYPES, "code": RESOURCE_FOR_CLASS[c]} for c in classes if c not in SENSITIVE]
        if rtypes:
            provision["resourceType"] = rtypes
        out: dict[str, Any] = {"resourceType": "Consent", "status": "active" if live else "inactive",
                               "category": category, "subject": reference_to(patient), "date": _iso(granted_at)[:10],
                               "grantor": [reference_to(patient)], "grantee": [reference_to(grantee)], "period": period,
                               "decision": "permit", "provision": [provision]}
    elif v in ("R4", "R4B"):
        rtypes = [{"system": R4_RESOURCE_TYPES, "code": RESOURCE_FOR_CLASS[c]} for c in classes if c not in SENSITIVE]
        if rtypes:
            provision["class"] = rtypes
        out = {"resourceType": "Consent", "status": "active" if live else "inactive",
               "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                     "code": "patient-privacy"}]},
               "category": category, "patient": reference_to(patient), "dateTime": _iso(granted_at),
               "performer": [reference_to(patient)],
               "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
               "provision": {"type": "permit", "period": period, **provision}}
    else:
        raise ValueError(f"unsupported FHIR version {version!r} for a Consent (R5, R4 or R4B)")
    if identifier:
        out["identifier"] = identifier
    resolve(out, "R4" if v == "R4" else v).raise_for_issues()  # what we write must validate
    return out
