"""Operating on real networks, rehearsed on Ganache: named chain profiles refuse an RPC that serves
another chain, and `deploy --dry-run` prices the deployment without sending anything."""
from brownie import web3
from support.nodes import cli_env, funded_keystores, run_cli, run_json

SUITE = ["CareRegistry", "ConsentRegistry", "RecordRegistry", "ClaimEscrow"]


def test_a_profile_refuses_an_rpc_of_another_chain(tmp_path):
    env = cli_env(tmp_path, BASE_SEPOLIA_RPC_URL=web3.provider.endpoint_uri)
    proc = run_cli(env, "--network", "base-sepolia", "registry", "show", "0x" + "11" * 20, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"error: the RPC for network 'base-sepolia' serves chain {web3.eth.chain_id}, "
                                   "not 84532: check the URL in its environment variable")
    missing = run_cli(cli_env(tmp_path), "--network", "op-sepolia", "registry", "show", "0x" + "11" * 20, check=False)
    assert "needs its RPC URL in the environment variable OP_SEPOLIA_RPC_URL" in missing.stderr


def test_dry_run_estimates_every_contract_and_sends_nothing(tmp_path, accounts):
    env = cli_env(tmp_path, MEDLEDGER_RPC=web3.provider.endpoint_uri)
    address = funded_keystores(env, {"gov": 0})["gov"]
    token = run_json(env, "--account", "gov", "deploy")  # a real token to price the escrow against
    token = next(s["address"] for s in token if s["contract"] == "Stablecoin")
    before, nonce = web3.eth.block_number, web3.eth.get_transaction_count(address)
    rows = run_json(env, "--account", "gov", "deploy", "--dry-run", "--token", token)
    assert [r["contract"] for r in rows] == [*SUITE, "total"]
    assert all(r["gas"] > 500_000 for r in rows[:-1])
    assert rows[-1]["gas"] == sum(r["gas"] for r in rows[:-1])
    assert (web3.eth.block_number, web3.eth.get_transaction_count(address)) == (before, nonce)
    bad = run_cli(env, "--account", "gov", "deploy", "--dry-run", "--token", "0x" + "22" * 20, check=False)
    assert bad.returncode == 1 and "no contract at --token" in bad.stderr and "Traceback" not in bad.stderr
