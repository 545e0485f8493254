"""Parties in FHIR resources: an Ethereum address as an Identifier of system ETHEREUM_ADDRESS_SYSTEM."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_utils import is_address, to_checksum_address

from medledger.errors import FhirMappingError

from .systems import ETHEREUM_ADDRESS_SYSTEM


def address_of(ref: Any, field: str) -> str | None:
    """The checksummed address a Reference (at `field`) names by its Ethereum identifier, or None if it
    has none; FhirMappingError if that identifier's value is not an address."""
    ident = ref.get("identifier") if isinstance(ref, Mapping) else None
    if isinstance(ident, Mapping) and ident.get("system") == ETHEREUM_ADDRESS_SYSTEM:
        value = ident.get("value")
        if isinstance(value, str) and is_address(value):
            return to_checksum_address(value)
        raise FhirMappingError(f"{field}.identifier.value: {value!r} is not an Ethereum address")
    return None


def reference_to(address: str) -> dict[str, Any]:
    """A Reference naming `address` by its Ethereum identifier."""
    return {"identifier": {"system": ETHEREUM_ADDRESS_SYSTEM, "value": to_checksum_address(address)}}
