"""The consent view: what the chain says about one (patient, reader) pair, and the per-read decision.

`ConsentView` is the small interface the gateway reads consent through. `LiveConsentView` asks the
chain directly (ConsentRegistry / CareRegistry views pinned to one block) and caches each answer for
that block. The index (issue 16) will provide a second implementation fed by consent events; the
chain stays the truth when the index is behind.

Freshness bound: an answer computed at block ``b`` is used while the chain head ``h`` (polled at most
every ``head_ttl`` seconds) satisfies ``h - b <= freshness_blocks``. A revocation mined in block ``r``
therefore stops every read once the gateway has seen head ``r + freshness_blocks`` - at most
``freshness_blocks`` blocks plus ``head_ttl`` seconds after it is mined. The default (0 blocks, 1 s)
means: the next block the gateway sees.

`LiveConsentView.start` keeps that rule and takes the waiting off the reads: a background thread polls the
head every half ``head_ttl`` while reads come in and, on a new head, refetches the pairs read recently, so
the usual read finds a fresh answer in memory instead of waiting for the node.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from eth_utils import to_checksum_address as _to_checksum

from ..chain import Chain
from ..contracts import CareRegistry, ConsentRegistry
from ..scopes import SENSITIVE, DataClass, Purpose, Role

to_checksum_address = functools.lru_cache(maxsize=65_536)(_to_checksum)  # on every read: memoised

log = logging.getLogger("medledger.gateway.consent")
#: The head poller refetches at most this many pairs per new head: those read within the last ``head_ttl``.
PREFETCH_PAIRS = 256
#: The head poller stops polling after this many ``head_ttl`` without a read (an idle gateway leaves the node be).
IDLE_TTLS = 30

#: What an open break-glass window releases. The ConsentRegistry's window covers every class bit (a pairwise
#: pseudonym's bits are labels it cannot read); the gateway knows the real class and keeps the sensitive
#: ones (42 CFR Part 2) out, as `records.require_not_sensitive_by_break_glass` does for the CLI.
BREAK_GLASS_CLASSES = frozenset(c for c in DataClass if c not in SENSITIVE)


@dataclass(frozen=True)
class AccessState:
    """The chain's answer for (patient, reader) at ``block``."""

    patient: str
    reader: str
    block: int
    role: Role = Role.NONE
    active: bool = False
    guardian: bool = False
    purposes: int = 0
    data_classes: int = 0
    valid_from: int = 0
    valid_until: int = 0
    granted_at: int = 0
    break_glass_until: int = 0
    migrated: bool = False  # the reader's key was retired by a migration (CareRegistry.migrate): it reads nothing

    @property
    def is_patient(self) -> bool:
        return self.patient == self.reader

    @property
    def suspended(self) -> bool:
        return self.role != Role.NONE and not self.active


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _class_name(c: DataClass) -> str:
    return c.name.lower().replace("_", "-")


@dataclass(frozen=True)
class Decision:
    """The outcome of one authorisation: which classes the reader may see, on what basis, and why not."""

    state: AccessState
    purpose: Purpose
    allowed: frozenset[DataClass]
    basis: str  # patient | guardian | consent | break-glass | none
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def may_know(self) -> bool:
        """Whether the reader may learn that records of this patient exist (a refusal may say why)."""
        s = self.state
        return s.is_patient or s.guardian or s.granted_at != 0 or s.break_glass_until != 0

    def message(self) -> str:
        return "; ".join(self.reasons) or "access refused"


