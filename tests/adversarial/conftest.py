"""Fixtures of the adversarial suite: one world per module, and snapshots only where a test changes it."""
import gc

import pytest
from support.escrow import Desk
from support.world import build_world


@pytest.fixture(autouse=True)
def isolation(module_isolation, request):
    """Overrides the root conftest's autouse fn_isolation: a snapshot per test, except for the
    read-only forbidden calls of the role matrix (a `case` that is `stateless`), which change
    nothing (eth_call) and need none."""
    case = getattr(getattr(request.node, "callspec", None), "params", {}).get("case")
    if not getattr(case, "stateless", False):
        request.getfixturevalue("fn_isolation")
    yield


@pytest.fixture(scope="module", autouse=True)
def frozen_heap():
    """brownie runs a full gc.collect() on every snapshot revert (to drop dead contract objects);
    over brownie's own large heap that costs ~0.1 s per test. Objects alive now are long-lived:
    freeze them out of the collector for this module."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="module")
def world(care, consent, records, escrow, usdc, accounts, admin, registrar, provider, provider2, insurer,
          arbiter, patient, patient2, guardian, stranger, relayer):
    """The module's World (tests/support/world.py)."""
    return build_world(care, consent, records, escrow, usdc, accounts, admin, registrar, provider, provider2,
                       insurer, arbiter, patient, patient2, guardian, stranger, relayer)


@pytest.fixture(scope="module")
def token_desk(ClaimEscrow, RecordRegistry, care, consent, records, admin, provider, insurer, patient, patient2):
    """Builds a funded standard-world `Desk` over a fresh ClaimEscrow that holds `token` (a hostile one):
    `token_desk(token)` for `patient` over the module's RecordRegistry, or `token_desk(token, of_patient2=True)`
    for `patient2` over a RecordRegistry of its own."""

    def build(token, of_patient2: bool = False) -> Desk:
        own_records = RecordRegistry.deploy(care, consent, {"from": admin}) if of_patient2 else records
        parties = {"provider": provider, "insurer": insurer, "patient": patient2 if of_patient2 else patient}
        return Desk.over_token(token, ClaimEscrow, care, consent, own_records, admin, parties)

    return build
