"""Fixtures only: named actors on the development chain and the deployed MedLedger suite.

Deployments are module-scoped; every test runs inside a snapshot (fn_isolation) so tests stay
independent and fast. Builders, matchers and the brownie patches live in `tests/support/`; the actors
are the dev-chain kit's (`medledger.testing.ACTORS`), one session fixture each.
"""
import pytest
from eth_utils import keccak
from support import brownie_patches
from support.consent import BREAK_GLASS_MAX
from support.escrow import Desk

from medledger.scopes import Role
from medledger.testing import ACTORS


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    pass


@pytest.fixture(scope="session", autouse=True)
def brownie_patched():
    """brownie 1.22.2 as the suite needs it (see tests/support/brownie_patches.py)."""
    with brownie_patches.applied():
        yield


def _actor_fixture(name: str, index: int):
    def actor(accounts):
        return accounts[index]

    actor.__doc__ = f"The {name} (development account {index}, medledger.testing.ACTORS)."
    return pytest.fixture(scope="session", name=name)(actor)


for _name, _index in ACTORS.items():
    globals()[_name] = _actor_fixture(_name, _index)


@pytest.fixture(scope="module")
def care(CareRegistry, admin, registrar, provider, provider2, insurer, arbiter):
    """A CareRegistry governed by `admin` (DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE, as the timelock holds them in a
    deployment) with one registrar, two providers and an insurer (the registrar's), and an arbiter the governor
    registered and assigned to the insurer."""
    registry = CareRegistry.deploy(admin, registrar, {"from": admin})
    for account, role in [(provider, Role.PROVIDER), (provider2, Role.PROVIDER), (insurer, Role.INSURER)]:
        registry.register(account, role, keccak(text=f"credentials:{account.address}"), {"from": registrar})
    registry.register(arbiter, Role.ARBITER, keccak(text=f"credentials:{arbiter.address}"), {"from": admin})
    registry.assignArbiter(insurer, arbiter, {"from": admin})
    return registry


@pytest.fixture(scope="module")
def consent(ConsentRegistry, care, admin):
    """A ConsentRegistry over `care`, admin-owned, with the maximum (72 h) break-glass window."""
    return ConsentRegistry.deploy(admin, care, BREAK_GLASS_MAX, {"from": admin})


@pytest.fixture
def wallet(MockERC1271Wallet, patient):
    """An ERC-1271 contract wallet that accepts the `patient` account's ECDSA signatures."""
    return MockERC1271Wallet.deploy(patient, False, {"from": patient})


@pytest.fixture
def bad_wallet(MockERC1271Wallet, patient):
    """An ERC-1271 contract wallet that answers a wrong magic value for every signature."""
    return MockERC1271Wallet.deploy(patient, True, {"from": patient})


@pytest.fixture(scope="module")
def records(RecordRegistry, care, consent, admin):
    """A RecordRegistry over `care` and `consent`."""
    return RecordRegistry.deploy(care, consent, {"from": admin})


@pytest.fixture(scope="module")
def usdc(MockStablecoin, admin):
    """A 6-decimal USDC-like mock stablecoin with EIP-2612 permit and an open mint."""
    return MockStablecoin.deploy({"from": admin})


@pytest.fixture(scope="module")
def escrow(ClaimEscrow, care, consent, records, usdc, admin):
    """A ClaimEscrow over `care`, `consent` and `records` holding `usdc`; `admin` is admin and pauser."""
    return ClaimEscrow.deploy(care, consent, records, usdc, admin, {"from": admin})


@pytest.fixture(scope="module")
def desk(escrow, usdc, consent, records, care, provider, insurer, patient):
    """A `Desk` (tests/support/escrow.py) over `escrow` with the standard world set up: the patient's
    consents, the insurer's terms and coverage of the patient, and a funded escrow."""
    parties = {"provider": provider, "insurer": insurer, "patient": patient}
    return Desk(escrow, usdc, consent, records, care, parties).setup()
