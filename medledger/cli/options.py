"""Reusable click options and arguments: one definition per kind of value, shared by every command."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import click

from ..commitments import SaltedFile, salted_file
from ..scopes import DataClass, Purpose, lookup, mask
from .paramtypes import ADDRESS, AMOUNT, AMOUNT_OR_ZERO, BYTES32, CONTROL

F = Callable[..., Any]

FHIR_CHOICE = click.Choice(["auto", "R4", "R4B", "R5"], case_sensitive=False)
SCOPE_HELP = "Comma-separated names, e.g. treat,hpaymt; 'all' = every non-sensitive one."


def address_argument(name: str, *, required: bool = True, metavar: str | None = None) -> Callable[[F], F]:
    """An ADDRESS|NAME argument, converted to a checksum address."""
    return click.argument(name, type=ADDRESS, required=required, metavar=metavar or name.upper())


def address_option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    """An --option taking an address or an account name, converted to a checksum address."""
    return click.option(*decls, type=ADDRESS, **kwargs)


def bytes32_option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    """An --option taking 32 bytes of hex."""
    return click.option(*decls, type=BYTES32, **kwargs)


def amount_argument(name: str = "amount") -> Callable[[F], F]:
    """A positive AMOUNT in token units, converted to base units with the token's decimals."""
    return click.argument(name, type=AMOUNT)


def amount_option(*decls: str, allow_zero: bool = False, **kwargs: Any) -> Callable[[F], F]:
    """An --option taking an amount in token units (converted to base units)."""
    return click.option(*decls, type=AMOUNT_OR_ZERO if allow_zero else AMOUNT, **kwargs)


def claim_arguments(fn: F) -> F:
    """PROVIDER CONTROL: a claim as its insurer, arbiter or anyone names it."""
    fn = click.argument("control", type=CONTROL)(fn)
    return address_argument("provider")(fn)


def class_option(fn: F) -> F:
    """--class: the data class a record is declared to hold (a `DataClass`; None: from its contents)."""
    return click.option("--class", "data_class", type=ScopeName(DataClass), default=None,
                        help="Declare the data class (e.g. labs): refused unless it covers every resource "
                             "found. Default: the classes of the contents, one record per class.")(fn)


def purpose_option(fn: F) -> F:
    """--purpose: the purpose of use of a read (a `Purpose`), logged on chain or by the gateway."""
    return click.option("--purpose", "why", type=ScopeName(Purpose), default="treat", show_default=True,
                        help="Purpose of use of the read: treat, etreat (break-glass), hpaymt, hoperat, hresch, "
                             "coverage.")(fn)


def fhir_options(fn: F) -> F:
    """--fhir-version and --no-validate for commands that read FHIR files."""
    fn = click.option("--no-validate", is_flag=True, help="Skip FHIR validation (pre-validated sources).")(fn)
    from .. import fhir

    return click.option("--fhir-version", type=FHIR_CHOICE, default="auto", show_default=True,
                        callback=lambda _c, _p, v: fhir.normalize(v),
                        help="FHIR version of the document(s); auto detects it from the content "
                             "(R4 is read through R4B; see docs/FHIR.md).")(fn)


@dataclass(frozen=True)
class Commitment:
    """The bytes32 a command puts on chain for a document, and (for a file) its salted opening.

    A file is committed as ``keccak256(salt ‖ canonical bytes)`` (docs/PRIVACY.md item 3); its salt is kept
    beside it in FILE.salt.json once the transaction went through. An explicit 0x value is used as given."""

    value: bytes
    salted: SaltedFile | None = None

    def saved(self, app: Any, result: Any) -> dict[str, Any]:
        """Writes the sidecar (after the transaction); the fields to report: the commitment and the sidecar."""
        if self.salted is None:
            return {}
        sidecar = self.salted.save(chain_id=app.chain.chain_id, tx=result.tx_hash)
        return {"commitment": self.value, "salt_file": str(sidecar)}

    def note(self) -> str:
        """The tail of a success message naming where the salt is kept ('' for an explicit value)."""
        return "" if self.salted is None else f" (salt kept in {self.salted.sidecar}: send it with the document)"


def commitment(file: Path | None, value: bytes | None, what: str, required: bool = True) -> Commitment:
    """The salted commitment of a document file (hashed locally, never sent) or an explicit bytes32."""
    if file is not None and value is not None:
        raise click.UsageError(f"give {what} or the document file, not both")
    if file is not None:
        committed = salted_file(Path(file))
        return Commitment(committed.commitment, committed)
    if value is not None:
        return Commitment(value)
    if required:
        raise click.UsageError(f"give {what} HASH or the document file to commit to")
    return Commitment(b"\x00" * 32)


class ScopeName(click.ParamType):
    """A member of a scopes enum by name (e.g. `mental-health` for DataClass.MENTAL_HEALTH)."""

    def __init__(self, enum: type[IntEnum]) -> None:
        self.enum = enum
        self.name = enum.__name__.lower()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> IntEnum:
        if isinstance(value, self.enum):
            return value
        return lookup(self.enum, str(value))  # ScopeError names the known members


class ScopeMask(click.ParamType):
    """A bitmask from comma-separated names of a scopes enum ('all' = every non-sensitive one)."""

    def __init__(self, enum: type[IntEnum]) -> None:
        self.enum = enum
        self.name = f"{enum.__name__.lower()}s"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        return value if isinstance(value, int) else mask(str(value), self.enum)


def emergency_reader_option(fn: F) -> F:
    """`--emergency-reader ACCOUNT` (repeatable): also seal this version for a provider whose break-glass
    window is open now (break-glass gives no key otherwise)."""
    return click.option("--emergency-reader", "emergency", type=ADDRESS, multiple=True, metavar="ACCOUNT",
                        help="Also seal this version for a provider with open emergency access (break-glass "
                             "gives no key otherwise). Repeatable.")(fn)
