"""FHIR Consent and Claim through the real `medledger` entry point on the test Ganache:
Consent -> grant -> Consent, Claim -> submit -> adjudicate -> ClaimResponse, and refusals that change nothing."""
import copy
import json
import os
from pathlib import Path

import pytest
from brownie import web3
from support.nodes import cli_env, dev_key, funded_keystores, run_cli, run_json
from support.recordcli import one_line_error

from medledger import fhir
from medledger.accounts import LocalSigner
from medledger.chain import Chain
from medledger.commitments import open_file, salted_file, sidecar_path, verify
from medledger.config import load_settings
from medledger.contracts import RecordRegistry
from medledger.fhir import consent as fhir_consent
from medledger.fhir.claim import CARC_SYSTEM, read_claim
from medledger.record_ids import new_record_id
from medledger.testing import synthetic

ACTORS = {"gov": 0, "clinic": 12, "lab": 13, "payer": 14, "alice": 16, "stranger": 19}
ETH = synthetic.ETHEREUM_ADDRESS_SYSTEM


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("fhir-cli")
    env = cli_env(home, MEDLEDGER_RPC=web3.provider.endpoint_uri)
    addresses = funded_keystores(env, ACTORS)
    run_cli(env, "--account", "gov", "deploy")
    for cmd, who in (("add-provider", "clinic"), ("add-provider", "lab"), ("add-insurer", "payer")):
        run_cli(env, "--account", "gov", "registry", cmd, who, "--metadata", "0x" + os.urandom(32).hex())
    for who in ("clinic", "payer"):  # they key the claims' text control numbers (FHIR-1)
        run_cli(env, "--account", who, "registry", "publish-key")
    run_cli(env, "--account", "gov", "dev", "mint", "payer", "1000000000000")
    run_cli(env, "--account", "payer", "escrow", "deposit", "10000")
    run_cli(env, "--account", "payer", "claim", "rules", "set", "--prompt-pay-days", "15", "--dispute-days", "30")
    run_cli(env, "--account", "payer", "coverage", "enroll", "alice", "--policy-hash", "0x" + "ab" * 32)
    run_cli(env, "--account", "alice", "consent", "grant", "clinic", "-p", "treat,hpaymt", "-c", "conditions,labs")
    run_cli(env, "--account", "alice", "consent", "grant", "payer", "-p", "hpaymt", "-c", "billing,conditions")
    env["ADDR"] = json.dumps(addresses)
    return env


def addr(env, name):
    return json.loads(env["ADDR"])[name]


def ref(address):
    return {"identifier": {"system": ETH, "value": address}}


def state(env):
    """What a refusal must leave alone: the chain's height and the vault's files."""
    vault = Path(env["MEDLEDGER_VAULT"])
    return web3.eth.block_number, sorted(str(p) for p in vault.rglob("*")) if vault.exists() else []


def claim_hashes(env):
    """The claimHash of every ClaimSubmitted on chain: what an observer can match a document against."""
    from medledger.audit import fetch_events
    settings = load_settings(rpc=web3.provider.endpoint_uri, deployments_path=env["MEDLEDGER_DEPLOYMENTS"])
    sdk = Chain(settings)
    escrow = json.loads(open(env["MEDLEDGER_DEPLOYMENTS"]).read())[str(sdk.chain_id)]["ClaimEscrow"]["address"]
    return {bytes(e.args["claimHash"]) for e in fetch_events(sdk, {"ClaimEscrow": escrow})
            if e.event == "ClaimSubmitted"}


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return path


def r5_consent(env, grantee="lab", **over):
    doc = {
        "resourceType": "Consent", "status": "active",
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "subject": ref(addr(env, "alice")), "decision": "permit",
        "period": {"start": "2025-01-01", "end": "2099-12-31"},
        "provision": [{"actor": [{"reference": ref(addr(env, grantee))}],
                       "purpose": [{"system": fhir_consent.ACT_REASON, "code": "TREAT"}],
                       "resourceType": [{"system": fhir_consent.R5_RESOURCE_TYPES, "code": "Observation"},
                                        {"system": fhir_consent.R5_RESOURCE_TYPES, "code": "Condition"}],
                       "securityLabel": [{"system": fhir_consent.ACT_CODE, "code": "ETH"}]}],
    }
    doc.update(over)
    return doc


