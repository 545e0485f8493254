"""A corpus of US Core-shaped FHIR resources in R4, R4B and R5: valid ones, and invalid ones with the
exact FHIR paths a validator must report (every error, in one run).

Valid resources come from `medledger.testing.synthetic` (Patient with MRN / SSN / address identifiers,
Encounter, Condition, Observation, MedicationRequest, Claim, and the Bundles holding them). Each
invalid case is a valid resource with one or more deliberate defects: a wrong code in a required
binding, a missing required element, an empty element (ele-1), a bad primitive, an unknown element,
two choices of one ``[x]`` element, a FHIRPath invariant violation, or a broken reference.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from medledger.testing import synthetic

PATIENT = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
VERSIONS = ("R4", "R4B", "R5")
US_CORE_TYPES = ("Patient", "Encounter", "Condition", "Observation", "MedicationRequest", "Claim")


@dataclass(frozen=True)
class Case:
    name: str
    version: str
    doc: dict[str, Any]
    paths: frozenset[str]  # empty: valid
    rules: frozenset[str] = frozenset()


def bundle(version: str, seed: int = 3, bundle_type: str = "collection") -> dict[str, Any]:
    # seed 3 holds at least one MedicationRequest
    return synthetic.patient_bundle(seed, PATIENT, version=version, bundle_type=bundle_type)  # type: ignore[arg-type]


def resources(version: str) -> dict[str, dict[str, Any]]:
    """One resource of each US Core type, standalone (references stay urn:uuid, i.e. external)."""
    out: dict[str, dict[str, Any]] = {}
    for seed in range(3, 12):
        for entry in bundle(version, seed)["entry"]:
            r = entry["resource"]
            out.setdefault(r["resourceType"], r)
        if all(t in out for t in US_CORE_TYPES):
            break
    return {t: copy.deepcopy(out[t]) for t in US_CORE_TYPES}


def _index(doc: dict[str, Any], rtype: str) -> int:
    return next(i for i, e in enumerate(doc["entry"]) if e["resource"]["resourceType"] == rtype)


def cases() -> list[Case]:
    out: list[Case] = []
    for v in VERSIONS:
        res = resources(v)
        r5 = v == "R5"
        for rtype, r in res.items():
            out.append(Case(f"valid-{rtype}", v, r, frozenset()))
        out.append(Case("valid-bundle-collection", v, bundle(v), frozenset()))
        out.append(Case("valid-bundle-transaction", v, bundle(v, 4, "transaction"), frozenset()))

        def bad(name: str, rtype: str, paths: set[str], rules: set[str], edit, _v=v, _res=res) -> None:
            doc = copy.deepcopy(_res[rtype])
            edit(doc)
            out.append(Case(name, _v, doc, frozenset(paths), frozenset(rules)))

        # required bindings
        bad("obs-status-code", "Observation", {"Observation.status"}, {"binding"},
            lambda d: d.update(status="not-a-status"))
        bad("patient-gender-code", "Patient", {"Patient.gender"}, {"binding"}, lambda d: d.update(gender="M"))
        bad("encounter-status-other-version", "Encounter", {"Encounter.status"}, {"binding"},
            lambda d, r5=r5: d.update(status="finished" if r5 else "completed"))
        bad("claim-use-code", "Claim", {"Claim.use"}, {"binding"}, lambda d: d.update(use="bill"))
        bad("medreq-intent-status", "MedicationRequest",
            {"MedicationRequest.intent", "MedicationRequest.status"}, {"binding"},
            lambda d: d.update(intent="suggestion", status="paused"))
        bad("condition-clinical-status", "Condition", {"Condition.clinicalStatus.coding"}, {"binding"},
            lambda d: d["clinicalStatus"]["coding"][0].update(code="cured"))
        bad("identifier-use", "Patient", {"Patient.identifier[1].use"}, {"binding"},
            lambda d: d["identifier"][1].update(use="primary"))
        # cardinality
        bad("obs-missing-code", "Observation", {"Observation.code"}, {"cardinality"}, lambda d: d.pop("code"))
        bad("claim-missing-patient-and-status", "Claim", {"Claim.patient", "Claim.status"}, {"cardinality"},
            lambda d: (d.pop("patient"), d.pop("status")))
        bad("medreq-missing-subject", "MedicationRequest", {"MedicationRequest.subject"}, {"cardinality"},
            lambda d: d.pop("subject"))
        bad("claim-item-missing-sequence", "Claim", {"Claim.item[0].sequence"}, {"cardinality"},
            lambda d: d["item"][0].pop("sequence"))
        # types, ele-1, unknown elements, choices
        bad("patient-birthdate", "Patient", {"Patient.birthDate"}, {"type"},
            lambda d: d.update(birthDate="31/12/1999"))
        bad("claim-item-sequence-type", "Claim", {"Claim.item[0].sequence"}, {"type"},
            lambda d: d["item"][0].update(sequence="first"))
        bad("patient-empty-name-and-identifier", "Patient", {"Patient.name", "Patient.identifier[0]"}, {"ele-1"},
            lambda d: d.update(name=[], identifier=[{}] + d["identifier"][1:]))
        bad("patient-empty-string", "Patient", {"Patient.name[0].family"}, {"ele-1"},
            lambda d: d["name"][0].update(family=""))
        bad("patient-unknown-element", "Patient", {"Patient.favouriteColour"}, {"structure"},
            lambda d: d.update(favouriteColour="teal"))
        bad("obs-two-values", "Observation", {"Observation.valueQuantity"}, {"choice"},
            lambda d: d.update(valueString="high"))
        # invariants
        bad("obs-6", "Observation", {"Observation"}, {"invariant"},
            lambda d: d.update(dataAbsentReason={"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]}))
        bad("con-5", "Condition", {"Condition"}, {"invariant"},
            lambda d: d.update(verificationStatus={"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "entered-in-error"}]}))
        bad("con-4", "Condition", {"Condition"}, {"invariant"},
            lambda d: d.update(abatementDateTime="2025-01-01T00:00:00Z"))
        bad("ref-1-contained", "Observation", {"Observation.performer[0].reference"}, {"reference"},
            lambda d: d.update(performer=[{"reference": "#lab"}]))
        # several errors in one run, of different kinds
        bad("many-errors", "Observation",
            {"Observation.status", "Observation.code", "Observation.effectiveDateTime", "Observation.note"},
            {"binding", "cardinality", "type", "ele-1"},
            lambda d: (d.update(status="done", effectiveDateTime="yesterday", note=[]), d.pop("code")))

        # Bundles: broken references and nested paths
        doc = bundle(v)
        i = _index(doc, "Observation")
        doc["entry"][i]["resource"]["subject"]["reference"] = "urn:uuid:00000000-0000-4000-8000-000000000000"
        j = _index(doc, "Claim")
        doc["entry"][j]["resource"]["provider"]["reference"] = "Practitioner/not-in-bundle"
        out.append(Case("bundle-broken-references", v, doc, frozenset({
            f"Bundle.entry[{i}].resource.subject.reference", f"Bundle.entry[{j}].resource.provider.reference"}),
            frozenset({"reference"})))
        doc = bundle(v)
        i = _index(doc, "Observation")
        doc["entry"][i]["resource"]["status"] = "bogus"
        doc["entry"][0]["request"] = {"method": "POST", "url": "Patient"}
        out.append(Case("bundle-nested-binding-and-bdl-3", v, doc,
                        frozenset({f"Bundle.entry[{i}].resource.status", "Bundle"}),
                        frozenset({"binding", "invariant"})))
    return out
