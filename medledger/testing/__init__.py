"""The development-chain kit: one home for what tests, benchmarks and the demo share.

In the spirit of ape's ``ape_test``: the development mnemonic and its accounts, one actor map, port
helpers and the local node launchers, and the synthetic FHIR generator. Nothing here is needed to use
MedLedger against a real network, and nothing here imports brownie or pytest.
"""
from __future__ import annotations

from .accounts import ACCOUNT_COUNT, ACTORS, DEV_BALANCE_ETH, MNEMONIC, actor_index, dev_account, dev_private_key
from .ports import free_port, port_open, wait_for_port

__all__ = [
    "ACCOUNT_COUNT",
    "ACTORS",
    "DEV_BALANCE_ETH",
    "MNEMONIC",
    "actor_index",
    "dev_account",
    "dev_private_key",
    "free_port",
    "port_open",
    "wait_for_port",
]