# --------------------------------------------------------------------------- Consent


def test_fhir_consent_round_trip(env, tmp_path):
    source = write(tmp_path, "consent.json", r5_consent(env))
    shown = run_json(env, "--account", "alice", "consent", "grant", "--from-fhir", str(source), "--dry-run")
    assert shown["grantee"] == addr(env, "lab") and shown["classes"] == "conditions,labs,substance_use"
    assert not sidecar_path(source).exists()

    out = json.loads(run_cli(env, "--json", "--account", "alice", "consent", "grant", "--from-fhir",
                             str(source)).stdout.strip().splitlines()[-1])
    for purpose, klass, allowed in (("treat", "labs", 0), ("treat", "substance-use", 0), ("treat", "imaging", 3),
                                    ("hpaymt", "labs", 3)):
        assert run_cli(env, "consent", "check", "alice", "lab", purpose, klass, check=False).returncode == allowed
    salt = json.loads(sidecar_path(source).read_text())
    assert len(bytes.fromhex(salt["salt"][2:])) == 32
    verify(bytes.fromhex(out["doc_hash"][2:]), open_file(source).opening)

    for version in ("R5", "R4"):
        back = tmp_path / f"back-{version}.json"
        run_cli(env, "--account", "alice", "consent", "show", "lab", "--fhir", "--fhir-version", version,
                "-o", str(back))
        doc = json.loads(back.read_text())
        assert fhir.validate(doc, version) == "Consent"
        assert fhir.detect(doc) == version
        assert doc["identifier"][0]["value"] == out["doc_hash"]
        now = web3.eth.get_block("latest")["timestamp"]
        again = fhir_consent.grant_from_fhir(doc, now=now)
        first = fhir_consent.grant_from_fhir(json.loads(source.read_text()), now=now)
        assert (again.patient, again.grantee, again.purposes, again.data_classes, again.valid_until) == (
            first.patient, first.grantee, first.purposes, first.data_classes, first.valid_until)


def test_r4_consent_grants_too(env, tmp_path):
    doc = fhir_consent.consent_to_fhir(patient=addr(env, "alice"), grantee=addr(env, "clinic"), purposes=0b1,
                                       data_classes=0b10, valid_from=0, valid_until=0, granted_at=1_700_000_000,
                                       live=True, version="R4")
    source = write(tmp_path, "r4.json", doc)
    run_cli(env, "--account", "alice", "consent", "grant", "--from-fhir", str(source))
    assert run_cli(env, "consent", "check", "alice", "clinic", "treat", "conditions", check=False).returncode == 0


@pytest.mark.parametrize("name,edit,needle", [
    ("deny", lambda d, e: d.update(decision="deny"), "Consent.decision: 'deny'"),
    ("past", lambda d, e: d.update(period={"start": "2020-01-01", "end": "2020-12-31"}),
     "Consent.period.end: 2020-12-31 is in the past"),
    ("stranger", lambda d, e: d["provision"][0]["actor"][0].update(reference=ref(addr(e, "stranger"))),
     "Consent.provision[0].actor[0].reference: " "{stranger} is not a registered party"),
    ("draft", lambda d, e: d.update(status="draft"), "Consent.status: 'draft'"),
    ("no-class", lambda d, e: (d["provision"][0].pop("resourceType"), d["provision"][0].pop("securityLabel")),
     "Consent.provision[0].resourceType: names no data class"),
    ("invalid", lambda d, e: d.update(decision="maybe"), "Consent.decision: code \"maybe\" is not in the required"),
    ("other-patient", lambda d, e: d.update(subject=ref(addr(e, "clinic"))), "Consent.subject: the Consent is for"),
])
def test_consent_refusals_name_the_field_and_change_nothing(env, tmp_path, name, edit, needle):
    doc = r5_consent(env)
    edit(doc, env)
    source = write(tmp_path, f"{name}.json", doc)
    before = state(env)
    line = one_line_error(run_cli(env, "--account", "alice", "consent", "grant", "--from-fhir", str(source),
                                  check=False))
    assert needle.format(stranger=addr(env, "stranger")) in line, line
    assert state(env) == before
    assert not sidecar_path(source).exists()


