"""A real `medledger gateway serve` process on a free loopback port: the gateway tests, benchmarks and the
demo start their gateway with this one launcher.

    with GatewayProcess(rpc, deployments, data_dir, custodian_key, "--batch-seconds", "0.5") as gw:
        ...  # gw.url answers /healthz; gw.cli("gateway", "get", ..., "--gateway", gw.url)

The custodian's key reaches the child through an environment variable (`--account env:ML_KEY_CUSTODIAN`);
the child gets SIGTERM if the Python process that started it dies, so nothing outlives its starter.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

import httpx

from ..config import PROJECT_ROOT
from .cli import medledger_exe
from .nodes import die_with_parent
from .ports import free_port

#: The gateway key password the kit's gateways use (development only).
KEY_PASSWORD = "gateway-test-password"
#: The environment variable that carries the custodian's key to the child.
CUSTODIAN_KEY_ENV = "ML_KEY_CUSTODIAN"


class GatewayProcess:
    """One gateway server process of ours; `stop` is a SIGTERM (then SIGKILL), `kill` a SIGKILL, of exactly
    this process. `home` is the child's MEDLEDGER_HOME (default: beside `data`); its stderr goes to `log`
    (default `gateway-PORT.log` beside `data`)."""

    def __init__(self, rpc: str, deployments: Path, data: Path, custodian_key: str, *extra: str,
                 home: Path | None = None, log: Path | None = None, port: int | None = None) -> None:
        self.rpc, self.deployments, self.data, self.extra = rpc, deployments, data, extra
        self.port = port or free_port()
        self.log_path = log or data.parent / f"gateway-{self.port}.log"
        self.env = {**os.environ, "MEDLEDGER_RPC": rpc, "MEDLEDGER_DEPLOYMENTS": str(deployments),
                    CUSTODIAN_KEY_ENV: custodian_key, "MEDLEDGER_GATEWAY_KEY_PASSWORD": KEY_PASSWORD,
                    "MEDLEDGER_HOME": str(home or data.parent / "home")}
        self.process: subprocess.Popen | None = None
        self.log: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The argv the process runs (also what a user would type, with their own --account)."""
        return [medledger_exe(), "--account", f"env:{CUSTODIAN_KEY_ENV}", "gateway", "serve",
                "--port", str(self.port), "--data", str(self.data), *self.extra]

    def start(self, timeout: float = 60) -> GatewayProcess:
        self.data.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop/kill
        self.process = subprocess.Popen(self.command(), env=self.env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                                        stderr=self.log, text=True, preexec_fn=die_with_parent)
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
        raise RuntimeError(f"the gateway did not answer /healthz: {self.logged()}")

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=10).json()

    def wait_idle(self, timeout: float = 90) -> None:
        """Until the gateway has anchored its whole audit log on chain. The bound allows for a node that stalls
        one request (Ganache on a busy 2-core machine: a 30 s RPC read timeout, then the anchorer's retry)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health()["auditPending"] == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the gateway's audit log did not drain within {timeout} s")

    def stop(self, timeout: float = 60) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def logged(self) -> str:
        if self.log and not self.log.closed:
            self.log.flush()
        return self.log_path.read_text() if self.log_path.exists() else ""

    def _close(self) -> None:
        if self.log and not self.log.closed:
            self.log.close()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._close()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`medledger --account env:ML_KEY_CUSTODIAN ARGS` as the custodian, in the gateway's environment."""
        return subprocess.run([medledger_exe(), "--account", f"env:{CUSTODIAN_KEY_ENV}", *args], env=self.env,
                              cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
