"""An Anvil node of one's own: a free loopback port, the development mnemonic, auto-mining, with the
calls reorg tests and benchmarks need (snapshot, revert, mine)."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from .accounts import ACCOUNT_COUNT, DEV_BALANCE_ETH, MNEMONIC
from .ports import free_port, port_open

ROOT = Path(__file__).resolve().parents[2]


class AnvilNode:
    """`anvil` on a free loopback port, auto-mining, with the development mnemonic."""

    def __init__(self, chain_id: int = 31337, *extra: str) -> None:
        self.port = free_port()
        self.extra = extra
        self.chain_id = chain_id
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AnvilNode:
        exe = shutil.which("anvil") or str(ROOT / "node_modules" / ".bin" / "anvil")
        self.process = subprocess.Popen(
            [exe, "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(self.chain_id),
             "--mnemonic", MNEMONIC, "--accounts", str(ACCOUNT_COUNT), "--balance", str(DEV_BALANCE_ETH),
             "--hardfork", "shanghai", "--silent", *self.extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anvil did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def rpc(self, method: str, *params: Any) -> Any:
        body = requests.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                             timeout=30).json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def snapshot(self) -> str:
        return self.rpc("evm_snapshot")

    def revert(self, snapshot: str) -> None:
        assert self.rpc("evm_revert", snapshot) is True

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen | None, grace: float = 10.0) -> None:
    """Terminates a node the kit started (SIGTERM, then SIGKILL after `grace` seconds) and reaps it."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
