"""The real `medledger` executable and an isolated environment to run it in (tests, benchmarks)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..config import PROJECT_ROOT

#: The passphrase `cli_env` gives the CLI for development keystores.
DEV_PASSWORD = "correct horse battery"


def medledger_exe() -> str:
    """The `medledger` entry point beside the running interpreter, else the one on PATH."""
    exe = Path(sys.executable).parent / "medledger"
    return str(exe) if exe.exists() else (shutil.which("medledger") or "medledger")


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment for running the `medledger` CLI in isolation under `home`: no MEDLEDGER_*
    variable of the caller leaks in; keystores, vault and deployments all live under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
    env.update({
        "MEDLEDGER_HOME": str(home),
        "MEDLEDGER_KEYSTORE_DIR": str(home / "keystore"),
        "MEDLEDGER_VAULT": str(home / "vault"),
        "MEDLEDGER_DEPLOYMENTS": str(home / "deployments.json"),
        "BROWNIE_ACCOUNTS_DIR": str(home / "brownie-accounts"),
        "MEDLEDGER_PASSWORD": DEV_PASSWORD,
        "PATH": f"{Path(sys.executable).parent}:{PROJECT_ROOT / 'node_modules' / '.bin'}:{os.environ.get('PATH', '')}",
    })
    env.update(extra)
    return env
