"""Content-addressed blob storage for sealed record envelopes.

A blob's id is ``0x`` + the keccak256 hex of its bytes: the same value a record version anchors
on chain as its ``contentHash``. Anything that returns bytes re-hashes them first, so a changed
bit surfaces as `RecordTampered` naming the blob (and its record, when the index knows it) with
the expected and the found hash, never as silently wrong data.

`LocalVault` keeps blobs under ``<dir>/blobs/<aa>/<64 hex>`` (256 shards: with ext4's hashed
directories that stays fast into the millions of blobs, and the shard directories are created
once instead of one new directory per blob). Writes are atomic: the bytes
go to a temporary file in the destination directory (a name that is never a valid id), are
fsynced, and only then renamed over the final name with `os.replace`; a crash at any point
leaves either no blob or the whole blob under its id, plus at worst a stray ``.tmp`` file that
`LocalVault.clean_temp` removes.
"""
from __future__ import annotations

import abc
import contextlib
import fcntl
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from medledger.errors import RecordNotFound, RecordTampered, VaultError

ContentId = str
IdLike = str | bytes

_ID_RE = re.compile(r"[0-9a-f]{64}")
_TEMP_SUFFIX = ".tmp"
INDEX_FORMAT = "medledger.vault-index/v1"


def content_id(blob: bytes) -> ContentId:
    """The id of ``blob``: ``0x`` + keccak256 hex (lower case)."""
    return "0x" + keccak(blob).hex()


def normalize_id(value: IdLike) -> ContentId:
    """``0x``-prefixed lower-case hex of a 32-byte id given as bytes or hex (with or without 0x)."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 32:
            raise ValueError(f"id must be 32 bytes, got {len(value)}")
        return "0x" + bytes(value).hex()
    text = value.lower()
    if text.startswith("0x"):
        text = text[2:]
    if not _ID_RE.fullmatch(text):
        raise ValueError(f"not a 32-byte hex id: {value!r}")
    return "0x" + text


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or all of ``data``.

    Temp file in the same directory (same filesystem, so the rename is atomic), fsync of the
    file before the rename and, when ``durable``, of the directory after it.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


def _libc_syncfs() -> Any:
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
        fn.argtypes = [ctypes.c_int]
        return fn
    except (OSError, AttributeError):
        return None


_SYNCFS = _libc_syncfs()


def sync_filesystem(path: Path) -> bool:
    """Flush the whole filesystem holding ``path`` (Linux ``syncfs``); False if unsupported."""
    if _SYNCFS is None:
        return False
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if _SYNCFS(fd) != 0:
            import ctypes

            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


class Vault(abc.ABC):
    """Content-addressed blob store: ids are ``0x`` + keccak256 hex of the bytes."""

    @abc.abstractmethod
    def put(self, blob: bytes) -> ContentId:
        """Store ``blob`` (idempotent) and return its content id."""

    @abc.abstractmethod
    def get(self, cid: IdLike) -> bytes:
        """The blob with id ``cid``, re-hashed; RecordNotFound if absent, RecordTampered if altered."""

    @abc.abstractmethod
    def has(self, cid: IdLike) -> bool:
        """Whether a blob with id ``cid`` is stored (its integrity is checked by `get`)."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[ContentId]:
        """Every stored content id."""

    def __contains__(self, cid: object) -> bool:
        return isinstance(cid, (str, bytes)) and self.has(cid)


@dataclass(frozen=True)
class IndexEntry:
    """Where one record version lives in the vault."""

    record_id: str
    version: int
    content_id: ContentId


