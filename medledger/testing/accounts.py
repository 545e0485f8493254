"""The development mnemonic, its accounts and the one actor map used by tests, benchmarks and the demo."""
from __future__ import annotations

from functools import lru_cache

from eth_account import Account
from eth_account.signers.local import LocalAccount

from .. import crypto
from ..accounts import LocalSigner

#: The mnemonic Ganache and Anvil fund by default (tools/setup.sh keeps a pinned copy for brownie).
MNEMONIC = "test test test test test test test test test test test junk"
#: How many accounts the local chains fund, and with how much ether each.
ACCOUNT_COUNT = 20
DEV_BALANCE_ETH = 1_000_000

#: Actor -> index of the development mnemonic's account. One map for the whole project: the tests'
#: fixtures, the benchmarks and the demo's personas (``scripts/demo_scenario.py``) all use it.
ACTORS: dict[str, int] = {
    "admin": 0,
    "registrar": 1,
    "provider": 2,
    "provider2": 3,
    "insurer": 4,
    "arbiter": 5,
    "patient": 6,
    "patient2": 7,
    "guardian": 8,
    "stranger": 9,
    "relayer": 10,
    "patient3": 11,
    "owner1": 12,
    "owner2": 13,
    "owner3": 14,
}

Account.enable_unaudited_hdwallet_features()


@lru_cache(maxsize=ACCOUNT_COUNT)
def dev_account(index: int) -> LocalAccount:
    """Account `index` of the development mnemonic (the accounts Ganache and Anvil fund)."""
    if not 0 <= index < ACCOUNT_COUNT:
        raise ValueError(f"development account index {index} is outside 0..{ACCOUNT_COUNT - 1}")
    return Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def dev_private_key(index: int) -> str:
    """The 0x-prefixed private key of development account `index`."""
    return "0x" + dev_account(index).key.hex().removeprefix("0x")


@lru_cache(maxsize=ACCOUNT_COUNT)
def dev_signer(index: int) -> LocalSigner:
    """Development account `index` as an SDK signer."""
    return LocalSigner(dev_account(index))


def dev_public_key(index: int) -> bytes:
    """The compressed secp256k1 public key of development account `index` (what publish-key publishes)."""
    return crypto.compress_public_key(crypto.public_key_of(dev_signer(index).private_key))


def actor_index(name: str) -> int:
    """The account index of a named actor."""
    try:
        return ACTORS[name]
    except KeyError:
        raise ValueError(f"unknown actor '{name}' (known: {', '.join(ACTORS)})") from None
