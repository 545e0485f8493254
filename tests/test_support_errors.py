"""The custom-error matcher of tests/support/errors.py: signatures come from the compiled ABI."""
import pytest
from brownie import ClaimEscrow, interface
from support.errors import error_message, error_selector, error_signature


def test_signature_comes_from_the_abi():
    assert error_signature(ClaimEscrow, "InvalidStatus") == "InvalidStatus(bytes32,uint8)"
    assert error_signature(interface.IAccessControl, "AccessControlUnauthorizedAccount") == (
        "AccessControlUnauthorizedAccount(address,bytes32)")
    assert error_selector(ClaimEscrow, "ReentrantCall") == "0x37ed32e8"

def test_message_is_what_brownie_reports():
    assert error_message(ClaimEscrow, "ZeroAmount") == "ZeroAmount: "
    assert error_message(ClaimEscrow, "AmountTooLarge", 7) == "AmountTooLarge: 7"

def test_unknown_error_and_wrong_arguments_are_refused():
    with pytest.raises(LookupError, match="NoSuchError is not an error of ClaimEscrow"):
        error_message(ClaimEscrow, "NoSuchError")
    with pytest.raises(TypeError, match=r"AmountTooLarge\(uint256\) takes 1 argument"):
        error_message(ClaimEscrow, "AmountTooLarge")
    with pytest.raises(TypeError, match="has no ABI"):
        error_signature(object(), "ZeroAmount")
