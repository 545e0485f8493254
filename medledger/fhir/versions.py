"""FHIR versions: which one a document is, and how R4 is read.

MedLedger accepts R4 (4.0.1), R4B (4.3.0) and R5 (5.0.0). **R4 is read through the R4B
definitions**: R4B changed only the medication-definition and evidence resources, so every resource
MedLedger exchanges (Patient, Encounter, Condition, Observation, MedicationRequest, Claim,
ClaimResponse, Coverage, Consent, Bundle, ...) has the same elements, cardinalities and required
bindings in R4 and R4B. The R4 resource types R4B removed (`R4_ONLY`) are refused with a message
saying so; the types R4B added (`R4B_ONLY`) are not valid R4.

Detection (``version="auto"``) validates the content:

* valid as R4 -> "R4" (this includes documents that are valid in R4 and R5 alike, such as most
  Patients: they mean the same in both, and R4 is what US systems exchange);
* otherwise valid as R5 -> "R5";
* valid as neither -> refused with `FhirVersionUnknown`, naming the likely version (the one with
  fewer errors), its errors with their paths, and the ``--fhir-version`` flag.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from medledger.errors import FhirInvalid, FhirVersionUnknown
from medledger.fhir.validation import ValidationReport, check, quick_valid

VERSIONS: Final = ("R4", "R4B", "R5")
AUTO: Final = "auto"
_ALIASES: Final = {"r4": "R4", "4.0": "R4", "4.0.1": "R4", "r4b": "R4B", "4.3": "R4B", "4.3.0": "R4B",
                   "r5": "R5", "5.0": "R5", "5.0.0": "R5", "auto": AUTO}
R4_ONLY: Final = frozenset({
    "EffectEvidenceSynthesis", "MedicinalProduct", "MedicinalProductAuthorization",
    "MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient",
    "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "RiskEvidenceSynthesis",
    "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
    "SubstanceSourceMaterial", "SubstanceSpecification"})
R4B_ONLY: Final = frozenset({
    "AdministrableProductDefinition", "Citation", "ClinicalUseDefinition", "Evidence", "EvidenceReport",
    "EvidenceVariable", "Ingredient", "ManufacturedItemDefinition", "MedicinalProductDefinition",
    "NutritionProduct", "PackagedProductDefinition", "RegulatedAuthorization", "SubscriptionStatus",
    "SubscriptionTopic"})


def normalize(version: str) -> str:
    """"r4" / "R4" / "4.0.1" -> "R4", ..., "auto" -> "auto"; ValueError for anything else."""
    v = _ALIASES.get(str(version).strip().lower())
    if v is None:
        raise ValueError(f"unsupported FHIR version {version!r}; expected one of R4, R4B, R5 or auto")
    return v


def model_version(version: str) -> str:
    """The definitions a version is validated with: R4 -> R4B (see the module note)."""
    v = normalize(version)
    if v == AUTO:
        raise ValueError("model_version needs a concrete FHIR version")
    return "R4B" if v == "R4" else v


def _resource_types(doc: Mapping[str, Any]) -> set[str]:
    found = {doc.get("resourceType")}
    for entry in doc.get("entry") or () if doc.get("resourceType") == "Bundle" else ():
        if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping):
            found |= _resource_types(entry["resource"])
    for c in doc.get("contained") or ():
        if isinstance(c, Mapping):
            found.add(c.get("resourceType"))
    return {t for t in found if isinstance(t, str)}


def _check_r4_mapping(doc: Mapping[str, Any], version: str) -> None:
    types = _resource_types(doc)
    if version == "R4":
        if bad := sorted(types & R4_ONLY):
            raise FhirInvalid(f"resourceType: {', '.join(bad)} exists only in FHIR R4 and was replaced in R4B; "
                              "MedLedger reads R4 through the R4B definitions and cannot validate it")
        if bad := sorted(types & R4B_ONLY):
            raise FhirInvalid(f"resourceType: {', '.join(bad)} is not an R4 resource (it was added in R4B); "
                              "pass --fhir-version R4B")


def resolve(doc: Any, version: str = AUTO, text: str | None = None) -> ValidationReport:
    """Validate ``doc`` as ``version`` (or detect it) and return the passing report; raise otherwise.

    Raises FhirValidationFailed (every issue with its path) for a given version, FhirVersionUnknown when
    ``auto`` finds no version the document is valid in. ``text`` is ``doc`` as JSON text if the caller has it.
    """
    v = normalize(version)
    if not isinstance(doc, Mapping) or v != AUTO:
        if isinstance(doc, Mapping):
            _check_r4_mapping(doc, v)
        report = check(doc, "R4" if v == AUTO else v, text)
        report.raise_for_issues()
        return report
    types = _resource_types(doc)
    first = "R4B" if types & R4B_ONLY else "R4"
    # a cheap structural screen first (most documents fit one version only); the last candidate needs none
    if quick_valid(doc, first) and (report := check(doc, first, text)).ok:
        return report
    if (report := check(doc, "R5", text)).ok:
        return report
    r4, r5 = check(doc, first), check(doc, "R5")
    likely = r4 if len(r4.issues) <= len(r5.issues) else r5
    other = r5 if likely is r4 else r4
    raise FhirVersionUnknown(
        f"FHIR version not detected: the document is valid in none of R4, R4B, R5; it looks most like "
        f"{likely.version} ({len(likely.issues)} error(s) as {likely.version}, {len(other.issues)} as "
        f"{other.version}). If it is another version pass --fhir-version "
        f"{'R5' if likely is r4 else 'R4'}. {likely.message()}")


def detect(doc: Any) -> str:
    """The FHIR version ``doc`` is valid in ("R4", "R4B" or "R5"); raises like `resolve`."""
    return resolve(doc, AUTO).version
