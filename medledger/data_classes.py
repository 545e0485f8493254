"""Which data class a FHIR resource belongs to: the documented table behind minimum-necessary release.

A record's data classes are what it *contains*: the class of every resource in it. A reader receives
only the resources of the classes it may see (`filter_bundle`). The class of one resource is:

1. a sensitivity security label in ``meta.security`` (HL7 v3 ActCode), if present:
   ``PSY``, ``PSYTHPN``, ``BH``, ``MH`` -> mental-health; ``ETH``, ``SUD`` -> substance-use;
   ``GDIS`` -> genomics. A label always wins over the type, so a psychiatric Condition is
   mental-health, not conditions.
2. otherwise the resource type, by `RESOURCE_CLASSES` (Patient -> demographics, as the privacy issue asks;
   the parties named in a record - Practitioner, Organization, ... - count as demographics too, since
   they tell who treated the patient where);
3. otherwise `DEFAULT_CLASS` (notes): an unknown type is released only to readers consented for notes.

Observation and DiagnosticReport look at their category first (``imaging`` -> imaging, ``genomics``
-> genomics, anything else -> labs).

Writing a record (`record put`, `put-batch`, the gateway's POST) starts with `contents`: the classes a
document holds. `parts_of` adds the two rules of minimum necessary: a declared class must cover the
contents (else `DataClassMismatch` lists what was found), and a Bundle of several classes is split into
one Bundle per class (`split`), so that a reader is sealed only the resources of its classes.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import DataClassMismatch
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
    "PSY": D.MENTAL_HEALTH, "PSYTHPN": D.MENTAL_HEALTH, "BH": D.MENTAL_HEALTH, "MH": D.MENTAL_HEALTH,
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


# --------------------------------------------------------------------------- what a record holds


def class_label(data_class: int) -> str:
    """A data class as the CLI and the docs name it, e.g. "mental-health"."""
    return DataClass(data_class).name.lower().replace("_", "-")


@dataclass(frozen=True)
class Contents:
    """The classes a document holds: for each class (in class order), its resource types and how many
    of each (in document order). ``kind`` is "Bundle" or the single resource's type."""

    kind: str
    found: tuple[tuple[DataClass, tuple[tuple[str, int], ...]], ...]

    @property
    def classes(self) -> frozenset[DataClass]:
        return frozenset(c for c, _ in self.found)

    def describe(self) -> str:
        """E.g. "demographics (Patient), conditions (Condition ×2), labs (Observation)"."""
        return ", ".join(f"{class_label(c)} (" + ", ".join(t if n == 1 else f"{t} ×{n}" for t, n in types) + ")"
                         for c, types in self.found)


def contents(doc: Mapping[str, Any]) -> Contents:
    """What ``doc`` holds, class by class. DataClassMismatch if it holds no resource at all (an empty
    Bundle is nothing to seal)."""
    kind = "Bundle" if doc.get("resourceType") == "Bundle" else str(doc.get("resourceType"))
    counts: dict[DataClass, dict[str, int]] = {}
    for resource in resources_of(doc):
        types = counts.setdefault(class_of(resource), {})
        rtype = str(resource.get("resourceType"))
        types[rtype] = types.get(rtype, 0) + 1
    if not counts:
        raise DataClassMismatch(f"this {kind} holds no resources: there is nothing to seal")
    return Contents(kind, tuple((c, tuple(counts[c].items())) for c in sorted(counts)))


def require_covered(found: Contents, declared: DataClass, declared_as: str) -> None:
    """DataClassMismatch, listing what was found, unless every resource is of class ``declared``.
    ``declared_as`` names where the class came from, e.g. "--class conditions"."""
    if found.classes - {declared}:
        raise DataClassMismatch(f"{declared_as} does not cover this {found.kind}: it holds {found.describe()}")


@dataclass(frozen=True)
class Part:
    """One class's share of a document: what one record holds."""

    data_class: DataClass
    document: Mapping[str, Any]

    @property
    def label(self) -> str:
        return class_label(self.data_class)


#: Bundle elements a part does not inherit: they identify, sign or page the whole Bundle.
_WHOLE_BUNDLE = ("id", "identifier", "signature", "link", "entry")
#: Bundle types whose first entry speaks for the whole Bundle (bdl-11, bdl-12): their parts are collections.
_WHOLE_TYPES = {"document": "collection", "message": "collection"}
_URI_SYSTEM = "urn:ietf:rfc:3986"


