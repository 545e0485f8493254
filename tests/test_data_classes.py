"""The resource type -> data class table and minimum-necessary filtering (pure functions, no chain)."""
import pytest

from medledger import fhir
from medledger.data_classes import (
    DEFAULT_CLASS,
    class_of,
    classes_of,
    contents,
    filter_bundle,
    parts_of,
    primary_class,
    resources_of,
    split,
)
from medledger.errors import DataClassMismatch
from medledger.gateway.consent import AccessState, decide
from medledger.scopes import DataClass as D
from medledger.scopes import Purpose, Role
from medledger.testing.synthetic import patient_bundle, phi_fields

ALICE = "0x" + "11" * 20
DOC = "0x" + "22" * 20


@pytest.fixture(autouse=True)
def isolation():
    """No chain state here."""


def test_patient_is_demographics_and_labels_win_over_types():
    assert class_of({"resourceType": "Patient"}) == D.DEMOGRAPHICS
    assert class_of({"resourceType": "Claim"}) == D.BILLING
    assert class_of({"resourceType": "Condition", "meta": {"security": [{"code": "PSY"}]}}) == D.MENTAL_HEALTH
    assert class_of({"resourceType": "Observation", "meta": {"security": [{"code": "ETH"}]}}) == D.SUBSTANCE_USE
    assert class_of({"resourceType": "Observation", "category": [{"coding": [{"code": "imaging"}]}]}) == D.IMAGING
    assert class_of({"resourceType": "SomethingNew"}) == DEFAULT_CLASS
    assert class_of({"resourceType": 7}) == DEFAULT_CLASS


def test_a_bundle_contains_what_its_resources_are():
    bundle = patient_bundle(1, "0x" + "ab" * 20)
    assert classes_of(bundle) == {D.DEMOGRAPHICS, D.BILLING, D.CONDITIONS, D.LABS, D.MEDICATIONS}
    assert primary_class(bundle) == D.LABS  # five Observations: the most frequent clinical class
    bundle["entry"][0]["resource"]["meta"] = {"security": [{"code": "PSY"}]}
    assert primary_class(bundle) == D.MENTAL_HEALTH  # a sensitive class always labels the record


def test_filter_keeps_only_allowed_classes_and_recounts_totals():
    bundle = patient_bundle(2, "0x" + "ab" * 20)
    kept = filter_bundle(bundle, {D.BILLING, D.DEMOGRAPHICS})
    assert {r["resourceType"] for r in resources_of(kept)} == {"Patient", "Practitioner", "Organization", "Coverage",
                                                               "Claim"}
    searchset = {"resourceType": "Bundle", "type": "searchset", "total": len(bundle["entry"]),
                 "entry": bundle["entry"]}
    labs = sum(1 for r in resources_of(bundle) if r["resourceType"] == "Observation")
    assert labs and filter_bundle(searchset, {D.LABS})["total"] == labs
    assert filter_bundle({"resourceType": "Bundle", "entry": 5}, set(D)) == {"resourceType": "Bundle", "entry": []}


def test_decisions_name_the_reason():
    base = AccessState(ALICE, DOC, block=1, role=Role.PROVIDER, active=True, purposes=1 << Purpose.TREAT,
                       data_classes=(1 << D.LABS) | (1 << D.DEMOGRAPHICS), granted_at=1)
    d = decide(base, Purpose.TREAT, {D.LABS, D.BILLING}, now=100)
    assert d.allowed == {D.LABS} and d.basis == "consent" and "class billing" in d.message()
    assert "purpose HPAYMT" in decide(base, Purpose.HPAYMT, {D.LABS}, now=100).message()
    expired = AccessState(**{**base.__dict__, "valid_until": 50})
    assert not decide(expired, Purpose.TREAT, {D.LABS}, now=100).allowed
    assert "expired at 1970-01-01 00:00:50 UTC" in decide(expired, Purpose.TREAT, {D.LABS}, now=100).message()
    suspended = AccessState(**{**base.__dict__, "active": False})
    assert "suspended" in decide(suspended, Purpose.TREAT, {D.LABS}, now=100).message()
    glass = AccessState(ALICE, DOC, block=1, role=Role.PROVIDER, active=True, break_glass_until=200)
    d = decide(glass, Purpose.ETREAT, {D.LABS, D.MENTAL_HEALTH}, now=100)
    assert d.allowed == {D.LABS} and d.basis == "break-glass" and d.may_know
    stranger = AccessState(ALICE, DOC, block=1, role=Role.PROVIDER, active=True)
    assert not decide(stranger, Purpose.TREAT, {D.LABS}, now=100).may_know
    assert decide(AccessState(ALICE, ALICE, block=1), Purpose.HRESCH, {D.GENOMICS}).basis == "patient"


