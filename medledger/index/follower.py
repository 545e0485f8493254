"""The indexer: follows a deployment's events into the index, chunk by chunk, reorg-safe and crash-safe.

Each chunk (logs of [next, end], their decoded events, projections, the block hashes seen and the
cursor) is committed in ONE database transaction: a crash loses at most the chunk in flight, and a
restart resumes at the cursor with no duplicate (events are unique by chain, tx hash, log index).

Before each chunk the indexer compares the hash of the newest block it stored with the chain's.
On a mismatch it walks back through its stored blocks to the newest one the chain still has (the
common ancestor) and rolls back everything above it, provided that block lies within the chain's
reorg window; otherwise it raises :class:`ReorgTooDeep` and changes nothing.
"""
from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text, update

from ..errors import IndexBusy, IndexerError, ReorgTooDeep
from . import projections
from .abi import Decoder, to_checksum_address
from .db import IndexDB
from .models import Block, Cursor, Event, bulk_insert
from .rpc import AdaptiveRange, RpcReader, get_logs_adaptive


@dataclass(frozen=True)
class ChainProfile:
    """How deep a chain may reorganise: confirmations to wait, and the window a rollback may reach."""

    confirmations: int
    reorg_window: int


#: Per chain id. L1 mainnet and testnets finalise in ~2 epochs (64 blocks); L2s reorg rarely but
#: their blocks are fast (Safe's service uses 200).
CHAIN_PROFILES: dict[int, ChainProfile] = {
    1: ChainProfile(12, 64),
    11155111: ChainProfile(12, 64),
    17000: ChainProfile(12, 64),
    10: ChainProfile(10, 200),
    8453: ChainProfile(10, 200),
    42161: ChainProfile(10, 200),
    84532: ChainProfile(10, 200),
    11155420: ChainProfile(10, 200),
    # Development chains: no confirmations, and any depth may be reverted (snapshots, restarts).
    1337: ChainProfile(0, 10**9),
    31337: ChainProfile(0, 10**9),
}
DEFAULT_PROFILE = ChainProfile(12, 200)
#: Within this many blocks of the head, every block holding a log is re-read by hash before a chunk
#: commits (one batched call), so logs from a fork replaced mid-read are never stored.
VERIFY_DEPTH = 256


def profile_for(chain_id: int) -> ChainProfile:
    return CHAIN_PROFILES.get(chain_id, DEFAULT_PROFILE)


@dataclass(frozen=True)
class Progress:
    """Where a catch-up stands (passed to the progress callback after each chunk)."""

    start: int
    done_to: int          # last block indexed
    target: int           # last block to index this round
    events: int           # events committed this run
    elapsed: float

    @property
    def blocks_done(self) -> int:
        return max(0, self.done_to - self.start + 1)

    @property
    def blocks_total(self) -> int:
        return max(0, self.target - self.start + 1)

    @property
    def blocks_per_second(self) -> float:
        return self.blocks_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        rate = self.blocks_per_second
        return (self.blocks_total - self.blocks_done) / rate if rate > 0 else None


@dataclass(frozen=True)
class SyncResult:
    chain_id: int
    from_block: int
    to_block: int      # last block now indexed
    head: int
    events: int
    rollbacks: int


