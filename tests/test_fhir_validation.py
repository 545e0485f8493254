"""FHIR validation: the R4 / R4B / R5 corpus with exact paths, version detection, the binding table (pure Python)."""
import copy
import json

import pytest
from support.fhir_corpus import PATIENT, VERSIONS, bundle, cases, resources

from medledger import fhir
from medledger.errors import FhirInvalid, FhirValidationFailed, FhirVersionUnknown
from medledger.fhir import bindings, invariants, schema
from medledger.testing import synthetic

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.version}-{c.name}" for c in CASES])
def test_corpus_reports_exactly_the_expected_paths(case):
    report = fhir.check(case.doc, case.version)
    assert set(report.paths) == set(case.paths), report.message()
    if case.rules:
        assert {i.rule for i in report.issues} == set(case.rules)
    if case.paths:
        with pytest.raises(FhirValidationFailed) as err:
            fhir.validate(case.doc, case.version)
        assert err.value.version == case.version
        for path in case.paths:  # every error in one message, not just the first
            assert f"{path}: " in str(err.value)
    else:
        assert fhir.validate(json.dumps(case.doc), case.version) == case.doc["resourceType"]


def test_corpus_covers_every_us_core_type_and_version():
    for v in VERSIONS:
        valid = {c.doc["resourceType"] for c in CASES if c.version == v and not c.paths}
        assert set(resources(v)) | {"Bundle"} <= valid
    kinds = {rule for c in CASES for rule in c.rules}
    assert {"binding", "cardinality", "type", "ele-1", "structure", "choice", "invariant", "reference"} <= kinds


def test_many_synthetic_bundles_validate_in_every_version():
    for v in VERSIONS:
        for seed in range(12):
            for kind in ("collection", "transaction"):
                assert fhir.check(bundle(v, seed, kind), v).ok


def test_structure_agrees_with_fhir_resources_on_the_corpus():
    """Whatever fhir.resources (pydantic) refuses for structure, the schema refuses too."""
    for case in CASES:
        if "type" not in case.rules and "cardinality" not in case.rules:
            continue
        from fhir.resources import get_fhir_model_class as r5
        from fhir.resources.R4B import get_fhir_model_class as r4b
        get = r5 if case.version == "R5" else r4b
        with pytest.raises(Exception):  # noqa: B017,PT011 - pydantic's ValidationError
            get(case.doc["resourceType"]).model_validate(case.doc)


# --------------------------------------------------------------------------- versions


def test_detection_names_the_version():
    for v in VERSIONS:
        b = bundle(v)
        assert fhir.detect(b) == ("R5" if v == "R5" else "R4")
        assert fhir.canonical_document(b).resource_type == "Bundle"
    patient = {"resourceType": "Patient", "gender": "female", "birthDate": "1970-01-01"}
    assert fhir.detect(patient) == "R4"  # valid in all three: read as R4
    assert fhir.normalize("r4b") == "R4B" and fhir.normalize("4.0.1") == "R4"
    with pytest.raises(ValueError):
        fhir.normalize("R3")


def test_undetectable_version_is_refused_naming_likely_version_and_flag():
    doc = bundle("R4")
    i = next(k for k, e in enumerate(doc["entry"]) if e["resource"]["resourceType"] == "Observation")
    doc["entry"][i]["resource"]["status"] = "bogus"
    with pytest.raises(FhirVersionUnknown) as err:
        fhir.validate(doc)
    msg = str(err.value)
    assert "looks most like R4" in msg and "--fhir-version" in msg
    assert f"Bundle.entry[{i}].resource.status: " in msg
    r5 = bundle("R5")
    r5["entry"][0]["resource"]["gender"] = "M"
    with pytest.raises(FhirVersionUnknown, match=r"looks most like R5.*Bundle\.entry\[0\]\.resource\.gender"):
        fhir.validate(r5)


def test_r4_mapping_through_r4b_is_explicit():
    with pytest.raises(FhirInvalid, match="exists only in FHIR R4"):
        fhir.validate({"resourceType": "MedicinalProduct", "id": "x"}, "R4")
    with pytest.raises(FhirInvalid, match="added in R4B"):
        fhir.validate({"resourceType": "SubscriptionTopic", "url": "http://x", "status": "active"}, "R4")
    assert fhir.check({"resourceType": "Patient", "gender": "other"}, "R4").version == "R4"


