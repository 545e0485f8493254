"""The observer of issue #14: everything public on a chain, and what it can join to a patient's wallet.

It reads every transaction (sender, recipient, calldata) and every log, and it may call every view
function. Given a patient's wallet address it searches for the address's bytes anywhere (a record id that
starts with it, an indexed topic, an argument in calldata), follows every identifier found beside it (an
address that is not a public party, a 32-byte topic such as a record or claim id) to further
transactions and logs until nothing new appears, and calls each view that takes addresses with the
wallet and every registered party. What it ends with is what it learned about that patient: the logs and
transactions linked to her, the parties named in them, and the view answers that are not empty.

Public parties (registered providers, insurers, arbiters, the contracts, the token, governance and a
public relayer) are hubs: they appear beside every patient, so standing beside one links nothing.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address


@dataclass(frozen=True)
class Item:
    """One public transaction or log, as bytes to search and words to follow."""

    kind: str  # "tx" | "log"
    ref: str  # tx hash (and log index)
    contract: str
    blob: bytes
    addresses: frozenset[str]
    words: frozenset[bytes]


@dataclass
class Linkage:
    """What the observer joined to one seed address."""

    seed: str
    items: list[Item] = field(default_factory=list)
    parties: set[str] = field(default_factory=set)
    views: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.items and not self.views and not self.parties

    def describe(self, names: Mapping[str, str]) -> str:
        named = ", ".join(sorted(names.get(p, p) for p in self.parties)) or "none"
        return (f"{len(self.items)} linked transactions/logs, parties named: {named}, views answering: "
                f"{', '.join(self.views) or 'none'}")


def _words(data: bytes) -> list[bytes]:
    return [data[i:i + 32] for i in range(0, len(data) - len(data) % 32, 32)]


#: Below this a 32-byte word is a count, an amount, a code or a time, not an address or an identifier.
SMALL = 1 << 128


def _address_in(word: bytes) -> str | None:
    if len(word) == 32 and word[:12] == b"\x00" * 12 and int.from_bytes(word, "big") >= SMALL:
        return to_checksum_address(word[12:])
    return None


def _is_identifier(word: bytes) -> bool:
    return _address_in(word) is None and int.from_bytes(word, "big") >= SMALL


class PublicChain:
    """Every transaction and log from genesis to the head, read once."""

    def __init__(self, w3: Any) -> None:
        self.w3 = w3
        self.items: list[Item] = []
        head = w3.eth.block_number
        for number in range(head + 1):
            for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
                data = bytes(tx["input"])
                words = _words(data[4:])
                addresses = {to_checksum_address(tx["from"])}
                if tx["to"]:
                    addresses.add(to_checksum_address(tx["to"]))
                addresses.update(a for a in map(_address_in, words) if a)
                self.items.append(Item("tx", tx["hash"].hex(), to_checksum_address(tx["to"] or "0x" + "00" * 20),
                                       data + bytes.fromhex(to_checksum_address(tx["from"])[2:]),
                                       frozenset(addresses), frozenset()))
        for log in w3.eth.get_logs({"fromBlock": 0, "toBlock": head}):
            topics = [bytes(t) for t in log["topics"][1:]]
            data = bytes(log["data"])
            words = topics + _words(data)
            addresses = {a for a in map(_address_in, words) if a}
            ids = frozenset(t for t in topics if _is_identifier(t))
            self.items.append(Item("log", f"{log['transactionHash'].hex()}:{log['logIndex']}",
                                   to_checksum_address(log["address"]), b"".join(topics) + data,
                                   frozenset(addresses), ids))


class Observer:
    """Joins what is public to a seed address (see the module docstring)."""

    def __init__(self, chain: PublicChain, hubs: Iterable[str], parties: Iterable[str],
                 contracts: Mapping[str, Any]) -> None:
        self.chain = chain
        self.hubs = {to_checksum_address(h) for h in hubs}
        self.parties = [to_checksum_address(p) for p in parties]
        self.contracts = contracts

    def link(self, seed: str) -> Linkage:
        seed = to_checksum_address(seed)
        found = Linkage(seed)
        addresses, ids = {seed}, set()
        linked: dict[str, Item] = {}
        while True:
            grew = False
            for item in self.chain.items:
                if item.ref in linked:
                    continue
                if any(bytes.fromhex(a[2:]) in item.blob for a in addresses) or item.words & ids:
                    linked[item.ref] = item
                    grew = True
                    found.parties.update(a for a in item.addresses if a in self.parties)
                    addresses.update(a for a in item.addresses if a not in self.hubs)
                    ids.update(item.words)
            if not grew:
                break
        found.items = list(linked.values())
        found.views = self.views(seed)
        for hit in found.views:
            found.parties.update(p for p in self.parties if p in hit)
        return found

    def views(self, seed: str) -> list[str]:
        """Every view taking only addresses, called with the seed (and each party in the other places),
        whose answer is not all zero or empty."""
        hits = []
        for name, contract in self.contracts.items():
            for fn in contract.abi:
                if fn.get("type") != "function" or fn.get("stateMutability") not in ("view", "pure"):
                    continue
                inputs = [i["type"] for i in fn["inputs"]]
                if not inputs or any(t != "address" for t in inputs) or len(inputs) > 2:
                    continue
                calls = [(seed,)] if len(inputs) == 1 else \
                    [(seed, p) for p in self.parties] + [(p, seed) for p in self.parties]
                for args in calls:
                    answer = contract.functions[fn["name"]](*args).call()
                    if _nonzero(answer):
                        hits.append(f"{name}.{fn['name']}({', '.join(args)})")
        return hits


def _nonzero(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_nonzero(v) for v in value)
    if isinstance(value, (bytes, bytearray)):
        return any(value)
    if isinstance(value, str):
        return value not in ("", "0x" + "00" * 20) and int(value, 16) != 0 if value.startswith("0x") else bool(value)
    return bool(value)
