"""Off-chain pipeline throughput and Merkle build time (no chain needed).

    .venv/bin/python scripts/bench_offchain.py [--records 10000] [--workers 2] [--no-fsync]

Measures canonicalize + seal (AES-256-GCM, ECIES wrap to the patient and one grantee) + vault
write (atomic, group-committed with syncfs unless --no-fsync) + hashing, validation OFF, for
synthetic FHIR R5 Bundles handed over as JSON text (as they arrive from an EHR export).
Generating the synthetic data is not timed. Reports wall-clock records/s and the CPU seconds
spent per record (parent + workers), which is what the throughput would be on an idle box:
cores / cpu-per-record. Also times 1,000- and 10,000-leaf record Merkle trees.
The vault goes to a fresh temporary directory (``$TMPDIR`` or ``--dir``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medledger import crypto, fhir, synthetic  # noqa: E402
from medledger.merkle import RecordLeaf, StandardMerkleTree  # noqa: E402
from medledger.pipeline import RecordJob, prepare_batch  # noqa: E402
from medledger.vault import LocalVault  # noqa: E402


def _cpu_seconds(pids: list[int]) -> float:
    total = time.process_time()
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def _party() -> tuple[str, bytes]:
    public = crypto.public_key_of(os.urandom(32))
    return crypto.address_of_public_key(public), crypto.compress_public_key(public)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--distinct", type=int, default=500, help="distinct bundles to cycle through")
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--dicts", action="store_true", help="hand over parsed dicts, not JSON text")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="parent directory of the temporary vault")
    args = parser.parse_args(argv)

    (patient, patient_pub), (grantee, grantee_pub) = _party(), _party()
    recipients = {patient: patient_pub, grantee: grantee_pub}
    bundles = [synthetic.patient_bundle(i, patient) for i in range(args.distinct)]
    texts = [json.dumps(b, indent=2).encode() for b in bundles]  # as exported: pretty, keys unordered
    sizes = [len(fhir.canonicalize(b)) for b in bundles]
    docs = bundles if args.dicts else texts
    jobs = [RecordJob(doc=docs[i % len(docs)], patient=patient, recipients=recipients, data_class=4)
            for i in range(args.records)]
    print(f"{args.records} records; canonical size {min(sizes)}-{max(sizes)} B, "
          f"mean {statistics.mean(sizes):.0f} B; input {'dicts' if args.dicts else 'JSON text'}; "
          f"2 recipients; fsync {'off' if args.no_fsync else 'on'}; workers {args.workers}; "
          f"cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")

    rates, cpu_per_record = [], []
    roots: list[Path] = []
    try:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(abs, range(args.workers * 4)))  # fork and warm the workers outside the timing
            pids = list(pool._processes)  # noqa: SLF001 - benchmark bookkeeping only
            for _ in range(args.repeat):
                roots.append(Path(tempfile.mkdtemp(prefix="medledger-bench-", dir=args.dir)))
                vault = LocalVault(roots[-1], durable=not args.no_fsync)
                cpu0, start = _cpu_seconds(pids), time.perf_counter()
                results = prepare_batch(jobs, vault, workers=args.workers, executor=pool)
                elapsed, cpu = time.perf_counter() - start, _cpu_seconds(pids) - cpu0
                assert len({r.content_hash for r in results}) == args.records == len(list(vault))
                rates.append(args.records / elapsed)
                cpu_per_record.append(cpu / args.records)
                print(f"  {elapsed:.2f} s wall -> {rates[-1]:,.0f} records/s; "
                      f"{cpu_per_record[-1] * 1e3:.3f} ms CPU/record (parent + workers, index included)")
    finally:
        # Deleted only at the end: ext4 skips recently freed inodes when allocating, so deleting
        # 10,000 files between repeats would slow the next repeat's file creation.
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    best_cpu = min(cpu_per_record)
    print(f"pipeline: best {max(rates):,.0f} records/s wall, median {statistics.median(rates):,.0f}; "
          f"CPU-bound ceiling on {os.cpu_count()} idle cores {os.cpu_count() / best_cpu:,.0f} records/s")

    leaves = [RecordLeaf(os.urandom(32), os.urandom(32), patient, 1 + i % 3, i % 11, grantee)
              for i in range(10_000)]
    for n in (1_000, 10_000):
        times = []
        for _ in range(7):
            start = time.perf_counter()
            StandardMerkleTree.of_records(leaves[:n])
            times.append(time.perf_counter() - start)
        print(f"merkle {n:>6} leaves: best {min(times) * 1e3:.1f} ms, "
              f"median {statistics.median(times) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
