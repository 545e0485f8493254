"""Token amounts: decimal text in token units <-> integer base units, exactly (no float, no rounding).

`parse_amount("125.50", 6)` is 125_500_000; `format_amount(125_500_000, 6, "mUSD")` is
"125.50 mUSD". Every refusal is an `AmountInvalid` whose message names the value and the rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .errors import AmountInvalid

#: Escrow amounts are uint96 on chain.
MAX_UNITS = 2**96 - 1


@dataclass(frozen=True)
class TokenInfo:
    """What it takes to show an amount of a token: its address, symbol and decimals."""

    address: str
    symbol: str
    decimals: int

    def format(self, units: int) -> str:
        return format_amount(units, self.decimals, self.symbol)

    def parse(self, text: str, *, what: str = "amount", allow_zero: bool = False) -> int:
        return parse_amount(text, self.decimals, what=what, allow_zero=allow_zero, symbol=self.symbol)


def check_number(text: str, *, what: str = "amount", allow_zero: bool = False) -> Decimal:
    """`text` as a finite, non-negative (positive unless `allow_zero`) Decimal, before the token is known."""
    rule = f"{'a non-negative' if allow_zero else 'a positive'} number of tokens"
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise AmountInvalid(f"{what} '{text}' is not a number: give {rule}, e.g. 125.50") from None
    if not value.is_finite():
        raise AmountInvalid(f"{what} '{text}' is not a finite number: give {rule}, e.g. 125.50")
    if value.is_zero() and not allow_zero:
        raise AmountInvalid(f"{what} '{text}' must be positive: give {rule}")
    if value.as_tuple().sign and not value.is_zero():
        raise AmountInvalid(f"{what} '{text}' is negative: give {rule}")
    return value


def parse_amount(text: str, decimals: int, *, what: str = "amount", allow_zero: bool = False,
                 symbol: str = "") -> int:
    """`text` (e.g. "125.50") in base units of a token with `decimals` decimals.

    Refuses NaN, infinities, negatives, zero (unless `allow_zero`), more decimals than the token
    has and anything above uint96, with one message naming the value.
    """
    rule = f"{'a non-negative' if allow_zero else 'a positive'} number of tokens with at most {decimals} decimals"
    value = check_number(text, what=what, allow_zero=allow_zero)
    if value.is_zero():
        return 0
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    if value.adjusted() > 40:
        raise AmountInvalid(f"{what} '{text}' is too large (at most {format_amount(MAX_UNITS, decimals, symbol)})")
    text_digits = "".join(map(str, digits))
    stripped = text_digits.rstrip("0")
    fraction = -exponent - (len(text_digits) - len(stripped)) if exponent < 0 else 0
    if fraction > decimals:
        raise AmountInvalid(f"{what} '{text}' has too many decimals: give {rule} (the smallest amount is "
                            f"{format_amount(1, decimals, symbol)})")
    shift = decimals + exponent
    units = int(text_digits) * 10**shift if shift >= 0 else int(text_digits) // 10**-shift
    if units > MAX_UNITS:
        raise AmountInvalid(f"{what} '{text}' is too large (at most {format_amount(MAX_UNITS, decimals, symbol)})")
    return units


def format_amount(units: int, decimals: int, symbol: str = "") -> str:
    """Base units as token units with thousands separators, e.g. "1,240.50 USDC" (at least 2 decimals shown)."""
    whole, frac = divmod(abs(int(units)), 10**decimals)
    digits = f"{frac:0{decimals}d}".rstrip("0") if decimals else ""
    digits = digits.ljust(min(2, decimals), "0")
    text = f"{'-' if units < 0 else ''}{whole:,}" + (f".{digits}" if digits else "")
    return f"{text} {symbol}" if symbol else text
