"""The deployments file: contract addresses keyed by chain id, written by the deploy script.

Format::

    {"1337": {"CareRegistry": {"address": "0x...", "block": 3, "tx": "0x..."}, ...,
              "Stablecoin": {"address": "0x...", "block": 0, "tx": "", "external": true}}, "11155111": {...}}

`Stablecoin` is the deployment's one token: the mock deployed on a development chain, or the
token passed with `deploy --token` (`external`: MedLedger did not deploy it and cannot mint it).

Writes are atomic (temp file + rename), and each contract is recorded as soon as it is mined,
so an interrupted deploy resumes where it stopped.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .errors import ConfigError, NotDeployed

SUITE = ("CareRegistry", "ConsentRegistry", "RecordRegistry", "ClaimEscrow")


@dataclass(frozen=True)
class Deployed:
    """One deployed contract."""

    address: str
    block: int = 0
    tx: str = ""
    external: bool = False  # not deployed by MedLedger (e.g. the stablecoin passed with `deploy --token`)


@dataclass(frozen=True)
class Deployment:
    """The MedLedger contracts on one chain."""

    chain_id: int
    contracts: Mapping[str, Deployed] = field(default_factory=lambda: MappingProxyType({}))

    def address(self, name: str) -> str:
        try:
            return self.contracts[name].address
        except KeyError:
            raise NotDeployed(f"{name} is not deployed on chain {self.chain_id} (run `medledger deploy`)") from None


def _read(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"deployments file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"deployments file {path} must hold a JSON object keyed by chain id")
    return data


def load(path: Path, chain_id: int) -> Deployment:
    """The deployment recorded for `chain_id` (possibly empty)."""
    entry = _read(Path(path)).get(str(chain_id), {})
    contracts = {name: Deployed(**value) for name, value in entry.items()}
    return Deployment(chain_id, MappingProxyType(contracts))


def require(path: Path, chain_id: int) -> Deployment:
    """The full suite on `chain_id`, or NotDeployed naming what is missing."""
    deployment = load(path, chain_id)
    missing = [name for name in SUITE if name not in deployment.contracts]
    if len(missing) == len(SUITE):
        raise NotDeployed(f"no MedLedger deployment for chain {chain_id} in {path} (run `medledger deploy`)")
    if missing:
        raise NotDeployed(f"the deployment on chain {chain_id} is incomplete (missing {', '.join(missing)}): "
                          "re-run `medledger deploy` to resume it")
    return deployment


def record(path: Path, chain_id: int, name: str, deployed: Deployed) -> None:
    """Adds or replaces contract `name` on `chain_id`, atomically."""
    path = Path(path)
    data = _read(path)
    entry: dict[str, object] = {"address": deployed.address, "block": deployed.block, "tx": deployed.tx}
    if deployed.external:
        entry["external"] = True
    data.setdefault(str(chain_id), {})[name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".deployments.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def forget(path: Path, chain_id: int) -> None:
    """Drops every record for `chain_id` (used when a development chain was reset)."""
    path = Path(path)
    data = _read(path)
    if data.pop(str(chain_id), None) is not None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".deployments.")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
        os.replace(tmp, path)
