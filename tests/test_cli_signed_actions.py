"""Issue 14, "a patient never needs gas", through the real `medledger` entry point on the test Ganache:
`consent guardian add|remove --sign -o FILE` and `emergency close|allow --sign -o FILE` write a signed
action that `consent relay FILE` submits from anyone's account; the patient's balance never moves."""
import json

import pytest
from brownie import web3
from support.nodes import deployed_env, run_cli

ACTORS = {"gov": 0, "clinic": 12, "lab": 13, "alice": 16, "mum": 17, "relayer": 18}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return deployed_env(tmp_path_factory.mktemp("cli-signed"), web3.provider.endpoint_uri, ACTORS,
                        providers=("clinic", "lab"))


def ml(env, *args, **kw):
    return run_cli(env, *args, **kw)


def balance(env, name: str) -> int:
    return web3.eth.get_balance(json.loads(env["ADDRESSES"])[name])


def sign_to(env, path, *args) -> dict:
    """Runs a `--sign -o path` command as alice (or another --account given first) and returns its JSON."""
    account = ("--account", "alice") if args[0] != "--account" else ()
    done = json.loads(ml(env, "--json", *account, *args, "--sign", "-o", str(path)).stdout)
    assert done["ok"] and done["file"] == str(path)
    return done


def test_guardian_appointed_and_removed_without_gas(env, tmp_path):
    before = balance(env, "alice")
    add = tmp_path / "add.json"
    assert sign_to(env, add, "consent", "guardian", "add", "mum")["kind"] == "appoint-guardian"
    assert json.loads(add.read_text())["message"]["guardian"] == json.loads(env["ADDRESSES"])["mum"]
    relayed = json.loads(ml(env, "--json", "--account", "relayer", "consent", "relay", str(add)).stdout)
    assert "relayed signed appoint-guardian of " + json.loads(env["ADDRESSES"])["alice"] in relayed["message"]
    ml(env, "--account", "mum", "consent", "grant", "clinic", "--patient", "alice", "-p", "treat", "-c", "labs")
    assert ml(env, "consent", "check", "alice", "clinic", "treat", "labs", check=False).returncode == 0

    replay = ml(env, "--account", "clinic", "consent", "relay", str(add), check=False)
    assert replay.returncode == 1 and "this signature was already used" in replay.stderr
    assert "Traceback" not in replay.stderr and len(replay.stderr.strip().splitlines()) == 1

    remove = tmp_path / "remove.json"
    sign_to(env, remove, "consent", "guardian", "remove", "mum")
    ml(env, "--account", "clinic", "consent", "relay", str(remove))
    refused = ml(env, "--account", "mum", "consent", "revoke", "clinic", "--patient", "alice", check=False)
    assert refused.returncode == 1 and "is neither patient" in refused.stderr
    assert balance(env, "alice") == before  # the patient signed four times and paid nothing


def test_emergency_closed_and_allowed_without_gas(env, tmp_path):
    add = tmp_path / "add.json"
    sign_to(env, add, "consent", "guardian", "add", "mum")
    ml(env, "--account", "relayer", "consent", "relay", str(add))
    before = balance(env, "alice"), balance(env, "mum")
    ml(env, "--account", "lab", "emergency", "open", "alice", "--hours", "2", "--reason", "unconscious")
    assert ml(env, "consent", "check", "alice", "lab", "etreat", "allergies", check=False).returncode == 0

    close = tmp_path / "close.json"
    assert sign_to(env, close, "emergency", "close", "alice", "lab")["kind"] == "close-break-glass"
    ml(env, "--account", "relayer", "consent", "relay", str(close))
    assert ml(env, "consent", "check", "alice", "lab", "etreat", "allergies", check=False).returncode == 3
    blocked = ml(env, "--account", "lab", "emergency", "open", "alice", "--reason", "unconscious", check=False)
    assert blocked.returncode == 1 and "Traceback" not in blocked.stderr

    allow = tmp_path / "allow.json"  # the guardian signs this one
    assert sign_to(env, allow, "--account", "mum", "emergency", "allow", "alice", "lab")["kind"] == "allow-break-glass"
    relayed = json.loads(ml(env, "--json", "--account", "clinic", "consent", "relay", str(allow)).stdout)
    assert json.loads(env["ADDRESSES"])["mum"] in relayed["message"]
    ml(env, "--account", "lab", "emergency", "open", "alice", "--hours", "1", "--reason", "unconscious")
    assert ml(env, "consent", "check", "alice", "lab", "etreat", "allergies", check=False).returncode == 0
    assert (balance(env, "alice"), balance(env, "mum")) == before
    trail = [e["event"] for e in json.loads(ml(env, "audit", "alice", "--format", "json").stdout)]
    assert trail[-4:] == ["BreakGlassOpened", "BreakGlassClosed", "BreakGlassAllowed", "BreakGlassOpened"]


