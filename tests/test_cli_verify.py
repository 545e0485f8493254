"""`medledger verify` on a real deployment: the standard-JSON inputs it writes recompile, with the solc
the project registers, to the runtime code on chain (immutables masked, metadata hash included), and a
contract whose code is not this source is reported."""
import json
import subprocess
from pathlib import Path

import pytest
from brownie import web3
from support.nodes import cli_env, funded_keystores, run_cli, run_json

from medledger.verification import Compiled, MatchKind, compare, find_solc

ROOT = Path(__file__).resolve().parents[1]
SUITE = {"CareRegistry", "ConsentRegistry", "RecordRegistry", "ClaimEscrow", "Stablecoin"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = cli_env(tmp_path_factory.mktemp("verify"), MEDLEDGER_RPC=web3.provider.endpoint_uri)
    funded_keystores(env, {"gov": 0})
    run_json(env, "--account", "gov", "deploy")
    return env


def test_every_contract_is_a_full_match_and_the_inputs_recompile_independently(env, tmp_path):
    out = tmp_path / "verified"
    rows = run_json(env, "verify", "--out", str(out))
    assert {r["contract"] for r in rows} == SUITE
    assert {r["match"] for r in rows} == {"full"}
    assert {r["changed sources"] for r in rows} == {"-"}
    deployments = json.loads(Path(env["MEDLEDGER_DEPLOYMENTS"]).read_text())[str(web3.eth.chain_id)]
    # An independent recompilation of the file an operator would upload to Etherscan.
    escrow_input = json.loads((out / "ClaimEscrow.standard-input.json").read_text())
    assert set(escrow_input["settings"]) >= {"optimizer", "evmVersion", "remappings"}
    solc = find_solc("0.8.28")
    built = json.loads(subprocess.run([solc, "--standard-json", "--base-path", "."], input=json.dumps(escrow_input),
                                      capture_output=True, text=True, cwd=ROOT, check=True).stdout)
    evm = built["contracts"]["contracts/ClaimEscrow.sol"]["ClaimEscrow"]["evm"]["deployedBytecode"]
    slots = tuple((r["start"], r["length"]) for refs in evm["immutableReferences"].values() for r in refs)
    assert slots, "ClaimEscrow has immutables: the comparison must mask them"
    onchain = bytes(web3.eth.get_code(deployments["ClaimEscrow"]["address"]))
    assert compare(onchain, Compiled(bytes.fromhex(evm["object"]), slots, "")) is MatchKind.FULL
    assert bytes.fromhex(evm["object"]) != onchain  # the immutables really differ before masking
    # Sourcify's files and the manifest an operator commits.
    assert json.loads((out / "ClaimEscrow.metadata.json").read_text())["settings"]["evmVersion"] == "shanghai"
    source = "contracts/ClaimEscrow.sol"
    assert (out / "sources" / source).read_text() == (ROOT / source).read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["chainId"] == web3.eth.chain_id
    entry = manifest["contracts"]["ConsentRegistry"]
    recorded = deployments["ConsentRegistry"]
    assert (entry["address"], entry["tx"], entry["block"]) == (recorded["address"], recorded["tx"], recorded["block"])
    assert entry["compiler"] == "v0.8.28+commit.7893614a"
    assert entry["sources"]["contracts/ConsentRegistry.sol"].startswith("0x")


def test_code_that_is_not_this_source_is_a_mismatch_in_one_line(env, tmp_path):
    deployments_file = Path(env["MEDLEDGER_DEPLOYMENTS"])
    data = json.loads(deployments_file.read_text())
    entry = data[str(web3.eth.chain_id)]
    # Point RecordRegistry's record at the ConsentRegistry's code, as a wrong address in a manifest would.
    entry["RecordRegistry"] = dict(entry["ConsentRegistry"])
    swapped = tmp_path / "swapped.json"
    swapped.write_text(json.dumps(data))
    proc = run_cli({**env, "MEDLEDGER_DEPLOYMENTS": str(swapped)}, "verify", "--out", str(tmp_path / "v"), check=False)
    assert proc.returncode == 1
    assert "does not match this source for: RecordRegistry" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