class RecordIndex:
    """A small JSON map record id -> version -> content id, rewritten atomically on each update.

    Updates are read-modify-write under an exclusive ``flock`` on a sibling lock file, so several
    processes may add entries; reads load the file once and cache it until the next update.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._records: dict[str, dict[int, ContentId]] | None = None
        self._reverse: dict[ContentId, tuple[str, int]] | None = None

    def _read(self) -> dict[str, dict[int, ContentId]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise VaultError(f"vault index {self.path} is unreadable: {exc}") from exc
        if raw.get("format") != INDEX_FORMAT:
            raise VaultError(f"vault index {self.path}: unknown format {raw.get('format')!r}")
        return {rid: {int(v): cid for v, cid in versions.items()} for rid, versions in raw["records"].items()}

    def _load(self) -> dict[str, dict[int, ContentId]]:
        if self._records is None:
            self._records = self._read()
            self._reverse = {cid: (rid, v) for rid, versions in self._records.items()
                             for v, cid in versions.items()}
        return self._records

    def add(self, record_id: IdLike, version: int, cid: IdLike) -> None:
        """Record that ``record_id`` version ``version`` is blob ``cid``."""
        self.add_many([IndexEntry(normalize_id(record_id), version, normalize_id(cid))])

    def add_many(self, entries: Iterable[IndexEntry]) -> None:
        """Add several entries with one locked rewrite of the index file."""
        entries = list(entries)
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                records = self._read()
                for e in entries:
                    rid, cid = normalize_id(e.record_id), normalize_id(e.content_id)
                    existing = records.setdefault(rid, {}).get(e.version)
                    if existing is not None and existing != cid:
                        raise VaultError(
                            f"record {rid} v{e.version} is already indexed as {existing}, not {cid}")
                    records[rid][e.version] = cid
                doc = {"format": INDEX_FORMAT,
                       "records": {rid: {str(v): versions[v] for v in sorted(versions)}
                                   for rid, versions in sorted(records.items())}}
                atomic_write(self.path, json.dumps(doc, indent=1, sort_keys=True).encode())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self._records = None  # reload lazily
        self._reverse = None

    def lookup(self, record_id: IdLike, version: int | None = None) -> ContentId:
        """Content id of a record version (the latest when ``version`` is None)."""
        rid = normalize_id(record_id)
        versions = self._load().get(rid)
        if not versions:
            raise RecordNotFound(f"record {rid} is not in the vault index {self.path}")
        if version is None:
            version = max(versions)
        if version not in versions:
            raise RecordNotFound(f"record {rid} has no version {version} in the vault index "
                                 f"(known: {sorted(versions)})")
        return versions[version]

    def versions(self, record_id: IdLike) -> dict[int, ContentId]:
        """All indexed versions of a record (empty if unknown)."""
        return dict(self._load().get(normalize_id(record_id), {}))

    def record_of(self, cid: IdLike) -> tuple[str, int] | None:
        """(record id, version) that blob ``cid`` holds, if indexed."""
        self._load()
        assert self._reverse is not None
        return self._reverse.get(normalize_id(cid))


class LocalVault(Vault):
    """A `Vault` in a local directory, sharded ``blobs/<aa>/<id hex>``, with a `RecordIndex`.

    ``durable=False`` skips the fsyncs (tests, throwaway benchmarks); renames stay atomic.
    Instances hold only paths and flags, so they pickle cheaply into worker processes.
    """

    def __init__(self, directory: Path | str, *, durable: bool = True) -> None:
        self.directory = Path(directory)
        self.durable = durable
        self.blob_root = self.directory / "blobs"
        self.index = RecordIndex(self.directory / "index.json")
        self._shards: set[str] = set()
        try:
            self.blob_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VaultError(f"cannot create vault directory {self.blob_root}: {exc}") from exc

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.directory,), {"durable": self.durable})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.durable = state["durable"]

    def path_of(self, cid: IdLike) -> Path:
        """Where blob ``cid`` is (or would be) stored."""
        hex_id = normalize_id(cid)[2:]
        return self.blob_root / hex_id[:2] / hex_id

    def _ensure_shard(self, path: Path) -> None:
        shard = path.parent.name
        if shard not in self._shards:
            try:
                path.parent.mkdir()
                if self.durable:
                    _fsync_dir(self.blob_root)  # the new shard's own name must survive a crash
            except FileExistsError:
                pass
            self._shards.add(shard)

    def put(self, blob: bytes) -> ContentId:
        blob = bytes(blob)
        digest = keccak(blob)
        cid = "0x" + digest.hex()
        path = self.path_of(cid)
        if path.exists():
            with contextlib.suppress(OSError):
                if keccak(path.read_bytes()) == digest:
                    return cid  # already stored intact; content addressing makes put idempotent
            # present but altered: fall through and atomically replace it with the right bytes
        try:
            self._ensure_shard(path)
            atomic_write(path, blob, durable=self.durable)
        except OSError as exc:
            raise VaultError(f"cannot store blob {cid} in {self.directory}: {exc}") from exc
        return cid

    def _label(self, cid: ContentId) -> str:
        try:
            owner = self.index.record_of(cid)
        except VaultError:
            owner = None
        return f"record {owner[0]} v{owner[1]} (blob {cid})" if owner else f"blob {cid}"

    def get(self, cid: IdLike) -> bytes:
        cid = normalize_id(cid)
        try:
            blob = self.path_of(cid).read_bytes()
        except FileNotFoundError:
            raise RecordNotFound(f"{self._label(cid)} is not in the vault {self.directory}") from None
        except OSError as exc:
            raise VaultError(f"cannot read {self._label(cid)}: {exc}") from exc
        found = "0x" + keccak(blob).hex()
        if found != cid:
            raise RecordTampered(
                f"{self._label(cid)} was tampered with: expected keccak256 {cid}, found {found}")
        return blob

    def has(self, cid: IdLike) -> bool:
        return self.path_of(cid).is_file()

    def __iter__(self) -> Iterator[ContentId]:
        for path in sorted(self.blob_root.glob("??/*")):
            if _ID_RE.fullmatch(path.name):
                yield "0x" + path.name

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def put_many(self, blobs: Iterable[bytes]) -> list[ContentId]:
        """Store many blobs with a group commit; returns their ids in order.

        Same guarantees as `put` at a fraction of the fsyncs: all blobs are written to temporary
        files, the filesystem is flushed once (``syncfs``), only then are the temp files renamed
        to their ids, and a second flush makes the renames durable. A crash leaves each blob
        either absent or complete. Falls back to one `put` per blob where ``syncfs`` is missing.
        """
        blobs = [bytes(b) for b in blobs]
        if not self.durable or _SYNCFS is None:
            return [self.put(b) for b in blobs]
        ids: list[ContentId] = []
        staged: dict[ContentId, tuple[Path, Path]] = {}
        try:
            for blob in blobs:
                digest = keccak(blob)
                cid = "0x" + digest.hex()
                ids.append(cid)
                if cid in staged:
                    continue
                path = self.path_of(cid)
                if path.exists():
                    with contextlib.suppress(OSError):
                        if keccak(path.read_bytes()) == digest:
                            continue
                self._ensure_shard(path)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")
                staged[cid] = (tmp, path)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    view = memoryview(blob)
                    while view:
                        view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
            if staged:
                sync_filesystem(self.blob_root)  # data of every temp file is on disk
                while staged:
                    cid, (tmp, path) = next(iter(staged.items()))
                    os.replace(tmp, path)
                    del staged[cid]
                sync_filesystem(self.blob_root)  # and so are the renames
        except OSError as exc:
            raise VaultError(f"cannot store blobs in {self.directory}: {exc}") from exc
        finally:
            for tmp, _ in staged.values():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return ids

    def put_record(self, record_id: IdLike, version: int, blob: bytes) -> ContentId:
        """`put` plus an index entry for (record_id, version)."""
        cid = self.put(blob)
        self.index.add(record_id, version, cid)
        return cid

    def get_record(self, record_id: IdLike, version: int | None = None) -> bytes:
        """The verified blob of a record version (latest if ``version`` is None), via the index."""
        return self.get(self.index.lookup(record_id, version))

    def audit(self) -> list[ContentId]:
        """Ids of every stored blob whose bytes no longer hash to their id."""
        bad = []
        for cid in self:
            if "0x" + keccak(self.path_of(cid).read_bytes()).hex() != cid:
                bad.append(cid)
        return bad

    def temp_files(self) -> list[Path]:
        """Leftover temporary files (from interrupted writes)."""
        return sorted(p for p in self.blob_root.glob(f"??/.*{_TEMP_SUFFIX}"))

    def clean_temp(self) -> int:
        """Remove leftover temporary files; returns how many were removed."""
        removed = 0
        for path in self.temp_files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed
