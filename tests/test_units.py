"""Token amounts: decimal text <-> base units, exact, with one message per refusal (no chain needed)."""
import pytest

from medledger.errors import AmountInvalid, MedLedgerError
from medledger.units import MAX_UNITS, format_amount, parse_amount


@pytest.mark.parametrize("text,units", [
    ("125.50", 125_500_000), ("1", 1_000_000), ("0.000001", 1), ("1e3", 1_000_000_000), ("1_000", 1_000_000_000),
    (" 12.340000000 ", 12_340_000), ("79228162514264337593543.950335", MAX_UNITS),
])
def test_parse_exact(text, units):
    assert parse_amount(text, 6) == units


@pytest.mark.parametrize("text,needle", [
    ("sNaN", "not a finite number"), ("nan", "not a finite number"), ("-inf", "not a finite number"),
    ("Infinity", "not a finite number"), ("-5", "is negative"), ("0", "must be positive"), ("-0", "must be positive"),
    ("1.0000001", "at most 6 decimals"), ("1e-7", "at most 6 decimals"), ("1e-999999999", "at most 6 decimals"),
    ("1e999999999", "too large"), ("79228162514264337593543.950336", "too large"), ("", "not a number"),
    ("0x10", "not a number"), ("1,5", "not a number"),
])
def test_refusals_are_one_amount_invalid(text, needle):
    with pytest.raises(AmountInvalid) as raised:
        parse_amount(text, 6, what="--amount")
    assert isinstance(raised.value, MedLedgerError)
    message = str(raised.value)
    assert needle in message and f"--amount '{text}'" in message and "\n" not in message


def test_zero_when_allowed_and_format():
    assert parse_amount("0", 6, allow_zero=True) == 0 and parse_amount("-0.00", 6, allow_zero=True) == 0
    assert format_amount(1_240_500_000, 6, "mUSDC") == "1,240.50 mUSDC"
    assert format_amount(1, 6) == "0.000001" and format_amount(5, 0, "X") == "5 X"
    assert format_amount(10**18, 18) == "1.00"
