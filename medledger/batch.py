"""The crash-safe journal of `medledger record put-batch`.

One JSON file per batch folder (``DIR/.medledger-batch.json``), rewritten atomically (temp file,
fsync, rename, fsync of the directory) at each stage, so a crash at any instant leaves the last
completed stage on disk:

``planned``    the files (name + sha256), their patient, and a record id for each data class a file
               holds (a file of several classes is split, one record per class), drawn once: a resumed
               run reuses them.
``prepared``   every blob is in the vault, the batch manifest is written; the journal now holds
               each content hash, the Merkle root, the manifest hash and the batch id.
``submitted``  the anchorBatch transaction hash (journaled right after the node accepted it).
``anchored``   the block and transaction of the BatchAnchored event.

Resuming is driven by what is on chain, not by what the journal hopes: the batch id is
``keccak256(provider, root)``, so `batchOf(batchId)` says whether the batch is anchored whatever
happened to the process, and the contract refuses a second anchor of the same (provider, root).
A run is exclusive: a second process on the same folder is refused while the first holds the lock.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .errors import BatchJournalError
from .vault import atomic_write

JOURNAL_NAME = ".medledger-batch.json"
LOCK_NAME = ".medledger-batch.lock"
MANIFEST_NAME = "manifest.json"
JOURNAL_FORMAT = "medledger-batch-journal-v1"
STAGES = ("planned", "prepared", "submitted", "anchored")


@dataclass(frozen=True)
class BatchEntry:
    """One file of the batch and the record version it becomes."""

    file: str
    sha256: str
    patient: str
    data_class: int
    record_id: str
    content_hash: str | None = None
    split: bool = False  # the file holds several classes: this record is its `data_class` part


@dataclass(frozen=True)
class JournalState:
    """Everything a resumed run needs, as of the last completed stage."""

    stage: str
    chain_id: int
    registry: str
    provider: str
    fhir_version: str
    entries: tuple[BatchEntry, ...]
    root: str | None = None
    batch_id: str | None = None
    manifest_hash: str | None = None
    manifest: str | None = None
    tx: str | None = None
    block: int | None = None
    gas_used: int | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise BatchJournalError(f"unknown batch journal stage {self.stage!r}")

    def at(self, stage: str, **changes: object) -> JournalState:
        """This state advanced to `stage` with `changes`."""
        return replace(self, stage=stage, **changes)

    def reached(self, stage: str) -> bool:
        return STAGES.index(self.stage) >= STAGES.index(stage)

    def to_json(self) -> bytes:
        doc = {"format": JOURNAL_FORMAT, **asdict(self)}
        doc["entries"] = [asdict(e) for e in self.entries]
        return json.dumps(doc, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes, where: Path) -> JournalState:
        try:
            doc = json.loads(raw)
            if doc.pop("format", None) != JOURNAL_FORMAT:
                raise ValueError("unknown format")
            doc["entries"] = tuple(BatchEntry(**e) for e in doc["entries"])
            return cls(**doc)
        except (ValueError, TypeError, KeyError) as exc:
            raise BatchJournalError(f"batch journal {where} is unreadable ({exc}); move it away to start over") \
                from None


class BatchJournal:
    """The journal file of one batch folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / JOURNAL_NAME
        self._lock_path = self.directory / LOCK_NAME

    def load(self) -> JournalState | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return JournalState.from_json(raw, self.path)

    def save(self, state: JournalState) -> JournalState:
        atomic_write(self.path, state.to_json(), durable=True)
        return state

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[BatchJournal]:
        """Holds the folder's lock (released by the OS if the process dies)."""
        with open(self._lock_path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BatchJournalError(f"another `medledger record put-batch` is working on {self.directory}") \
                    from None
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def is_batch_file(path: Path) -> bool:
        """FHIR JSON files of a batch folder: *.json except the manifest and the journal."""
        return path.is_file() and path.suffix == ".json" and path.name != MANIFEST_NAME \
            and not path.name.startswith(".")
