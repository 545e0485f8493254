"""The connection to a chain: contract artifacts, transactions and decoded errors.

`Chain.transact` is the one place the SDK sends a transaction: it estimates first (a revert is
reported before anything is sent), sets the nonce and EIP-1559 fees, waits for the receipt
(with a timeout and the configured confirmations) and turns custom errors into domain
exceptions. Reads and sends are retried with backoff on transient RPC errors by web3's
HTTP provider.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import requests
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from . import messages
from .accounts import Signer
from .config import Settings
from .errors import (
    ChainError,
    ConfigError,
    ConsentMissing,
    ContractReverted,
    InsufficientEscrow,
    NotRegistered,
)

TRANSIENT = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.HTTPError)


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its name, ABI and creation bytecode."""

    name: str
    abi: list[dict]
    bytecode: str


@dataclass(frozen=True)
class TxResult:
    """A mined transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    receipt: Any


@dataclass(frozen=True)
class ErrorSpec:
    name: str
    types: tuple[str, ...]
    names: tuple[str, ...]


def _domain_exception(name: str) -> type[ContractReverted]:
    if "Consent" in name or name == "NoTreatmentRelationship":
        return ConsentMissing
    if "Insufficient" in name and any(w in name for w in ("Escrow", "Balance", "Funds", "Owed")):
        return InsufficientEscrow
    if any(w in name for w in ("NotRegistered", "NotActive", "Suspended", "Inactive", "NotProvider", "NotInsurer",
                                "NotArbiter")):
        return NotRegistered
    return ContractReverted


class Chain:
    """A connected chain plus the MedLedger artifacts and error table."""

    def __init__(self, settings: Settings, w3: Web3 | None = None) -> None:
        self.settings = settings
        if w3 is None:
            provider = Web3.HTTPProvider(
                settings.rpc_url,
                request_kwargs={"timeout": settings.rpc_timeout},
                exception_retry_configuration=ExceptionRetryConfiguration(
                    errors=TRANSIENT, retries=settings.rpc_retries, backoff_factor=0.25
                ),
            )
            w3 = Web3(provider)
        self.w3 = w3
        #: What error messages may look up (the token, account names); see medledger.messages.
        self.messages = messages.Context()

    # ----------------------------------------------------------------- connection
    @cached_property
    def chain_id(self) -> int:
        try:
            chain_id = int(self.w3.eth.chain_id)
        except requests.exceptions.Timeout:
            raise ChainError(
                f"RPC {self.settings.rpc_url} did not answer within {self.settings.rpc_timeout:g} s "
                f"({self.settings.rpc_retries} attempts with backoff); is the node overloaded or the URL wrong?"
            ) from None
        except TRANSIENT as exc:
            raise ChainError(
                f"RPC {self.settings.rpc_url} is unreachable ({type(exc).__name__}); is the node running?"
            ) from None
        except Web3RPCError as exc:
            raise ChainError(f"RPC {self.settings.rpc_url} refused the request: {rpc_message(exc)}") from None
        expected = self.settings.expected_chain_id
        if expected is not None and chain_id != expected:
            raise ConfigError(f"the RPC for network '{self.settings.network}' serves chain {chain_id}, not {expected}: "
                              "check the URL in its environment variable")
        return chain_id

    def check_connected(self) -> None:
        """Raises ChainError with one clear line when the RPC does not answer."""
        _ = self.chain_id

    # ----------------------------------------------------------------- artifacts
    def artifact(self, name: str) -> Artifact:
        path = Path(self.settings.build_dir) / f"{name}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"no compiled artifact for {name} in {self.settings.build_dir}: run `brownie compile`"
            ) from None
        return Artifact(name, data["abi"], data.get("bytecode", ""))

    def contract(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=self.artifact(name).abi)

    @cached_property
    def errors(self) -> dict[bytes, ErrorSpec]:
        """Every custom error in the compiled artifacts, by 4-byte selector."""
        table: dict[bytes, ErrorSpec] = {}
        build = Path(self.settings.build_dir)
        for path in sorted(build.glob("*.json")):
            try:
                abi = json.loads(path.read_text()).get("abi", [])
            except ValueError:
                continue
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = tuple(_canonical_type(i) for i in item["inputs"])
                selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                table[selector] = ErrorSpec(item["name"], types, tuple(i["name"] for i in item["inputs"]))
        return table

    def decode_revert(self, data: str | bytes | None, fallback: str = "") -> ContractReverted:
        """The domain exception for revert `data` (custom error, Error(string) or Panic)."""
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) and data.startswith("0x") else (data or b"")
        if isinstance(raw, str):
            raw = b""
        if len(raw) >= 4:
            selector, body = raw[:4], raw[4:]
            if selector == keccak(text="Error(string)")[:4]:
                (reason,) = abi_decode(["string"], body)
                return ContractReverted(f"reverted: {reason}", "Error", (reason,))
            spec = self.errors.get(selector)
            if spec is not None:
                try:
                    values = abi_decode(list(spec.types), body)
                except Exception:  # noqa: BLE001 - malformed data still deserves a message
                    values = ()
                # strict=False: `values` is empty when the payload did not decode.
                pairs = zip(spec.types, values, strict=False)
                values = tuple(to_checksum_address(v) if t == "address" else v for t, v in pairs)
                text = messages.render(spec.name, spec.types, spec.names, values, self.messages)
                return _domain_exception(spec.name)(text, spec.name, values)
        return ContractReverted(f"transaction reverted{': ' + fallback if fallback else ''}")

    def _revert_from(self, exc: Exception) -> ContractReverted:
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            data = data.get("data") or data.get("result")
        if not data and isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
            err = exc.rpc_response.get("error", {})
            data = err.get("data") if isinstance(err.get("data"), str) else (err.get("data") or {}).get("data")
        return self.decode_revert(data, str(getattr(exc, "message", "") or exc))

    # ----------------------------------------------------------------- calls
    def call(self, fn: Any, block: int | None = None) -> Any:
        """A view call (at `block`, else the latest), with custom errors decoded."""
        try:
            return fn.call() if block is None else fn.call(block_identifier=block)
        except ContractLogicError as exc:
            raise self._revert_from(exc) from None
        except Web3RPCError as exc:  # the node answered with an error (e.g. it is shutting down)
            raise ChainError(f"RPC {self.settings.rpc_url} refused the call: {rpc_message(exc)}") from None
        except TRANSIENT as exc:
            raise ChainError(f"RPC {self.settings.rpc_url} failed: {type(exc).__name__}") from None

    def fees(self) -> dict[str, int]:
        """EIP-1559 fees: twice the current base fee plus the node's suggested tip."""
        block = self.w3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas") or 0)
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except (Web3RPCError, ValueError, AttributeError):
            tip = 10**9
        tip = max(tip, 1)
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def _next_nonce(self, address: str) -> int:
        # The node's pending count: transact() waits for each receipt, so this is always current
        # (and stays right when a development chain is reverted to a snapshot).
        return int(self.w3.eth.get_transaction_count(address, "pending"))

    def transact(self, signer: Signer, fn: Any = None, *, tx: dict | None = None, gas: int | None = None,
                 on_sent: Callable[[str], None] | None = None) -> TxResult:
        """Estimates, signs, sends and waits for one transaction (a contract call or a raw `tx`).

        `on_sent`, if given, is called with the 0x-hex transaction hash as soon as the node accepted
        the transaction and before waiting for it (e.g. to journal it for crash recovery).
        """
        try:
            base = {"from": signer.address, "chainId": self.chain_id, **self.fees()}
            if fn is not None:
                built = fn.build_transaction({**base, **({"gas": gas} if gas else {})})
            else:
                built = {**base, **(tx or {})}
                if "gas" not in built:
                    built["gas"] = self.w3.eth.estimate_gas(built)
            if not gas:
                limit = int(self.w3.eth.get_block("latest")["gasLimit"])
                built["gas"] = min(int(built["gas"] * 1.2) + 10_000, limit)
            built.pop("gasPrice", None)  # some providers' middlewares add a legacy price next to EIP-1559 fees
            built["nonce"] = self._next_nonce(signer.address)
            tx_hash = signer.send_transaction(self.w3, built)
        except ContractLogicError as exc:
            raise self._revert_from(exc) from None
        except Web3RPCError as exc:
            message = str(exc)
            if "revert" in message.lower():
                raise self._revert_from(exc) from None
            raise ChainError(f"the node refused the transaction: {rpc_message(exc)}") from None
        except TRANSIENT as exc:
            raise ChainError(f"RPC {self.settings.rpc_url} failed: {type(exc).__name__}") from None
        if on_sent is not None:
            on_sent("0x" + tx_hash.hex())
        return self.wait(tx_hash, built)

    def wait(self, tx_hash: bytes, built: dict | None = None) -> TxResult:
        """Waits for `tx_hash` to be mined and confirmed; raises on revert or timeout."""
        timeout = self.settings.tx_timeout
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.05)
        except TimeExhausted:
            raise ChainError(f"transaction 0x{tx_hash.hex()} was not mined within {timeout:.0f} s") from None
        except Web3RPCError as exc:
            raise ChainError(f"RPC {self.settings.rpc_url} failed while waiting: {rpc_message(exc)}") from None
        except TRANSIENT as exc:
            raise ChainError(f"RPC {self.settings.rpc_url} failed while waiting: {type(exc).__name__}") from None
        if receipt["status"] != 1:
            raise self._replay_failure(receipt, built)
        target = receipt["blockNumber"] + self.settings.confirmations - 1
        deadline = time.monotonic() + timeout
        while self.settings.confirmations > 1 and self.w3.eth.block_number < target:
            if time.monotonic() > deadline:
                raise ChainError(
                    f"transaction 0x{tx_hash.hex()} did not reach {self.settings.confirmations} confirmations"
                )
            time.sleep(1.0)
        tx_hex = "0x" + bytes(receipt["transactionHash"]).hex()
        return TxResult(tx_hex, receipt["blockNumber"], receipt["gasUsed"], receipt)

    def _replay_failure(self, receipt: Any, built: dict | None) -> ContractReverted:
        if not built:
            return ContractReverted(f"transaction {receipt['transactionHash'].hex()} reverted")
        call = {k: built[k] for k in ("from", "to", "data", "value") if k in built}
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)
        except (ContractLogicError, Web3RPCError) as exc:
            return self._revert_from(exc)
        return ContractReverted(f"transaction {receipt['transactionHash'].hex()} reverted (out of gas?)")

    def deploy(self, signer: Signer, name: str, *args: Any) -> tuple[Any, TxResult]:
        """Deploys artifact `name` with constructor `args`."""
        art = self.artifact(name)
        factory = self.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        result = self.transact(signer, factory.constructor(*args))
        address = result.receipt["contractAddress"]
        return self.w3.eth.contract(address=address, abi=art.abi), result

    def has_code(self, address: str) -> bool:
        return len(self.w3.eth.get_code(to_checksum_address(address))) > 0

    def signed_transaction(self, tx_hash: str | bytes) -> bytes:
        """The signed bytes of a mined EIP-1559 transaction, rebuilt from the node's fields (not every
        node answers ``eth_getRawTransactionByHash``) and checked against its hash."""
        from eth_account.typed_transactions import TypedTransaction

        tx = self.w3.eth.get_transaction(tx_hash)
        fields = ("type", "chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gas", "to", "value",
                  "accessList", "v", "r", "s")
        raw = TypedTransaction.from_dict({**{k: tx[k] for k in fields if k in tx}, "data": tx["input"]}).encode()
        if keccak(raw) != bytes(tx["hash"]):
            raise ChainError(f"could not rebuild the signed bytes of transaction {bytes(tx['hash']).hex()}")
        return raw


def rpc_message(exc: Web3RPCError) -> str:
    """The node's own error message, without its stack trace."""
    response = exc.rpc_response if isinstance(getattr(exc, "rpc_response", None), dict) else {}
    error = response.get("error") if isinstance(response.get("error"), dict) else {}
    return str(error.get("message") or getattr(exc, "message", "") or exc).splitlines()[0]


def _canonical_type(item: dict) -> str:
    t = item["type"]
    if t.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in item["components"])
        return f"({inner}){t[5:]}"
    return t
