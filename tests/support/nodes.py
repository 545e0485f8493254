"""The pytest side of the dev-chain kit: run the real `medledger` CLI and fail the test on error.

Nodes, the development keys, `cli_env` and `medledger_exe` live in the kit (`medledger.testing`);
they are re-exported here for the tests that import them from this module.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from medledger.config import PROJECT_ROOT
from medledger.testing import GanacheNode, cli_env, dev_account, medledger_exe

ROOT = PROJECT_ROOT

__all__ = ["ROOT", "GanacheNode", "cli_env", "dev_key", "funded_keystores", "medledger_exe", "run_cli", "run_json"]


def dev_key(index: int) -> str:
    """The private key of account `index` of the project's development mnemonic."""
    return dev_account(index).key.hex()


def run_cli(env: dict[str, str], *args: str, check: bool = True, input: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs the real `medledger` entry point."""
    proc = subprocess.run([medledger_exe(), *args], env=env, capture_output=True, text=True, input=input,
                          timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"medledger {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_json(env: dict[str, str], *args: str) -> object:
    return json.loads(run_cli(env, "--json", *args).stdout)


def funded_keystores(env: dict[str, str], names_to_index: dict[str, int]) -> dict[str, str]:
    """Keystores (under env's MEDLEDGER_KEYSTORE_DIR) for development accounts; returns name -> address."""
    from medledger.accounts import import_key
    out = {}
    for name, index in names_to_index.items():
        entry = import_key(Path(env["MEDLEDGER_KEYSTORE_DIR"]), name, dev_key(index), env["MEDLEDGER_PASSWORD"])
        out[name] = entry.address
    return out


def deployed_env(home: Path, rpc_url: str, actors: dict[str, int], *, providers: tuple[str, ...] = (),
                 insurers: tuple[str, ...] = (), admin: str = "gov") -> dict[str, str]:
    """A CLI environment under `home` with keystores for `actors` (name -> account index), a fresh
    deployment by `admin`, and `providers` / `insurers` registered (metadata 0x11.., 0x12.., ...).
    `env["ADDRESSES"]` holds the actors' addresses as JSON."""
    env = cli_env(home, MEDLEDGER_RPC=rpc_url)
    env["ADDRESSES"] = json.dumps(funded_keystores(env, actors))
    run_json(env, "--account", admin, "deploy")
    parties = [("add-provider", name) for name in providers] + [("add-insurer", name) for name in insurers]
    for i, (command, name) in enumerate(parties):
        run_cli(env, "--account", admin, "registry", command, name, "--metadata", "0x" + f"{0x11 + i:02x}" * 32)
    return env
