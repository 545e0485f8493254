"""The dev-chain kit (`medledger.testing`): one mnemonic, one launcher API for Ganache and Anvil."""
import re
from pathlib import Path

import pytest
from web3 import Web3

from medledger.testing import (
    ACCOUNT_COUNT,
    ACTORS,
    DEV_BALANCE_ETH,
    MNEMONIC,
    AnvilNode,
    GanacheNode,
    dev_account,
    dev_private_key,
    port_open,
)

ROOT = Path(__file__).resolve().parents[1]


def test_setup_sh_mnemonic_is_the_kits():
    # tools/setup.sh writes brownie's network ids with its own copy (a shell script cannot import it).
    copies = re.findall(r'^MNEMONIC="([^"]*)"$', (ROOT / "tools" / "setup.sh").read_text(), re.MULTILINE)
    assert copies == [MNEMONIC]


def test_kit_accounts_are_the_chain_accounts(accounts):
    # brownie's Ganache is funded from tools/setup.sh's copy; the kit derives the same accounts.
    assert [dev_account(i).address for i in range(10)] == [a.address for a in accounts[:10]]
    assert dev_private_key(ACTORS["patient"]).startswith("0x")
    assert len(set(ACTORS.values())) == len(ACTORS)


@pytest.mark.parametrize("kind, chain_id", [(GanacheNode, 1337), (AnvilNode, 31337)])
def test_nodes_share_one_api(kind, chain_id, tmp_path):
    node = kind()  # a free loopback port
    assert not port_open(node.port)
    with node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        assert node.url == f"http://127.0.0.1:{node.port}"
        assert w3.eth.chain_id == chain_id
        assert len(w3.eth.accounts) == ACCOUNT_COUNT
        assert w3.eth.accounts[ACTORS["insurer"]] == dev_account(ACTORS["insurer"]).address
        assert w3.eth.get_balance(dev_account(19).address) == Web3.to_wei(DEV_BALANCE_ETH, "ether")
        with pytest.raises(RuntimeError, match="busy"):
            kind(node.port).start()
    assert node.process is None and not port_open(node.port)
    node.stop()  # idempotent
