"""Gateway benchmarks (issue 17): consented reads per second against bare static serving of the same blob,
p50/p99 latency, and gas per logged read in Merkle batches of 1,000 against a single `logAccess`.

    .venv/bin/python -m benchmarks.gateway            # starts its own Anvil on a free port
    .venv/bin/python -m benchmarks.gateway --rpc URL  # or uses a running dev chain
    .venv/bin/python -m benchmarks.gateway --reads-only --profile prof.txt  # consented vs bare only,
                                          # with a py-spy profile of the gateway under load (if installed)

`gateway_bench()` is the function the bench suite calls; it returns the figures as a dict.

Each consented read is the full path: bearer-session lookup, live consent check (head polled every
second, freshness 0 blocks), open the envelope with the gateway key, minimum-necessary filtering,
a durable AuditEvent commit (SQLite WAL, synchronous=FULL), response. The bare server is uvicorn +
Starlette returning the same sealed blob's bytes from disk. Both are loaded by the same client
(``concurrency`` threads, keep-alive) on loopback, so the ratio is measured in one run on one machine.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from eth_utils import keccak

from medledger import crypto
from medledger.accounts import LocalSigner
from medledger.chain import Chain
from medledger.config import PROJECT_ROOT, load_settings
from medledger.contracts import CareRegistry, ConsentRegistry, RecordRegistry
from medledger.deploy import deploy_suite
from medledger.gateway.auditlog import LEAF_TYPES
from medledger.gateway.client import GatewayClient
from medledger.merkle import StandardMerkleTree
from medledger.scopes import DataClass, Purpose, Role
from medledger.testing.accounts import dev_account
from medledger.testing.gateway import GatewayProcess
from medledger.testing.nodes import AnvilNode
from medledger.testing.ports import free_port, wait_for_port
from medledger.testing.synthetic import patient_bundle

Log = Callable[[str], None]
ACTORS = {"gov": 0, "clinic": 12, "doc": 13, "er": 15, "alice": 16}
BARE_APP = """
import sys
from pathlib import Path
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
import uvicorn
blob = Path(sys.argv[1])
async def serve(request):
    return Response(blob.read_bytes(), media_type="application/octet-stream")
