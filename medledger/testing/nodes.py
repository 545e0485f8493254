"""Local development nodes started by the kit itself (not by brownie): Ganache and Anvil, one API.

    with AnvilNode() as node:            # a free loopback port, the development mnemonic
        deploy_suite(Chain(load_settings(rpc=node.url)), ...)

Both are funded from `MNEMONIC` (`ACCOUNT_COUNT` accounts, `DEV_BALANCE_ETH` each), run the Shanghai
hardfork (Ganache 7.9.2 stops there) and listen on 127.0.0.1 only. Each node runs in its own process
session and is stopped as a group (the npm wrapper of Anvil spawns the real binary), and it gets
SIGTERM if the Python process that started it dies.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar

import requests

from ..config import PROJECT_ROOT
from .accounts import ACCOUNT_COUNT, DEV_BALANCE_ETH, MNEMONIC
from .ports import free_port, port_open

try:
    _LIBC: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def die_with_parent() -> None:
    """In a child process (``preexec_fn``): get SIGTERM if the parent dies (Linux PR_SET_PDEATHSIG)."""
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(1, signal.SIGTERM)


def stop_group(proc: subprocess.Popen, grace: float = 10) -> None:
    """Stops a process started with ``start_new_session=True`` and everything in its group:
    SIGTERM, then SIGKILL after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the wrapper is gone; its children must not linger
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)


def node_executable(name: str) -> str:
    """`name` on PATH, else the project's npm copy (node_modules/.bin)."""
    return shutil.which(name) or str(PROJECT_ROOT / "node_modules" / ".bin" / name)


class LocalNode:
    """A development chain process of our own on 127.0.0.1. Use `start()`/`stop()` or ``with``.

    `port` None takes a free port; `db_path` keeps the chain's state on disk (Ganache only); `extra`
    arguments go to the node's command line as they are (e.g. ``("--no-mining",)`` for Anvil).
    """

    name: ClassVar[str]
    default_chain_id: ClassVar[int]
    start_timeout: ClassVar[float] = 60.0

    def __init__(self, port: int | None = None, chain_id: int | None = None, db_path: Path | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.chain_id = chain_id or self.default_chain_id
        self.db_path = db_path
        self.extra = tuple(extra)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> LocalNode:
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is busy: cannot start {self.name} there")
        # Its own session: stop() ends the whole group, npm wrapper and binary together.
        self.process = subprocess.Popen([*self.command(), *self.extra], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=die_with_parent)
        deadline = time.monotonic() + self.start_timeout
        while not port_open(self.port):
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(f"{self.name} exited with {code} before listening on port {self.port}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not listen on port {self.port} within {self.start_timeout:.0f} s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """Stops the node (idempotent) and waits until its port is closed."""
        if self.process is not None:
            stop_group(self.process)
            self.process = None
        deadline = time.monotonic() + 10
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    # JSON-RPC, for what a test or benchmark does to the chain itself (snapshots, reorgs, mining).
    def rpc(self, method: str, *params: Any) -> Any:
        """Calls `method` on the node; a JSON-RPC error raises RuntimeError naming the method."""
        body = requests.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                             timeout=30).json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def snapshot(self) -> str:
        return self.rpc("evm_snapshot")

    def revert(self, snapshot: str) -> None:
        if self.rpc("evm_revert", snapshot) is not True:
            raise RuntimeError(f"{self.name} refused to revert to snapshot {snapshot}")

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def __enter__(self) -> LocalNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class GanacheNode(LocalNode):
    """Ganache 7 (chain id 1337 unless told), optionally persisting its state under `db_path`."""

    name = "ganache"
    default_chain_id = 1337
    start_timeout = 30.0

    def command(self) -> list[str]:
        cmd = [node_executable("ganache"), "--server.host", "127.0.0.1", "--server.port", str(self.port),
               "--chain.chainId", str(self.chain_id), "--hardfork", "shanghai", "--wallet.mnemonic", MNEMONIC,
               "--wallet.totalAccounts", str(ACCOUNT_COUNT), "--wallet.defaultBalance", str(DEV_BALANCE_ETH),
               "--miner.blockGasLimit", "30000000", "--logging.quiet"]
        if self.db_path is not None:
            cmd += ["--database.dbPath", str(self.db_path)]
        return cmd


class AnvilNode(LocalNode):
    """Anvil (chain id 31337 unless told); its state lives in memory only."""

    name = "anvil"
    default_chain_id = 31337

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def command(self) -> list[str]:
        if self.db_path is not None:
            raise ValueError("AnvilNode keeps no state on disk: db_path is for GanacheNode")
        return [node_executable("anvil"), "--host", "127.0.0.1", "--hardfork", "shanghai", "--mnemonic", MNEMONIC,
                "--accounts", str(ACCOUNT_COUNT), "--balance", str(DEV_BALANCE_ETH), "--port", str(self.port),
                "--chain-id", str(self.chain_id), "--silent"]
