"""Resource-level FHIRPath invariants checked by the validator (a documented table).

The expressions are HL7's own (the ``constraint`` entries of each resource's StructureDefinition,
severity *error*), evaluated with ``fhirpathpy``. Only invariants that matter when a resource is
exchanged are listed; docs/FHIR.md names them. ``ele-1`` (every element has a value or children)
and the Quantity rule ``qty-3`` are enforced by the JSON Schema instead (schema.py), and
``ref-1`` (a ``#id`` reference resolves to a contained resource) by the reference check in
validation.py, because there they cost nothing per element.

``when`` lists the top-level elements whose presence makes the invariant able to fail: each
expression here has the form ``A.empty() or ...`` (or only reads A), so when none of them is present
the invariant holds and evaluating it would be wasted time.

Two engines evaluate the table. ``fhirpath`` runs HL7's expression with ``fhirpathpy``: it is the
reference, but costs 0.5-3 ms per expression on a Bundle (about 11 ms per 15 KB Bundle, 100x the
rest of validation). ``native`` (the default) runs a Python twin of each expression, written next to
it; tests/test_fhir_validation.py checks that both engines agree on the corpus and on randomly mutated
resources. ``MEDLEDGER_FHIR_INVARIANTS=fhirpath`` selects the reference engine at run time.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Final


@dataclass(frozen=True)
class Invariant:
    """One FHIRPath constraint of a resource type."""

    key: str
    human: str
    expression: str
    when: tuple[str, ...]
    bundle_entries: bool = False  # reads only Bundle.type / total / entry.{fullUrl, request, response, search,
    #                               resource.meta.versionId}: fhirpath evaluates it on that projection


_DOM = (
    Invariant("dom-2", "If the resource is contained in another resource, it SHALL NOT contain nested Resources",
              "contained.contained.empty()", ("contained",)),
    Invariant("dom-4", "If a resource is contained in another resource, it SHALL NOT have a meta.versionId or "
              "a meta.lastUpdated", "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
              ("contained",)),
    Invariant("dom-5", "If a resource is contained in another resource, it SHALL NOT have a security label",
              "contained.meta.security.empty()", ("contained",)),
)
_CON_4 = Invariant(
    "con-4", "If condition is abated, then clinicalStatus must be either inactive, resolved, or remission",
    "abatement.empty() or clinicalStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/"
    "condition-clinical' and (code='resolved' or code='remission' or code='inactive')).exists()",
    ("abatementDateTime", "abatementAge", "abatementPeriod", "abatementRange", "abatementString",
     "abatementBoolean"))
_CON_5 = Invariant(
    "con-5", "Condition.clinicalStatus SHALL NOT be present if verification Status is entered-in-error",
    "verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status' "
    "and code='entered-in-error').empty() or clinicalStatus.empty()", ("verificationStatus",))
_OBS_6 = Invariant("obs-6", "dataAbsentReason SHALL only be present if Observation.value[x] is not present",
                   "dataAbsentReason.empty() or value.empty()", ("dataAbsentReason",))
_OBS_7 = Invariant(
    "obs-7", "If Observation.code is the same as an Observation.component.code then the value element "
    "associated with the code SHALL NOT be present",
    "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()",
    ("component",))
_PAT_1 = Invariant("pat-1", "SHALL at least contain a contact's details or a reference to an organization",
                   "contact.all(name.exists() or telecom.exists() or address.exists() or organization.exists())",
                   ("contact",))
_BDL = (
    Invariant("bdl-1", "total only when a search or history",
              "total.empty() or (type = 'searchset') or (type = 'history')", ("total",), True),
    Invariant("bdl-2", "entry.search only when a search", "(type = 'searchset') or entry.search.empty()",
              ("entry",), True),
    Invariant("bdl-3", "entry.request mandatory for batch/transaction/history, otherwise prohibited",
              "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' or "
              "%resource.type = 'history'))", ("entry",), True),
    Invariant("bdl-4", "entry.response mandatory for batch-response/transaction-response/history, otherwise "
              "prohibited", "entry.all(response.exists() = (%resource.type = 'batch-response' or "
              "%resource.type = 'transaction-response' or %resource.type = 'history'))", ("entry",), True),
    Invariant("bdl-7", "FullUrl must be unique in a bundle, or else entries with the same fullUrl must have "
              "different meta.versionId (except in history bundles)",
              "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId)"
              ".isDistinct()", ("entry",), True),
    Invariant("bdl-8", "fullUrl cannot be a version specific reference",
              "entry.all(fullUrl.exists() implies fullUrl.contains('/_history/').not())", ("entry",), True),
)
_PPC_1_R4 = Invariant("ppc-1", "Either a Policy or PolicyRule", "policy.exists() or policyRule.exists()",
                      ("resourceType",))
_OBS_8_R5 = Invariant("obs-8", "bodyStructure SHALL only be present if Observation.bodySite is not present",
                      "bodySite.exists() implies bodyStructure.exists().not()", ("bodySite",))

_COMMON: Final[dict[str, tuple[Invariant, ...]]] = {
    "Bundle": _BDL,
    "Condition": (_CON_4, _CON_5),
    "Observation": (_OBS_6, _OBS_7),
    "Patient": (_PAT_1,),
}
#: version -> resource type -> invariants; every DomainResource also gets dom-2/4/5.
INVARIANTS: Final[dict[str, dict[str, tuple[Invariant, ...]]]] = {
    "R4B": {**_COMMON, "Consent": (_PPC_1_R4,)},
    "R5": {**_COMMON, "Observation": (_OBS_6, _OBS_7, _OBS_8_R5)},
}


def invariants_for(resource_type: str, version: str) -> tuple[Invariant, ...]:
    """The invariants checked on a resource of ``resource_type`` in ``version`` (R4 reads as R4B)."""
    own = INVARIANTS[version].get(resource_type, ())
    return own if resource_type in ("Bundle", "Binary", "Parameters") else _DOM + own


@cache
def compiled_expression(expression: str, version: str) -> Any:
    """A compiled fhirpathpy expression (parsing is the expensive part, done once per process)."""
    import fhirpathpy
    from fhirpathpy.models import models

    return fhirpathpy.compile(expression, models["r5" if version == "R5" else "r4"])


def _bundle_view(bundle: dict[str, Any]) -> dict[str, Any]:
    """The parts of a Bundle the bdl-* invariants read: type, total and each entry's envelope."""
    entries = []
    for entry in bundle.get("entry") or ():
        if not isinstance(entry, dict):
            entries.append(entry)
            continue
        view = {k: v for k, v in entry.items() if k != "resource"}
        resource = entry.get("resource")
        if isinstance(resource, dict):
            meta = resource.get("meta")
            version_id = meta.get("versionId") if isinstance(meta, dict) else None
            view["resource"] = {"resourceType": resource.get("resourceType")}
            if version_id is not None:
                view["resource"]["meta"] = {"versionId": version_id}
        entries.append(view)
    return {k: v for k, v in bundle.items() if k in ("resourceType", "type", "total")} | {"entry": entries}


