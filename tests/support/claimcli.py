"""The claims world of the CLI tests (not a test module itself): a deployment made through the real
`medledger` entry point, where `payer` insures `alice` and `clinic` bills her care.

`claims_env(home)` builds it and returns the CLI environment; `submit`, `balances` and
`anchored_record` drive it. Test modules that use it define their own module-scoped fixture over
`claims_env`, so each module gets a world of its own.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from brownie import web3
from eth_account import Account

from medledger.accounts import LocalSigner
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.contracts import RecordRegistry
from medledger.record_ids import new_record_id
from medledger.scopes import DataClass

from .nodes import cli_env, dev_key, funded_keystores, run_cli, run_json

ACTORS = {"gov": 0, "judge": 11, "clinic": 12, "payer": 14, "alice": 16}


def claims_env(home: Path) -> dict[str, str]:
    """Deploys the suite with the CLI and sets up the claims world; returns the CLI environment.

    `payer` holds 10,000 tokens in escrow, auto-approves up to 150 on conditions for service codes
    100-199 (prompt pay 15 days, disputes 30 days) and covers `alice`; alice consents to `clinic`
    (TREAT + HPAYMT on conditions and labs) and to `payer` (HPAYMT on billing and conditions). The clinic and
    the payer published their encryption keys; the judge (an arbiter, assigned to the payer) did not.
    """
    env = cli_env(home, MEDLEDGER_RPC=web3.provider.endpoint_uri)
    addresses = funded_keystores(env, ACTORS)
    run_cli(env, "--account", "gov", "deploy")
    for cmd, who in (("add-provider", "clinic"), ("add-insurer", "payer"), ("add-arbiter", "judge")):
        run_cli(env, "--account", "gov", "registry", cmd, who, "--metadata", "0x" + os.urandom(32).hex())
    run_cli(env, "--account", "gov", "registry", "assign-arbiter", "payer", "judge")  # the deployer governs
    for who in ("clinic", "payer"):  # their keys key the text control numbers of their claims (docs/CLI.md)
        run_cli(env, "--account", who, "registry", "publish-key")
    run_cli(env, "--account", "gov", "dev", "mint", "payer", "1000000000000")  # 1,000,000 tokens (6 decimals)
    run_cli(env, "--account", "payer", "escrow", "deposit", "10000")
    run_cli(env, "--account", "payer", "claim", "rules", "set", "--prompt-pay-days", "15", "--dispute-days", "30",
            "--auto-max", "150", "--auto-service", "100-199")
    run_cli(env, "--account", "payer", "coverage", "enroll", "alice", "--policy-hash", "0x" + "ab" * 32,
            "--auto-classes", "conditions")
    run_cli(env, "--account", "alice", "consent", "grant", "clinic", "-p", "treat,hpaymt", "-c", "conditions,labs")
    run_cli(env, "--account", "alice", "consent", "grant", "payer", "-p", "hpaymt", "-c", "billing,conditions")
    env["ADDR"] = json.dumps(addresses)
    return env


def anchored_record(env: dict[str, str]) -> str:
    """A CONDITIONS record anchored by the clinic for alice (a fresh record id of alice, random content
    hash), as the CLI's `--record ID:HASH`."""
    settings = load_settings(rpc=web3.provider.endpoint_uri, deployments_path=env["MEDLEDGER_DEPLOYMENTS"])
    sdk = Chain(settings)
    deployed = json.loads(Path(env["MEDLEDGER_DEPLOYMENTS"]).read_text())[str(sdk.chain_id)]
    records = RecordRegistry(sdk, deployed["RecordRegistry"]["address"])
    clinic = LocalSigner(Account.from_key(dev_key(ACTORS["clinic"])))
    alice = json.loads(env["ADDR"])["alice"]
    rid, content = new_record_id(alice), os.urandom(32)  # an id of alice: her address ++ 96 random bits
    records.anchor(clinic, rid, alice, content, DataClass.CONDITIONS)
    return f"0x{rid.hex()}:0x{content.hex()}"


def submit(env: dict[str, str], amount: str, service: int, control: str) -> dict:
    """The clinic submits claim `control` for alice to payer (`amount` in tokens) over a fresh record."""
    return json.loads(run_cli(env, "--json", "--account", "clinic", "claim", "submit", "--patient", "alice",
                              "--insurer", "payer", "--amount", amount, "--record", anchored_record(env),
                              "--service", str(service), "--claim-hash", "0x" + "cd" * 32,
                              "--control", control).stdout)


def balances(env: dict[str, str], who: str) -> dict:
    """`medledger escrow balance` of `who`, as JSON."""
    return run_json(env, "--account", who, "escrow", "balance")
