"""Resource-level FHIRPath invariants checked by the validator (a documented table).

The expressions are HL7's own (the ``constraint`` entries of each resource's StructureDefinition,
severity *error*), evaluated with ``fhirpathpy``. Only invariants that matter when a resource is
exchanged are listed; docs/FHIR.md names them. ``ele-1`` (every element has a value or children)
and the Quantity rule ``qty-3`` are enforced by the JSON Schema instead (schema.py), and
``ref-1`` (a ``#id`` reference resolves to a contained resource) by the reference check in
validation.py, because there they cost nothing per element.

``when`` lists the top-level elements whose presence makes the invariant able to fail: each
expression here has the form ``A.empty() or ...`` (or only reads A), so when none of them is present
the invariant holds and evaluating it would be wasted time. This keeps validated ingest fast.
"""
from __future__ import annotations

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
              "total.empty() or (type = 'searchset') or (type = 'history')", ("total",)),
    Invariant("bdl-2", "entry.search only when a search", "(type = 'searchset') or entry.search.empty()",
              ("entry",)),
    Invariant("bdl-3", "entry.request mandatory for batch/transaction/history, otherwise prohibited",
              "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' or "
              "%resource.type = 'history'))", ("entry",)),
    Invariant("bdl-4", "entry.response mandatory for batch-response/transaction-response/history, otherwise "
              "prohibited", "entry.all(response.exists() = (%resource.type = 'batch-response' or "
              "%resource.type = 'transaction-response' or %resource.type = 'history'))", ("entry",)),
    Invariant("bdl-7", "FullUrl must be unique in a bundle, or else entries with the same fullUrl must have "
              "different meta.versionId (except in history bundles)",
              "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId)"
              ".isDistinct()", ("entry",)),
    Invariant("bdl-8", "fullUrl cannot be a version specific reference",
              "entry.all(fullUrl.exists() implies fullUrl.contains('/_history/').not())", ("entry",)),
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


def failing(resource: dict[str, Any], version: str) -> list[Invariant]:
    """The invariants ``resource`` violates (an evaluation error counts as a violation)."""
    out = []
    for inv in invariants_for(resource.get("resourceType", ""), version):
        if not any(k in resource for k in inv.when):
            continue
        try:
            result = compiled_expression(inv.expression, version)(resource, {"resource": resource,
                                                                             "rootResource": resource})
        except Exception:  # noqa: BLE001 - a malformed resource can make FHIRPath raise; that is a failure
            result = [False]
        if result != [True]:
            out.append(inv)
    return out