def test_r5_only_elements_are_unknown_in_r4_and_back():
    enc = copy.deepcopy(resources("R5")["Encounter"])
    report = fhir.check(enc, "R4")
    assert not report.ok and any("unknown element for FHIR R4" in str(i) for i in report.issues)
    assert not fhir.check(resources("R4")["Encounter"], "R5").ok


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize("version", ["R4B", "R5"])
def test_every_binding_of_the_table_reaches_a_schema(version):
    """Every (model, element) of the table lands in a generated schema, so no binding silently goes unused."""
    roots = ("Bundle", "Consent", "Encounter", "Patient", "MedicationRequest", "ClaimResponse", "Claim",
             "Coverage", "Observation", "Condition", "Practitioner")
    defs = {}
    for root in roots:
        defs.update(schema.resource_schema(root, version)["$defs"])
    for (cls_name, element) in bindings.CODE_BINDINGS[version]:
        prop = defs[cls_name]["properties"][element]
        assert set(prop["enum"]) == set(bindings.CODE_BINDINGS[version][(cls_name, element)])
    for (cls_name, element) in bindings.CONCEPT_BINDINGS[version]:
        assert schema.BINDING_KEY in defs[cls_name]["properties"][element]["allOf"][1]


def test_invariants_parse_and_hold_on_valid_data():
    for v in ("R4B", "R5"):
        for invs in invariants.INVARIANTS[v].values():
            for inv in invs:
                invariants.compiled_expression(inv.expression, v)
        assert invariants.failing(bundle("R5" if v == "R5" else "R4"), v) == []


def test_schema_is_built_from_the_models():
    s = schema.resource_schema("Observation", "R5")
    assert s["$ref"] == "#/$defs/Observation"
    obs = s["$defs"]["Observation"]
    assert "code" in obs["required"] and "status" in obs["required"]
    assert obs["additionalProperties"] is False
    assert set(obs["properties"]["status"]["enum"]) == set(bindings.OBSERVATION_STATUS)
    assert schema.resource_schema("NotAResource", "R5") is None


def test_built_schemas_are_kept_between_processes(tmp_path, monkeypatch):
    """A schema built once is read by later processes from the cache, without importing the models; a
    damaged cache file is rebuilt; the cache folder is named by the models' versions and these sources."""
    import subprocess
    import sys

    monkeypatch.setenv(schema.CACHE_ENV, str(tmp_path))
    schema.schema_cache_dir.cache_clear()
    schema.resource_schema.cache_clear()
    try:
        built = schema.resource_schema("Observation", "R5")
        folder = schema.schema_cache_dir()
        assert folder.parent == tmp_path / "fhir-schemas"
        kept = folder / "R5" / "Observation.json"
        assert json.loads(kept.read_text()) == built
        probe = ("import json, sys; from medledger.fhir import schema; from medledger import fhir; "
                 "s = schema.resource_schema('Observation', 'R5'); "
                 "report = fhir.check({'resourceType': 'Observation', 'status': 'nope', 'code': {'text': 'x'}}, 'R5'); "
                 "print(json.dumps([s, 'fhir.resources' in sys.modules, list(report.paths)]))")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                             env={**__import__("os").environ, schema.CACHE_ENV: str(tmp_path)})
        read, imported, paths = json.loads(out.stdout)
        assert read == built and not imported and paths == ["Observation.status"]
        kept.write_text("{not json")
        schema.resource_schema.cache_clear()
        assert schema.resource_schema("Observation", "R5") == built
        assert json.loads(kept.read_text()) == built
        assert schema.resource_schema("../Observation", "R5") is None
    finally:
        schema.schema_cache_dir.cache_clear()
        schema.resource_schema.cache_clear()


def test_validate_many_collects_all_results():
    docs = [synthetic.patient_bundle(s, PATIENT) for s in range(5)]
    docs[3]["entry"][0]["resource"]["gender"] = "robot"
    results = fhir.validate_many(docs, "R5", raise_first=False)
    assert [r is None for r in results] == [True, True, True, False, True]
    assert "Bundle.entry[0].resource.gender" in results[3]


# --------------------------------------------------------------------------- invariant engines agree


