"""A real `medledger gateway serve` process on a free loopback port, for the gateway tests and benchmarks."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct

from medledger.accounts import LocalSigner
from medledger.testing.accounts import dev_account
from medledger.testing.ports import free_port

from .nodes import ROOT, medledger_exe

KEY_PASSWORD = "gateway-test-password"


def signer(index: int) -> LocalSigner:
    return LocalSigner(dev_account(index))


class GatewayProcess:
    """One gateway server process of ours; `kill` is a SIGKILL of exactly this process."""

    def __init__(self, rpc: str, deployments: Path, data: Path, custodian_key: str, *extra: str) -> None:
        self.rpc, self.deployments, self.data, self.extra = rpc, deployments, data, extra
        self.port = free_port()
        self.env = {**os.environ, "MEDLEDGER_RPC": rpc, "MEDLEDGER_DEPLOYMENTS": str(deployments),
                    "ML_KEY_CUSTODIAN": custodian_key, "MEDLEDGER_GATEWAY_KEY_PASSWORD": KEY_PASSWORD,
                    "MEDLEDGER_HOME": str(data.parent / "home")}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> GatewayProcess:
        self.data.mkdir(parents=True, exist_ok=True)
        self.log = open(self.data.parent / f"gateway-{self.port}.log", "a")  # noqa: SIM115 - closed in stop/kill
        self.process = subprocess.Popen(
            [medledger_exe(), "--account", "env:ML_KEY_CUSTODIAN", "gateway", "serve", "--port", str(self.port),
             "--data", str(self.data), *self.extra],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited: {self.logged()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("the gateway did not answer /healthz")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def logged(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()

    def _close(self) -> None:
        if not self.log.closed:
            self.log.close()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._close()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([medledger_exe(), "--account", "env:ML_KEY_CUSTODIAN", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)


class ContractWalletSigner:
    """Signs for an ERC-1271 wallet whose owner EOA signs the raw EIP-191 digest (MockERC1271Wallet)."""

    def __init__(self, wallet: str, owner_key: bytes) -> None:
        self.address = wallet
        self.owner_key = owner_key

    def sign_message(self, _w3: object, message: bytes) -> bytes:
        digest = _hash_eip191_message(encode_defunct(primitive=message))
        return bytes(Account.unsafe_sign_hash(digest, self.owner_key).signature)
