"""Index benchmarks: plain functions returning numbers (the bench suite calls them; `python -m benchmarks.index`).

* :func:`ingest_vs_fetch`: events/s ingested into SQLite against the raw ``eth_getLogs`` fetch rate of
  the same range with the same chunking (target ratio >= 0.5): the headline in one 2,000-block chunk, and
  again in 20-block chunks (about 2,000 events each), where the indexer reads a chunk while it writes
  the one before, as it does in any catch-up longer than one chunk;
* :func:`audit_trail_index_vs_scan`: a patient with N events (default 10,000), the index query against
  today's chain scan (:mod:`medledger.audit`), target >= 100x, p95 < 20 ms on SQLite;
* :func:`claim_queue_latency`: an insurer's queue with 10,000 open claims (synthetic ClaimSubmitted
  events through the real projection), p95 < 20 ms.

Each starts what it needs (an Anvil node on a free port, a temp SQLite file) and stops it.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address

from medledger import audit
from medledger.accounts import load_signer
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.contracts import CareRegistry, ConsentRegistry
from medledger.deploy import deploy_suite
from medledger.deployments import SUITE, require
from medledger.index import open_index, queries
from medledger.index.abi import Decoder
from medledger.index.follower import Follower
from medledger.index.projections import project
from medledger.index.rpc import AdaptiveRange, RpcReader, get_logs_adaptive
from medledger.scopes import Role
from medledger.testing.nodes import AnvilNode


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def _timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


class ConsentChain:
    """Anvil with the suite deployed and `events` ConsentGranted events of one patient, `per_block` per block."""

    def __init__(self, events: int, per_block: int = 100) -> None:
        self.node = AnvilNode(extra=("--no-mining",)).start()
        self.home = Path(tempfile.mkdtemp(prefix="medledger-bench-index-"))
        try:
            self._setup(events, per_block)
        except BaseException:
            self.node.stop()
            raise

    def _setup(self, events: int, per_block: int) -> None:
        node = self.node
        node.rpc("evm_setAutomine", True)
        settings = load_settings(rpc=node.url, deployments_path=self.home / "deployments.json",
                                 keystore_dir=self.home / "keystore")
        self.chain = Chain(settings)
        admin = load_signer("node:0", self.home, self.home, w3=self.chain.w3)
        deploy_suite(self.chain, admin)
        deployment = require(settings.deployments_path, self.chain.chain_id)
        self.addresses = {name: deployment.address(name) for name in SUITE}
        self.start_block = min(c.block for c in deployment.contracts.values())
        care = CareRegistry(self.chain, self.addresses["CareRegistry"])
        self.provider = to_checksum_address(self.chain.w3.eth.accounts[2])
        self.patient = to_checksum_address(self.chain.w3.eth.accounts[6])
        care.register(admin, self.provider, Role.PROVIDER, os.urandom(32))
        consent = ConsentRegistry(self.chain, self.addresses["ConsentRegistry"])
        node.rpc("evm_setAutomine", False)
        for i in range(events):
            doc = keccak(i.to_bytes(32, "big"))
            call = consent.fn.grant(self.patient, self.provider, 0b101, 0b11111111111, 0, 0, doc)
            data = call._encode_transaction_data()
            node.rpc("eth_sendTransaction", {"from": self.patient, "to": consent.address, "data": data,
                                             "gas": hex(200_000)})
            if (i + 1) % per_block == 0:
                node.mine()
        node.mine()
        node.rpc("evm_setAutomine", True)
        self.head = node.block_number()

    def stop(self) -> None:
        self.node.stop()


def ingest_vs_fetch(chain: ConsentChain, chunk: int = 2_000, runs: int = 3) -> dict[str, float]:
    """Ingest rate into SQLite vs the raw eth_getLogs rate over the same range (best of `runs` each)."""
    addresses = list(chain.addresses.values())
    reader = RpcReader(chain.node.url)
    fetch_times, count = [], 0
    for _ in range(runs):
        window = AdaptiveRange(initial=chunk, maximum=chunk)
        started, start, count = time.perf_counter(), chain.start_block, 0
        while start <= chain.head:
            end, logs = get_logs_adaptive(reader, addresses, start, chain.head, window)
            count += len(logs)
            start = end + 1
        fetch_times.append(time.perf_counter() - started)
    ingest_times, events = [], 0
    for run in range(runs):
        path = chain.home / f"ingest-{run}.sqlite"
        with open_index(f"sqlite:///{path}") as db:
            follower = Follower(db, RpcReader(chain.node.url), Decoder.for_chain(chain.chain, chain.addresses),
                                chain.addresses, chain_id=chain.chain.chain_id, start_block=chain.start_block,
                                chunk=chunk, max_chunk=chunk)
            started = time.perf_counter()
            events = follower.sync_once().events
            ingest_times.append(time.perf_counter() - started)
    fetch_rate, ingest_rate = count / min(fetch_times), events / min(ingest_times)
    return {"events": float(events), "fetch_events_per_s": fetch_rate, "ingest_events_per_s": ingest_rate,
            "ratio": ingest_rate / fetch_rate}


def audit_trail_index_vs_scan(chain: ConsentChain, runs: int = 50, scan_runs: int = 3) -> dict[str, float]:
    """The patient's trail from the index (p50/p95 over `runs`) against the chain scan (median of `scan_runs`)."""
    path = chain.home / "audit.sqlite"
    with open_index(f"sqlite:///{path}") as db:
        Follower(db, RpcReader(chain.node.url), Decoder.for_chain(chain.chain, chain.addresses), chain.addresses,
                 chain_id=chain.chain.chain_id, start_block=chain.start_block).sync_once()
        trail = queries.patient_trail(db, chain.chain.chain_id, chain.patient)
        index_times = _timed(lambda: queries.patient_trail(db, chain.chain.chain_id, chain.patient), runs)

    def scan() -> list[Any]:
        return audit.patient_trail(audit.fetch_events(chain.chain, chain.addresses, chain.start_block), chain.patient)

    scanned = scan()
    if len(scanned) != len(trail):
        raise AssertionError(f"index trail has {len(trail)} events, chain scan {len(scanned)}")
    scan_times = _timed(scan, scan_runs)
    index_p50 = statistics.median(index_times)
    return {"events": float(len(trail)), "index_p50_ms": index_p50 * 1e3, "index_p95_ms": p95(index_times) * 1e3,
            "scan_median_ms": statistics.median(scan_times) * 1e3,
            "speedup": statistics.median(scan_times) / index_p50}