class Follower:
    """Indexes the suite `addresses` of one chain (name -> address) into `db`."""

    def __init__(self, db: IndexDB, reader: RpcReader, decoder: Decoder, addresses: Mapping[str, str], *,
                 chain_id: int, start_block: int = 0, confirmations: int | None = None,
                 reorg_window: int | None = None, chunk: int = 2_000, max_chunk: int = 10_000,
                 replace_deployment: bool = False, progress: Callable[[Progress], None] | None = None) -> None:
        profile = profile_for(chain_id)
        self.db, self.reader, self.decoder = db, reader, decoder
        self.addresses = {name: to_checksum_address(a) for name, a in addresses.items()}
        self.chain_id = chain_id
        self.start_block = start_block
        self.confirmations = profile.confirmations if confirmations is None else confirmations
        self.reorg_window = profile.reorg_window if reorg_window is None else reorg_window
        self.window = AdaptiveRange(initial=chunk, maximum=max(chunk, max_chunk))
        self.progress = progress
        self.replace_deployment = replace_deployment  # a new deployment replaces the old one's index
        self.rollbacks = 0
        #: (contract, event, arg names) -> the args holding (patient, subject, party): see projections.column_keys
        self._column_keys: dict[tuple[str, ...], tuple[str | None, str | None, str | None]] = {}

    # ------------------------------------------------------------------ cursor
    def ensure_cursor(self, rebuild: bool = False) -> int:
        """Creates the chain's cursor (or checks it follows the same deployment); returns the next block."""
        with self.db.engine.begin() as conn:
            row = conn.execute(select(Cursor.next_block, Cursor.addresses)
                               .where(Cursor.chain_id == self.chain_id)).first()
            moved = row is not None and _lowered(row.addresses) != _lowered(self.addresses)
            if row is not None and not rebuild and not (moved and self.replace_deployment):
                if moved:
                    raise IndexerError(
                        f"the index follows another deployment on chain {self.chain_id} "
                        f"({', '.join(f'{k} {v}' for k, v in sorted(row.addresses.items()))}); "
                        "pass --rebuild to drop it and index this one")
                return int(row.next_block)
            if row is not None:
                self._drop(conn)
            conn.execute(insert(Cursor).values(chain_id=self.chain_id, next_block=self.start_block,
                                               start_block=self.start_block, addresses=self.addresses,
                                               head_seen=0, updated_at=int(time.time())))
            return self.start_block

    def _drop(self, conn: Connection) -> None:
        for model in (Event, Block, Cursor, *projections.APPEND_ONLY, projections.Claim):
            conn.execute(delete(model).where(model.chain_id == self.chain_id))

    # ------------------------------------------------------------------ reorgs
    def _stored_tip(self, conn: Connection) -> tuple[int, str] | None:
        row = conn.execute(select(Block.number, Block.hash).where(Block.chain_id == self.chain_id)
                           .order_by(Block.number.desc()).limit(1)).first()
        return None if row is None else (int(row.number), row.hash)

    def check_reorg(self) -> int | None:
        """Rolls back to the common ancestor if the chain replaced stored blocks; returns it (else None)."""
        with self.db.engine.connect() as conn:
            tip = self._stored_tip(conn)
        if tip is None or self.reader.block_hash(tip[0]) == tip[1]:
            return None
        floor = tip[0] - self.reorg_window
        with self.db.engine.connect() as conn:
            candidates = conn.execute(select(Block.number, Block.hash).where(
                Block.chain_id == self.chain_id, Block.number >= floor, Block.number < tip[0])
                .order_by(Block.number.desc())).all()
            older = conn.execute(select(func.max(Block.number)).where(
                Block.chain_id == self.chain_id, Block.number < floor)).scalar()
        # Stored blocks up to the ancestor still match and those above it do not: binary search.
        ancestor: int | None = None
        low, high = 0, len(candidates) - 1   # candidates are newest first
        while low <= high:
            mid = (low + high) // 2
            number, stored = candidates[mid]
            if self.reader.block_hash(int(number)) == stored:
                ancestor, high = int(number), mid - 1
            else:
                low = mid + 1
        if ancestor is None:
            if older is not None and self.reader.block_hash(int(older)) is not None:
                raise ReorgTooDeep(
                    f"chain {self.chain_id} replaced block {tip[0]} and every stored block down to {floor}, "
                    f"the edge of its {self.reorg_window}-block reorg window: the index was left as it was. "
                    "If this chain really reorganised that deep, re-index it with `medledger index --rebuild`")
            ancestor = self.start_block - 1
        with self.db.engine.begin() as conn:
            self._lock(conn)
            projections.rollback(conn, self.chain_id, ancestor)
            conn.execute(delete(Block).where(Block.chain_id == self.chain_id, Block.number > ancestor))
            conn.execute(update(Cursor).where(Cursor.chain_id == self.chain_id)
                         .values(next_block=ancestor + 1, updated_at=int(time.time())))
        self.rollbacks += 1
        return ancestor

    def _lock(self, conn: Connection) -> None:
        if self.db.dialect == "postgresql":
            # One writer per chain: a second indexer on the same database waits rather than interleaves.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x4D4C0000 + self.chain_id % 0xFFFF})

    # ------------------------------------------------------------------ chunks
    def _rows(self, logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The decoded events of `logs` as rows, in chain order; ``args`` is the decoded dict and
        ``args_json`` its stored text (compact JSON, as before)."""
        rows = []
        decode, chain_id, keys = self.decoder.decode_parts, self.chain_id, self._column_keys
        for log in logs:
            decoded = decode(log)
            if decoded is None:
                continue
            contract, event, args, args_json = decoded
            kind = (contract, event, *args)
            which = keys.get(kind)
            if which is None:
                which = keys[kind] = projections.column_keys(args)
            patient, subject, party = which
            rows.append({"chain_id": chain_id, "block_number": int(log["blockNumber"], 16),
                         "block_hash": str(log["blockHash"]).lower(), "tx_hash": str(log["transactionHash"]).lower(),
                         "log_index": int(log["logIndex"], 16), "address": to_checksum_address(log["address"]),
                         "contract": contract, "event": event, "args": args,
                         "args_json": args_json,
                         "patient": None if patient is None else args[patient],
                         "subject": None if subject is None else args[subject],
                         "party": None if party is None else args[party]})
        rows.sort(key=_chain_order)
        return rows

    def _read(self, start: int, last: int) -> tuple[int, list[dict[str, Any]]]:
        """The logs of one chunk from `start` (at most to `last`): (the chunk's last block, logs)."""
        return get_logs_adaptive(self.reader, list(self.addresses.values()), start, last, self.window)

    def _catch_up(self, start: int, target: int, head: int, stop: threading.Event | None, so_far: Progress) -> int:
        """Reads and commits chunks from `start` to `target` (reporting progress from `so_far` after each);
        returns the run's events when the target is reached, `stop` is set or the chain moved under a chunk
        (the caller then checks for a reorg). One thread reads the next chunk's logs while this one decodes
        and writes the current one: the node (or the network) works while Python does. A chunk read ahead is
        stored only after the chunk before it committed, and is checked against the chain like any other."""
        events, began = so_far.events, time.monotonic()
        fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medledger-index-read")
        failed = True
        try:
            end, logs = self._read(start, target)  # the first read has nothing to overlap: no thread
            while True:
                stopping = stop is not None and stop.is_set()
                ahead = fetcher.submit(self._read, end + 1, target) if end < target and not stopping else None
                with _gc_paused():
                    stored = self._store(start, end, logs, head)
                if stored is None:
                    failed = False
                    return events  # the chain changed under the chunk: check for a reorg, then go on
                events += stored[1]
                if self.progress is not None:
                    elapsed = so_far.elapsed + time.monotonic() - began
                    self.progress(Progress(so_far.start, end, target, events, elapsed))
                if ahead is None or (stop is not None and stop.is_set()):
                    failed = False
                    return events
                start = end + 1
                end, logs = ahead.result()
        finally:
            # A read ahead that is not needed is dropped; it is waited for (it uses this follower's range size),
            # unless an error (Ctrl-C) is on its way out.
            fetcher.shutdown(wait=not failed, cancel_futures=True)

    def _store(self, start: int, end: int, logs: list[dict[str, Any]], head: int) -> tuple[int, int] | None:
        """Checks that the chunk's logs are on today's chain and commits them (see `_catch_up`); returns
        (end, events), or None when the chain moved under the chunk."""
        pairs = {(int(log["blockNumber"], 16), str(log["blockHash"]).lower()) for log in logs}
        seen = dict(pairs)
        if len(seen) != len(pairs):
            return None  # one answer held logs of two forks of a block: read again
        # One batched call, made while the logs are decoded, asks the chain for the hash of the chunk's last
        # block (stored with the chunk), of the newest block stored so far (a reorg below this chunk leaves
        # it to the next round, which rolls it back first) and, near the head, of every block holding a log
        # (the logs must be on today's chain).
        with self.db.engine.connect() as conn:
            tip = self._stored_tip(conn)
        check = {end, *([tip[0]] if tip is not None else []),
                 *(seen if end > head - min(self.reorg_window, VERIFY_DEPTH) else ())}
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashes = pool.submit(self.reader.block_hashes, sorted(check))
            rows = self._rows(logs)
            found = hashes.result()
        end_hash = found[end]
        if end_hash is None or any(h != seen.get(n, h) for n, h in found.items()) \
                or (tip is not None and found[tip[0]] != tip[1]):
            return None
        blocks = {r["block_number"]: r["block_hash"] for r in rows}
        blocks[end] = end_hash
        with self.db.engine.begin() as conn:
            self._lock(conn)
            cursor = conn.execute(select(Cursor.next_block).where(Cursor.chain_id == self.chain_id)).scalar()
            if cursor != start:
                raise IndexBusy(f"another indexer moved chain {self.chain_id}'s cursor to {cursor} "
                                f"while this one read from {start}: run one indexer per chain")
            if self._stored_tip(conn) != tip:
                return None  # the stored blocks changed under this chunk: read it again
            if rows:
                bulk_insert(conn, Event, rows, {"args": "args_json"})
                projections.project(conn, self.chain_id, rows)
            bulk_insert(conn, Block, [{"chain_id": self.chain_id, "number": n, "hash": h}
                                      for n, h in sorted(blocks.items())])
            conn.execute(update(Cursor).where(Cursor.chain_id == self.chain_id)
                         .values(next_block=end + 1, head_seen=head, updated_at=int(time.time())))
        return end, len(rows)

    # ------------------------------------------------------------------ driving
    def sync_once(self, *, rebuild: bool = False, stop: threading.Event | None = None) -> SyncResult:
        """Catches up to head - confirmations (rolling back a reorg first), then returns."""
        first = self.ensure_cursor(rebuild)
        events, started = 0, time.monotonic()
        while True:
            self.check_reorg()
            with self.db.engine.connect() as conn:
                start = int(conn.execute(select(Cursor.next_block).where(Cursor.chain_id == self.chain_id)).scalar())
            head = self.reader.block_number()
            target = head - self.confirmations
            if start > target or (stop is not None and stop.is_set()):
                return SyncResult(self.chain_id, first, start - 1, head, events, self.rollbacks)
            events = self._catch_up(start, target, head, stop, Progress(first, start - 1, target, events,
                                                                         time.monotonic() - started))

    def follow(self, *, poll: float = 2.0, stop: threading.Event | None = None,
               on_round: Callable[[SyncResult], None] | None = None) -> None:
        """Catches up, then keeps following the chain every `poll` seconds until `stop` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            result = self.sync_once(stop=stop)
            if on_round is not None:
                on_round(result)
            stop.wait(poll)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pauses the cyclic garbage collector while a chunk is decoded and written: tens of thousands of new
    dicts and tuples (none in a cycle) would otherwise set off full collections that walk every live
    object, the chunk's logs included (about a tenth of the work). Mercurial's ``util.nogc`` does the same."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _chain_order(row: Mapping[str, Any]) -> tuple[int, int]:
    return row["block_number"], row["log_index"]


def _lowered(addresses: Mapping[str, str]) -> dict[str, str]:
    return {name: address.lower() for name, address in addresses.items()}
