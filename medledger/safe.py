"""Safe (1.4.1) multisig governance: propose, confirm and execute any MedLedger transaction as a Safe.

A Safe holds the admin, registrar and pauser roles in a normal deployment (and may be an insurer or a
hospital). Each owner signs with its own keystore; nothing here holds more than one owner's key.

- :class:`SafeProposer` is a :class:`~medledger.accounts.Signer` whose address is the Safe: every SDK
  workflow and CLI command works unchanged with it, but instead of sending, the transaction becomes a
  *proposal* (a Safe transaction signed by the proposing owner) written to a JSON file.
- Other owners add their signatures to that file (:meth:`SafeGovernance.confirm`); once the threshold is
  reached anyone submits it (:meth:`SafeGovernance.execute`).

Hashing, typed data and signature parsing come from ``safe-eth-py``; the proposal file stands in for
the Safe Transaction Service, which a production operator may use instead (the file carries the same
fields). On development chains :func:`deploy_safe_infrastructure` deploys the singleton, proxy factory
and fallback handler from the ``@safe-global/safe-contracts`` npm artifacts.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from safe_eth.eth import EthereumClient
from safe_eth.safe.safe_signature import SafeSignature
from safe_eth.safe.safe_tx import SafeTx
from web3.logs import DISCARD as _DISCARD

from .accounts import Signer
from .chain import Chain, TxResult
from .config import PROJECT_ROOT
from .errors import ChainError, ConfigError, GovernanceError, Proposed

SAFE_VERSION = "1.4.1"
ZERO = "0x" + "00" * 20
ARTIFACTS = PROJECT_ROOT / "node_modules" / "@safe-global" / "safe-contracts" / "build" / "artifacts" / "contracts"
_ARTIFACT_PATHS = {
    "Safe": "Safe.sol/Safe.json",
    "SafeProxyFactory": "proxies/SafeProxyFactory.sol/SafeProxyFactory.json",
    "CompatibilityFallbackHandler": "handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json",
}
#: Names under which the Safe infrastructure is recorded in the deployments file.
INFRA = {"SafeSingleton": "Safe", "SafeProxyFactory": "SafeProxyFactory",
         "SafeFallbackHandler": "CompatibilityFallbackHandler"}


def proposals_dir(safe: str) -> Path:
    """Where proposals for `safe` are written: ``$MEDLEDGER_HOME/proposals/<safe>/``."""
    home = Path(os.environ.get("MEDLEDGER_HOME", Path.home() / ".medledger"))
    return home / "proposals" / to_checksum_address(safe)


def safe_artifact(name: str) -> dict[str, Any]:
    path = ARTIFACTS / _ARTIFACT_PATHS[name]
    try:
        return json.loads(path.read_text())
    except OSError:
        raise ConfigError(f"the Safe {SAFE_VERSION} artifacts are missing ({path}): run `make setup`") from None


class SafeProposed(Proposed):
    """Not a failure: the transaction was turned into a proposal (raised by :class:`SafeProposer`)."""

    def __init__(self, proposal: SafeProposal, path: Path, threshold: int) -> None:
        super().__init__(
            f"proposed as Safe transaction {proposal.safe_tx_hash} (nonce {proposal.nonce}), signed "
            f"{len(proposal.signatures)} of {threshold}; saved to {path}. Other owners: "
            f"`medledger safe confirm {path}`; then anyone: `medledger safe execute {path}`",
            {"proposal": str(path), "safe": proposal.safe, "safeTxHash": proposal.safe_tx_hash,
             "nonce": proposal.nonce, "signatures": len(proposal.signatures), "threshold": threshold})
        self.proposal, self.path = proposal, path


@dataclass(frozen=True)
class SafeProposal:
    """A Safe transaction and the owner signatures gathered so far (owner address -> 65-byte hex)."""

    safe: str
    chain_id: int
    to: str
    value: int
    data: str
    nonce: int
    safe_tx_hash: str
    operation: int = 0
    description: str = ""
    signatures: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "safe": self.safe, "chainId": self.chain_id, "to": self.to, "value": str(self.value),
                "data": self.data, "operation": self.operation, "nonce": self.nonce,
                "safeTxHash": self.safe_tx_hash, "description": self.description, "signatures": self.signatures}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SafeProposal:
        try:
            return cls(safe=to_checksum_address(data["safe"]), chain_id=int(data["chainId"]),
                       to=to_checksum_address(data["to"]), value=int(data["value"]), data=str(data["data"]),
                       nonce=int(data["nonce"]), safe_tx_hash=str(data["safeTxHash"]),
                       operation=int(data.get("operation", 0)), description=str(data.get("description", "")),
                       signatures={to_checksum_address(k): str(v) for k, v in dict(data["signatures"]).items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise GovernanceError(f"not a MedLedger Safe proposal: {exc}") from None

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path) -> SafeProposal:
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except OSError as exc:
            raise GovernanceError(f"cannot read the proposal {path}: {exc.strerror}") from None
        except ValueError:
            raise GovernanceError(f"{path} is not JSON: not a MedLedger Safe proposal") from None


class SafeGovernance:
    """One Safe on one chain: its owners and threshold, and the propose / confirm / execute steps."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        if not chain.has_code(self.address):
            raise GovernanceError(f"no Safe at {self.address} on chain {chain.chain_id}")
        self.contract = chain.w3.eth.contract(address=self.address, abi=safe_artifact("Safe")["abi"])

    @cached_property
    def _client(self) -> EthereumClient:
        return EthereumClient(self.chain.settings.rpc_url)

    def owners(self) -> list[str]:
        return [to_checksum_address(o) for o in self.chain.call(self.contract.functions.getOwners())]

    def threshold(self) -> int:
        return int(self.chain.call(self.contract.functions.getThreshold()))

    def nonce(self) -> int:
        return int(self.chain.call(self.contract.functions.nonce()))

    def _safe_tx(self, p: SafeProposal, signatures: bytes = b"") -> SafeTx:
        return SafeTx(self._client, self.address, p.to, p.value, bytes.fromhex(p.data.removeprefix("0x")), p.operation,
                      0, 0, 0, ZERO, ZERO, signatures=signatures, safe_nonce=p.nonce, safe_version=SAFE_VERSION,
                      chain_id=self.chain.chain_id)

    def propose(self, to: str, data: bytes, value: int = 0, description: str = "",
                nonce: int | None = None) -> SafeProposal:
        """An unsigned proposal at the Safe's next nonce (or `nonce`, to queue several)."""
        draft = SafeProposal(self.address, self.chain.chain_id, to_checksum_address(to), value, "0x" + data.hex(),
                             self.nonce() if nonce is None else nonce, "", description=description)
        return replace(draft, safe_tx_hash="0x" + bytes(self._safe_tx(draft).safe_tx_hash).hex())

    def _check(self, p: SafeProposal) -> None:
        if p.safe != self.address or p.chain_id != self.chain.chain_id:
            raise GovernanceError(f"the proposal is for Safe {p.safe} on chain {p.chain_id}, "
                                  f"not {self.address} on chain {self.chain.chain_id}")
        expected = "0x" + bytes(self._safe_tx(p).safe_tx_hash).hex()
        if expected != p.safe_tx_hash.lower():
            raise GovernanceError("the proposal's fields do not hash to its safeTxHash: it was altered")
        if p.nonce < self.nonce():
            raise GovernanceError(f"the proposal's nonce {p.nonce} was already used (the Safe is at {self.nonce()})")

    def valid_signers(self, p: SafeProposal) -> list[str]:
        """Owners whose signature in the proposal is valid for its hash."""
        owners, tx_hash, good = set(self.owners()), bytes.fromhex(p.safe_tx_hash.removeprefix("0x")), []
        for claimed, sig in p.signatures.items():
            parsed = SafeSignature.parse_signature(bytes.fromhex(sig.removeprefix("0x")), tx_hash)
            if len(parsed) == 1 and to_checksum_address(parsed[0].owner) == claimed and claimed in owners:
                good.append(claimed)
        return sorted(good, key=lambda a: int(a, 16))

    def confirm(self, p: SafeProposal, owner: Signer) -> SafeProposal:
        """Adds `owner`'s signature (EIP-712 over the SafeTx)."""
        self._check(p)
        who = to_checksum_address(owner.address)
        if who not in self.owners():
            raise GovernanceError(f"{who} is not an owner of Safe {self.address}")
        if who in p.signatures:
            raise GovernanceError(f"{who} has signed this proposal already")
        sig = owner.sign_typed_data(self.chain.w3, self._safe_tx(p).eip712_structured_data)
        signed = replace(p, signatures={**p.signatures, who: "0x" + sig.hex()})
        if who not in self.valid_signers(signed):
            raise GovernanceError(f"the signature of {who} does not verify for this proposal")
        return signed

    def execute(self, p: SafeProposal, sender: Signer) -> TxResult:
        """Submits the proposal once it carries the threshold of valid owner signatures."""
        self._check(p)
        signers, needed = self.valid_signers(p), self.threshold()
        if len(signers) < needed:
            raise GovernanceError(f"the proposal has {len(signers)} valid owner signature(s); Safe {self.address} "
                                  f"needs {needed}")
        packed = b"".join(bytes.fromhex(p.signatures[s].removeprefix("0x")) for s in signers[:needed])
        return self.execute_with(p, sender, packed)

    def execute_with(self, p: SafeProposal, sender: Signer, packed_signatures: bytes) -> TxResult:
        """`execTransaction` with the given packed signatures (the Safe itself checks them)."""
        call = self.contract.functions.execTransaction(p.to, p.value, bytes.fromhex(p.data.removeprefix("0x")),
                                                       p.operation, 0, 0, 0, ZERO, ZERO, packed_signatures)
        result = self.chain.transact(sender, call)
        failed = [e for e in self.contract.events.ExecutionFailure().process_receipt(result.receipt, errors=_DISCARD)]
        if failed:
            raise GovernanceError(f"the Safe executed proposal {p.safe_tx_hash} but the inner call reverted")
        return result


