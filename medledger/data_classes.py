"""Which data class a FHIR resource belongs to: the documented table behind minimum-necessary release.

A record's data classes are what it *contains*: the class of every resource in it. A reader receives
only the resources of the classes it may see (`filter_bundle`). The class of one resource is:

1. a sensitivity security label in ``meta.security`` (HL7 v3 ActCode), if present:
   ``PSY``, ``PSYTHPN``, ``BH`` -> mental-health; ``ETH``, ``SUD`` -> substance-use;
   ``GDIS`` -> genomics. A label always wins over the type, so a psychiatric Condition is
   mental-health, not conditions.
2. otherwise the resource type, by `RESOURCE_CLASSES` (Patient -> demographics, as the privacy issue asks;
   the parties named in a record - Practitioner, Organization, ... - count as demographics too, since
   they tell who treated the patient where);
3. otherwise `DEFAULT_CLASS` (notes): an unknown type is released only to readers consented for notes.

Observation and DiagnosticReport look at their category first (``imaging`` -> imaging, ``genomics``
-> genomics, anything else -> labs).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .scopes import SENSITIVE, DataClass

D = DataClass

#: Resource type -> data class (FHIR R4/R4B/R5 names).
RESOURCE_CLASSES: Mapping[str, DataClass] = {
    # who the patient is, and who treated them where
    "Patient": D.DEMOGRAPHICS, "RelatedPerson": D.DEMOGRAPHICS, "Person": D.DEMOGRAPHICS,
    "Practitioner": D.DEMOGRAPHICS, "PractitionerRole": D.DEMOGRAPHICS, "Organization": D.DEMOGRAPHICS,
    "Location": D.DEMOGRAPHICS,
    # problems, visits and what was done
    "Condition": D.CONDITIONS, "Encounter": D.CONDITIONS, "Procedure": D.CONDITIONS,
    "EpisodeOfCare": D.CONDITIONS, "CarePlan": D.CONDITIONS, "Goal": D.CONDITIONS,
    "ClinicalImpression": D.CONDITIONS, "FamilyMemberHistory": D.CONDITIONS,
    # medications
    "Medication": D.MEDICATIONS, "MedicationRequest": D.MEDICATIONS, "MedicationStatement": D.MEDICATIONS,
    "MedicationDispense": D.MEDICATIONS, "MedicationAdministration": D.MEDICATIONS, "Immunization": D.MEDICATIONS,
    # allergies
    "AllergyIntolerance": D.ALLERGIES,
    # labs and vitals
    "Observation": D.LABS, "DiagnosticReport": D.LABS, "Specimen": D.LABS,
    # imaging
    "ImagingStudy": D.IMAGING, "Media": D.IMAGING, "ImagingSelection": D.IMAGING,
    # notes and documents
    "DocumentReference": D.NOTES, "Composition": D.NOTES, "Communication": D.NOTES,
    # billing and coverage
    "Claim": D.BILLING, "ClaimResponse": D.BILLING, "Coverage": D.BILLING, "ExplanationOfBenefit": D.BILLING,
    "Invoice": D.BILLING, "Account": D.BILLING, "CoverageEligibilityRequest": D.BILLING,
    "CoverageEligibilityResponse": D.BILLING,
    # genomics
    "MolecularSequence": D.GENOMICS, "GenomicStudy": D.GENOMICS,
}

DEFAULT_CLASS = D.NOTES

ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#: HL7 v3 ActCode sensitivity labels -> data class.
SECURITY_LABELS: Mapping[str, DataClass] = {
    "PSY": D.MENTAL_HEALTH, "PSYTHPN": D.MENTAL_HEALTH, "BH": D.MENTAL_HEALTH,
    "ETH": D.SUBSTANCE_USE, "SUD": D.SUBSTANCE_USE,
    "GDIS": D.GENOMICS,
}

_CATEGORY_CLASSES = {"imaging": D.IMAGING, "genomics": D.GENOMICS, "GE": D.GENOMICS, "RAD": D.IMAGING}


def _category_codes(resource: Mapping[str, Any]) -> Iterator[str]:
    cats = resource.get("category")
    for cat in cats if isinstance(cats, list) else [cats] if isinstance(cats, dict) else []:
        for coding in cat.get("coding", []) if isinstance(cat, dict) else []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                yield coding["code"]


def class_of(resource: Mapping[str, Any]) -> DataClass:
    """The data class of one FHIR resource (see the module docstring for the rules)."""
    meta = resource.get("meta")
    labels = meta.get("security", []) if isinstance(meta, dict) else []
    for label in labels if isinstance(labels, list) else []:
        if isinstance(label, dict) and label.get("code") in SECURITY_LABELS:
            return SECURITY_LABELS[label["code"]]
    rtype = resource.get("resourceType")
    if rtype in ("Observation", "DiagnosticReport"):
        for code in _category_codes(resource):
            if code in _CATEGORY_CLASSES:
                return _CATEGORY_CLASSES[code]
    return RESOURCE_CLASSES.get(rtype, DEFAULT_CLASS) if isinstance(rtype, str) else DEFAULT_CLASS


def resources_of(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The resources a record holds: a Bundle's entries, or the document itself."""
    if doc.get("resourceType") == "Bundle":
        entries = doc.get("entry", [])
        return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)] \
            if isinstance(entries, list) else []
    return [doc]


def classes_of(doc: Mapping[str, Any]) -> frozenset[DataClass]:
    """Every data class a record contains."""
    return frozenset(class_of(r) for r in resources_of(doc))


def mask_of(classes: Iterable[DataClass]) -> int:
    return sum(1 << int(c) for c in set(classes))


def primary_class(doc: Mapping[str, Any]) -> DataClass:
    """The one class anchored on chain for a record (RecordRegistry keeps one label per record):
    the lowest sensitive class present, else the most frequent non-demographic class (ties: the
    lowest), else demographics."""
    counts = Counter(class_of(r) for r in resources_of(doc))
    sensitive = sorted(c for c in counts if c in SENSITIVE)
    if sensitive:
        return sensitive[0]
    clinical = [(-n, int(c)) for c, n in counts.items() if c != D.DEMOGRAPHICS]
    return DataClass(min(clinical)[1]) if clinical else D.DEMOGRAPHICS


def filter_bundle(doc: Mapping[str, Any], allowed: Iterable[DataClass]) -> dict[str, Any]:
    """A copy of ``doc`` keeping only the resources whose class is in ``allowed``.

    For a Bundle the entries are filtered (``total`` of a searchset is recomputed); a single resource
    comes back whole or as None-equivalent empty dict if its class is not allowed.
    """
    allowed = frozenset(allowed)
    if doc.get("resourceType") != "Bundle":
        return dict(doc) if class_of(doc) in allowed else {}
    out = dict(doc)
    entries = doc.get("entry", [])
    out["entry"] = [e for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)
                    and class_of(e["resource"]) in allowed] if isinstance(entries, list) else []
    if "total" in out:
        out["total"] = len(out["entry"])
    return out
