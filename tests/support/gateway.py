"""The gateway tests' helpers. The gateway process itself is the kit's launcher (`medledger.testing.gateway`),
which the demo uses too; it is re-exported here for the tests that import it from this module."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_utils import keccak

from medledger.accounts import LocalSigner
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.contracts import CareRegistry, ConsentRegistry, RecordRegistry
from medledger.deploy import deploy_suite
from medledger.scopes import DataClass, Purpose, Role
from medledger.testing.accounts import dev_account
from medledger.testing.gateway import KEY_PASSWORD, GatewayProcess

from .recordcli import public_key

__all__ = ["ACTORS", "KEY_PASSWORD", "ContractWalletSigner", "GatewayProcess", "mask", "gateway_world", "signer"]

#: The gateway tests' parties (development accounts): gov deploys and registers; the clinic is the custodian
#: (runs the gateway); doc and er are providers; payer is an insurer; alice is the patient; nobody is an
#: unregistered account; owner owns an ERC-1271 wallet.
ACTORS = {"gov": 0, "clinic": 12, "doc": 13, "payer": 14, "er": 15, "alice": 16, "nobody": 17, "owner": 18}
D = DataClass


def signer(index: int) -> LocalSigner:
    return LocalSigner(dev_account(index))


def mask(*classes: DataClass) -> int:
    return sum(1 << int(c) for c in classes)


def gateway_world(home: Path, rpc_url: str, *gateway_args: str, db_url: str | None = None) -> dict[str, Any]:
    """A fresh suite on the chain at `rpc_url`, the parties registered, alice's consents (the clinic: TREAT on
    everything non-sensitive; doc: TREAT on demographics, conditions and labs; payer: HPAYMT on demographics and
    billing), and the clinic's gateway started with `gateway_args` (stop it with ``world["gateway"].stop()``),
    its database at `db_url` (default: SQLite in its data directory)."""
    settings = load_settings(rpc=rpc_url, deployments_path=home / "deployments.json")
    sdk = Chain(settings)
    gov = signer(ACTORS["gov"])
    deploy_suite(sdk, gov)
    suite = json.loads((home / "deployments.json").read_text())[str(sdk.chain_id)]
    care = CareRegistry(sdk, suite["CareRegistry"]["address"])
    consent = ConsentRegistry(sdk, suite["ConsentRegistry"]["address"])
    records = RecordRegistry(sdk, suite["RecordRegistry"]["address"])
    who = {name: dev_account(i).address for name, i in ACTORS.items()}
    for name, role in (("clinic", Role.PROVIDER), ("doc", Role.PROVIDER), ("er", Role.PROVIDER),
                       ("payer", Role.INSURER)):
        care.register(gov, who[name], role, keccak(text=f"credentials:{name}"))
    alice = signer(ACTORS["alice"])
    care.publish_encryption_key(alice, public_key(ACTORS["alice"]))
    every = mask(*(c for c in DataClass if c not in (D.GENOMICS, D.MENTAL_HEALTH, D.SUBSTANCE_USE)))
    consent.grant(alice, who["alice"], who["clinic"], 1 << Purpose.TREAT, every)
    consent.grant(alice, who["alice"], who["doc"], 1 << Purpose.TREAT, mask(D.DEMOGRAPHICS, D.CONDITIONS, D.LABS))
    consent.grant(alice, who["alice"], who["payer"], 1 << Purpose.HPAYMT, mask(D.DEMOGRAPHICS, D.BILLING))
    gateway = GatewayProcess(settings.rpc_url, home / "deployments.json", home / "gw",
                             "0x" + dev_account(ACTORS["clinic"]).key.hex().removeprefix("0x"), *gateway_args)
    if db_url:
        gateway.env["MEDLEDGER_GATEWAY_DB"] = db_url  # `serve` and `rotate-key` both read it
    db_url = db_url or f"sqlite:///{home / 'gw' / 'gateway.db'}"  # the gateway's default
    gateway.start()
    return {"home": home, "settings": settings, "chain": sdk, "care": care, "consent": consent, "records": records,
            "who": who, "gov": gov, "gateway": gateway, "chain_id": sdk.chain_id, "db_url": db_url}


class ContractWalletSigner:
    """Signs for an ERC-1271 wallet whose owner EOA signs the raw EIP-191 digest (MockERC1271Wallet)."""

    def __init__(self, wallet: str, owner_key: bytes) -> None:
        self.address = wallet
        self.owner_key = owner_key

    def sign_message(self, _w3: object, message: bytes) -> bytes:
        digest = _hash_eip191_message(encode_defunct(primitive=message))
        return bytes(Account.unsafe_sign_hash(digest, self.owner_key).signature)
