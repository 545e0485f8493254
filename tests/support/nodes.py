"""Separately started local nodes (for the live-network and fault tests) and CLI helpers."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from eth_account import Account

from medledger.testing.anvil import stop_process

ROOT = Path(__file__).resolve().parents[2]
MNEMONIC = "test test test test test test test test test test test junk"
Account.enable_unaudited_hdwallet_features()


def dev_key(index: int) -> str:
    """The private key of account `index` of the project's development mnemonic."""
    return Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key.hex()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class GanacheNode:
    """A ganache process of our own (not brownie's), optionally persisting its state on disk."""

    def __init__(self, port: int, chain_id: int, db_path: Path | None = None) -> None:
        self.port, self.chain_id, self.db_path = port, chain_id, db_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GanacheNode:
        if _port_open(self.port):
            raise RuntimeError(f"port {self.port} is busy")
        exe = shutil.which("ganache") or str(ROOT / "node_modules" / ".bin" / "ganache")
        cmd = [exe, "--server.port", str(self.port), "--chain.chainId", str(self.chain_id), "--hardfork", "shanghai",
               "--wallet.mnemonic", MNEMONIC, "--wallet.totalAccounts", "20", "--wallet.defaultBalance", "1000000",
               "--miner.blockGasLimit", "30000000", "--logging.quiet"]
        if self.db_path is not None:
            cmd += ["--database.dbPath", str(self.db_path)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ganache did not start on port {self.port}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        stop_process(self.process)
        deadline = time.monotonic() + 10
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment for running the `medledger` CLI in isolation under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
    env.update({
        "MEDLEDGER_HOME": str(home),
        "MEDLEDGER_KEYSTORE_DIR": str(home / "keystore"),
        "MEDLEDGER_VAULT": str(home / "vault"),
        "MEDLEDGER_DEPLOYMENTS": str(home / "deployments.json"),
        "BROWNIE_ACCOUNTS_DIR": str(home / "brownie-accounts"),
        "MEDLEDGER_PASSWORD": "correct horse battery",
        "PATH": f"{ROOT / '.venv' / 'bin'}:{ROOT / 'node_modules' / '.bin'}:{os.environ.get('PATH', '')}",
    })
    env.update(extra)
    return env


def medledger_exe() -> str:
    exe = Path(sys.executable).parent / "medledger"
    return str(exe) if exe.exists() else "medledger"


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