# --------------------------------------------------------------------------- native twins
# Each function returns True when the invariant of the same key holds; it reads exactly what the
# FHIRPath expression above it reads. Agreement with fhirpathpy is tested.

def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _codings(concept: Any) -> list[dict[str, Any]]:
    return [c for c in _list(concept.get("coding") if isinstance(concept, dict) else None) if isinstance(c, dict)]


def _has_code(concept: Any, system: str, codes: tuple[str, ...]) -> bool:
    return any(c.get("system") == system and c.get("code") in codes for c in _codings(concept))


def _contained(r: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in _list(r.get("contained")) if isinstance(c, dict)]


def _meta(r: dict[str, Any]) -> dict[str, Any]:
    meta = r.get("meta")
    return meta if isinstance(meta, dict) else {}


def _entries(b: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in _list(b.get("entry")) if isinstance(e, dict)]


def _fhirpath_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_NATIVE: Final[dict[str, Callable[[Any], bool]]] = {
    "dom-2": lambda r: all("contained" not in c for c in _contained(r)),
    "dom-4": lambda r: all("versionId" not in _meta(c) and "lastUpdated" not in _meta(c) for c in _contained(r)),
    "dom-5": lambda r: all("security" not in _meta(c) for c in _contained(r)),
    "con-4": lambda r: not any(k.startswith("abatement") for k in r) or _has_code(
        r.get("clinicalStatus"), _CLINICAL, ("resolved", "remission", "inactive")),
    "con-5": lambda r: not _has_code(r.get("verificationStatus"), _VER, ("entered-in-error",))
    or "clinicalStatus" not in r,
    "obs-6": lambda r: "dataAbsentReason" not in r or not any(k.startswith("value") for k in r),
    "obs-7": lambda r: not any(k.startswith("value") for k in r) or not any(
        {(c.get("system"), c.get("code"), c.get("display"), c.get("version"), c.get("userSelected"))
         for c in _codings(comp.get("code"))}
        & {(c.get("system"), c.get("code"), c.get("display"), c.get("version"), c.get("userSelected"))
           for c in _codings(r.get("code"))}
        for comp in _list(r.get("component")) if isinstance(comp, dict)),
    "obs-8": lambda r: "bodySite" not in r or "bodyStructure" not in r,
    "pat-1": lambda r: all(any(k in c for k in ("name", "telecom", "address", "organization"))
                           for c in _list(r.get("contact")) if isinstance(c, dict)),
    "bdl-1": lambda b: "total" not in b or b.get("type") in ("searchset", "history"),
    "bdl-2": lambda b: b.get("type") == "searchset" or all("search" not in e for e in _entries(b)),
    "bdl-3": lambda b: all(("request" in e) == (b.get("type") in ("batch", "transaction", "history"))
                           for e in _entries(b)),
    "bdl-4": lambda b: all(("response" in e) == (b.get("type") in ("batch-response", "transaction-response",
                                                                    "history")) for e in _entries(b)),
    "bdl-7": lambda b: b.get("type") == "history" or _distinct(
        [_fhirpath_str(e.get("fullUrl")) + _fhirpath_str(_meta(e.get("resource") or {}).get("versionId"))
         for e in _entries(b) if "fullUrl" in e]),
    "bdl-8": lambda b: all("/_history/" not in _fhirpath_str(e.get("fullUrl")) for e in _entries(b)),
    "ppc-1": lambda r: "policy" in r or "policyRule" in r,
}