def decide(state: AccessState, purpose: Purpose, classes: Iterable[DataClass], now: float | None = None) -> Decision:
    """Which of ``classes`` ``state.reader`` may read for ``purpose`` at ``now`` (default: wall clock)."""
    now = time.time() if now is None else now
    wanted = frozenset(classes)
    if state.is_patient:
        return Decision(state, purpose, wanted, "patient")
    if state.suspended:
        why = ("migrated to another account in the CareRegistry: its old key reads nothing" if state.migrated
               else "suspended in the CareRegistry")
        return Decision(state, purpose, frozenset(), "none", (f"{state.reader} is {why}",))
    if state.guardian:
        return Decision(state, purpose, wanted, "guardian")
    if state.role == Role.NONE:
        return Decision(state, purpose, frozenset(), "none",
                        (f"{state.reader} is not a registered party",))
    allowed: set[DataClass] = set()
    reasons: list[str] = []
    pname = purpose.name
    consent_live = (state.purposes != 0 and state.valid_from <= now
                    and (state.valid_until == 0 or now < state.valid_until))
    if state.purposes and state.valid_until and now >= state.valid_until:
        reasons.append(f"the consent expired at {_date(state.valid_until)}")
    elif state.purposes and now < state.valid_from:
        reasons.append(f"the consent starts at {_date(state.valid_from)}")
    elif state.purposes and not state.purposes >> int(purpose) & 1:
        reasons.append(f"no consent for purpose {pname}")
    if consent_live and state.purposes >> int(purpose) & 1:
        allowed |= {c for c in wanted if state.data_classes >> int(c) & 1}
    basis = "consent" if allowed else "none"
    glass_open = now < state.break_glass_until
    if purpose == Purpose.ETREAT and glass_open and state.role == Role.PROVIDER:
        extra = {c for c in wanted if c in BREAK_GLASS_CLASSES} - allowed
        if extra:
            allowed |= extra
            basis = "break-glass" if basis == "none" else basis
    missing = wanted - allowed
    if missing and not reasons:
        if not state.purposes and not glass_open:
            reasons.append(f"no consent from {state.patient}")
        for c in sorted(missing):
            reasons.append(f"no consent for class {_class_name(c)} for purpose {pname}")
    return Decision(state, purpose, frozenset(allowed), basis, tuple(reasons))


class ConsentView(Protocol):
    """Where the gateway reads consent from."""

    freshness_blocks: int

    def head(self) -> int:
        """The newest block the view knows of."""

    def state(self, patient: str, reader: str) -> AccessState:
        """(patient, reader) as of a block at most `freshness_blocks` behind `head`."""

    def consent_origin(self, state: AccessState) -> tuple[int, str] | None:
        """(block, tx hash) of the grant `state` reflects, if it can be found."""