@dataclass(frozen=True)
class SafeProposer:
    """A signer *as the Safe*: sending a transaction writes a proposal signed by `owner` instead."""

    governance: SafeGovernance
    owner: Signer
    proposals_dir: Path
    description: str = ""

    @property
    def address(self) -> str:
        return self.governance.address

    def send_transaction(self, w3: Any, tx: dict) -> bytes:
        data = tx.get("data") or b""
        data = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
        proposal = self.governance.propose(tx["to"], data, int(tx.get("value", 0)), self.description)
        proposal = self.governance.confirm(proposal, self.owner)
        path = self.proposals_dir / f"{proposal.nonce:05d}-{proposal.safe_tx_hash[2:14]}.json"
        proposal.save(path)
        raise SafeProposed(proposal, path, self.governance.threshold())

    def sign_typed_data(self, w3: Any, typed_data: dict) -> bytes:
        raise GovernanceError("a Safe signs messages on chain or with ERC-1271, not as a proposal: "
                              "use the owners' own keys for off-chain signatures")

    def sign_message(self, w3: Any, message: bytes) -> bytes:
        return self.sign_typed_data(w3, {})


# ------------------------------------------------------------------ local infrastructure and new Safes


def _deploy_artifact(chain: Chain, signer: Signer, name: str, *args: Any) -> str:
    art = safe_artifact(name)
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    return to_checksum_address(chain.transact(signer, factory.constructor(*args)).receipt["contractAddress"])


