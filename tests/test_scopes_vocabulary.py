"""The Solidity vocabulary (contracts/libraries/Scopes.sol, ICareRegistry.Role) and the SDK's
(medledger/scopes.py) are one: read from the compiled ASTs, compared value by value, both ways."""
import json
from pathlib import Path

import pytest

from medledger.scopes import DataClass, Purpose, Role

BUILD = Path(__file__).resolve().parents[1] / "build"


def _ast(kind: str, name: str) -> dict:
    path = BUILD / kind / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: brownie compiles the project before the tests run")
    unit = json.loads(path.read_text())["ast"]
    return next(n for n in unit["nodes"] if n.get("nodeType") == "ContractDefinition" and n["name"] == name)


def _library_constants() -> dict[str, int]:
    constants = {}
    for node in _ast("contracts", "Scopes")["nodes"]:
        if node.get("nodeType") != "VariableDeclaration":
            continue
        assert node["constant"] and node["visibility"] == "internal", f"Scopes.{node['name']} is not internal constant"
        value = node["value"]
        assert value["nodeType"] == "Literal", f"Scopes.{node['name']} must be a literal (the test reads it)"
        constants[node["name"]] = int(value["value"], 0)
    return constants


def _mask(members) -> int:
    return sum(1 << m for m in members)


def sdk_vocabulary() -> dict[str, int]:
    """Every name the library must define, with the value the SDK gives it."""
    names = {m.name: int(m) for m in Purpose} | {m.name: int(m) for m in DataClass}
    names |= {
        "MAX_PURPOSE": max(Purpose),
        "TREAT_BIT": 1 << Purpose.TREAT,
        "ALL_PURPOSES": _mask(Purpose),
        "MAX_DATA_CLASS": max(DataClass),
        "ALL_DATA_CLASSES": _mask(DataClass),
    }
    return names


def test_scopes_library_matches_sdk():
    assert _library_constants() == sdk_vocabulary()


def test_purpose_and_class_names_do_not_collide():
    # One flat namespace in the library: a purpose and a data class may never share a name.
    assert not set(Purpose.__members__) & set(DataClass.__members__)


def test_care_registry_roles_match_sdk():
    enum = next(n for n in _ast("interfaces", "ICareRegistry")["nodes"]
                if n.get("nodeType") == "EnumDefinition" and n["name"] == "Role")
    assert [m["name"] for m in enum["members"]] == [r.name.title() for r in Role]
