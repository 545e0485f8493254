"""Shared fixtures: named actors on the Ganache chain and the deployed MedLedger suite.

Deployments are module-scoped; every test runs inside a snapshot (fn_isolation) so tests stay
independent and fast.
"""
import pytest
from brownie import web3
from brownie.exceptions import decode_typed_error
from eth_abi import encode
from eth_utils import keccak


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    pass


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def registrar(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def provider(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def provider2(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def insurer(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def arbiter(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def patient(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def patient2(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[8]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def relayer(accounts):
    return accounts[10]


PROVIDER, INSURER, ARBITER = 1, 2, 3


@pytest.fixture(scope="module")
def care(CareRegistry, admin, registrar, provider, provider2, insurer, arbiter):
    """A CareRegistry with one registrar, two providers, an insurer and an arbiter."""
    registry = CareRegistry.deploy(admin, {"from": admin})
    registry.grantRole(registry.REGISTRAR_ROLE(), registrar, {"from": admin})
    for account, role in [(provider, PROVIDER), (provider2, PROVIDER), (insurer, INSURER), (arbiter, ARBITER)]:
        registry.register(account, role, keccak(text=f"credentials:{account.address}"), {"from": registrar})
    return registry


def custom_error(signature: str, *args) -> str:
    """The revert string brownie reports for a custom error, e.g. custom_error("Foo(address)", a)."""
    selector = keccak(text=signature)[:4]
    types = signature[signature.index("(") + 1 : -1]
    types_list = [t for t in types.split(",") if t]
    data = selector + (encode(types_list, list(args)) if types_list else b"")
    return decode_typed_error(web3.to_hex(data))


BREAK_GLASS_MAX = 72 * 3600


@pytest.fixture(scope="module")
def consent(ConsentRegistry, care, admin):
    """A ConsentRegistry over `care`, admin-owned, with the maximum (72 h) break-glass window."""
    return ConsentRegistry.deploy(admin, care, BREAK_GLASS_MAX, {"from": admin})