def _mutations(resource, rng):
    """Random edits that touch what the invariants read."""
    r = copy.deepcopy(resource)
    edits = [
        lambda: r.update(dataAbsentReason={"text": "x"}),
        lambda: r.update(component=[{"code": copy.deepcopy(r.get("code", {"text": "c"}))}]),
        lambda: r.update(component=[{"code": {"coding": [{"system": "s", "code": "other"}]}}]),
        lambda: r.pop("valueQuantity", None),
        lambda: r.update(abatementDateTime="2025-01-01"),
        lambda: r.update(clinicalStatus={"coding": [{"system": bindings.CONDITION_CLINICAL_SYSTEM,
                                                     "code": rng.choice(["active", "resolved", "inactive"])}]}),
        lambda: r.update(verificationStatus={"coding": [{"system": bindings.CONDITION_VER_SYSTEM,
                                                         "code": rng.choice(["confirmed", "entered-in-error"])}]}),
        lambda: r.pop("clinicalStatus", None),
        lambda: r.update(contact=[rng.choice([{"name": {"text": "n"}}, {"gender": "male"}])]),
        lambda: r.update(contained=[rng.choice([{"resourceType": "Patient", "id": "c"},
                                                {"resourceType": "Patient", "id": "c", "meta": {"versionId": "1"}},
                                                {"resourceType": "Patient", "meta": {"security": [{"code": "R"}]}},
                                                {"resourceType": "Patient", "contained": [{"resourceType": "Patient"}]}
                                                ])]),
        lambda: r.update(bodySite={"text": "arm"}, bodyStructure={"reference": "BodyStructure/1"}),
        lambda: r.update(policyRule={"text": "p"}) if rng.random() < 0.5 else r.pop("policyRule", None),
    ]
    for _ in range(rng.randrange(1, 4)):
        rng.choice(edits)()
    return r


def _bundle_mutations(b, rng):
    b = copy.deepcopy(b)
    edits = [
        lambda: b.update(type=rng.choice(["collection", "transaction", "batch", "searchset", "history",
                                          "transaction-response", "document"])),
        lambda: b.update(total=3),
        lambda: b["entry"][rng.randrange(len(b["entry"]))].update(request={"method": "POST", "url": "X"}),
        lambda: b["entry"][rng.randrange(len(b["entry"]))].update(response={"status": "201"}),
        lambda: b["entry"][rng.randrange(len(b["entry"]))].update(search={"mode": "match"}),
        lambda: b["entry"][1].update(fullUrl=b["entry"][0]["fullUrl"]),
        lambda: b["entry"][0].update(fullUrl="http://x.org/fhir/Patient/1/_history/2"),
        lambda: b["entry"][0]["resource"].update(meta={"versionId": "2"}),
    ]
    for _ in range(rng.randrange(1, 4)):
        rng.choice(edits)()
    return b


@pytest.mark.parametrize("version", ["R4B", "R5"])
def test_native_invariants_agree_with_fhirpath(version):
    import random

    rng = random.Random(f"invariants-{version}")
    res = resources("R5" if version == "R5" else "R4")
    consent = {"resourceType": "Consent", "status": "active", "policyRule": {"text": "p"}}
    samples = [c.doc for c in CASES if c.version == ("R5" if version == "R5" else "R4")]
    samples.append({**res["Patient"], "contact": [{"name": {"text": "n"}}, {"gender": "male"}]})
    for _ in range(120):
        samples.append(_mutations(rng.choice([*res.values(), consent]), rng))
        samples.append(_bundle_mutations(bundle("R5" if version == "R5" else "R4", rng.randrange(6)), rng))
    disagreements, exercised = [], set()
    for doc in samples:
        native = [i.key for i in invariants.failing(doc, version, engine="native")]
        reference = [i.key for i in invariants.failing(doc, version, engine="fhirpath")]
        exercised |= set(reference)
        if native != reference:
            disagreements.append((doc.get("resourceType"), native, reference))
    assert not disagreements, disagreements[:3]
    expected = {"dom-2", "dom-4", "dom-5", "con-4", "con-5", "obs-6", "obs-7", "pat-1", "bdl-1", "bdl-2", "bdl-3",
                "bdl-4", "bdl-7", "bdl-8"}
    assert expected <= exercised, expected - exercised  # every invariant failed at least once
