"""Deterministic synthetic FHIR data: realistic-looking patient Bundles and Claims for tests, demo, bench.

Everything is derived from a seed through `random.Random`, so ``patient_bundle(7, addr)`` is the
same document on every machine and every run. Nothing here is real PHI, but the generator fills
exactly the fields that *would* be PHI (names, birth date, MRN, SSN-style id, address, phone,
diagnosis/lab/drug/procedure codes, billed amounts); `phi_fields` lists them back so tests can
prove none of them ever reaches the chain.

The default is FHIR R5; ``version="R4"`` (or ``"R4B"``, the same shape for these resources) emits
the R4 shape of the same content.
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

from eth_utils import to_checksum_address

from ..fhir.systems import (  # noqa: F401 (re-exported: tests and the demo import them from here)
    CPT_SYSTEM,
    ETHEREUM_ADDRESS_SYSTEM,
    ICD10_SYSTEM,
    LOINC_SYSTEM,
    MRN_SYSTEM,
    NPI_SYSTEM,
    RXNORM_SYSTEM,
    SNOMED_SYSTEM,
    SSN_SYSTEM,
    UCUM_SYSTEM,
)
from ..scopes import DataClass

FhirVersion = Literal["R5", "R4B", "R4"]


_GIVEN_F = ["Maria", "Olivia", "Amelia", "Sofia", "Aisha", "Hannah", "Chloe", "Mei", "Priya", "Grace",
            "Elena", "Fatima", "Zoe", "Isabel", "Nora", "Leah"]
_GIVEN_M = ["James", "Liam", "Noah", "Mateo", "Ethan", "Lucas", "Omar", "Daniel", "Wei", "Arjun",
            "Samuel", "Hugo", "Kofi", "Elijah", "Owen", "Ravi"]
_FAMILY = ["Garcia", "Smith", "Nguyen", "Okafor", "Johnson", "Kowalski", "Haddad", "Martinez", "Chen",
           "Patel", "O'Brien", "Andersson", "Rossi", "Williams", "Kim", "Dubois", "Moreau", "Silva"]
_STREETS = ["Maple Avenue", "Oak Street", "Cedar Lane", "Elm Drive", "Harbor View Road", "Pine Court",
            "Willow Way", "Sunset Boulevard", "Lakeview Terrace", "Birch Street"]
_CITIES = [("Springfield", "IL", "627"), ("Riverton", "WY", "825"), ("Fairview", "OR", "970"),
           ("Madison", "WI", "537"), ("Georgetown", "TX", "786"), ("Salem", "MA", "019"),
           ("Franklin", "TN", "370"), ("Greenville", "SC", "296")]

# (ICD-10-CM code, display, SNOMED CT code, display)
_CONDITIONS = [
    ("E11.9", "Type 2 diabetes mellitus without complications", "44054006", "Diabetes mellitus type 2"),
    ("I10", "Essential (primary) hypertension", "59621000", "Essential hypertension"),
    ("E78.5", "Hyperlipidemia, unspecified", "55822004", "Hyperlipidemia"),
    ("J45.909", "Unspecified asthma, uncomplicated", "195967001", "Asthma"),
    ("N18.30", "Chronic kidney disease, stage 3 unspecified", "433144002", "Chronic kidney disease stage 3"),
    ("M54.50", "Low back pain, unspecified", "279039007", "Low back pain"),
    ("J06.9", "Acute upper respiratory infection, unspecified", "54150009", "Upper respiratory infection"),
    ("E66.9", "Obesity, unspecified", "414916001", "Obesity"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis", "235595009",
     "Gastroesophageal reflux disease"),
    ("G43.909", "Migraine, unspecified, not intractable", "37796009", "Migraine"),
]

# (LOINC code, display, UCUM unit, low, high, decimals, reference low, reference high)
_LABS = [
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.6, 10.5, 1, 4.0, 5.6),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 240, 0, 70, 99),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 130, 290, 0, 0, 200),
    ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 30, 85, 0, 40, 60),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.5, 2.4, 2, 0.6, 1.3),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 10.5, 17.5, 1, 12.0, 17.5),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 3.2, 13.5, 1, 4.5, 11.0),
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 131, 148, 0, 135, 145),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.2, 5.6, 1, 3.5, 5.1),
    ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area]", "mL/min/{1.73_m2}",
     28, 115, 0, 60, 120),
]

# (RxNorm code, display, dose text, per day)
_MEDICATIONS = [
    ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
     "Take 1 tablet by mouth daily with evening meal", 1),
    ("314076", "lisinopril 10 MG Oral Tablet", "Take 1 tablet by mouth once daily", 1),
    ("617312", "atorvastatin 10 MG Oral Tablet", "Take 1 tablet by mouth at bedtime", 1),
    ("197361", "amlodipine 5 MG Oral Tablet", "Take 1 tablet by mouth once daily", 1),
    ("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
     "Inhale 2 puffs every 4 to 6 hours as needed", 4),
    ("310965", "ibuprofen 200 MG Oral Tablet",
     "Take 1 to 2 tablets by mouth every 6 hours as needed for pain", 4),
    ("198211", "simvastatin 40 MG Oral Tablet", "Take 1 tablet by mouth in the evening", 1),
    ("313782", "acetaminophen 325 MG Oral Tablet", "Take 2 tablets by mouth every 6 hours as needed", 4),
]

# (CPT code, display, unit price)
_PROCEDURES = [
    ("99213", "Office or other outpatient visit, established patient, low MDM", 128.0),
    ("99214", "Office or other outpatient visit, established patient, moderate MDM", 186.5),
    ("80053", "Comprehensive metabolic panel", 48.25),
    ("83036", "Hemoglobin; glycosylated (A1C)", 38.4),
    ("85025", "Blood count; complete (CBC), automated, with differential WBC count", 31.75),
    ("80061", "Lipid panel", 56.1),
    ("93000", "Electrocardiogram, routine ECG with at least 12 leads; with interpretation and report", 92.0),
    ("36415", "Collection of venous blood by venipuncture", 12.5),
]

_PAYERS = [("Blue Harbor Health Plan", "BHHP"), ("Cascade Mutual Insurance", "CMI"),
           ("Meridian Care Assurance", "MCA")]
_ORGS = ["Riverside Family Clinic", "St. Agnes Medical Center", "Northgate Community Hospital"]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _money(value: float) -> dict[str, Any]:
    return {"value": round(value, 2), "currency": "USD"}


def _ref(full_url: str, display: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"reference": full_url}
    if display:
        ref["display"] = display
    return ref


def _dt(d: datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass(frozen=True)
class _Ctx:
    version: FhirVersion
    patient_url: str
    patient_name: str
    encounter_url: str
    practitioner_url: str
    practitioner_name: str
    organization_url: str
    organization_name: str
    insurer_url: str
    insurer_name: str
    coverage_url: str
    visit: datetime


def _patient(rng: random.Random, patient_address: str, version: FhirVersion) -> tuple[dict[str, Any], str]:
    female = rng.random() < 0.5
    given = rng.choice(_GIVEN_F if female else _GIVEN_M)
    middle = rng.choice(_GIVEN_F if female else _GIVEN_M)
    family = rng.choice(_FAMILY)
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 62))
    city, state, zip3 = rng.choice(_CITIES)
    mrn = f"MRN-{rng.randrange(10**7, 10**8)}"
    ssn = f"{rng.randrange(100, 900):03d}-{rng.randrange(10, 100):02d}-{rng.randrange(1000, 10000):04d}"
    phone = f"+1-{rng.randrange(200, 999)}-555-{rng.randrange(1000, 10000):04d}"
    name = f"{given} {middle[0]}. {family}"
    resource = {
        "resourceType": "Patient",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "identifier": [
            {"use": "usual",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR",
                                  "display": "Medical record number"}]},
             "system": MRN_SYSTEM, "value": mrn},
            {"use": "official",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS",
                                  "display": "Social Security number"}]},
             "system": SSN_SYSTEM, "value": ssn},
            {"use": "secondary", "system": ETHEREUM_ADDRESS_SYSTEM,
             "value": to_checksum_address(patient_address)},
        ],
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given, middle], "text": name}],
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"},
                    {"system": "email", "value": f"{given.lower()}.{family.lower().replace(chr(39), '')}"
                                                 f"{rng.randrange(10, 99)}@example.org", "use": "home"}],
        "gender": "female" if female else "male",
        "birthDate": birth.isoformat(),
        "address": [{
            "use": "home", "type": "physical",
            "line": [f"{rng.randrange(10, 9999)} {rng.choice(_STREETS)}", f"Apt {rng.randrange(1, 40)}"],
            "city": city, "state": state, "postalCode": f"{zip3}{rng.randrange(10, 100):02d}",
            "country": "US",
        }],
        "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                                      "code": rng.choice(["M", "S", "W", "D"])}]},
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US",
                                                    "display": "English (United States)"}]},
                           "preferred": True}],
    }
    return resource, name


def _practitioner(rng: random.Random) -> tuple[dict[str, Any], str]:
    given = rng.choice(_GIVEN_F + _GIVEN_M)
    family = rng.choice(_FAMILY)
    return {
        "resourceType": "Practitioner",
        "identifier": [{"system": NPI_SYSTEM, "value": str(rng.randrange(10**9, 2 * 10**9))}],
        "active": True,
        "name": [{"family": family, "given": [given], "prefix": ["Dr."]}],
        "qualification": [{"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360",
                                                "code": "MD", "display": "Doctor of Medicine"}]}}],
    }, f"Dr. {given} {family}"


def _organization(name: str, rng: random.Random, payer: bool) -> dict[str, Any]:
    kind = ("pay", "Payer") if payer else ("prov", "Healthcare Provider")
    return {
        "resourceType": "Organization",
        "identifier": [{"system": NPI_SYSTEM if not payer else "https://payers.medledger.example/id",
                        "value": str(rng.randrange(10**9, 2 * 10**9))}],
        "active": True,
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                              "code": kind[0], "display": kind[1]}]}],
        "name": name,
    }


def _encounter(rng: random.Random, ctx: _Ctx, reason_display: str) -> dict[str, Any]:
    start = ctx.visit
    end = start + timedelta(minutes=rng.choice([15, 20, 30, 45]))
    enc_class = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB",
                 "display": "ambulatory"}
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": [{"system": "https://hospital.medledger.example/fhir/sid/visit",
                        "value": f"V{rng.randrange(10**8, 10**9)}"}],
        "status": "finished" if ctx.version != "R5" else "completed",
        "type": [{"coding": [{"system": SNOMED_SYSTEM, "code": "185349003",
                              "display": "Encounter for check up"}]}],
        "subject": _ref(ctx.patient_url, ctx.patient_name),
        "participant": [{"individual" if ctx.version != "R5" else "actor":
                         _ref(ctx.practitioner_url, ctx.practitioner_name)}],
        "serviceProvider": _ref(ctx.organization_url, ctx.organization_name),
    }
    period = {"start": _dt(start), "end": _dt(end)}
    if ctx.version != "R5":
        resource["class"] = enc_class
        resource["period"] = period
        resource["reasonCode"] = [{"text": reason_display}]
    else:
        resource["class"] = [{"coding": [enc_class]}]
        resource["actualPeriod"] = period
        resource["reason"] = [{"value": [{"concept": {"text": reason_display}}]}]
    return resource


def _condition(rng: random.Random, ctx: _Ctx, cond: tuple[str, str, str, str]) -> dict[str, Any]:
    icd, icd_display, sct, sct_display = cond
    onset = ctx.visit.date() - timedelta(days=rng.randrange(30, 3650))
    return {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "problem-list-item", "display": "Problem List Item"}]}],
        "code": {"coding": [{"system": ICD10_SYSTEM, "code": icd, "display": icd_display},
                            {"system": SNOMED_SYSTEM, "code": sct, "display": sct_display}],
                 "text": sct_display},
        "subject": _ref(ctx.patient_url, ctx.patient_name),
        "encounter": _ref(ctx.encounter_url),
        "onsetDateTime": onset.isoformat(),
        "recordedDate": ctx.visit.date().isoformat(),
    }


def _observation(rng: random.Random, ctx: _Ctx, lab: tuple) -> dict[str, Any]:
    code, display, unit, low, high, decimals, ref_low, ref_high = lab
    value = round(rng.uniform(low, high), decimals)
    if decimals == 0:
        value = int(value)
    interp = "H" if value > ref_high else "L" if value < ref_low else "N"
    interp_display = {"H": "High", "L": "Low", "N": "Normal"}[interp]
    issued = ctx.visit + timedelta(hours=rng.randrange(2, 30))
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory", "display": "Laboratory"}]}],
        "code": {"coding": [{"system": LOINC_SYSTEM, "code": code, "display": display}], "text": display},
        "subject": _ref(ctx.patient_url, ctx.patient_name),
        "encounter": _ref(ctx.encounter_url),
        "effectiveDateTime": _dt(ctx.visit),
        "issued": _dt(issued).replace("+00:00", "Z"),
        "performer": [_ref(ctx.organization_url, ctx.organization_name)],
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM_SYSTEM, "code": unit},
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                        "code": interp, "display": interp_display}]}],
        "referenceRange": [{"low": {"value": ref_low, "unit": unit, "system": UCUM_SYSTEM, "code": unit},
                            "high": {"value": ref_high, "unit": unit, "system": UCUM_SYSTEM, "code": unit}}],
    }


def _medication_request(rng: random.Random, ctx: _Ctx, med: tuple, reason_url: str) -> dict[str, Any]:
    rxnorm, display, sig, per_day = med
    concept = {"coding": [{"system": RXNORM_SYSTEM, "code": rxnorm, "display": display}], "text": display}
    days = rng.choice([30, 60, 90])
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": _ref(ctx.patient_url, ctx.patient_name),
        "encounter": _ref(ctx.encounter_url),
        "authoredOn": _dt(ctx.visit),
        "requester": _ref(ctx.practitioner_url, ctx.practitioner_name),
        "dosageInstruction": [{
            "sequence": 1, "text": sig,
            "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
            "route": {"coding": [{"system": SNOMED_SYSTEM, "code": "26643006", "display": "Oral route"}]},
        }],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": rng.randrange(0, 4),
            "quantity": {"value": days * per_day, "unit": "tablet", "system": UCUM_SYSTEM, "code": "{tbl}"},
            "expectedSupplyDuration": {"value": days, "unit": "days", "system": UCUM_SYSTEM, "code": "d"},
        },
    }
    if ctx.version != "R5":
        resource["medicationCodeableConcept"] = concept
        resource["reasonReference"] = [_ref(reason_url)]
    else:
        resource["medication"] = {"concept": concept}
        resource["reason"] = [{"reference": _ref(reason_url)}]
    return resource


def _coverage(rng: random.Random, ctx: _Ctx) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Coverage",
        "identifier": [{"system": "https://payers.medledger.example/member",
                        "value": f"M{rng.randrange(10**9, 10**10)}"}],
        "status": "active",
        "subscriberId": [{"value": f"SUB{rng.randrange(10**7, 10**8)}"}] if ctx.version == "R5"
        else f"SUB{rng.randrange(10**7, 10**8)}",
        "beneficiary": _ref(ctx.patient_url, ctx.patient_name),
        "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                                     "code": "self"}]},
        "period": {"start": f"{ctx.visit.year}-01-01", "end": f"{ctx.visit.year}-12-31"},
        "class": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                        "code": "group"}]},
                   "value": {"value": f"GRP-{rng.randrange(1000, 9999)}"} if ctx.version == "R5"
                   else f"GRP-{rng.randrange(1000, 9999)}",
                   "name": "Employer group plan"}],
    }
    if ctx.version == "R5":
        resource["kind"] = "insurance"
        resource["insurer"] = _ref(ctx.insurer_url, ctx.insurer_name)
    else:
        resource["payor"] = [_ref(ctx.insurer_url, ctx.insurer_name)]
    return resource


def claim_resource(
    seed: int,
    patient_reference: str = "Patient/example",
    *,
    version: FhirVersion = "R5",
    diagnoses: Iterable[tuple[str, str]] | None = None,
    procedures: Iterable[tuple[str, str, float]] | None = None,
    created: datetime | None = None,
    provider_reference: str | None = None,
    insurer_reference: str | None = None,
    coverage_reference: str | None = None,
    encounter_reference: str | None = None,
    quantity: int | None = None,
) -> dict[str, Any]:
    """A professional Claim: ICD-10 diagnoses, CPT line items with unit prices, nets and a total.

    ``diagnoses`` are (ICD-10 code, display); ``procedures`` are (CPT code, display, unit price).
    Omitted ones are drawn from the seed (``quantity`` fixes every item's quantity). The total is the
    exact sum of the item nets.
    """
    rng = random.Random(f"claim:{seed}")
    if diagnoses is None:
        diagnoses = [(c[0], c[1]) for c in rng.sample(_CONDITIONS, rng.randrange(1, 4))]
    if procedures is None:
        procedures = rng.sample(_PROCEDURES, rng.randrange(2, 7))
    diagnoses, procedures = list(diagnoses), list(procedures)
    when = created or (datetime(2025, 1, 1, 9, tzinfo=timezone.utc)
                       + timedelta(minutes=rng.randrange(0, 525600)))
    items: list[dict[str, Any]] = []
    total_cents = 0
    for seq, (cpt, display, price) in enumerate(procedures, start=1):
        qty = quantity or (1 if cpt.startswith("99") else rng.choice([1, 1, 2]))
        net_cents = round(price * 100) * qty
        total_cents += net_cents
        item: dict[str, Any] = {
            "sequence": seq,
            "diagnosisSequence": list(range(1, min(len(diagnoses), 2) + 1)),
            "productOrService": {"coding": [{"system": CPT_SYSTEM, "code": cpt, "display": display}]},
            "servicedDate": when.date().isoformat(),
            "quantity": {"value": qty},
            "unitPrice": _money(price),
            "net": _money(net_cents / 100),
        }
        if encounter_reference and version != "R5":
            item["encounter"] = [_ref(encounter_reference)]
        items.append(item)
    insurer = _ref(insurer_reference or "Organization/payer", None)
    provider = _ref(provider_reference or "Practitioner/example", None)
    resource: dict[str, Any] = {
        "resourceType": "Claim",
        "identifier": [{"system": "https://hospital.medledger.example/fhir/sid/claim",
                        "value": f"CLM-{when.year}-{rng.randrange(10**6, 10**7)}"}],
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                             "code": "professional", "display": "Professional"}]},
        "use": "claim",
        "patient": _ref(patient_reference),
        "billablePeriod": {"start": _dt(when), "end": _dt(when + timedelta(hours=1))},
        "created": _dt(when + timedelta(days=rng.randrange(0, 5))),
        "insurer": insurer,
        "provider": provider,
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority",
                                 "code": "normal"}]},
        "diagnosis": [
            {"sequence": i,
             "diagnosisCodeableConcept": {
                 "coding": [{"system": ICD10_SYSTEM, "code": code, "display": disp}]},
             "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-diagnosistype",
                                   "code": "principal" if i == 1 else "clinical"}]}]}
            for i, (code, disp) in enumerate(diagnoses, start=1)
        ],
        "insurance": [{"sequence": 1, "focal": True,
                       "coverage": _ref(coverage_reference or "Coverage/example")}],
        "item": items,
        "total": _money(total_cents / 100),
    }
    if encounter_reference and version == "R5":
        resource["encounter"] = [_ref(encounter_reference)]
    return resource


def patient_bundle(
    seed: int,
    patient_address: str,
    *,
    version: FhirVersion = "R5",
    bundle_type: Literal["collection", "transaction"] = "collection",
) -> dict[str, Any]:
    """A patient's visit as a FHIR Bundle, deterministic in ``seed``: 8-20 KB of canonical JSON,
    about 14 KB on average.

    Contains Patient, Practitioner, two Organizations (clinic and payer), Coverage, Encounter,
    1-3 Conditions (ICD-10 + SNOMED), 1-5 lab Observations (LOINC), 0-2 MedicationRequests
    (RxNorm) and a Claim (ICD-10 diagnoses, CPT items, total). References are ``urn:uuid:``
    fullUrls; a ``transaction`` Bundle adds POST requests to each entry.
    """
    if version not in ("R5", "R4B", "R4"):
        raise ValueError(f"unsupported FHIR version {version!r}")
    if bundle_type not in ("collection", "transaction"):
        raise ValueError(f"unsupported bundle type {bundle_type!r}")
    rng = random.Random(f"bundle:{seed}")
    patient, patient_name = _patient(rng, patient_address, version)
    practitioner, practitioner_name = _practitioner(rng)
    org_name = rng.choice(_ORGS)
    insurer_name, _ = rng.choice(_PAYERS)
    urls = {k: f"urn:uuid:{_uuid(rng)}" for k in
            ("patient", "practitioner", "organization", "insurer", "coverage", "encounter", "claim")}
    visit = datetime(2024, 1, 1, 8, tzinfo=timezone.utc) + timedelta(
        days=rng.randrange(0, 700), minutes=15 * rng.randrange(0, 36))
    ctx = _Ctx(version=version, patient_url=urls["patient"], patient_name=patient_name,
               encounter_url=urls["encounter"], practitioner_url=urls["practitioner"],
               practitioner_name=practitioner_name, organization_url=urls["organization"],
               organization_name=org_name, insurer_url=urls["insurer"], insurer_name=insurer_name,
               coverage_url=urls["coverage"], visit=visit)

    conditions = rng.sample(_CONDITIONS, rng.randrange(1, 4))
    labs = rng.sample(_LABS, rng.randrange(1, 6))
    meds = rng.sample(_MEDICATIONS, rng.randrange(0, 3))
    procedures = rng.sample(_PROCEDURES, rng.randrange(1, 6))

    entries: list[tuple[str, dict[str, Any]]] = [
        (urls["patient"], patient),
        (urls["practitioner"], practitioner),
        (urls["organization"], _organization(org_name, rng, payer=False)),
        (urls["insurer"], _organization(insurer_name, rng, payer=True)),
        (urls["coverage"], _coverage(rng, ctx)),
        (urls["encounter"], _encounter(rng, ctx, conditions[0][3])),
    ]
    condition_urls = []
    for cond in conditions:
        url = f"urn:uuid:{_uuid(rng)}"
        condition_urls.append(url)
        entries.append((url, _condition(rng, ctx, cond)))
    for lab in labs:
        entries.append((f"urn:uuid:{_uuid(rng)}", _observation(rng, ctx, lab)))
    for i, med in enumerate(meds):
        entries.append((f"urn:uuid:{_uuid(rng)}",
                        _medication_request(rng, ctx, med, condition_urls[i % len(condition_urls)])))
    claim = claim_resource(
        seed, patient_reference=urls["patient"], version=version,
        diagnoses=[(c[0], c[1]) for c in conditions], procedures=procedures, created=visit,
        provider_reference=urls["practitioner"], insurer_reference=urls["insurer"],
        coverage_reference=urls["coverage"], encounter_reference=urls["encounter"])
    entries.append((urls["claim"], claim))

    bundle_entries = []
    for url, resource in entries:
        entry: dict[str, Any] = {"fullUrl": url, "resource": resource}
        if bundle_type == "transaction":
            entry["request"] = {"method": "POST", "url": resource["resourceType"]}
        bundle_entries.append(entry)
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{_uuid(rng)}"},
        "type": bundle_type,
        "timestamp": _dt(visit + timedelta(days=1)),
        "entry": bundle_entries,
    }


def class_part(bundle: Mapping[str, Any], data_class: DataClass) -> dict[str, Any]:
    """The ``data_class`` part of ``bundle``, as `record put` splits it (`medledger.data_classes.split`).
    ValueError if the bundle holds none of that class."""
    from ..data_classes import split

    for part in split(bundle):
        if part.data_class == data_class:
            return dict(part.document)
    raise ValueError(f"the bundle holds no {data_class.name.lower()}")


def class_bundle(seed: int, patient_address: str, data_class: DataClass, **kwargs: Any) -> dict[str, Any]:
    """The ``data_class`` part of ``patient_bundle(seed, patient_address)``: a Bundle of one class."""
    return class_part(patient_bundle(seed, patient_address, **kwargs), data_class)


# --------------------------------------------------------------------------- PHI inventory


@dataclass(frozen=True)
class PhiFields:
    """The plaintext PHI values of a Bundle, grouped by kind (every value as a string, exactly as
    it appears in the canonical JSON; amounts in RFC 8785 number form)."""

    names: tuple[str, ...]
    birth_dates: tuple[str, ...]
    identifiers: tuple[str, ...]
    address_lines: tuple[str, ...]
    telecom: tuple[str, ...]
    codes: tuple[str, ...]
    amounts: tuple[str, ...]

    def all(self) -> tuple[str, ...]:
        """Every PHI value, de-duplicated, in a stable order."""
        seen: dict[str, None] = {}
        for group in (self.names, self.birth_dates, self.identifiers, self.address_lines,
                      self.telecom, self.codes, self.amounts):
            for value in group:
                seen.setdefault(value, None)
        return tuple(seen)


def _amount_text(value: Any) -> str:
    """An amount as it appears in the canonical JSON (RFC 8785 number form: 12.5, 128)."""
    import rfc8785

    return rfc8785.dumps(value).decode()


def _codings(node: Any) -> Iterable[Mapping[str, Any]]:
    """Every Coding (an object with both system and code) anywhere under ``node``."""
    if isinstance(node, Mapping):
        if "system" in node and "code" in node and isinstance(node.get("code"), str):
            yield node
        for value in node.values():
            yield from _codings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _codings(value)


_CLINICAL_CODE_SYSTEMS = {ICD10_SYSTEM, SNOMED_SYSTEM, LOINC_SYSTEM, RXNORM_SYSTEM, CPT_SYSTEM}


def phi_fields(bundle: Mapping[str, Any]) -> PhiFields:
    """List the PHI plaintext of a Bundle (or a single resource): patient names, birth date,
    identifiers (MRN, SSN, member/subscriber ids, claim ids), address lines/city/postal code,
    phone and e-mail, clinical codes (ICD-10, SNOMED CT, LOINC, RxNorm, CPT) and billed amounts.
    """
    resources: list[Mapping[str, Any]]
    if bundle.get("resourceType") == "Bundle":
        resources = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
    else:
        resources = [bundle]
    names: list[str] = []
    births: list[str] = []
    idents: list[str] = []
    lines: list[str] = []
    telecom: list[str] = []
    codes: list[str] = []
    amounts: list[str] = []
    for res in resources:
        rtype = res.get("resourceType")
        if rtype == "Patient":
            for name in res.get("name", []):
                names.extend(name.get("given", []))
                if "family" in name:
                    names.append(name["family"])
                if "text" in name:
                    names.append(name["text"])
            if "birthDate" in res:
                births.append(res["birthDate"])
            for addr in res.get("address", []):
                lines.extend(addr.get("line", []))
                lines.extend(addr[k] for k in ("city", "postalCode") if k in addr)
            telecom.extend(t["value"] for t in res.get("telecom", []) if "value" in t)
            idents.extend(i["value"] for i in res.get("identifier", [])
                          if "value" in i and i.get("system") != ETHEREUM_ADDRESS_SYSTEM)
        elif rtype in ("Coverage", "Claim", "Encounter"):
            idents.extend(i["value"] for i in res.get("identifier", []) if "value" in i)
            sub = res.get("subscriberId")
            if isinstance(sub, str):  # R4B: a string; R5: a list of Identifiers
                idents.append(sub)
            elif isinstance(sub, list):
                idents.extend(i["value"] for i in sub if "value" in i)
        if rtype == "Claim":
            if "total" in res:
                amounts.append(_amount_text(res["total"]["value"]))
            for item in res.get("item", []):
                for key in ("net", "unitPrice"):
                    if key in item:
                        amounts.append(_amount_text(item[key]["value"]))
        for coding in _codings(res):
            if coding.get("system") in _CLINICAL_CODE_SYSTEMS:
                codes.append(coding["code"])

    def uniq(values: list[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(values))

    return PhiFields(names=uniq(names), birth_dates=uniq(births), identifiers=uniq(idents),
                     address_lines=uniq(lines), telecom=uniq(telecom), codes=uniq(codes),
                     amounts=uniq(amounts))