def split(doc: Mapping[str, Any], found: Contents | None = None) -> tuple[Part, ...]:
    """``doc`` as one part per class, in class order. A document of one class is one part: itself,
    unchanged. A Bundle of several classes becomes one Bundle per class, each holding its class's entries
    in their original order (fullUrl and resource untouched but for references, below), of the same
    type (a ``document`` or ``message`` Bundle's parts are ``collection`` Bundles, since their
    Composition or MessageHeader speaks for the whole), without the whole Bundle's id, identifier,
    signature and links, and with ``total`` recounted.

    References between parts: a reference to an entry of another part cannot resolve inside this one,
    so it becomes a logical reference, ``{"type": <its type>, "identifier": {"system":
    "urn:ietf:rfc:3986", "value": <that entry's fullUrl>}}``; its display is dropped (a Patient's name
    is demographics, not conditions) and an identifier already there is kept as is. A reader holding both
    parts resolves it by fullUrl; a reader holding one learns only that such a resource exists. References
    inside a part are left as they are.

    DataClassMismatch if a Bundle of several classes has an entry without a resource (its class is
    unknown)."""
    found = found or contents(doc)
    if len(found.classes) == 1:
        return (Part(next(iter(found.classes)), doc),)
    entries = doc.get("entry")
    assert isinstance(entries, list)  # several classes: only a Bundle has several resources
    targets: dict[str, tuple[DataClass, str | None, str]] = {}
    grouped: dict[DataClass, list[Mapping[str, Any]]] = {}
    for i, entry in enumerate(entries):
        if not (isinstance(entry, dict) and isinstance(entry.get("resource"), dict)):
            raise DataClassMismatch(f"Bundle.entry[{i}] holds no resource, so its class is unknown and this Bundle "
                                    f"of {len(found.classes)} classes cannot be split: send one class per Bundle")
        resource, url = entry["resource"], entry.get("fullUrl")
        cls, rtype = class_of(resource), str(resource.get("resourceType"))
        grouped.setdefault(cls, []).append(entry)
        url = url if isinstance(url, str) else None
        if url:
            targets[url] = (cls, url, rtype)
        if isinstance(resource.get("id"), str):
            targets.setdefault(f"{rtype}/{resource['id']}", (cls, url, rtype))
    head = {k: v for k, v in doc.items() if k not in _WHOLE_BUNDLE}
    if head.get("type") in _WHOLE_TYPES:
        head["type"] = _WHOLE_TYPES[head["type"]]
    parts = []
    for cls in sorted(grouped):
        part = dict(head)
        part["entry"] = [{**e, "resource": _relink(e["resource"], cls, targets)} for e in grouped[cls]]
        if "total" in part:
            part["total"] = len(part["entry"])
        parts.append(Part(cls, part))
    return tuple(parts)


def _relink(node: Any, own: DataClass, targets: Mapping[str, tuple[DataClass, str | None, str]]) -> Any:
    """``node`` with every reference to an entry of another class made logical (see `split`)."""
    if isinstance(node, list):
        return [_relink(v, own, targets) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _relink(v, own, targets) for k, v in node.items()}
    ref = node.get("reference")
    target = targets.get(ref) if isinstance(ref, str) else None
    if target is not None and target[0] != own:
        _cls, url, rtype = target
        del out["reference"]
        out.pop("display", None)  # e.g. a Patient's name: the other part's content
        out.setdefault("type", rtype)
        out.setdefault("identifier", {"system": _URI_SYSTEM, "value": url} if url else {"value": ref})
    return out


def parts_of(doc: Mapping[str, Any], declared: DataClass | None = None, declared_as: str | None = None
             ) -> tuple[Part, ...]:
    """The records ``doc`` becomes: its classes from its contents; a ``declared`` class must cover them
    (else DataClassMismatch listing what was found, ``declared_as`` naming the declaration); one part per
    class (`split`). The one implementation behind `record put`, `record put-batch` and `amend`."""
    found = contents(doc)
    if declared is not None:
        require_covered(found, declared, declared_as or f"class {class_label(declared)}")
    return split(doc, found)
