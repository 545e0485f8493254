"""FHIR benchmarks: what validation costs, and validated ingest against the unvalidated pipeline.

Functions the bench suite calls (each returns a frozen dataclass; nothing here is a test):

* `validation_cost` - CPU milliseconds per synthetic 15 KB Bundle for parsing, validating (every
  check of medledger.fhir.validation, version auto-detected) and canonicalizing;
* `ingest_rates` - `pipeline.prepare_batch` on the same records, as exported JSON text, with and
  without validation, alternating on one warm process pool; the ratio the issue asks for (>= 0.5)
  and the unvalidated pipeline's share of its own idle ceiling (>= 0.85);
* `put_batch_rates` - the real `medledger record put-batch` (start to anchored) with and without
  ``--no-validate`` on the same folder, against a deployment the caller prepared.

``python -m benchmarks.fhir`` runs the first two and prints their figures.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medledger import fhir
from medledger.config import PROJECT_ROOT
from medledger.pipeline import RecordJob, prepare_batch
from medledger.scopes import DataClass
from medledger.testing import synthetic
from medledger.vault import LocalVault

from .measure import cpu_seconds, random_party

Log = Callable[[str], None]


@dataclass(frozen=True)
class ValidationCost:
    """CPU milliseconds per document (best of ``repeat``), on one core."""

    documents: int
    version: str
    parse_ms: float
    validate_ms: float  # parse + every check (auto-detection included when version is auto)
    canonicalize_ms: float  # parse + RFC 8785 + hashes, no validation
    mean_bytes: int


def validation_cost(count: int = 300, *, version: str = "auto", fhir_versions: Sequence[str] = ("R5",),
                    repeat: int = 3) -> ValidationCost:
    """Times validation alone on synthetic Bundles exported as pretty JSON text (warm validators)."""
    patient, _ = random_party()
    texts = [json.dumps(synthetic.patient_bundle(i, patient, version=fhir_versions[i % len(fhir_versions)]),  # type: ignore[arg-type]
                        indent=2).encode() for i in range(count)]
    fhir.warm_up(texts[0], version)

    def best(fn: Callable[[bytes], Any]) -> float:
        times = []
        for _ in range(repeat):
            start = time.process_time()
            for text in texts:
                fn(text)
            times.append((time.process_time() - start) / count * 1e3)
        return min(times)

    return ValidationCost(count, version, best(json.loads), best(lambda t: fhir.validate(t, version)),
                          best(lambda t: fhir.canonical_document(t, validate=False)),
                          round(statistics.mean(len(t) for t in texts)))


@dataclass(frozen=True)
class IngestRun:
    validated: bool
    seconds: tuple[float, ...]
    cpu_per_record: tuple[float, ...]

    def best(self, records: int) -> float:
        return records / min(self.seconds)


@dataclass(frozen=True)
class IngestComparison:
    """Validated vs unvalidated `prepare_batch` on the same records and pool."""

    records: int
    workers: int
    version: str
    unvalidated: IngestRun
    validated: IngestRun

    @property
    def unvalidated_rate(self) -> float:
        return self.unvalidated.best(self.records)

    @property
    def validated_rate(self) -> float:
        return self.validated.best(self.records)

    @property
    def ratio(self) -> float:
        """Validated ingest as a share of the unvalidated pipeline (target >= 0.5)."""
        return self.validated_rate / self.unvalidated_rate

    @property
    def idle_ceiling(self) -> float:
        """What the unvalidated pipeline's CPU time per record allows on this machine's cores."""
        return (os.cpu_count() or 1) / min(self.unvalidated.cpu_per_record)

    @property
    def pipeline_efficiency(self) -> float:
        """The unvalidated pipeline's rate as a share of its idle ceiling (target >= 0.85)."""
        return self.unvalidated_rate / self.idle_ceiling

    def summary(self) -> dict[str, Any]:
        return {"records": self.records, "workers": self.workers, "fhir_version": self.version,
                "unvalidated_records_per_s": round(self.unvalidated_rate, 1),
                "validated_records_per_s": round(self.validated_rate, 1),
                "ratio": round(self.ratio, 3),
                "unvalidated_cpu_ms_per_record": round(min(self.unvalidated.cpu_per_record) * 1e3, 3),
                "validated_cpu_ms_per_record": round(min(self.validated.cpu_per_record) * 1e3, 3),
                "idle_ceiling_records_per_s": round(self.idle_ceiling, 1),
                "pipeline_efficiency": round(self.pipeline_efficiency, 3)}


