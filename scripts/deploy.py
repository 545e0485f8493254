"""Deploy and wire the MedLedger suite on the active brownie network.

    brownie run scripts/deploy.py --network medledger-ganache
    MEDLEDGER_ACCOUNT=keystore:deployer brownie run scripts/deploy.py --network sepolia

The work is done by `medledger.deploy.deploy_suite`, the same code as `medledger deploy`.
On a development network the deployer is the node's first account; on a live network it is
the keystore named by MEDLEDGER_ACCOUNT (or brownie's `accounts.load` of BROWNIE_ACCOUNT).
"""
import os

from brownie import accounts, web3
from brownie._config import CONFIG

from medledger.accounts import LocalSigner, NodeSigner, load_signer
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.deploy import DeployOptions, deploy_suite


def brownie_signer(account):
    """A medledger signer for a brownie account (local key, or unlocked on the dev node)."""
    key = getattr(account, "private_key", None)
    if key:
        from eth_account import Account
        return LocalSigner(Account.from_key(key))
    return NodeSigner(account.address)


def connect():
    """Settings, chain and signer for the active brownie network."""
    settings = load_settings(rpc=web3.provider.endpoint_uri)
    chain = Chain(settings, w3=web3)
    if CONFIG.network_type == "development":
        signer = NodeSigner(accounts[0].address)
    elif os.environ.get("MEDLEDGER_ACCOUNT"):
        signer = load_signer(os.environ["MEDLEDGER_ACCOUNT"], settings.keystore_dir, settings.brownie_accounts_dir)
    else:
        signer = brownie_signer(accounts.load(os.environ.get("BROWNIE_ACCOUNT", "deployer")))
    return settings, chain, signer


def main():
    settings, chain, signer = connect()
    token = os.environ.get("MEDLEDGER_TOKEN")
    steps = deploy_suite(chain, signer, DeployOptions(token=token), log=print)
    print(f"\nMedLedger on chain {chain.chain_id} (recorded in {settings.deployments_path}):")
    for step in steps:
        print(f"  {step.name:16} {step.address}  {step.action}")
    return steps
