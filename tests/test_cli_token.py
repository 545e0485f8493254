"""Issue 13, finding 14: one token per deployment, recorded, and every command uses it. Through the
real `medledger` entry point on the test Ganache."""
import json
from pathlib import Path

import pytest
from brownie import web3
from eth_account import Account
from support.nodes import cli_env, dev_key, funded_keystores, run_cli, run_json

from medledger.accounts import LocalSigner
from medledger.chain import Chain
from medledger.config import load_settings

ACTORS = {"gov": 0, "payer": 14, "issuer": 15}


def recorded(env) -> dict:
    return json.loads(Path(env["MEDLEDGER_DEPLOYMENTS"]).read_text())[str(web3.eth.chain_id)]


def one_line(proc) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture
def env(tmp_path):
    env = cli_env(tmp_path, MEDLEDGER_RPC=web3.provider.endpoint_uri)
    funded_keystores(env, ACTORS)
    return env


@pytest.fixture
def external_token(env):
    """A token the deployment did not deploy (its issuer, not MedLedger, mints it)."""
    sdk = Chain(load_settings(rpc=web3.provider.endpoint_uri, deployments_path=env["MEDLEDGER_DEPLOYMENTS"]))
    issuer = LocalSigner(Account.from_key(dev_key(ACTORS["issuer"])))
    contract, _ = sdk.deploy(issuer, "MockStablecoin")
    return sdk, issuer, contract


def test_deploy_token_is_recorded_and_used_by_every_command(env, external_token):
    sdk, issuer, token = external_token
    run_cli(env, "--account", "gov", "deploy", "--token", token.address)
    entry = recorded(env)["Stablecoin"]
    assert entry["address"] == token.address and entry["external"] is True
    escrow = recorded(env)["ClaimEscrow"]["address"]
    assert sdk.call(sdk.contract("ClaimEscrow", escrow).functions.token()) == token.address

    # dev mint refuses an external token instead of deploying (or minting into) a second mock.
    nonce, block = web3.eth.get_transaction_count(run_json(env, "keys", "list")[0]["address"]), web3.eth.block_number
    line = one_line(run_cli(env, "--account", "gov", "dev", "mint", "payer", "1000000", check=False))
    assert f"token {token.address} is an external token" in line and "cannot mint" in line, line
    line = one_line(run_cli(env, "--account", "gov", "dev", "deploy-token", check=False))
    assert f"already uses token {token.address}" in line, line
    assert web3.eth.block_number == block and recorded(env)["Stablecoin"] == entry  # nothing sent, nothing written
    assert web3.eth.get_transaction_count(run_json(env, "keys", "list")[0]["address"]) == nonce

    # The escrow commands use the recorded token: funds minted by its issuer can be deposited.
    run_cli(env, "--account", "gov", "registry", "add-insurer", "payer", "--metadata", "0x" + "13" * 32)
    payer = next(r["address"] for r in run_json(env, "keys", "list") if r["name"] == "payer")
    sdk.transact(issuer, token.functions.mint(payer, 250_000_000))
    run_cli(env, "--account", "payer", "escrow", "deposit", "200.5")
    balances = run_json(env, "--account", "payer", "escrow", "balance")
    assert balances["free"] == 200_500_000 and balances["wallet"] == 49_500_000

    # One token per deployment: a second, different token is refused; re-running keeps the first.
    other, _ = sdk.deploy(issuer, "MockStablecoin")
    line = one_line(run_cli(env, "--account", "gov", "deploy", "--token", other.address, check=False))
    assert f"already uses token {token.address}" in line and "one token per deployment" in line, line
    steps = run_json(env, "--account", "gov", "deploy")
    assert {s["contract"]: s["action"] for s in steps}["Stablecoin"] == "kept"
    assert recorded(env)["Stablecoin"]["address"] == token.address


def test_dev_chain_mock_is_recorded_and_minted(env):
    steps = run_json(env, "--account", "gov", "deploy")
    mock = {s["contract"]: s for s in steps}["Stablecoin"]
    assert mock["action"] == "deployed" and "external" not in recorded(env)["Stablecoin"]
    run_cli(env, "--account", "gov", "dev", "mint", "payer", "1000000")
    assert run_json(env, "--account", "payer", "escrow", "balance")["wallet"] == 1_000_000
    line = one_line(run_cli(env, "--account", "gov", "deploy", "--token", "0x" + "12" * 20, check=False))
    assert "has no contract" in line, line
