"""`audit verify`: does the index agree with the chain?

Two checks, both against the live RPC: the block hashes the index stored at checkpoints spread over
its range, and, in sampled block ranges, the exact set of (tx hash, log index) of suite events.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy import select

from .abi import Decoder
from .db import IndexDB
from .models import Event
from .queries import checkpoints, require_chain
from .rpc import AdaptiveRange, RpcReader, get_logs_adaptive


@dataclass(frozen=True)
class RangeCheck:
    start: int
    end: int
    indexed: int
    on_chain: int
    missing: tuple[str, ...] = ()   # tx:logIndex on chain, not in the index
    extra: tuple[str, ...] = ()     # in the index, not on chain

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra


@dataclass(frozen=True)
class VerifyReport:
    chain_id: int
    indexed_to: int
    checkpoints: list[tuple[int, str, str | None]] = field(default_factory=list)  # (block, index hash, chain hash)
    ranges: list[RangeCheck] = field(default_factory=list)

    @property
    def bad_checkpoints(self) -> list[tuple[int, str, str | None]]:
        return [c for c in self.checkpoints if c[1] != c[2]]

    @property
    def ok(self) -> bool:
        return not self.bad_checkpoints and all(r.ok for r in self.ranges)


def verify(db: IndexDB, reader: RpcReader, decoder: Decoder, chain_id: int, *, samples: int = 8,
           span: int = 1_000, seed: int | None = None, checkpoint_count: int = 16) -> VerifyReport:
    """Compares the index of `chain_id` with the chain: checkpoint hashes and `samples` ranges of `span` blocks."""
    state = require_chain(db, chain_id)
    rng = random.Random(seed)
    report = VerifyReport(chain_id, state.indexed_to)
    for number, stored in checkpoints(db, chain_id, checkpoint_count):
        report.checkpoints.append((number, stored, reader.block_hash(number)))
    first, last = state.start_block, state.indexed_to
    if last < first:
        return report
    starts = {first, max(first, last - span + 1)}
    while len(starts) < samples and len(starts) < last - first + 1:
        starts.add(rng.randint(first, last))
    addresses = list(state.addresses.values())
    window = AdaptiveRange(initial=span, maximum=span)
    for start in sorted(starts):
        end = min(last, start + span - 1)
        on_chain: set[str] = set()
        cursor = start
        while cursor <= end:
            covered, logs = get_logs_adaptive(reader, addresses, cursor, end, window)
            on_chain |= {f"{log['transactionHash'].lower()}:{int(log['logIndex'], 16)}" for log in logs
                         if decoder.decode(log) is not None}
            cursor = covered + 1
        with db.engine.connect() as conn:
            rows = conn.execute(select(Event.tx_hash, Event.log_index).where(
                Event.chain_id == chain_id, Event.block_number >= start, Event.block_number <= end)).all()
        indexed = {f"{tx}:{i}" for tx, i in rows}
        report.ranges.append(RangeCheck(start, end, len(indexed), len(on_chain),
                                        tuple(sorted(on_chain - indexed)), tuple(sorted(indexed - on_chain))))
    return report
