import brownie
import pytest
from conftest import custom_error

@pytest.mark.parametrize("i", range(30))
def test_tx_revert(care, stranger, i):
    role = care.REGISTRAR_ROLE()
    with brownie.reverts(custom_error("AccessControlUnauthorizedAccount(address,bytes32)", stranger.address, role)):
        care.register(stranger, 1, b"\x01" * 32, {"from": stranger})

@pytest.mark.parametrize("i", range(30))
def test_call_revert(care, stranger, i):
    role = care.REGISTRAR_ROLE()
    with brownie.reverts(custom_error("AccessControlUnauthorizedAccount(address,bytes32)", stranger.address, role)):
        care.register.call(stranger, 1, b"\x01" * 32, {"from": stranger})

@pytest.mark.parametrize("i", range(30))
def test_tx_ok(care, registrar, accounts, i):
    care.updateMetadata(accounts[2], b"\x01" * 32, {"from": registrar})
