"""Required value-set bindings checked by the validator, per FHIR version (a documented table).

No Python package ships the FHIR value sets for R4B and R5 (``fhir.resources`` only copies each
element's short title, e.g. ``registered | preliminary | final | amended +``, which is not the full
list), so the code lists below are copied from the specification's value sets: every *required*
binding on the elements MedLedger exchanges (the US Core-shaped set Patient, Encounter, Condition,
Observation, MedicationRequest, Claim, plus Bundle, Coverage, Consent, ClaimResponse and the data
types they use). Keys are (model class name in ``fhir.resources``, JSON element name); the model
class names are the same in R4B and R5. docs/FHIR.md lists what is not checked (extensible and
preferred bindings, large code systems such as ISO 4217 currencies or BCP-47 languages).

``CODE`` bindings apply to ``code`` elements (the value must be one of the codes).
``CONCEPT`` bindings apply to ``CodeableConcept`` elements: at least one ``coding`` must carry the
value set's system and one of its codes (the rule HL7's validator applies to required bindings).
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Final

ADMINISTRATIVE_GENDER: Final = ("male", "female", "other", "unknown")
OBSERVATION_STATUS: Final = ("registered", "preliminary", "final", "amended", "corrected", "cancelled",
                             "entered-in-error", "unknown")
FM_STATUS: Final = ("active", "cancelled", "draft", "entered-in-error")  # Claim, ClaimResponse, Coverage
CLAIM_USE: Final = ("claim", "preauthorization", "predetermination")
MEDREQ_INTENT: Final = ("proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
                        "instance-order", "option")
REQUEST_PRIORITY: Final = ("routine", "urgent", "asap", "stat")
CONDITION_CLINICAL_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VER_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_VER: Final = ("unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error")

_COMMON_CODE: Final = {
    ("Identifier", "use"): ("usual", "official", "temp", "secondary", "old"),
    ("HumanName", "use"): ("usual", "official", "temp", "nickname", "anonymous", "old", "maiden"),
    ("ContactPoint", "system"): ("phone", "fax", "email", "pager", "url", "sms", "other"),
    ("ContactPoint", "use"): ("home", "work", "temp", "old", "mobile"),
    ("Address", "use"): ("home", "work", "temp", "old", "billing"),
    ("Address", "type"): ("postal", "physical", "both"),
    ("Narrative", "status"): ("generated", "extensions", "additional", "empty"),
    ("Patient", "gender"): ADMINISTRATIVE_GENDER,
    ("PatientContact", "gender"): ADMINISTRATIVE_GENDER,
    ("PatientLink", "type"): ("replaced-by", "replaces", "refer", "seealso"),
    ("Practitioner", "gender"): ADMINISTRATIVE_GENDER,
    ("Observation", "status"): OBSERVATION_STATUS,
    ("Claim", "status"): FM_STATUS,
    ("Claim", "use"): CLAIM_USE,
    ("ClaimResponse", "status"): FM_STATUS,
    ("ClaimResponse", "use"): CLAIM_USE,
    ("ClaimResponse", "outcome"): ("queued", "complete", "error", "partial"),
    ("Coverage", "status"): FM_STATUS,
    ("MedicationRequest", "intent"): MEDREQ_INTENT,
    ("MedicationRequest", "priority"): REQUEST_PRIORITY,
    ("BundleEntryRequest", "method"): ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"),
    ("BundleEntrySearch", "mode"): ("match", "include", "outcome"),
    ("ConsentProvisionData", "meaning"): ("instance", "related", "dependents", "authoredby"),
}

_R4_CODE: Final = {
    **_COMMON_CODE,
    ("Quantity", "comparator"): ("<", "<=", ">=", ">"),
    ("Encounter", "status"): ("planned", "arrived", "triaged", "in-progress", "onleave", "finished",
                              "cancelled", "entered-in-error", "unknown"),
    ("EncounterStatusHistory", "status"): ("planned", "arrived", "triaged", "in-progress", "onleave",
                                           "finished", "cancelled", "entered-in-error", "unknown"),
    ("MedicationRequest", "status"): ("active", "on-hold", "cancelled", "completed", "entered-in-error",
                                      "stopped", "draft", "unknown"),
    ("Bundle", "type"): ("document", "message", "transaction", "transaction-response", "batch",
                         "batch-response", "history", "searchset", "collection"),
    ("Consent", "status"): ("draft", "proposed", "active", "rejected", "inactive", "entered-in-error"),
    ("ConsentProvision", "type"): ("deny", "permit"),
}

_R5_CODE: Final = {
    **_COMMON_CODE,
    ("Quantity", "comparator"): ("<", "<=", ">=", ">", "ad"),
    ("Encounter", "status"): ("planned", "in-progress", "on-hold", "discharged", "completed", "cancelled",
                              "discontinued", "entered-in-error", "unknown"),
    ("MedicationRequest", "status"): ("active", "on-hold", "ended", "stopped", "completed", "cancelled",
                                      "entered-in-error", "draft", "unknown"),
    ("Bundle", "type"): ("document", "message", "transaction", "transaction-response", "batch",
                         "batch-response", "history", "searchset", "collection", "subscription-notification"),
    ("Consent", "status"): ("draft", "active", "inactive", "not-done", "entered-in-error", "unknown"),
    ("Consent", "decision"): ("deny", "permit"),
    ("Coverage", "kind"): ("insurance", "self-pay", "other"),
}

_R4_CONCEPT: Final = {
    ("Condition", "clinicalStatus"): (CONDITION_CLINICAL_SYSTEM,
                                      ("active", "recurrence", "relapse", "inactive", "remission", "resolved")),
    ("Condition", "verificationStatus"): (CONDITION_VER_SYSTEM, CONDITION_VER),
}
_R5_CONCEPT: Final = {
    ("Condition", "clinicalStatus"): (CONDITION_CLINICAL_SYSTEM,
                                      ("active", "recurrence", "relapse", "inactive", "remission", "resolved",
                                       "unknown")),
    ("Condition", "verificationStatus"): (CONDITION_VER_SYSTEM, CONDITION_VER),
}

#: version -> {(model class, element): codes}. R4 is read through the R4B models (see versions.py).
CODE_BINDINGS: Final = MappingProxyType({"R4B": MappingProxyType(_R4_CODE), "R5": MappingProxyType(_R5_CODE)})
#: version -> {(model class, element): (system, codes)} for CodeableConcept elements.
CONCEPT_BINDINGS: Final = MappingProxyType({"R4B": MappingProxyType(_R4_CONCEPT),
                                            "R5": MappingProxyType(_R5_CONCEPT)})
