"""The development-chain kit: one home for what tests, benchmarks and the demo share.

In the spirit of ape's ``ape_test``: the development mnemonic and its accounts, one actor map, port
helpers, the local node launchers (Ganache, Anvil), the `medledger` executable and an isolated
environment for it, and the synthetic FHIR generator (``medledger.testing.synthetic``). Nothing here
is needed to use MedLedger against a real network, and nothing here imports brownie or pytest.
"""
from __future__ import annotations

from .accounts import (
    ACCOUNT_COUNT,
    ACTORS,
    DEV_BALANCE_ETH,
    MNEMONIC,
    actor_index,
    dev_account,
    dev_private_key,
    dev_public_key,
    dev_signer,
)
from .cli import DEV_PASSWORD, cli_env, medledger_exe
from .nodes import AnvilNode, GanacheNode, LocalNode, die_with_parent, stop_group
from .ports import free_port, port_open, wait_for_port

__all__ = [
    "ACCOUNT_COUNT",
    "ACTORS",
    "DEV_BALANCE_ETH",
    "DEV_PASSWORD",
    "MNEMONIC",
    "AnvilNode",
    "GanacheNode",
    "LocalNode",
    "actor_index",
    "cli_env",
    "dev_account",
    "dev_private_key",
    "dev_public_key",
    "dev_signer",
    "die_with_parent",
    "free_port",
    "medledger_exe",
    "port_open",
    "stop_group",
    "wait_for_port",
]