uvicorn.run(Starlette(routes=[Route("/blob", serve)]), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning", access_log=False)
"""


def _signer(name: str) -> LocalSigner:
    return LocalSigner(dev_account(ACTORS[name]))


@contextlib.contextmanager
def _process(cmd: list[str], port: int, env: dict[str, str] | None = None, log_path: Path | None = None
             ) -> Iterator[subprocess.Popen]:
    out = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=out)
    try:
        if not wait_for_port(port, timeout=90):
            raise RuntimeError(f"{cmd[0]} did not listen on port {port}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log_path:
            out.close()


def _run_workers(worker: Callable[[int], None], concurrency: int) -> float:
    """Runs ``worker(0)`` ... ``worker(concurrency - 1)`` on as many threads; the seconds until all returned."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started


def _load(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> dict[str, float]:
    """``concurrency`` keep-alive clients GETting ``url`` for ``seconds``: reads/s and latency percentiles."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = http.get(url, headers=headers)
                if r.status_code == 200:
                    latencies[i].append(time.perf_counter() - t0)
                else:
                    errors[i] += 1

    elapsed = _run_workers(worker, concurrency)
    all_ms = sorted(x * 1000 for lat in latencies for x in lat)
    if not all_ms:
        raise RuntimeError(f"no successful read of {url} ({sum(errors)} errors)")
    return {"reads": len(all_ms), "errors": sum(errors), "seconds": round(elapsed, 2),
            "reads_per_s": round(len(all_ms) / elapsed, 1), "p50_ms": round(statistics.median(all_ms), 2),
            "p99_ms": round(all_ms[min(len(all_ms) - 1, int(len(all_ms) * 0.99))], 2)}


def _mixed(base: str, record_id: str, tokens: dict[str, str], patient: str, seconds: float, concurrency: int
           ) -> dict[str, Any]:
    """A bounded mixed load: 7 in 10 consented reads (200), 2 refused reads by a party with no relationship
    (the empty 404), 1 write (a new record, 201). Anything else counts as an error."""
    expected = {"read": 200, "refused": 404, "write": 201}
    latencies: dict[str, list[float]] = {k: [] for k in expected}
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(w: int) -> None:
        i = w
        with httpx.Client(base_url=base, timeout=60) as http:
            while time.monotonic() < stop:
                i += concurrency
                kind = "write" if i % 10 == 0 else "refused" if i % 10 in (1, 2) else "read"
                t0 = time.perf_counter()
                if kind == "write":
                    body = json.dumps(patient_bundle(10_000 + i, patient)).encode()
                    r = http.post(f"/fhir/Bundle?patient={patient}", content=body,
                                  headers={"Authorization": f"Bearer {tokens['clinic']}"})
                else:
                    who = "doc" if kind == "read" else "er"
                    r = http.get(f"/fhir/Bundle/{record_id}", headers={"Authorization": f"Bearer {tokens[who]}"})
                with lock:
                    if r.status_code == expected[kind]:
                        latencies[kind].append((time.perf_counter() - t0) * 1000)
                    else:
                        errors.append(f"{kind}: {r.status_code}")

    elapsed = _run_workers(worker, concurrency)
    every = sorted(x for lat in latencies.values() for x in lat)
    return {"requests": len(every) + len(errors), "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
            "per_s": round(len(every) / elapsed, 1),
            "p99_ms": round(every[int(len(every) * 0.99)], 2) if every else None,
            **{f"{k}s": len(v) for k, v in latencies.items()},
            **{f"{k}_p99_ms": round(sorted(v)[int(len(v) * 0.99)], 2) for k, v in latencies.items() if v}}


@contextlib.contextmanager
def _profiled(pid: int, out: Path | None, seconds: float, log: Log) -> Iterator[None]:
    """py-spy (when installed) sampling process ``pid`` for ``seconds``; collapsed stacks into ``out``."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if out is None or spy is None:
        if out is not None:
            log("gateway: py-spy is not installed (pip install py-spy); no profile")
        yield
        return
    # two views: every thread, idle included (wall time: waits on fsync, RPC, locks), and the GIL holder (CPU)
    procs = [subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                               "--threads", "--format", "raw", "--output", str(path), "--nonblocking", *gil],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for path, gil in ((out, ["--idle"]), (out.with_suffix(".gil" + out.suffix), ["--gil"]))]
    try:
        yield
    finally:
        for proc in procs:
            proc.wait(timeout=seconds + 60)
        log(f"gateway: py-spy profiles in {out} and {out.with_suffix('.gil' + out.suffix)} (GIL holder only)")


def gateway_bench(rpc_url: str | None = None, *, seconds: float = 8.0, concurrency: int = 8, batch: int = 1000,
                  log: Log = lambda _: None, reads_only: bool = False, profile: Path | None = None
                  ) -> dict[str, Any]:
    """The gateway figures (see the module docstring); starts its own Anvil when ``rpc_url`` is None.
    ``reads_only`` measures only consented against bare reads (no mixed load, no gas); ``profile`` writes a
    py-spy profile of the gateway process during the consented reads there."""
    if rpc_url is None:
        with AnvilNode() as node:
            return gateway_bench(node.url, seconds=seconds, concurrency=concurrency, batch=batch, log=log,
                                 reads_only=reads_only, profile=profile)
    with tempfile.TemporaryDirectory(prefix="medledger-gateway-bench-") as tmp:
        work = Path(tmp)
        settings = load_settings(rpc=rpc_url, deployments_path=work / "deployments.json")
        chain = Chain(settings)
        steps = {s.name: s.address for s in deploy_suite(chain, _signer("gov"))}
        care = CareRegistry(chain, steps["CareRegistry"])
        consent = ConsentRegistry(chain, steps["ConsentRegistry"])
        records = RecordRegistry(chain, steps["RecordRegistry"])
        gov, clinic, doc, alice = (_signer(n) for n in ("gov", "clinic", "doc", "alice"))
        er = _signer("er")
        for who in (clinic, doc, er):
            care.register(gov, who.address, Role.PROVIDER, keccak(text=f"bench:{who.address}"))
        care.publish_encryption_key(alice, crypto.compress_public_key(crypto.public_key_of(alice.private_key)))
        every = sum(1 << int(c) for c in DataClass if c not in (DataClass.GENOMICS, DataClass.MENTAL_HEALTH,
                                                                DataClass.SUBSTANCE_USE))
        consent.grant(alice, alice.address, clinic.address, 1 << Purpose.TREAT, every)
        consent.grant(alice, alice.address, doc.address, 1 << Purpose.TREAT, every)

        figures: dict[str, Any] = {"concurrency": concurrency, "seconds": seconds}
        gateway = GatewayProcess(rpc_url, work / "deployments.json", work / "gw", "0x" + clinic.private_key.hex(),
                                 "--batch-size", str(batch), "--batch-seconds", "5", home=work / "home",
                                 log=work / "gateway.log")
        with gateway:
            base = gateway.url
            custodian = GatewayClient(base, clinic, chain.chain_id)
            custodian.login()
            created = custodian.put_record(patient_bundle(1, alice.address), alice.address)
            reader = GatewayClient(base, doc, chain.chain_id)
            reader.login()
            headers = {"Authorization": f"Bearer {reader.token}"}
            url = f"{base}/fhir/Bundle/{created['id']}"
            _load(url, headers, 1.0, concurrency)  # warm-up: caches, connections
            log(f"gateway: consented reads for {seconds:g} s with {concurrency} clients")
            with _profiled(gateway.process.pid, profile, seconds, log):
                figures["consented"] = _cpu_per_read(gateway.process.pid, _load, url, headers, seconds, concurrency)
            blob = work / "gw" / "vault" / "blobs" / created["contentHash"][2:4] / created["contentHash"][2:]
            figures["blob_bytes"] = blob.stat().st_size
            if reads_only:
                return _with_bare(figures, blob, seconds, concurrency, log)
            stranger = GatewayClient(base, er, chain.chain_id)
            stranger.login()
            log(f"gateway: mixed load (reads, refused reads, writes) for {seconds:g} s")
            figures["mixed"] = _mixed(base, created["id"], {"doc": reader.token, "er": stranger.token,
                                                            "clinic": custodian.token}, alice.address, seconds,
                                      concurrency)
        _with_bare(figures, blob, seconds, concurrency, log)

        # gas: one logAccess vs one logAccessBatch of `batch` audit leaves
        single = records.log_access(doc, alice.address, bytes.fromhex(created["id"]), Purpose.TREAT)
        leaves = [(i + 1, doc.address, alice.address, bytes.fromhex(created["id"]), 1, 0, int(time.time()),
                   keccak(text=f"event {i}")) for i in range(batch)]
        tree = StandardMerkleTree.of(leaves, LEAF_TYPES)
        batched = records.log_access_batch(clinic, tree.root, batch)
        figures["gas"] = {"log_access": single.gas_used, "log_access_batch": batched.gas_used, "batch": batch,
                          "per_read_batched": round(batched.gas_used / batch, 1)}
        return figures


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` and its threads so far (Linux), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_per_read(pid: int, load: Callable[..., dict[str, float]], *args: Any) -> dict[str, float]:
    """``load(*args)`` plus the server's CPU milliseconds per successful read: unlike reads/s, it hardly moves
    with what else runs on a shared machine."""
    before = _cpu_seconds(pid)
    figures = load(*args)
    after = _cpu_seconds(pid)
    if before is not None and after is not None and figures["reads"]:
        figures["cpu_ms_per_read"] = round((after - before) * 1000 / figures["reads"], 3)
    return figures


def _with_bare(figures: dict[str, Any], blob: Path, seconds: float, concurrency: int, log: Log) -> dict[str, Any]:
    """Adds the bare static serving of ``blob`` and the consented/bare ratio to ``figures``."""
    bare_port = free_port()
    with _process([sys.executable, "-c", BARE_APP, str(blob), str(bare_port)], bare_port) as bare:
        bare_url = f"http://127.0.0.1:{bare_port}/blob"
        _load(bare_url, {}, 1.0, concurrency)
        log(f"gateway: bare static reads for {seconds:g} s")
        figures["bare"] = _cpu_per_read(bare.pid, _load, bare_url, {}, seconds, concurrency)
    figures["ratio"] = round(figures["consented"]["reads_per_s"] / figures["bare"]["reads_per_s"], 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc", help="a running dev chain (default: start an Anvil here)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--reads-only", action="store_true", help="consented and bare reads only (no mixed, no gas)")
    parser.add_argument("--profile", type=Path, help="write a py-spy profile (collapsed stacks) of the gateway here")
    args = parser.parse_args()
    figures = gateway_bench(args.rpc, seconds=args.seconds, concurrency=args.concurrency,
                            log=lambda m: print(m, file=sys.stderr), reads_only=args.reads_only,
                            profile=args.profile)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