def claim_queue_latency(open_claims: int = 10_000, runs: int = 200, db_url: str | None = None) -> dict[str, float]:
    """An insurer's work queue with `open_claims` open claims (synthetic events through the real projection)."""
    home = Path(tempfile.mkdtemp(prefix="medledger-bench-queue-"))
    insurer, chain_id = to_checksum_address("0x" + "44" * 20), 31337
    with open_index(db_url or f"sqlite:///{home / 'queue.sqlite'}") as db:
        rows = []
        for i in range(open_claims):
            claim_id = "0x" + keccak(i.to_bytes(32, "big")).hex()
            args = {"claimId": claim_id, "insurer": insurer, "patient": to_checksum_address(f"0x{i + 1:040x}"),
                    "provider": to_checksum_address("0x" + "22" * 20), "controlNumber": claim_id, "billed": 1000 + i,
                    "serviceCode": 100, "revision": 0, "deadline": 2_000_000_000 - i, "claimHash": claim_id}
            rows.append({"chain_id": chain_id, "block_number": 1 + i // 100, "log_index": i % 100,
                         "tx_hash": claim_id, "event": "ClaimSubmitted", "args": args, "subject": claim_id})
        with db.engine.begin() as conn:
            project(conn, chain_id, rows)
        queue = queries.claim_queue(db, chain_id, insurer=insurer)
        if queue.counts.get("submitted") != open_claims:
            raise AssertionError(f"expected {open_claims} open claims, the queue counts {queue.counts}")
        times = _timed(lambda: queries.claim_queue(db, chain_id, insurer=insurer), runs)
    return {"open_claims": float(open_claims), "p50_ms": statistics.median(times) * 1e3, "p95_ms": p95(times) * 1e3}


def run(events: int = 10_000) -> dict[str, dict[str, float]]:
    """All three, on one chain of `events` consent events of one patient."""
    chain = ConsentChain(events)
    try:
        return {"ingest": ingest_vs_fetch(chain), "ingest_20_block_chunks": ingest_vs_fetch(chain, chunk=20),
                "audit_trail": audit_trail_index_vs_scan(chain),
                "claim_queue": claim_queue_latency()}
    finally:
        chain.stop()


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000), indent=2))
