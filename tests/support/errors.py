"""Custom-error revert matchers whose signatures come from the compiled ABI, never typed by hand.

`reverts_with(ClaimEscrow, "InvalidStatus", claim_id, 2)` expects the revert brownie reports for
`InvalidStatus(bytes32,uint8)` as `ClaimEscrow`'s ABI declares it; `error_message(...)` is the same
string for places that compare it themselves. `source` is anything with an `abi`: a contract
container (`ClaimEscrow`), a deployed contract, or an interface (`interface.IAccessControl`).
"""
from __future__ import annotations

from typing import Any

import brownie
from brownie import web3
from brownie.exceptions import decode_typed_error
from eth_abi import encode
from eth_utils import keccak
from eth_utils.abi import collapse_if_tuple


def _name_of(source: Any) -> str:
    return str(getattr(source, "_name", None) or getattr(source, "__name__", None) or source)


def error_signature(source: Any, name: str) -> str:
    """The canonical signature, e.g. "InvalidStatus(bytes32,uint8)", of the custom error `name` of `source`."""
    abi = getattr(source, "abi", None)
    if abi is None:
        raise TypeError(f"{source!r} has no ABI: pass a contract container, a contract or an interface")
    declared = [entry for entry in abi if entry.get("type") == "error" and entry["name"] == name]
    if len(declared) != 1:
        known = sorted({entry["name"] for entry in abi if entry.get("type") == "error"})
        problem = "is overloaded in" if declared else "is not an error of"
        raise LookupError(f"{name} {problem} {_name_of(source)} (its errors: {', '.join(known)})")
    types = ",".join(collapse_if_tuple(arg) for arg in declared[0]["inputs"])
    return f"{name}({types})"


def error_selector(source: Any, name: str) -> str:
    """The 4-byte selector, as 0x-hex, of the custom error `name` of `source`."""
    return "0x" + keccak(text=error_signature(source, name))[:4].hex()


def error_message(source: Any, name: str, *args: Any) -> str:
    """The revert string brownie reports for the custom error `name` of `source` with `args`."""
    signature = error_signature(source, name)
    types = [t for t in signature[len(name) + 1 : -1].split(",") if t]
    if len(types) != len(args):
        raise TypeError(f"{signature} takes {len(types)} argument(s), {len(args)} given")
    data = keccak(text=signature)[:4] + (encode(types, list(args)) if types else b"")
    return decode_typed_error(web3.to_hex(data))


def reverts_with(source: Any, name: str, *args: Any):
    """`brownie.reverts` for the custom error `name` of `source` with exactly `args`."""
    return brownie.reverts(error_message(source, name, *args))
