"""Off-chain pipeline throughput and Merkle build time (no chain needed).

    .venv/bin/python scripts/bench_offchain.py [--records 10000] [--workers 2] [--no-fsync]

Measures canonicalize + seal (AES-256-GCM, ECIES wrap to the patient and one grantee) + vault
write (atomic, group-committed with syncfs unless --no-fsync) + hashing, validation OFF, for
synthetic FHIR R5 Bundles handed over as JSON text (as they arrive from an EHR export).
Generating the synthetic data is not timed. Reports wall-clock records/s and the CPU seconds
spent per record (parent + workers), which is what the throughput would be on an idle box:
cores / cpu-per-record. Also times 1,000- and 10,000-leaf record Merkle trees.
The vault goes to a fresh temporary directory (``$TMPDIR`` or ``--dir``).

The measurement itself is `benchmarks.throughput.pipeline_throughput` (shared with `make bench`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.throughput import merkle_build_times, pipeline_throughput  # noqa: E402


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

    pipeline_throughput(args.records, workers=args.workers, distinct=args.distinct, durable=not args.no_fsync,
                        dicts=args.dicts, repeat=args.repeat, parent=Path(args.dir) if args.dir else None, log=print)
    for n, (best, median) in merkle_build_times((1_000, 10_000)).items():
        print(f"merkle {n:>6} leaves: best {best * 1e3:.1f} ms, median {median * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