def test_cancel_voids_a_signed_emergency_close(env, tmp_path):
    ml(env, "--account", "clinic", "emergency", "open", "alice", "--hours", "1", "--reason", "unconscious")
    close = tmp_path / "close.json"
    sign_to(env, close, "emergency", "close", "alice", "clinic")
    ml(env, "--account", "alice", "consent", "cancel", "clinic")
    voided = ml(env, "--account", "relayer", "consent", "relay", str(close), check=False)
    assert voided.returncode == 1 and "this signature was already used" in voided.stderr
    assert ml(env, "consent", "check", "alice", "clinic", "etreat", "allergies", check=False).returncode == 0


def test_stranger_signature_is_refused_in_a_sentence(env, tmp_path):
    ml(env, "--account", "lab", "emergency", "open", "alice", "--hours", "1", "--reason", "unconscious",
       check=False)  # open unless a window is open already
    close = tmp_path / "close.json"
    sign_to(env, close, "--account", "relayer", "emergency", "close", "alice", "lab")
    refused = ml(env, "--account", "clinic", "consent", "relay", str(close), check=False)
    assert refused.returncode == 1 and "is neither patient" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,needle", [
    (("consent", "guardian", "add", "mum", "--sign"), "--sign needs --out FILE"),
    (("emergency", "close", "alice", "lab", "-o", "x.json"), "--out goes with --sign"),
    (("emergency", "allow", "alice", "lab", "--sign", "-o", "x.json", "--deadline-minutes", "20000"),
     "--deadline-minutes"),
])
def test_sign_mistakes_are_one_clear_line(env, args, needle):
    proc = ml(env, "--account", "alice", *args, check=False)
    assert proc.returncode != 0 and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_existing_file_is_never_overwritten(env, tmp_path):
    taken = tmp_path / "taken.json"
    taken.write_text("keep me")
    proc = ml(env, "--account", "alice", "consent", "guardian", "remove", "mum", "--sign", "-o", str(taken),
              check=False)
    assert proc.returncode != 0 and "exists already" in proc.stderr and taken.read_text() == "keep me"


@pytest.mark.parametrize("content,needle", [
    ({"kind": "burn-records", "chainId": 1, "verifyingContract": "0x" + "00" * 20, "message": {}, "signature": "0x"},
     "not one of grant, revoke, appoint-guardian"),
    ({"kind": "close-break-glass"}, "is not a signed consent file"),
])
def test_relay_refuses_unknown_files_in_one_line(env, tmp_path, content, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(content))
    proc = ml(env, "--account", "relayer", "consent", "relay", str(bad), check=False)
    assert proc.returncode == 1 and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_relay_refuses_a_malformed_signed_action(env, tmp_path):
    close = tmp_path / "close.json"
    ml(env, "--account", "lab", "emergency", "open", "alice", "--hours", "1", "--reason", "unconscious",
       check=False)
    sign_to(env, close, "emergency", "close", "alice", "lab")
    data = json.loads(close.read_text())
    del data["message"]["provider"]
    close.write_text(json.dumps(data))
    proc = ml(env, "--account", "relayer", "consent", "relay", str(close), check=False)
    assert proc.returncode == 1 and "the signed close-break-glass is malformed" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
