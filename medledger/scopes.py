"""The shared vocabulary: roles, HL7 purposes of use and data classes (bit indexes on chain)."""
from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from .errors import ScopeError


class Role(IntEnum):
    NONE = 0
    PROVIDER = 1
    INSURER = 2
    ARBITER = 3


class Purpose(IntEnum):
    """HL7 v3 PurposeOfUse codes; the value is the bit index in a purposes mask."""

    TREAT = 0
    ETREAT = 1
    HPAYMT = 2
    HOPERAT = 3
    HRESCH = 4
    COVERAGE = 5


class DataClass(IntEnum):
    """Classes of clinical data; the value is the bit index in a data-class mask."""

    DEMOGRAPHICS = 0
    CONDITIONS = 1
    MEDICATIONS = 2
    ALLERGIES = 3
    LABS = 4
    IMAGING = 5
    NOTES = 6
    BILLING = 7
    GENOMICS = 8
    MENTAL_HEALTH = 9
    SUBSTANCE_USE = 10


class ClaimStatus(IntEnum):
    """IClaimEscrow.ClaimStatus: where a claim stands (the value is the on-chain enum's)."""

    NONE = 0
    SUBMITTED = 1
    CONTESTABLE = 2
    DISPUTED = 3
    SETTLED = 4
    VOIDED = 5
    DEEMED_UNFUNDED = 6

    @property
    def label(self) -> str:
        """The lower-case name the CLI and its JSON show, e.g. "settled"."""
        return "deemed approved, unfunded" if self is ClaimStatus.DEEMED_UNFUNDED else self.name.lower()


class ClaimFrequency(IntEnum):
    """X12 837 claim frequency codes that ClaimEscrow accepts."""

    ORIGINAL = 1
    REPLACEMENT = 7
    VOID = 8


SENSITIVE = frozenset({DataClass.GENOMICS, DataClass.MENTAL_HEALTH, DataClass.SUBSTANCE_USE})


def lookup(enum: type[IntEnum], name: str) -> IntEnum:
    """The member of `enum` called `name` (case-insensitive, - for _), or ScopeError naming the known ones."""
    key = name.strip().upper().replace("-", "_")
    try:
        return enum[key]
    except KeyError:
        known = ", ".join(m.name.lower().replace("_", "-") for m in enum if m.name != "NONE")
        raise ScopeError(f"unknown {enum.__name__.lower()} '{name}' (known: {known})") from None


def purpose(name: str) -> Purpose:
    return lookup(Purpose, name)  # type: ignore[return-value]


def data_class(name: str) -> DataClass:
    return lookup(DataClass, name)  # type: ignore[return-value]


def role(name: str) -> Role:
    return lookup(Role, name)  # type: ignore[return-value]


def mask(names: Iterable[str] | str, enum: type[IntEnum]) -> int:
    """A bitmask from names, e.g. "treat,hpaymt"; "all" means every non-sensitive member."""
    items = names.split(",") if isinstance(names, str) else list(names)
    bits = 0
    for item in (i for i in items if i.strip()):
        if item.strip().lower() == "all":
            bits |= sum(1 << m for m in enum if m not in SENSITIVE and m.name != "NONE")
        else:
            bits |= 1 << lookup(enum, item)
    if bits == 0:
        raise ScopeError(f"name at least one {enum.__name__.lower()}")
    return bits


def names(bits: int, enum: type[IntEnum]) -> list[str]:
    """The member names set in `bits`."""
    return [m.name for m in enum if m.name != "NONE" and bits >> m & 1]