def _distinct(values: list[str]) -> bool:
    return len(set(values)) == len(values)


def _engine() -> str:
    return os.environ.get("MEDLEDGER_FHIR_INVARIANTS", "native")


def failing(resource: dict[str, Any], version: str, engine: str | None = None) -> list[Invariant]:
    """The invariants ``resource`` violates; ``engine`` is "native" (default) or "fhirpath" (fhirpathpy)."""
    use_fhirpath = (engine or _engine()) == "fhirpath"
    out = []
    view = None
    for inv in invariants_for(resource.get("resourceType", ""), version):
        if not any(k in resource for k in inv.when):
            continue
        native = _NATIVE.get(inv.key)
        if native is not None and not use_fhirpath:
            try:
                holds = bool(native(resource))
            except (AttributeError, TypeError):  # a malformed resource; FHIRPath would fail it too
                holds = False
            if not holds:
                out.append(inv)
            continue
        target = resource
        if inv.bundle_entries:
            view = view or _bundle_view(resource)
            target = view
        try:
            result = compiled_expression(inv.expression, version)(target, {"resource": target,
                                                                           "rootResource": target})
        except Exception:  # noqa: BLE001 - a malformed resource can make FHIRPath raise; that is a failure
            result = [False]
        if result != [True]:
            out.append(inv)
    return out