class LiveConsentView:
    """A `ConsentView` straight from the chain, cached per block."""

    def __init__(self, chain: Chain, care: CareRegistry, consent: ConsentRegistry, *,
                 freshness_blocks: int = 0, head_ttl: float = 1.0) -> None:
        self.chain, self.care, self.consent = chain, care, consent
        self.freshness_blocks = freshness_blocks
        self.head_ttl = head_ttl
        self._head = -1
        self._head_at = 0.0
        self._cache: dict[tuple[str, str], AccessState] = {}
        self._origins: dict[tuple[str, str, int], tuple[int, str] | None] = {}
        self._lock = threading.Lock()
        self._polling = threading.Lock()
        self._fetching: dict[tuple[str, str], threading.Lock] = {}  # one chain fetch per pair at a time
        self._recent: dict[tuple[str, str], float] = {}  # pair -> when it was last read (monotonic)
        self._last_read = float("-inf")
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def head(self) -> int:
        if self._head < 0 or time.monotonic() - self._head_at >= self.head_ttl:
            with self._polling:  # one poll at a time: concurrent reads wait for it instead of each asking the node
                if self._head < 0 or time.monotonic() - self._head_at >= self.head_ttl:
                    self._poll()
        return self._head

    def _poll(self) -> int:
        """Asks the node for its head now (the caller holds ``_polling``); the head it saw, for ``head_ttl``."""
        now = time.monotonic()
        head = int(self.chain.w3.eth.block_number)
        with self._lock:
            self._head, self._head_at = max(self._head, head), now
        return self._head

    # ------------------------------------------------------------------ background head poller
    def start(self) -> None:
        """Starts the head poller (see the module docstring); nothing to do with ``head_ttl`` 0, where every
        read polls. Answers are used by the same rule as without it: the poller only refreshes them early."""
        if self.head_ttl <= 0 or self._poller is not None:
            return
        self._stop.clear()
        self._poller = threading.Thread(target=self._polling_loop, name="medledger-head-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=30)
            self._poller = None

    def _polling_loop(self) -> None:
        while not self._stop.wait(self.head_ttl / 2):
            if time.monotonic() - self._last_read > IDLE_TTLS * self.head_ttl:
                continue
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - the node may be away: reads poll it themselves meanwhile
                log.debug("head poll failed: %s", exc)

    def refresh(self) -> None:
        """One round of the poller. It asks the node for its head; on a new head it first fetches, at that
        block, the pairs read within the last ``head_ttl`` (at most `PREFETCH_PAIRS`, with their grants'
        origins), and only then publishes the head, stamped with the time it was polled. Reads meanwhile go on
        with the previous head and its answers, within the same rule: a head is used at most ``head_ttl``
        after its poll, so a block mined before a poll is seen by every read ``head_ttl`` after it."""
        polled = time.monotonic()
        head = int(self.chain.w3.eth.block_number)
        if head > self._head:
            since = polled - self.head_ttl
            for key in [pair for pair, at in list(self._recent.items()) if at >= since][:PREFETCH_PAIRS]:
                if self._stop.is_set():
                    return
                with self._lock:
                    pair_lock = self._fetching.setdefault(key, threading.Lock())
                with pair_lock:
                    cached = self._cache.get(key)
                    if cached is None or head - cached.block > self.freshness_blocks:
                        cached = self._fetch(*key, head)
                        with self._lock:
                            self._cache[key] = cached
                self.consent_origin(cached)
        with self._lock:  # a read's own poll may have published a later head meanwhile: never go back
            self._head, self._head_at = max(self._head, head), max(self._head_at, polled)

    def _seen(self, key: tuple[str, str], now: float) -> None:
        """Notes a read of the pair ``key`` (for the poller's refetch)."""
        self._last_read = now
        if len(self._recent) > 4 * PREFETCH_PAIRS:
            self._recent.clear()
        self._recent[key] = now

    def state(self, patient: str, reader: str) -> AccessState:
        patient, reader = to_checksum_address(patient), to_checksum_address(reader)
        head = self.head()
        key = (patient, reader)
        self._seen(key, time.monotonic())
        cached = self._cache.get(key)
        if cached is not None and head - cached.block <= self.freshness_blocks:
            return cached
        with self._lock:
            pair_lock = self._fetching.setdefault(key, threading.Lock())
        with pair_lock:  # concurrent reads of a pair on a new head share one fetch instead of each calling the chain
            cached = self._cache.get(key)
            if cached is not None and head - cached.block <= self.freshness_blocks:
                return cached
            fresh = self._fetch(patient, reader, head)
            with self._lock:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                    self._fetching = {key: pair_lock}
                self._cache[key] = fresh
        return fresh

    def cached(self, patient: str, reader: str) -> tuple[AccessState, tuple[int, str] | None] | None:
        """`state` and `consent_origin` of the pair when both are answered from memory under the same rule
        (the head was polled less than ``head_ttl`` ago and the answer is within ``freshness_blocks`` of it),
        else None: then the caller uses `state`, which may call the chain. Never blocks on I/O."""
        now = time.monotonic()
        key = (to_checksum_address(patient), to_checksum_address(reader))
        self._seen(key, now)  # also wakes an idle poller: the next reads find a fresh head again
        if self._head < 0 or now - self._head_at >= self.head_ttl:
            return None
        cached = self._cache.get(key)
        if cached is None or self._head - cached.block > self.freshness_blocks:
            return None
        if not cached.granted_at:
            return cached, None
        key = (cached.patient, cached.reader, cached.granted_at)
        return (cached, self._origins[key]) if key in self._origins else None

    def _fetch(self, patient: str, reader: str, block: int) -> AccessState:
        if patient == reader:
            return AccessState(patient, reader, block)
        # partyOf alone (CareRegistry.party also reads the reader's metadata and key, which a read never needs)
        role, active, _registered, _updated, _party_id, migrated, _successor = self.chain.call(
            self.care.fn.partyOf(reader), block)
        grant = self.consent.consent(patient, reader, block=block)
        window = self.consent.break_glass(patient, reader, block=block)
        guardian = self.consent.is_guardian(patient, reader, block=block)
        return AccessState(patient, reader, block, Role(role), bool(active), guardian, grant.purposes,
                           grant.data_classes, grant.valid_from, grant.valid_until, grant.granted_at,
                           window.expires_at, bool(migrated))

    def consent_origin(self, state: AccessState) -> tuple[int, str] | None:
        if not state.granted_at:
            return None
        key = (state.patient, state.reader, state.granted_at)
        if key not in self._origins:
            logs = self.consent.contract.events.ConsentGranted.get_logs(
                # A grant names the grantee's home account (a migrated reader's first account).
                argument_filters={"patient": state.patient, "grantee": self.consent.home_of(state.reader)},
                from_block=0, to_block=state.block)
            found = None
            for log in logs:  # the last grant at or before the decision block
                found = (int(log["blockNumber"]), "0x" + bytes(log["transactionHash"]).hex())
            self._origins[key] = found
        return self._origins[key]
