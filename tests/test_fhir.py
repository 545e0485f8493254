"""FHIR validation (R5 / R4B), RFC 8785 canonicalisation and hashing (pure Python, no chain)."""
import copy
import dataclasses
import hashlib
import json
import random
import subprocess
import sys

import pytest
import rfc8785
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.core import given  # pure Python: no chain to isolate (brownie wraps hypothesis.given)

from medledger import fhir
from medledger.errors import FhirInvalid
from medledger.testing import synthetic

PATIENT = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- synthetic data validates


@pytest.mark.parametrize("version", ["R5", "R4B"])
@pytest.mark.parametrize("bundle_type", ["collection", "transaction"])
def test_synthetic_bundles_validate(version, bundle_type):
    for seed in range(4):
        bundle = synthetic.patient_bundle(seed, PATIENT, version=version, bundle_type=bundle_type)
        assert fhir.validate(bundle, version) == "Bundle"
        types = {e["resource"]["resourceType"] for e in bundle["entry"]}
        assert {"Patient", "Encounter", "Condition", "Observation", "Claim", "Coverage"} <= types
        size = len(fhir.canonicalize(bundle))
        assert 5_000 <= size <= 20_000


def test_synthetic_is_deterministic_and_seed_dependent():
    assert synthetic.patient_bundle(11, PATIENT) == synthetic.patient_bundle(11, PATIENT)
    assert synthetic.patient_bundle(11, PATIENT) != synthetic.patient_bundle(12, PATIENT)


def test_claim_resource_validates_and_totals():
    for seed in range(5):
        for version in ("R5", "R4B"):
            claim = synthetic.claim_resource(seed, version=version)
            fhir.validate(claim, version)
            nets = sum(round(item["net"]["value"] * 100) for item in claim["item"])
            assert round(claim["total"]["value"] * 100) == nets
            assert all(c["system"] == synthetic.CPT_SYSTEM
                       for i in claim["item"] for c in i["productOrService"]["coding"])


def test_phi_fields_lists_values_present_in_the_bundle():
    bundle = synthetic.patient_bundle(3, PATIENT)
    phi = synthetic.phi_fields(bundle)
    patient = bundle["entry"][0]["resource"]
    assert patient["birthDate"] in phi.birth_dates
    assert patient["name"][0]["family"] in phi.names
    assert patient["address"][0]["line"][0] in phi.address_lines
    assert any(v.startswith("MRN-") for v in phi.identifiers)
    assert any(len(v) == 11 and v[3] == "-" and v[6] == "-" for v in phi.identifiers)  # SSN-style
    assert phi.codes and phi.amounts
    assert PATIENT not in phi.all()  # the address is an on-chain identifier, not PHI
    canonical = fhir.canonicalize(bundle).decode()
    for value in phi.all():
        assert value in canonical


# --------------------------------------------------------------------------- validation errors


def _bundle_with(resource):
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}


def test_invalid_field_message_has_path():
    bad = _bundle_with({"resourceType": "Patient", "birthDate": "31/12/1999"})
    with pytest.raises(FhirInvalid) as err:
        fhir.validate(bad)
    assert "Bundle.entry[0].resource.birthDate:" in str(err.value)
    with pytest.raises(FhirInvalid) as err:
        fhir.validate(bad, version="R4B")
    assert "Bundle.entry[0].resource.birthDate:" in str(err.value)


def test_nested_error_path_in_synthetic_bundle():
    bundle = synthetic.patient_bundle(5, PATIENT)
    idx = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Claim")
    bundle["entry"][idx]["resource"]["item"][0]["sequence"] = "first"
    with pytest.raises(FhirInvalid) as err:
        fhir.validate(bundle)
    assert f"Bundle.entry[{idx}].resource.item[0].sequence:" in str(err.value)


def test_unknown_field_and_unknown_resource_type_have_paths():
    with pytest.raises(FhirInvalid, match=r"Bundle\.entry\[0\]\.resource\.favouriteColour:"):
        fhir.validate(_bundle_with({"resourceType": "Patient", "favouriteColour": "teal"}))
    with pytest.raises(FhirInvalid, match=r"Bundle\.entry\[0\]\.resource\.resourceType: unknown FHIR R5"):
        fhir.validate(_bundle_with({"resourceType": "Paitent"}), "R5")
    with pytest.raises(FhirInvalid, match=r"Bundle\.entry\[0\]\.resource\.resourceType: missing"):
        fhir.validate(_bundle_with({"id": "x"}))
    with pytest.raises(FhirInvalid, match=r"resourceType"):
        fhir.validate({"type": "collection"})


def test_versions_differ_r5_bundle_is_not_r4b():
    bundle = synthetic.patient_bundle(2, PATIENT, version="R5")
    fhir.validate(bundle, "R5")
    with pytest.raises(FhirInvalid) as err:
        fhir.validate(bundle, "R4B")
    assert "Bundle.entry[" in str(err.value)
    r4b = synthetic.patient_bundle(2, PATIENT, version="R4B")
    fhir.validate(r4b, "R4B")
    with pytest.raises(FhirInvalid):
        fhir.validate(r4b, "R5")
    with pytest.raises(ValueError):
        fhir.validate(bundle, "R3")


