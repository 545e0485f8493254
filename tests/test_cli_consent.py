"""The `medledger` CLI through its real entry point, on the test Ganache: keys, deploy, registry,
consent (incl. EIP-712 sign + relay), guardians, emergency access, audit, and user mistakes."""
import json

import pytest
from brownie import chain, web3
from support.nodes import cli_env, funded_keystores, run_cli, run_json

ACTORS = {"gov": 0, "clinic": 12, "lab": 13, "payer": 14, "alice": 16, "mum": 17, "relayer": 18, "bob": 19}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli")
    env = cli_env(home, MEDLEDGER_RPC=web3.provider.endpoint_uri)
    funded_keystores(env, ACTORS)
    steps = run_json(env, "--account", "gov", "deploy")
    assert {s["contract"] for s in steps} >= {"CareRegistry", "ConsentRegistry", "RecordRegistry", "ClaimEscrow"}
    run_cli(env, "--account", "gov", "registry", "add-provider", "clinic", "--metadata", "0x" + "11" * 32)
    run_cli(env, "--account", "gov", "registry", "add-provider", "lab", "--metadata", "0x" + "12" * 32)
    run_cli(env, "--account", "gov", "registry", "add-insurer", "payer", "--metadata", "0x" + "13" * 32)
    return env


def ml(env, *args, **kw):
    return run_cli(env, *args, **kw)


def test_keystore_round_trip(env):
    listed = run_json(env, "keys", "list")
    names = {row["name"]: row["address"] for row in listed}
    assert names["alice"] == web3.eth.account.from_key(bytes.fromhex(
        __import__("support.nodes", fromlist=["dev_key"]).dev_key(16).removeprefix("0x"))).address
    keyfile = json.loads(open(listed[0]["path"]).read())
    assert "crypto" in keyfile and "ciphertext" in keyfile["crypto"]  # encrypted, never plaintext
    created = json.loads(ml(env, "--json", "keys", "new", "fresh").stdout)
    assert created["address"].startswith("0x")
    dup = ml(env, "keys", "new", "fresh", check=False)
    assert dup.returncode == 1 and "exists already" in dup.stderr


def test_registry_show(env):
    shown = run_json(env, "registry", "show", "clinic")
    assert shown["role"] == "provider" and shown["active"] is True
    assert shown["metadata_hash"] == "0x" + "11" * 32


def test_grant_check_revoke(env):
    ml(env, "--account", "alice", "consent", "grant", "clinic", "-p", "treat", "-c", "conditions,labs", "--days", "30")
    ok = ml(env, "consent", "check", "alice", "clinic", "treat", "labs", check=False)
    assert ok.returncode == 0
    no = ml(env, "consent", "check", "alice", "clinic", "treat", "genomics", check=False)
    assert no.returncode == 3
    rows = run_json(env, "consent", "list", "alice")
    assert rows[0]["purposes"] == "treat" and rows[0]["live"] is True
    ml(env, "--account", "alice", "consent", "revoke", "clinic")
    assert ml(env, "consent", "check", "alice", "clinic", "treat", "labs", check=False).returncode == 3


def test_consent_expires(env):
    ml(env, "--account", "alice", "consent", "grant", "lab", "-p", "treat", "-c", "labs", "--days", "1")
    assert ml(env, "consent", "check", "alice", "lab", "treat", "labs", check=False).returncode == 0
    chain.sleep(2 * 86400)
    chain.mine()
    assert ml(env, "consent", "check", "alice", "lab", "treat", "labs", check=False).returncode == 3


def test_signed_consent_relayed_by_provider(env, tmp_path):
    signed = tmp_path / "grant.json"
    ml(env, "--account", "alice", "consent", "sign", "payer", "-p", "hpaymt", "-c", "billing", "-o", str(signed))
    alice = next(r["address"] for r in run_json(env, "keys", "list") if r["name"] == "alice")
    before = web3.eth.get_balance(alice)
    ml(env, "--account", "clinic", "consent", "relay", str(signed))
    assert ml(env, "consent", "check", "alice", "payer", "hpaymt", "billing", check=False).returncode == 0
    assert web3.eth.get_balance(alice) == before  # the patient paid no gas
    replay = ml(env, "--account", "relayer", "consent", "relay", str(signed), check=False)
    assert replay.returncode == 1 and "this signature was already used" in replay.stderr
    assert "InvalidSignature" not in replay.stderr and "Traceback" not in replay.stderr


def test_guardian_acts_for_patient(env):
    ml(env, "--account", "bob", "consent", "guardian", "add", "mum")
    ml(env, "--account", "mum", "consent", "grant", "clinic", "--patient", "bob", "-p", "treat", "-c", "all")
    assert ml(env, "consent", "check", "bob", "clinic", "treat", "medications", check=False).returncode == 0
    assert ml(env, "consent", "check", "bob", "clinic", "treat", "mental-health", check=False).returncode == 3
    ml(env, "--account", "bob", "consent", "guardian", "remove", "mum")
    refused = ml(env, "--account", "mum", "consent", "revoke", "clinic", "--patient", "bob", check=False)
    assert refused.returncode == 1 and "is neither patient" in refused.stderr


def test_emergency_open_close_and_audit(env):
    ml(env, "--account", "lab", "emergency", "open", "bob", "--hours", "2", "--reason", "unconscious")
    assert ml(env, "consent", "check", "bob", "lab", "etreat", "allergies", check=False).returncode == 0
    assert ml(env, "consent", "check", "bob", "lab", "treat", "allergies", check=False).returncode == 3
    ml(env, "--account", "bob", "emergency", "close", "bob", "lab")
    assert ml(env, "consent", "check", "bob", "lab", "etreat", "allergies", check=False).returncode == 3
    trail = json.loads(ml(env, "audit", "bob", "--format", "json").stdout)
    events = [e["event"] for e in trail]
    assert events[-2:] == ["BreakGlassOpened", "BreakGlassClosed"]


@pytest.mark.parametrize("args,needle", [
    (("--account", "nobody", "consent", "revoke", "clinic"), "unknown account 'nobody'"),
    (("--account", "alice", "consent", "grant", "clinic", "-p", "treat", "-c", "bones"), "unknown dataclass 'bones'"),
    (("--account", "alice", "consent", "grant", "0x1234", "-p", "treat", "-c", "labs"), "neither an address"),
    (("--rpc", "http://127.0.0.1:1", "registry", "show", "alice"), "unreachable"),
    (("--account", "clinic", "registry", "add-provider", "bob", "--metadata", "0x" + "22" * 32),
     "lacks the registrar role"),
    (("--account", "alice", "emergency", "open", "bob", "--reason", "x"), "is not an active provider"),
])
def test_user_mistakes_are_one_clear_line(env, args, needle):
    proc = ml(env, *args, check=False)
    assert proc.returncode != 0
    assert needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_wrong_password(env):
    proc = ml({**env, "MEDLEDGER_PASSWORD": "wrong-password"}, "--account", "alice", "consent", "revoke", "clinic",
              check=False)
    assert proc.returncode == 1 and "wrong password for account 'alice'" in proc.stderr


def test_no_deployment_on_chain(env, tmp_path):
    proc = ml({**env, "MEDLEDGER_DEPLOYMENTS": str(tmp_path / "none.json")}, "registry", "show", "alice", check=False)
    assert proc.returncode == 1 and "no MedLedger deployment for chain" in proc.stderr