def test_a_claim_is_not_a_consent(env, tmp_path):
    source = write(tmp_path, "claim.json", synthetic.claim_resource(1))
    before = state(env)
    line = one_line_error(run_cli(env, "--account", "alice", "consent", "grant", "--from-fhir", str(source),
                                  check=False))
    assert "resourceType: 'Claim'; a consent grant reads a FHIR Consent" in line
    assert state(env) == before


# --------------------------------------------------------------------------- Claim


def anchored_record(env) -> str:
    settings = load_settings(rpc=web3.provider.endpoint_uri, deployments_path=env["MEDLEDGER_DEPLOYMENTS"])
    sdk = Chain(settings)
    deployed = json.loads(open(env["MEDLEDGER_DEPLOYMENTS"]).read())[str(sdk.chain_id)]
    records = RecordRegistry(sdk, deployed["RecordRegistry"]["address"])
    from eth_account import Account
    clinic = LocalSigner(Account.from_key(dev_key(12)))
    rid, content = new_record_id(addr(env, "alice")), os.urandom(32)
    records.anchor(clinic, rid, addr(env, "alice"), content, 1)
    return f"0x{rid.hex()}:0x{content.hex()}"


def claim_doc(env, seed=7, **over):
    doc = synthetic.claim_resource(seed, quantity=1, procedures=[("99213", "Office visit", 240.25),
                                                                 ("80053", "Metabolic panel", 1000.25)])
    doc["patient"] = ref(addr(env, "alice"))
    doc["insurer"] = ref(addr(env, "payer"))
    doc["provider"] = ref(addr(env, "clinic"))
    doc.update(over)
    return doc


def test_claim_submit_adjudicate_claim_response(env, tmp_path):
    source = write(tmp_path, "claim.json", claim_doc(env))
    assert read_claim(json.loads(source.read_text())).total == 1240.50
    out = json.loads(run_cli(env, "--json", "--account", "clinic", "claim", "submit", "--claim-file", str(source),
                             "--record", anchored_record(env), "--control", "FHIR-1").stdout)
    assert out["status"] == "submitted" and out["service"] == 320 and out["billed"] == "1240.500000"
    opened = open_file(source)  # the off-chain package: the Claim and its sidecar salt
    assert out["salt_file"] == str(sidecar_path(source)) and out["commitment"] == "0x" + opened.commitment.hex()
    on_chain = claim_hashes(env)
    assert opened.commitment in on_chain  # the sidecar opens the on-chain value
    assert fhir.keccak256(fhir.canonicalize(source.read_bytes())) not in on_chain  # a copy alone finds nothing
    checked = run_cli(env, "--account", "payer", "claim", "status", "clinic", "FHIR-1", "--claim-file", str(source))
    assert checked.returncode == 0
    copy_ = write(tmp_path, "copy.json", json.loads(source.read_text()))  # the same Claim with another salt
    salted_file(copy_).save()
    line = one_line_error(run_cli(env, "--account", "payer", "claim", "status", "clinic", "FHIR-1", "--claim-file",
                                  str(copy_), check=False))
    assert "copy.json with copy.json.salt.json does not open claim" in line, line

    pending = json.loads(run_cli(env, "--account", "payer", "claim", "status", "clinic", "FHIR-1",
                                    "--fhir").stdout)
    assert fhir.validate(pending, "R5") == "ClaimResponse" and pending["outcome"] == "queued"

    run_cli(env, "--account", "payer", "claim", "approve", "clinic", "FHIR-1", "--amount", "1000", "--copay", "40.50",
            "--reason", "45")
    for version in ("R5", "R4"):
        back = tmp_path / f"cr-{version}.json"
        run_cli(env, "--account", "payer", "claim", "status", "clinic", "FHIR-1", "--fhir", "--fhir-version",
                version, "-o", str(back))
        cr = json.loads(back.read_text())
        assert fhir.validate(cr, version) == "ClaimResponse" and fhir.detect(cr) == version
        assert cr["outcome"] == "complete" and cr["disposition"].startswith("partially approved")
        amounts = {a["category"]["coding"][0]["code"]: a.get("amount", {}).get("value") for a in cr["adjudication"]}
        assert amounts["submitted"] == 1240.5 and amounts["benefit"] == 1000 and amounts["copay"] == 40.5
        assert amounts["contested"] == 240.5  # ClaimEscrow v2: the patient share stays disputable too
        carc = [a["reason"]["coding"][0] for a in cr["adjudication"] if "reason" in a]
        assert carc == [{"system": CARC_SYSTEM, "code": "45"}]
        assert cr["patient"]["identifier"]["value"] == addr(env, "alice")
        assert cr["requestor"]["identifier"]["value"] == addr(env, "clinic")
        if version == "R5":
            assert cr["decision"]["coding"][0]["code"] == "partial"