def test_validation_is_skippable():
    bad = _bundle_with({"resourceType": "Patient", "birthDate": "not-a-date"})
    with pytest.raises(FhirInvalid, match="birthDate"):
        fhir.canonical_document(bad)
    doc = fhir.canonical_document(bad, validate=False)
    assert doc.resource_type == "Bundle"
    assert doc.canonical == rfc8785.dumps(bad)


def test_validate_many_in_parallel_reports_index_and_path():
    docs = [synthetic.patient_bundle(s, PATIENT) for s in range(6)]
    assert fhir.validate_many(docs, workers=2) == [None] * 6
    broken = copy.deepcopy(docs)
    broken[4]["entry"][0]["resource"]["gender"] = 7
    with pytest.raises(FhirInvalid, match=r"document\[4\]: .*Bundle\.entry\[0\]\.resource\.gender"):
        fhir.validate_many(broken, workers=2)
    results = fhir.validate_many([json.dumps(d) for d in broken], workers=2, raise_first=False)
    assert [r is None for r in results] == [True, True, True, True, False, True]
    assert "Bundle.entry[0].resource.gender" in results[4]


# --------------------------------------------------------------------------- canonical form and hashes


def test_hash_helpers():
    assert fhir.keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert fhir.sha256(b"abc") == hashlib.sha256(b"abc").digest()
    doc = fhir.canonical_document({"resourceType": "Patient", "id": "p1", "active": True})
    assert doc.canonical == b'{"active":true,"id":"p1","resourceType":"Patient"}'
    assert doc.keccak == keccak(doc.canonical) and doc.sha256 == hashlib.sha256(doc.canonical).digest()
    assert doc.resource_type == "Patient"
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.canonical = b""


def _shuffled(value, rng):
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def test_real_bundle_key_order_whitespace_escapes():
    bundle = synthetic.patient_bundle(9, PATIENT)
    bundle["entry"][0]["resource"]["name"][0]["text"] = "Zoë Ünal-李 \U0001f600"
    reference = rfc8785.dumps(bundle)
    rng = random.Random(1)
    variants = [
        bundle,
        _shuffled(bundle, rng),
        json.dumps(_shuffled(bundle, rng), indent=4),
        json.dumps(bundle, ensure_ascii=True),  # \u escapes for every non-ASCII character
        json.dumps(_shuffled(bundle, rng), separators=(" , ", " :  "), ensure_ascii=False).encode(),
    ]
    for variant in variants:
        assert fhir.canonicalize(variant) == reference
    assert len({fhir.canonical_document(v, validate=False).keccak for v in variants}) == 1


json_scalars = (
    st.none() | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_keys = st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4),
    max_leaves=25,
)


@FAST
@given(value=st.dictionaries(json_keys, json_values, max_size=6), seed=st.integers(0, 2**32 - 1),
       indent=st.sampled_from([None, 0, 1, 3, "\t"]), ascii_escapes=st.booleans())
def test_canonical_bytes_stable_under_order_whitespace_and_escapes(value, seed, indent, ascii_escapes):
    reference = rfc8785.dumps(value)
    text = json.dumps(_shuffled(value, random.Random(seed)), indent=indent, ensure_ascii=ascii_escapes)
    assert fhir.canonicalize(text) == reference
    assert fhir.canonicalize(text.encode()) == reference
    assert fhir.canonicalize(value) == reference


@FAST
@given(value=st.lists(json_values, max_size=4) | st.dictionaries(json_keys, json_values, max_size=4)
       | st.dictionaries(st.text(), st.integers() | st.floats(), max_size=5))
def test_fast_path_agrees_with_rfc8785_everywhere(value):
    """Including values outside the fast path's domain: big ints, tiny/huge/non-finite floats,
    non-BMP keys. Either both produce the same bytes or both refuse. (A top-level str is JSON
    text to `canonicalize`, hence the container at the top.)"""
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(FhirInvalid):
            fhir.canonicalize(value)
        return
    assert fhir.canonicalize(value) == expected


def test_sort_order_is_utf16_not_code_points():
    # By code point U+FF61 < U+1F600, but in UTF-16 the emoji starts with 0xD83D < 0xFF61.
    value = {"\uff61": 2, "\U0001f600": 1, "a": 3}
    out = fhir.canonicalize(value)
    assert out == rfc8785.dumps(value)
    assert out.index("\U0001f600".encode()) < out.index("\uff61".encode())


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": 1e400}', '{"a": 9007199254740993}', "[1,", b"\xff"])
def test_values_without_canonical_form_raise(text):
    with pytest.raises(FhirInvalid):
        fhir.canonicalize(text)


def test_number_forms_match_es6():
    value = [1.0, -0.0, 0.5e-3, 1e-7, 1e21, 123456789012345680000.0, 4.35, 2**53 - 1]
    assert fhir.canonicalize(value) == rfc8785.dumps(value)
    assert fhir.canonicalize("[1.0, -0.0, 1E2, 0.1]") == b"[1,0,100,0.1]"


def test_package_import_does_not_load_fhir_resources():
    code = ("import sys, medledger, medledger.fhir, medledger.crypto, medledger.vault, medledger.merkle, "
            "medledger.pipeline, medledger.testing.synthetic; print('fhir.resources' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