def ingest_rates(records: int = 3000, *, workers: int = 2, distinct: int = 300, repeat: int = 3,
                 version: str = "auto", durable: bool = True, parent: Path | None = None,
                 log: Log = lambda _: None) -> IngestComparison:
    """`prepare_batch` with and without validation, alternating, on one pool forked after the validators
    were compiled (as `record put-batch` does). Fresh vaults per run under ``parent``; data generation
    is not timed."""
    (patient, patient_pub), (grantee, grantee_pub) = random_party(), random_party()
    recipients = {patient: patient_pub, grantee: grantee_pub}
    texts = [json.dumps(synthetic.patient_bundle(i, patient), indent=2).encode() for i in range(distinct)]
    jobs = [RecordJob(doc=texts[i % distinct], patient=patient, recipients=recipients, data_class=4)
            for i in range(records)]
    fhir.warm_up(texts[0], version)
    runs: dict[bool, tuple[list[float], list[float]]] = {False: ([], []), True: ([], [])}
    roots: list[Path] = []
    log(f"{records} records ({distinct} distinct Bundles, JSON text), workers {workers}, cpus {os.cpu_count()}, "
        f"load {os.getloadavg()[0]:.2f}")
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(abs, range(workers * 4)))
            pids = list(pool._processes)  # noqa: SLF001 - benchmark bookkeeping only
            for _ in range(repeat):
                for validate in (False, True):
                    roots.append(Path(tempfile.mkdtemp(prefix="medledger-bench-fhir-", dir=parent)))
                    vault = LocalVault(roots[-1], durable=durable)
                    cpu0, start = cpu_seconds(pids), time.perf_counter()
                    prepare_batch(jobs, vault, workers=workers, executor=pool, validate=validate,
                                  fhir_version=version)  # type: ignore[arg-type]
                    elapsed, cpu = time.perf_counter() - start, cpu_seconds(pids) - cpu0
                    runs[validate][0].append(elapsed)
                    runs[validate][1].append(cpu / records)
                    log(f"  {'validated  ' if validate else 'unvalidated'} {records / elapsed:8,.0f} records/s, "
                        f"{cpu / records * 1e3:.3f} ms CPU/record")
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    return IngestComparison(records, workers, version,
                            IngestRun(False, tuple(runs[False][0]), tuple(runs[False][1])),
                            IngestRun(True, tuple(runs[True][0]), tuple(runs[True][1])))


@dataclass(frozen=True)
class PutBatchRates:
    """`medledger record put-batch`, process start to anchored, with and without validation."""

    records: int
    unvalidated_seconds: float
    validated_seconds: float

    @property
    def ratio(self) -> float:
        """Validated ingest rate as a share of the unvalidated one (target >= 0.5)."""
        return self.unvalidated_seconds / self.validated_seconds

    def summary(self) -> dict[str, Any]:
        return {"records": self.records,
                "unvalidated_records_per_s": round(self.records / self.unvalidated_seconds, 1),
                "validated_records_per_s": round(self.records / self.validated_seconds, 1),
                "ratio": round(self.ratio, 3)}


def put_batch_rates(suite: Any, workdir: Path, count: int = 1000, workers: int = 2) -> PutBatchRates:
    """The real CLI entry point (`record put-batch`, as the suite's `end_to_end` runs it) on two folders
    of the same kind of Bundles, without and with validation, against ``suite`` (a deployed bench Suite)."""
    from medledger.testing import ACTORS, dev_private_key, dev_public_key, medledger_exe

    from .suite import address, prepare_anchoring, signer

    prepare_anchoring(suite)
    patient = address("patient")
    if not suite.care.encryption_key(patient):
        suite.care.publish_encryption_key(signer("patient"), dev_public_key(ACTORS["patient"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
    env.update({"MEDLEDGER_HOME": str(workdir / "home"), "MEDLEDGER_VAULT": str(workdir / "vault"),
                "MEDLEDGER_KEYSTORE_DIR": str(workdir / "home" / "keystore"),
                "MEDLEDGER_DEPLOYMENTS": str(suite.deployments),
                "MEDLEDGER_BENCH_PROVIDER_KEY": dev_private_key(ACTORS["provider"])})
    seconds = {}
    for validate in (False, True):
        docs = workdir / f"bundles-{'validated' if validate else 'unvalidated'}"
        docs.mkdir(parents=True)
        for i in range(count):
            offset = 30_000 if validate else 20_000  # fresh documents, the same generator
            (docs / f"bundle-{i:05d}.json").write_text(  # the visit's labs: one class, as --class labs says
                json.dumps(synthetic.class_bundle(offset + i, patient, DataClass.LABS), indent=2))
        cmd = [medledger_exe(), "--rpc", suite.settings.rpc_url, "--account", "env:MEDLEDGER_BENCH_PROVIDER_KEY",
               "--json", "record", "put-batch", str(docs), "--patient", patient, "--class", "labs",
               "--workers", str(workers), *([] if validate else ["--no-validate"])]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=PROJECT_ROOT)
        seconds[validate] = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"put-batch failed: {proc.stderr.strip()}")
        if json.loads(proc.stdout)["count"] != count:
            raise AssertionError("put-batch anchored a different number of records")
    return PutBatchRates(count, seconds[False], seconds[True])


def main() -> None:  # pragma: no cover - a manual entry point
    cost = validation_cost()
    print(f"validation: parse {cost.parse_ms:.3f} ms, parse+validate {cost.validate_ms:.3f} ms, "
          f"parse+canonicalize {cost.canonicalize_ms:.3f} ms CPU per {cost.mean_bytes} B Bundle")
    comparison = ingest_rates(log=print)
    print(json.dumps(comparison.summary(), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
