"""click parameter types: what a command line value means, converted once and refused with one line.

- `AddressOrAccount`: a 0x address or the name of a keystore (read without its password);
- `Bytes32`: 32 bytes written as 64 hex digits (0x optional);
- `ControlNumber`: a claim control number, a bytes32, or the provider's text as a `ControlText` that the
  command keys with the provider-insurer key (never the plain hash of the text);
- `GatewayUrl`: a gateway endpoint as it may be published (medledger.endpoints: an https origin);
- `TokenAmount`: a decimal number of tokens, converted to base units with the deployment token's
  decimals (see `medledger.units`).

They read the CLI's `App` (settings, chain) from the click context, so they work in any command.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import click
from eth_utils import is_address, to_checksum_address

from ..units import check_number
from .app import App


def _app(ctx: click.Context | None) -> App:
    app = ctx.find_object(App) if ctx is not None else None
    if app is None:  # pragma: no cover - every command runs under the root group, which makes the App
        raise click.UsageError("this value needs the medledger root command (settings, chain)")
    return app


def _what(param: click.Parameter | None, default: str) -> str:
    if param is None:
        return default
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return (param.metavar or param.human_readable_name or default).upper()


class AddressOrAccount(click.ParamType):
    """An Ethereum address (any case) or an account name from the keystores; gives the checksum address."""

    name = "address-or-account"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:  # noqa: ARG002
        return "ADDRESS|NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if is_address(text):  # no App needed
            return to_checksum_address(text)
        try:
            return _app(ctx).address_of(text)
        except click.BadParameter:
            self.fail(f"'{value}' is neither an address nor a known account name", param, ctx)


def parse_bytes32(value: str, what: str) -> bytes:
    """32 bytes from 64 hex digits (0x optional), or BadParameter naming `what`."""
    text = value.strip().removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise click.BadParameter(f"{what} must be 32 bytes of hex (64 hex digits), got '{value}'")
    return raw


class Bytes32(click.ParamType):
    """32 bytes as 64 hex digits, with or without 0x."""

    name = "bytes32"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bytes:
        if isinstance(value, bytes) and len(value) == 32:
            return value
        try:
            return parse_bytes32(str(value), _what(param, "value"))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


@dataclass(frozen=True)
class ControlText:
    """A control number given as the provider's own text ("RIV-0001"), to be keyed by the command once it knows
    the claim's provider and insurer (`medledger.cli.claims.control_number`)."""

    text: str


class ControlNumber(Bytes32):
    """A claim control number: a 0x bytes32 as is, or the provider's text (e.g. RIV-0001), which the claim's
    provider and insurer both key into the same bytes32 (an HMAC under their shared ECDH key, see
    docs/CLI.md); never the plain hash of guessable text."""

    name = "control-number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bytes | ControlText:
        if isinstance(value, (bytes, ControlText)):
            return value if isinstance(value, ControlText) else super().convert(value, param, ctx)
        text = str(value)
        if not text.strip():
            self.fail("a control number cannot be empty", param, ctx)
        return super().convert(text, param, ctx) if text.startswith("0x") else ControlText(text)


class Timestamp(click.ParamType):
    """A point in time: Unix seconds, or an ISO 8601 date or date-time (UTC unless it names a zone)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"'{value}' is neither Unix seconds nor an ISO date such as 2027-01-31 or "
                      f"2027-01-31T08:00:00Z", param, ctx)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        if when.timestamp() < 0:
            self.fail(f"'{value}' is before 1970", param, ctx)
        return int(when.timestamp())


class TokenAmount(click.ParamType):
    """A decimal number of the deployment's token (e.g. 125.50), as integer base units."""

    name = "amount"

    def __init__(self, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        what = _what(param, "amount").lower() if isinstance(param, click.Argument) else _what(param, "amount")
        # The number first, so that a mistyped amount is refused without touching the chain.
        check_number(str(value), what=what, allow_zero=self.allow_zero)
        return _app(ctx).token.parse(str(value), what=what, allow_zero=self.allow_zero)


class RecordRef(click.ParamType):
    """RECORD_ID or RECORD_ID:CONTENT_HASH: (record id, content hash or None for "its latest version")."""

    name = "record-ref"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        what = _what(param, "record")
        rid_text, _, hash_text = str(value).partition(":")
        try:
            return (parse_bytes32(rid_text, what),
                    parse_bytes32(hash_text, f"{what} content hash") if hash_text else None)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


class GatewayUrl(click.ParamType):
    """A gateway endpoint URL as published in the CareRegistry (see medledger.endpoints), normalised."""

    name = "gateway-url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..endpoints import check_gateway_url
        from ..errors import GatewayEndpointInvalid
        try:
            return check_gateway_url(str(value))
        except GatewayEndpointInvalid as exc:
            self.fail(str(exc), param, ctx)


ADDRESS = AddressOrAccount()
GATEWAY_URL = GatewayUrl()
BYTES32 = Bytes32()
CONTROL = ControlNumber()
RECORD_REF = RecordRef()
TIMESTAMP = Timestamp()
AMOUNT = TokenAmount()
AMOUNT_OR_ZERO = TokenAmount(allow_zero=True)