@pytest.mark.parametrize("name,args,doc_edit,needle", [
    ("amount", ["--amount", "9999"], None, "--amount 9999 does not equal the Claim's total 1240.5"),
    ("patient", ["--patient", "clinic"], None, "--patient {clinic} contradicts Claim.patient {alice}"),
    ("insurer", ["--insurer", "lab"], None, "--insurer {lab} contradicts Claim.insurer {payer}"),
    ("service", ["--service", "150"], None, "--service 150 contradicts the Claim's principal service"),
    ("provider", [], lambda d, e: d.update(provider=ref(addr(e, "lab"))), "Claim.provider: the Claim names provider"),
    ("preauth", [], lambda d, e: d.update(use="preauthorization"), "Claim.use: 'preauthorization'"),
    ("bad-code", [], lambda d, e: d["item"][0]["productOrService"]["coding"][0].update(
        system="http://snomed.info/sct"), "Claim.item[0].productOrService: http://snomed.info/sct|99213 maps to no"),
    ("invalid", [], lambda d, e: d.update(status="paid"), "Claim.status: code \"paid\" is not in the required"),
])
def test_claim_refusals_show_both_values_and_change_nothing(env, tmp_path, name, args, doc_edit, needle):
    doc = claim_doc(env)
    if doc_edit:
        doc_edit(doc, env)
    source = write(tmp_path, f"{name}.json", doc)
    record = anchored_record(env)
    before = state(env)
    line = one_line_error(run_cli(env, "--account", "clinic", "claim", "submit", "--claim-file", str(source),
                                  "--record", record, *args, check=False))
    assert needle.format(**{k: addr(env, k) for k in ACTORS}) in line, line
    assert state(env) == before
    assert not sidecar_path(source).exists()


def test_a_consent_is_not_a_claim_file(env, tmp_path):
    source = write(tmp_path, "consent.json", r5_consent(env))
    record = anchored_record(env)
    before = state(env)
    line = one_line_error(run_cli(env, "--account", "clinic", "claim", "submit", "--claim-file", str(source),
                                  "--record", record, "--amount", "10", "--patient", "alice", "--insurer", "payer",
                                  "--service", "150", check=False))
    assert "resourceType: 'Consent'; a claim file must be a FHIR Claim" in line
    assert state(env) == before


def test_claim_file_without_accounts_uses_the_flags(env, tmp_path):
    doc = copy.deepcopy(claim_doc(env))
    for key in ("patient", "insurer", "provider"):
        doc[key] = {"reference": f"urn:uuid:{os.urandom(16).hex()}"}
    source = write(tmp_path, "plain.json", doc)
    record = anchored_record(env)
    line = one_line_error(run_cli(env, "--account", "clinic", "claim", "submit", "--claim-file", str(source),
                                  "--record", record, check=False))
    assert "Claim.patient: names no account" in line and "give --patient" in line
    out = json.loads(run_cli(env, "--json", "--account", "clinic", "claim", "submit", "--claim-file", str(source),
                             "--record", record, "--patient", "alice", "--insurer", "payer", "--amount", "1240.50",
                             "--control", "FHIR-2").stdout)
    assert out["status"] == "submitted"
