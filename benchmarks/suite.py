"""The bench's parties and the suite it measures: a fresh `deploy_suite` on one chain, typed wrappers,
the development accounts of the kit's actor map."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak

from medledger.accounts import LocalSigner
from medledger.chain import Chain
from medledger.config import Settings, load_settings
from medledger.contracts import CareRegistry, ClaimEscrow, ConsentRegistry, RecordRegistry, Token
from medledger.deploy import deploy_suite
from medledger.scopes import DataClass, Purpose, Role
from medledger.testing import ACTORS, dev_signer

Log = Callable[[str], None]

ALL_CLASSES = 0x7FF
USD = 10**6
DAY = 86_400
SERVICE = 100          # a service code inside the auto-approval range
MANUAL_SERVICE = 2_000  # outside it

@dataclass(frozen=True)
class WalletSigner:
    """An ERC-1271 contract wallet as an EIP-712 signer: its owner EOA signs for it."""

    address: str
    owner: LocalSigner

    def send_transaction(self, w3: Any, tx: dict) -> bytes:
        raise NotImplementedError("a contract wallet does not send transactions here")

    def sign_typed_data(self, w3: Any, typed_data: dict) -> bytes:
        return self.owner.sign_typed_data(w3, typed_data)

    def sign_message(self, w3: Any, message: bytes) -> bytes:
        return self.owner.sign_message(w3, message)


@dataclass
class Suite:
    """A deployed MedLedger suite on one chain, its typed wrappers and the bench's parties."""

    chain: Chain
    care: CareRegistry
    consent: ConsentRegistry
    records: RecordRegistry
    escrow: ClaimEscrow
    token: Token
    deployments: Path

    @classmethod
    def deploy(cls, rpc_url: str, deployments: Path, log: Log = lambda _: None) -> Suite:
        """Deploys the suite with `deploy_suite` (deployer = development account 0)."""
        settings = load_settings(rpc=rpc_url, deployments_path=deployments)
        chain = Chain(settings)
        steps = {s.name: s.address for s in deploy_suite(chain, signer("admin"), log=log)}
        return cls(chain, CareRegistry(chain, steps["CareRegistry"]), ConsentRegistry(chain, steps["ConsentRegistry"]),
                   RecordRegistry(chain, steps["RecordRegistry"]), ClaimEscrow(chain, steps["ClaimEscrow"]),
                   Token(chain, steps["Stablecoin"]), deployments)

    @property
    def settings(self) -> Settings:
        return self.chain.settings


def signer(name: str) -> LocalSigner:
    return dev_signer(ACTORS[name])


def address(name: str) -> str:
    return signer(name).address


def bit(*indexes: int) -> int:
    return sum(1 << i for i in set(indexes))


def label_hash(label: str) -> bytes:
    """A deterministic bytes32 for the bench's credentials, documents and ids."""
    return keccak(text=f"medledger-bench:{label}")


def prepare_anchoring(suite: Suite) -> None:
    """Makes `provider` an active provider with TREAT consent of `patient` (idempotent, not measured)."""
    if not suite.care.is_active(address("provider"), Role.PROVIDER):
        suite.care.register(signer("admin"), address("provider"), Role.PROVIDER, label_hash("npi:provider"))
    if not suite.consent.has_consent(address("patient"), address("provider"), Purpose.TREAT, DataClass.LABS):
        suite.consent.grant(signer("patient"), address("patient"), address("provider"),
                            bit(Purpose.TREAT, Purpose.HPAYMT), ALL_CLASSES, doc_hash=label_hash("consent:provider"))