def deploy_safe_infrastructure(chain: Chain, signer: Signer) -> dict[str, str]:
    """Deploys (or finds, from the deployments file) the Safe singleton, proxy factory and fallback handler.

    For development chains and tests: on a public network, use the canonical Safe deployments instead."""
    from . import deployments

    path = chain.settings.deployments_path
    known = deployments.load(path, chain.chain_id).contracts
    out = {}
    for recorded, artifact in INFRA.items():
        entry = known.get(recorded)
        if entry and chain.has_code(entry.address):
            out[recorded] = entry.address
            continue
        address = _deploy_artifact(chain, signer, artifact)
        deployments.record(path, chain.chain_id, recorded, deployments.Deployed(address))
        out[recorded] = address
    return out


def create_safe(chain: Chain, signer: Signer, owners: list[str], threshold: int, salt: int = 0) -> str:
    """A new Safe proxy with `owners` and `threshold` (infrastructure from :func:`deploy_safe_infrastructure`)."""
    owners = [to_checksum_address(o) for o in owners]
    if len(set(owners)) != len(owners):
        raise GovernanceError("a Safe's owners must be distinct")
    if not 1 <= threshold <= len(owners):
        raise GovernanceError(f"the threshold must be between 1 and the number of owners ({len(owners)})")
    infra = deploy_safe_infrastructure(chain, signer)
    singleton = chain.w3.eth.contract(address=infra["SafeSingleton"], abi=safe_artifact("Safe")["abi"])
    setup = singleton.encode_abi("setup", [owners, threshold, ZERO, b"", infra["SafeFallbackHandler"], ZERO, 0, ZERO])
    factory = chain.w3.eth.contract(address=infra["SafeProxyFactory"], abi=safe_artifact("SafeProxyFactory")["abi"])
    result = chain.transact(signer, factory.functions.createProxyWithNonce(infra["SafeSingleton"], setup, salt))
    created = factory.events.ProxyCreation().process_receipt(result.receipt, errors=_DISCARD)
    if not created:
        raise ChainError("the Safe proxy factory created no proxy")
    return to_checksum_address(created[0]["args"]["proxy"])
