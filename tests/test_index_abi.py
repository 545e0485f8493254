"""The index's log decoder: the hex fast path gives exactly what the byte path gives, for every event of
the suite (pure Python: the compiled ABIs, random words, no chain)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.core import given  # pure Python: no chain to isolate (brownie wraps hypothesis.given)

from medledger.config import PROJECT_ROOT
from medledger.deployments import SUITE
from medledger.index.abi import Decoder, canonical_type

ADDRESSES = {name: f"0x{i + 1:040x}" for i, name in enumerate(SUITE)}


#: Every one-word kind the suite may use, also where its events do not (yet): signed, bool, short bytes,
#: indexed dynamic values (their hash), and an event with a dynamic data field.
EXTRA_EVENTS = [
    {"type": "event", "name": "AllKinds", "anonymous": False, "inputs": [
        {"name": "who", "type": "address", "indexed": True}, {"name": "tag", "type": "string", "indexed": True},
        {"name": "small", "type": "int8", "indexed": True}, {"name": "flag", "type": "bool", "indexed": False},
        {"name": "delta", "type": "int256", "indexed": False}, {"name": "code", "type": "bytes4", "indexed": False},
        {"name": "amount", "type": "uint96", "indexed": False}, {"name": "ok", "type": "bool", "indexed": False}]},
    {"type": "event", "name": "WithText", "anonymous": False, "inputs": [
        {"name": "who", "type": "address", "indexed": True}, {"name": "note", "type": "string", "indexed": False}]},
]


def _abis() -> dict[str, list[dict]]:
    build = Path(PROJECT_ROOT) / "build" / "contracts"
    abis = {name: json.loads((build / f"{name}.json").read_text())["abi"] for name in SUITE}
    abis["CareRegistry"] = [*abis["CareRegistry"], *EXTRA_EVENTS]
    return abis


DECODER = Decoder(_abis(), ADDRESSES)
SLOW = Decoder(_abis(), ADDRESSES)
SLOW._by_log = {}  # noqa: SLF001 - the byte path alone, as the reference
EVENTS = sorted((contract, spec.name, topic) for (contract, topic), spec in DECODER.specs.items())


def _word(t: str, draw) -> bytes:
    """A 32-byte word holding a value of ABI type `t` (and, for bool, sometimes a non-canonical word)."""
    if t == "address":
        return bytes(12) + draw(st.binary(min_size=20, max_size=20))
    if t == "bool":
        return bytes(31) + bytes([draw(st.sampled_from([0, 1, 2]))])
    if t.startswith(("uint", "int")):
        return draw(st.binary(min_size=32, max_size=32))
    if t.startswith("bytes") and t != "bytes":
        size = int(t[5:])
        return draw(st.binary(min_size=size, max_size=size)) + bytes(32 - size)
    return draw(st.binary(min_size=32, max_size=32))  # a dynamic indexed value: its hash


def _hex(raw: bytes, upper: bool) -> str:
    text = raw.hex()
    return "0x" + (text.upper() if upper else text)


@st.composite
def logs(draw):
    contract, _, topic = draw(st.sampled_from(EVENTS))
    spec = DECODER.specs[(contract, topic)]
    upper = draw(st.booleans())
    topics = [topic] + [_hex(_word(canonical_type(i), draw), upper) for i in spec.indexed]
    if all(not ("[" in t or "(" in t or t in ("string", "bytes")) for t in spec.data_types):
        data = b"".join(_word(t, draw) for t in spec.data_types)
    else:
        data = draw(st.binary(max_size=96))  # dynamic data: the byte path (or its error) decides
    return {"address": ADDRESSES[contract], "topics": topics, "data": _hex(data, upper)}


def _decode(decoder: Decoder, log: dict) -> object:
    """The decoded log and the stored JSON text of its args (checked against json.dumps), or the error."""
    try:
        parts = decoder.decode_parts(log)
    except Exception as exc:  # noqa: BLE001 - both paths must fail alike on what they cannot read
        return type(exc).__name__
    if parts is not None:
        assert parts[3] == json.dumps(parts[2], separators=(",", ":"))
    return parts


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs())
def test_hex_path_equals_byte_path(log):
    assert _decode(DECODER, log) == _decode(SLOW, log)


@pytest.mark.parametrize("bad", ["0x" + "zz" * 32, "0x" + "0_" * 32, "0x" + "00" * 31, "0X" + "ab" * 32])
def test_malformed_words_take_the_byte_path(bad):
    """Non-hex digits, underscores (which int() would accept) and short words are never read by the fast path."""
    contract, _, topic = next(e for e in EVENTS if DECODER.specs[(e[0], e[2])].data_types)
    spec = DECODER.specs[(contract, topic)]
    log = {"address": ADDRESSES[contract], "topics": [topic] + ["0x" + "00" * 32] * len(spec.indexed),
           "data": bad + "00" * 32 * (len(spec.data_types) - 1)}
    assert _decode(DECODER, log) == _decode(SLOW, log)


def test_every_one_word_event_has_a_fast_path():
    """Every event whose fields are all one word is decoded from the hex text, and only those."""
    fast = {(h.contract, h.event) for h in DECODER._by_log.values()}  # noqa: SLF001
    assert fast, "no event takes the fast path"
    for contract, name, topic in EVENTS:
        spec = DECODER.specs[(contract, topic)]
        one_word = all(not ("[" in t or "(" in t or t in ("string", "bytes")) for t in spec.data_types)
        assert ((contract, name) in fast) == one_word, (contract, name)
