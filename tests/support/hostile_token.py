"""The three module fixtures of a hostile-token test module (not a test module itself): the token, a
funded desk over it for `patient`, and another desk on a token of its own for `patient2`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def hostile_token_fixtures(
    contract: str, *deploy_args: Any, token: str, desk: str, behaviour: str
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """Fixtures named `token` (a `contract` deployed with `deploy_args`), `desk` (the adversarial conftest's
    `token_desk` over it) and `<desk>_of_patient2` (over a second such token, for patient2); `behaviour`
    completes the desk's description, "A desk whose token ...". Assign the three to those names in the
    test module."""

    def deploy(request: pytest.FixtureRequest, admin: Any) -> Any:
        return request.getfixturevalue(contract).deploy(*deploy_args, {"from": admin})

    @pytest.fixture(scope="module", name=token)
    def token_fixture(request: pytest.FixtureRequest, admin: Any) -> Any:
        return deploy(request, admin)

    @pytest.fixture(scope="module", name=desk)
    def desk_fixture(request: pytest.FixtureRequest, token_desk: Any) -> Any:
        return token_desk(request.getfixturevalue(token))

    desk_fixture.__doc__ = f"A desk whose token {behaviour}."

    @pytest.fixture(scope="module", name=f"{desk}_of_patient2")
    def desk_of_patient2_fixture(request: pytest.FixtureRequest, token_desk: Any, admin: Any) -> Any:
        """Another such desk, on a token and a RecordRegistry of its own, for patient2."""
        return token_desk(deploy(request, admin), of_patient2=True)

    return token_fixture, desk_fixture, desk_of_patient2_fixture
