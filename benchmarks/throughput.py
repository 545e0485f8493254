"""Throughput: anchoring (one per transaction, and Merkle batches), the off-chain pipeline alone, and
`medledger record put-batch` end to end as a subprocess (reports/bench.json)."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak

from medledger import fhir
from medledger.config import PROJECT_ROOT
from medledger.merkle import RecordLeaf, StandardMerkleTree
from medledger.pipeline import RecordJob, prepare_batch
from medledger.record_ids import new_record_id
from medledger.scopes import DataClass
from medledger.testing import (
    ACTORS,
    cli_env,
    dev_private_key,
    dev_public_key,
    die_with_parent,
    medledger_exe,
    stop_group,
    synthetic,
)
from medledger.vault import LocalVault

from .measure import cpu_seconds, random_party
from .suite import Log, Suite, address, prepare_anchoring, signer

# ------------------------------------------------------------------ anchoring throughput


@dataclass(frozen=True)
class Rate:
    """`count` items in `seconds` of wall time."""

    count: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def single_anchor_rate(suite: Suite, count: int = 100) -> Rate:
    """One `anchor` per transaction through the SDK, each waiting for its receipt."""
    provider, patient = signer("provider"), address("patient")
    jobs = [(new_record_id(patient), os.urandom(32)) for _ in range(count)]
    start = time.perf_counter()
    for rid, digest in jobs:
        suite.records.anchor(provider, rid, patient, digest, DataClass.LABS)
    return Rate(count, time.perf_counter() - start)


@dataclass(frozen=True)
class BatchRate:
    """Records anchored by `batches` Merkle batches of `size`: leaves + tree + anchorBatch tx each."""

    batches: int
    size: int
    seconds: float
    tree_seconds: float
    gas: tuple[int, ...]

    @property
    def rate(self) -> Rate:
        return Rate(self.batches * self.size, self.seconds)


def batch_anchor_rate(suite: Suite, batches: int = 5, size: int = 10_000) -> BatchRate:
    """Records/s anchored by Merkle batches from ready (record id, content hash) pairs: building the
    leaves and the tree, and the anchorBatch transaction up to its receipt, are timed."""
    provider, patient = signer("provider"), address("patient")
    ready = [[(new_record_id(patient), os.urandom(32)) for _ in range(size)] for _ in range(batches)]
    gas, tree_seconds = [], 0.0
    start = time.perf_counter()
    for hashes in ready:
        t0 = time.perf_counter()
        tree = StandardMerkleTree.of_records(RecordLeaf(rid, digest, patient, 1, int(DataClass.LABS),
                                                        provider.address) for rid, digest in hashes)
        tree_seconds += time.perf_counter() - t0
        gas.append(suite.records.anchor_batch(provider, tree.root, size, keccak(tree.root)).gas_used)
    return BatchRate(batches, size, time.perf_counter() - start, tree_seconds, tuple(gas))


# ------------------------------------------------------------------ off-chain pipeline


@dataclass(frozen=True)
class PipelineRun:
    """The off-chain pipeline (canonicalize, seal for 2 recipients, vault write, hash), validation off."""

    records: int
    workers: int
    durable: bool
    input: str
    canonical_bytes: tuple[int, int, int]  # min, max, mean
    seconds: tuple[float, ...]
    cpu_per_record: tuple[float, ...]
    directory: str

    @property
    def rates(self) -> list[float]:
        return [self.records / s for s in self.seconds]

    @property
    def best(self) -> float:
        return max(self.rates)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def idle_ceiling(self) -> float:
        """What the CPU time per record allows on this many idle cores."""
        return (os.cpu_count() or 1) / min(self.cpu_per_record)


def pipeline_throughput(records: int = 10_000, *, workers: int = 2, distinct: int = 500, durable: bool = True,
                        dicts: bool = False, repeat: int = 3, parent: Path | None = None,
                        log: Log = lambda _: None) -> PipelineRun:
    """Times `prepare_batch` on synthetic FHIR R5 Bundles (5-20 KB canonical), handed over as JSON text
    as exported by an EHR (or as parsed dicts), sealed for the patient and one grantee, into a fresh
    vault under `parent` per repeat (fsync group commits unless `durable=False`). Generating the data
    is not timed. Vaults are deleted at the end (deleting between repeats would slow the next one's
    file creation on ext4)."""
    (patient, patient_pub), (grantee, grantee_pub) = random_party(), random_party()
    recipients = {patient: patient_pub, grantee: grantee_pub}
    bundles = [synthetic.patient_bundle(i, patient) for i in range(distinct)]
    texts = [json.dumps(b, indent=2).encode() for b in bundles]  # as exported: pretty, keys unordered
    sizes = [len(fhir.canonicalize(b)) for b in bundles]
    docs: Sequence[Any] = bundles if dicts else texts
    jobs = [RecordJob(doc=docs[i % len(docs)], patient=patient, recipients=recipients, data_class=4)
            for i in range(records)]
    log(f"{records} records; canonical size {min(sizes)}-{max(sizes)} B, mean {statistics.mean(sizes):.0f} B; "
        f"input {'dicts' if dicts else 'JSON text'}; 2 recipients; fsync {'on' if durable else 'off'}; "
        f"workers {workers}; cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")
    seconds, cpu_per_record, roots = [], [], []
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(abs, range(workers * 4)))  # fork and warm the workers outside the timing
            pids = list(pool._processes)  # noqa: SLF001 - benchmark bookkeeping only
            for _ in range(repeat):
                roots.append(Path(tempfile.mkdtemp(prefix="medledger-bench-vault-", dir=parent)))
                vault = LocalVault(roots[-1], durable=durable)
                cpu0, start = cpu_seconds(pids), time.perf_counter()
                results = prepare_batch(jobs, vault, workers=workers, executor=pool)
                elapsed, cpu = time.perf_counter() - start, cpu_seconds(pids) - cpu0
                if not len({r.content_hash for r in results}) == records == len(list(vault)):
                    raise AssertionError("the pipeline lost or merged records")
                seconds.append(elapsed)
                cpu_per_record.append(cpu / records)
                log(f"  {elapsed:.2f} s wall -> {records / elapsed:,.0f} records/s; "
                    f"{cpu / records * 1e3:.3f} ms CPU/record (parent + workers, index included)")
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    run = PipelineRun(records, workers, durable, "dicts" if dicts else "JSON text",
                      (min(sizes), max(sizes), round(statistics.mean(sizes))), tuple(seconds),
                      tuple(cpu_per_record), str(parent or tempfile.gettempdir()))
    log(f"pipeline: best {run.best:,.0f} records/s wall, median {run.median:,.0f}; "
        f"CPU-bound ceiling on {os.cpu_count()} idle cores {run.idle_ceiling:,.0f} records/s")
    return run


def merkle_build_times(sizes: Sequence[int] = (1_000, 10_000), repeat: int = 7) -> dict[int, tuple[float, float]]:
    """Best and median seconds to build a record Merkle tree of each size from ready leaves."""
    patient, author = random_party()[0], random_party()[0]
    leaves = [RecordLeaf(new_record_id(patient), os.urandom(32), patient, 1 + i % 3, i % 11, author)
              for i in range(max(sizes))]
    out = {}
    for n in sizes:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            StandardMerkleTree.of_records(leaves[:n])
            times.append(time.perf_counter() - start)
        out[n] = (min(times), statistics.median(times))
    return out


# ------------------------------------------------------------------ end to end (the CLI)


@dataclass(frozen=True)
class EndToEnd:
    """`medledger record put-batch` on a folder of synthetic bundles, from process start to anchored."""

    records: int
    seconds: float
    cli_seconds: float  # what put-batch itself reports (after process start and imports)
    gas_used: int
    batch_id: str
    bundle_bytes: int

    @property
    def rate(self) -> Rate:
        return Rate(self.records, self.seconds)


def end_to_end(suite: Suite, workdir: Path, count: int = 1_000, workers: int = 2) -> EndToEnd:
    """Runs the real CLI entry point as a subprocess against the suite's chain (validation on)."""
    prepare_anchoring(suite)
    patient = address("patient")
    if not suite.care.encryption_key(patient):
        suite.care.publish_encryption_key(signer("patient"), dev_public_key(ACTORS["patient"]))
    docs = workdir / "bundles"
    docs.mkdir(parents=True)
    size = 0
    for i in range(count):
        # the labs of a synthetic visit: one class, as `--class labs` declares (a whole visit would be refused)
        text = json.dumps(synthetic.class_bundle(10_000 + i, patient, DataClass.LABS), indent=2)
        (docs / f"bundle-{i:05d}.json").write_text(text)
        size += len(text)
    env = cli_env(workdir / "home", MEDLEDGER_VAULT=str(workdir / "vault"),
                  MEDLEDGER_DEPLOYMENTS=str(suite.deployments),
                  MEDLEDGER_BENCH_PROVIDER_KEY=dev_private_key(ACTORS["provider"]))
    cmd = [medledger_exe(), "--rpc", suite.settings.rpc_url, "--account", "env:MEDLEDGER_BENCH_PROVIDER_KEY",
           "--json", "record", "put-batch", str(docs), "--patient", patient, "--class", "labs",
           "--workers", str(workers)]
    start = time.perf_counter()
    # Its own session, so that on a timeout the CLI and its sealing workers are stopped together.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=PROJECT_ROOT, start_new_session=True, preexec_fn=die_with_parent)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        stop_group(proc)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"medledger record put-batch failed ({proc.returncode}): {err.strip()}")
    done = json.loads(out)
    batch_id = int(done["batch_id"], 16)
    if done["count"] != count or suite.records.batch_of(batch_id).count != count:
        raise AssertionError(f"put-batch anchored {done['count']} records, expected {count}")
    return EndToEnd(count, seconds, float(done["seconds"]), int(done["gas_used"]), done["batch_id"], size // count)
