"""Audit trails rebuilt from chain events.

Logs are read in bounded block ranges (the range halves when a node refuses a large one; web3's
provider retries transient errors with backoff), decoded against the MedLedger ABIs and
filtered to one patient: consents, guardians, emergency accesses, anchors, access logs,
claims and payouts.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3._utils.events import get_event_data
from web3.exceptions import Web3RPCError

from .chain import TRANSIENT, Chain
from .errors import ChainError

DEFAULT_CHUNK = 5_000


@dataclass(frozen=True)
class EventRecord:
    """One decoded event."""

    block: int
    tx_hash: str
    log_index: int
    contract: str
    event: str
    args: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"block": self.block, "tx": self.tx_hash, "log_index": self.log_index, "contract": self.contract,
                "event": self.event, "args": {k: _plain(v) for k, v in self.args.items()}}


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def fetch_events(
    chain: Chain,
    contracts: Mapping[str, str],
    from_block: int = 0,
    to_block: int | None = None,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> list[EventRecord]:
    """Every event of `contracts` (name -> address) in [from_block, to_block], decoded, in chain order."""
    w3 = chain.w3
    # Keyed by (contract, topic): several contracts emit events of one signature (e.g. RoleGranted).
    by_topic: dict[tuple[str, bytes], dict] = {}
    for name in contracts:
        for item in chain.artifact(_artifact_name(name)).abi:
            if item.get("type") == "event" and not item.get("anonymous"):
                by_topic[(name, bytes(event_abi_to_log_topic(item)))] = item
    names_by_address = {to_checksum_address(a): n for n, a in contracts.items()}
    try:
        last = w3.eth.block_number if to_block is None else to_block
    except (*TRANSIENT, Web3RPCError) as exc:
        raise ChainError(f"RPC {chain.settings.rpc_url} is unreachable ({type(exc).__name__})") from None
    records: list[EventRecord] = []
    start, size = from_block, max(1, chunk)
    while start <= last:
        end = min(last, start + size - 1)
        try:
            logs = w3.eth.get_logs({"address": list(names_by_address), "fromBlock": start, "toBlock": end})
        except Web3RPCError as exc:
            if size > 1 and any(w in str(exc).lower() for w in ("limit", "too many", "range", "exceed")):
                size //= 2
                continue
            raise ChainError(f"cannot read logs {start}-{end}: {exc}") from None
        except TRANSIENT as exc:
            raise ChainError(f"RPC {chain.settings.rpc_url} failed reading logs {start}-{end} after retries: "
                             f"{type(exc).__name__}") from None
        for log in logs:
            contract = names_by_address.get(to_checksum_address(log["address"]), "")
            key = (contract, bytes(log["topics"][0]) if log["topics"] else b"")
            if key not in by_topic:
                continue
            abi = by_topic[key]
            decoded = get_event_data(w3.codec, abi, log)
            records.append(EventRecord(log["blockNumber"], "0x" + bytes(log["transactionHash"]).hex(),
                                       log["logIndex"], contract, decoded["event"], dict(decoded["args"])))
        if progress:
            progress(end - from_block + 1, last - from_block + 1)
        start = end + 1
    return records


def _artifact_name(name: str) -> str:
    return {"Stablecoin": "MockStablecoin"}.get(name, name)


PATIENT_KEYS = ("patient",)
LINK_KEYS = ("claimId", "recordId")


PAYOUT_EVENTS = frozenset({"PaymentPushed", "PushFailed"})


def patient_trail(events: Iterable[EventRecord], patient: str) -> list[EventRecord]:
    """The events that concern `patient`: those naming it, those about its claims and records, and
    the payouts pushed in the same transaction as one of its claims' adjudications.

    Pulled payouts (`PayoutWithdrawn`) pool a provider's money across claims and patients, so they
    belong to the provider's trail, not to a patient's.
    """
    patient = to_checksum_address(patient)
    events = list(events)
    linked: set[Any] = set()
    picked: list[EventRecord] = []
    for record in events:
        args = record.args
        names_patient = any(str(args.get(k, "")).lower() == patient.lower() for k in PATIENT_KEYS)
        if names_patient:
            for key in LINK_KEYS:
                if key in args:
                    linked.add((key, _plain(args[key])))
        if names_patient or any((k, _plain(args[k])) in linked for k in LINK_KEYS if k in args):
            picked.append(record)
    claim_txs = {r.tx_hash for r in picked if "claimId" in r.args}
    payouts = [r for r in events if r.event in PAYOUT_EVENTS and r.tx_hash in claim_txs]
    return sorted(picked + payouts, key=lambda r: (r.block, r.log_index))


def to_json(records: Iterable[EventRecord]) -> str:
    return json.dumps([r.as_dict() for r in records], indent=2)


def to_csv(records: Iterable[EventRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["block", "tx", "log_index", "contract", "event", "args"])
    for r in records:
        writer.writerow([r.block, r.tx_hash, r.log_index, r.contract, r.event,
                         json.dumps({k: _plain(v) for k, v in r.args.items()}, sort_keys=True)])
    return out.getvalue()


def consent_grantees(chain: Chain, consent: Any, patient: str) -> list[str]:
    """Every grantee `patient` ever granted (from ConsentGranted events)."""
    events = fetch_events(chain, {"ConsentRegistry": consent.address})
    seen: dict[str, None] = {}
    for record in patient_trail(events, patient):
        if record.event == "ConsentGranted":
            seen[to_checksum_address(record.args["grantee"])] = None
    return list(seen)
