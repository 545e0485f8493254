"""The live-network deploy path, on a separately started node registered as a live brownie network."""
import json
import subprocess

import pytest
from support.nodes import ROOT, GanacheNode, cli_env, dev_key, run_cli
from web3 import Web3

from medledger.accounts import import_key

LIVE_PORT, LIVE_CHAIN_ID = 8555, 1338


@pytest.fixture(scope="module")
def live_node(tmp_path_factory):
    node = GanacheNode(LIVE_PORT, LIVE_CHAIN_ID).start()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def live_env(tmp_path_factory, live_node):
    home = tmp_path_factory.mktemp("live")
    env = cli_env(home)
    import_key(home / "keystore", "deployer", dev_key(15), env["MEDLEDGER_PASSWORD"])
    # The stablecoin exists before MedLedger on a live network: deploy one with the SDK.
    token = json.loads(run_cli(env, "--rpc", live_node.url, "--json", "--account", "deployer",
                               "dev", "deploy-token").stdout)["address"]
    env["MEDLEDGER_TOKEN"] = token
    return env


def _deployed(env):
    return json.loads((ROOT / env["MEDLEDGER_DEPLOYMENTS"]).read_text())[str(LIVE_CHAIN_ID)]


def test_brownie_deploy_script_on_a_live_network_then_resume(live_node, live_env):
    env = {**live_env, "MEDLEDGER_ACCOUNT": "keystore:deployer"}
    # The brownie script on a live brownie network (tools/brownie_run.py == `brownie run`, from any path).
    cmd = [str(ROOT / ".venv" / "bin" / "python"), "tools/brownie_run.py", "scripts/deploy.py",
           "--network", "medledger-local-live"]
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    recorded = _deployed(env)
    assert set(recorded) >= {"CareRegistry", "ConsentRegistry", "RecordRegistry", "ClaimEscrow"}
    w3 = Web3(Web3.HTTPProvider(live_node.url))
    for entry in recorded.values():
        assert len(w3.eth.get_code(entry["address"])) > 0

    # Simulate a deploy cut off after the first two contracts: drop the last two records.
    data = json.loads((ROOT / env["MEDLEDGER_DEPLOYMENTS"]).read_text())
    kept = {k: data[str(LIVE_CHAIN_ID)][k] for k in ("CareRegistry", "ConsentRegistry")}
    data[str(LIVE_CHAIN_ID)] = kept
    (ROOT / env["MEDLEDGER_DEPLOYMENTS"]).write_text(json.dumps(data))

    # Resume through the CLI (the same deploy code): the two recorded contracts are kept.
    out = json.loads(run_cli(env, "--rpc", live_node.url, "--json", "--account", "deployer",
                             "--confirmations", "1", "deploy", "--token", env["MEDLEDGER_TOKEN"]).stdout)
    actions = {row["contract"]: row["action"] for row in out}
    assert actions["CareRegistry"] == "kept" and actions["ConsentRegistry"] == "kept"
    assert actions["RecordRegistry"] == "deployed" and actions["ClaimEscrow"] == "deployed"
    resumed = _deployed(env)
    assert resumed["CareRegistry"] == recorded["CareRegistry"]
    assert resumed["ClaimEscrow"]["address"] != recorded["ClaimEscrow"]["address"]

    # A third run changes nothing.
    again = json.loads(run_cli(env, "--rpc", live_node.url, "--json", "--account", "deployer",
                               "deploy", "--token", env["MEDLEDGER_TOKEN"]).stdout)
    assert {row["action"] for row in again} == {"kept"}


def test_live_deploy_without_token_is_refused(live_node, live_env):
    proc = run_cli(live_env, "--rpc", live_node.url, "--account", "deployer", "deploy", check=False)
    assert proc.returncode == 1
    assert "stablecoin" in proc.stderr and "Traceback" not in proc.stderr