def test_contents_list_every_class_with_its_resource_types():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient"}}, {"resource": {"resourceType": "Condition"}},
        {"resource": {"resourceType": "Observation"}}, {"resource": {"resourceType": "Condition"}}]}
    found = contents(bundle)
    assert found.kind == "Bundle" and found.classes == {D.DEMOGRAPHICS, D.CONDITIONS, D.LABS}
    assert found.describe() == "demographics (Patient), conditions (Condition ×2), labs (Observation)"
    visit = patient_bundle(3, ALICE)
    assert contents(visit).describe().startswith("demographics (Patient, Practitioner, Organization ×2), conditions (")
    assert contents({"resourceType": "Observation"}).describe() == "labs (Observation)"
    with pytest.raises(DataClassMismatch, match="this Bundle holds no resources"):
        contents({"resourceType": "Bundle", "type": "collection", "entry": []})


def test_a_declared_class_must_cover_the_contents():
    bundle = patient_bundle(3, ALICE)
    with pytest.raises(DataClassMismatch) as refused:
        parts_of(bundle, D.CONDITIONS, "--class conditions")
    found = contents(bundle).describe()
    assert str(refused.value) == f"--class conditions does not cover this Bundle: it holds {found}"
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "Hb"}}
    assert parts_of(observation, D.LABS)[0].document is observation  # one class: the document itself, unchanged
    with pytest.raises(DataClassMismatch, match="^class billing does not cover this Observation: it holds labs"):
        parts_of(observation, D.BILLING)


def test_a_split_keeps_every_resource_once_and_each_part_is_valid_fhir():
    bundle = {**patient_bundle(4, ALICE), "id": "whole", "total": 99}
    parts = split(bundle)
    assert [p.data_class for p in parts] == sorted(classes_of(bundle))
    urls = []
    for part in parts:
        doc = part.document
        assert "id" not in doc and "identifier" not in doc and doc["type"] == "collection" and doc["total"] == len(
            doc["entry"])
        assert {class_of(r) for r in resources_of(doc)} == {part.data_class}
        urls += [e["fullUrl"] for e in doc["entry"]]
        inside = {e["fullUrl"] for e in doc["entry"]}
        # no literal reference leaves the part: references elsewhere became logical ones, without display
        assert all(ref in inside for ref in _references(doc["entry"]))
        fhir.validate_document({k: v for k, v in doc.items() if k != "total"}, "R5")
        names = phi_fields(bundle).names  # the patient's name stays in the demographics part
        assert any(n in str(doc) for n in names) == (part.data_class == D.DEMOGRAPHICS)
    assert sorted(urls) == sorted(e["fullUrl"] for e in bundle["entry"])
    # a document Bundle's parts are collections (its Composition speaks for the whole)
    document = {**bundle, "type": "document"}
    document.pop("total")
    assert {p.document["type"] for p in split(document)} == {"collection"}
    # an entry without a resource has no class: a Bundle of several classes with one cannot be split
    with pytest.raises(DataClassMismatch, match=r"Bundle.entry\[2\] holds no resource"):
        split({**bundle, "entry": [*bundle["entry"][:2], {"request": {"method": "DELETE", "url": "Patient/1"}},
                                   *bundle["entry"][2:]]})


def _references(node):
    if isinstance(node, list):
        for v in node:
            yield from _references(v)
    elif isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for v in node.values():
            yield from _references(v)
