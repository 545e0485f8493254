"""The resource type -> data class table and minimum-necessary filtering (pure functions, no chain)."""
import pytest

from medledger.data_classes import (
    DEFAULT_CLASS,
    class_of,
    classes_of,
    filter_bundle,
    primary_class,
    resources_of,
)
from medledger.gateway.consent import AccessState, decide
from medledger.scopes import DataClass as D
from medledger.scopes import Purpose, Role
from medledger.testing.synthetic import patient_bundle

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
