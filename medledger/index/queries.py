"""The questions users ask, answered from the index (the CLI, the read API and the gateway call these).

Every function takes an open :class:`~medledger.index.db.IndexDB` and a chain id, reads only, and
returns frozen dataclasses (or :class:`medledger.audit.EventRecord`, so index and chain-scan trails
print the same).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import is_address, to_checksum_address
from sqlalchemy import and_, func, or_, select

from ..audit import EventRecord
from ..contracts import RecordEvent
from ..errors import IndexerError
from .db import IndexDB
from .models import Block, Claim, ConsentChange, Cursor, Event, RecordVersion
from .projections import PAYOUT_EVENTS, PROVIDER_DEBITS

OPEN_STATUSES = ("submitted", "contestable", "disputed")


def _address(value: str, what: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise IndexerError(f"'{value}' is not an Ethereum address ({what})")
    return to_checksum_address(value)


def _matching(model: Any, chain_id: int, **addresses: str | None) -> list[Any]:
    """Conditions: rows of `chain_id` whose address columns equal the given (non-empty) addresses."""
    return [model.chain_id == chain_id] + [getattr(model, column) == _address(value, column)
                                           for column, value in addresses.items() if value]


# ----------------------------------------------------------------------------- status
@dataclass(frozen=True)
class IndexStatus:
    """How far the index has followed one chain."""

    chain_id: int
    indexed_to: int        # last block indexed
    head_seen: int         # the chain head when the last chunk was committed
    start_block: int
    addresses: dict[str, str]
    events: int
    updated_at: int

    @property
    def lag(self) -> int:
        return max(0, self.head_seen - self.indexed_to)


def status(db: IndexDB, chain_id: int | None = None) -> list[IndexStatus]:
    """Every followed chain (or just `chain_id`)."""
    with db.engine.connect() as conn:
        query = select(Cursor)
        if chain_id is not None:
            query = query.where(Cursor.chain_id == chain_id)
        cursors = conn.execute(query.order_by(Cursor.chain_id)).all()
        counts = dict(conn.execute(select(Event.chain_id, func.count()).group_by(Event.chain_id)).all())
    return [IndexStatus(c.chain_id, c.next_block - 1, c.head_seen, c.start_block, dict(c.addresses),
                        int(counts.get(c.chain_id, 0)), c.updated_at) for c in cursors]


def require_chain(db: IndexDB, chain_id: int) -> IndexStatus:
    """The status of `chain_id`, or IndexerError telling how to start indexing it."""
    found = status(db, chain_id)
    if not found:
        raise IndexerError(f"the index at {db.url.split('@')[-1]} has not followed chain {chain_id}: "
                           "run `medledger index --once` first (or pass --live to scan the chain)")
    return found[0]


# ----------------------------------------------------------------------------- audit trail
class JsonArgs(Mapping[str, Any]):
    """An event's args, parsed from the stored JSON on first use (a long trail is listed before it is read)."""

    __slots__ = ("_data", "_raw")

    def __init__(self, raw: str) -> None:
        self._raw, self._data = raw, None

    def _parsed(self) -> dict[str, Any]:
        if self._data is None:
            self._data = json.loads(self._raw)
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._parsed()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())

    def __repr__(self) -> str:
        return f"JsonArgs({self._raw})"


def _record(row: Any) -> EventRecord:
    return EventRecord(row[0], row[1], row[2], row[3], row[4], JsonArgs(row[5]))


class Trail(Sequence[EventRecord]):
    """An audit trail: the fetched rows, each made an :class:`EventRecord` when it is read."""

    __slots__ = ("_rows",)

    def __init__(self, rows: Sequence[Any]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [_record(r) for r in self._rows[index]]
        return _record(self._rows[index])

    def __iter__(self) -> Iterator[EventRecord]:
        return (_record(r) for r in self._rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


def patient_trail(db: IndexDB, chain_id: int, patients: str | Sequence[str], *, limit: int | None = None,
                  offset: int = 0) -> Trail:
    """The audit trail of a patient (or of all its pseudonyms), in chain order.

    The same events as :func:`medledger.audit.patient_trail` over a full chain scan: those naming the
    patient, every event about its records and claims (batch attestations, amendments, access logs,
    adjudications, disputes), and payouts pushed in the same transaction as one of its claims.
    """
    wanted = [_address(p, "patient") for p in ([patients] if isinstance(patients, str) else patients)]
    with db.engine.connect() as conn:
        # Two small lookups first (the patient's records and claims, and its claims' transactions), so
        # that the trail itself is one query whose every OR branch is an index search.
        subjects = list(conn.execute(select(Event.subject).distinct().where(
            Event.chain_id == chain_id, Event.patient.in_(wanted), Event.subject.is_not(None))).scalars())
        claim_txs = list(conn.execute(select(Event.tx_hash).distinct().where(
            Event.chain_id == chain_id, Event.subject.in_(subjects), Event.contract == "ClaimEscrow")).scalars()) \
            if subjects else []
        branches = [and_(Event.chain_id == chain_id, Event.patient.in_(wanted))]
        if subjects:
            branches.append(and_(Event.chain_id == chain_id, Event.subject.in_(subjects)))
        if claim_txs:
            branches.append(and_(Event.chain_id == chain_id, Event.tx_hash.in_(claim_txs),
                                 Event.event.in_(PAYOUT_EVENTS)))
        query = (select(Event.block_number, Event.tx_hash, Event.log_index, Event.contract, Event.event, Event.args)
                 .where(or_(*branches)).order_by(Event.block_number, Event.log_index).offset(offset))
        if limit is not None:
            query = query.limit(limit)
        # The DBAPI rows as they are (ints and strings need no conversion): no per-row wrapping.
        rows = conn.execute(query).cursor.fetchall()
    return Trail(rows)


def events_between(db: IndexDB, chain_id: int, start: int, end: int) -> list[EventRecord]:
    """Every indexed event in blocks [start, end]."""
    query = (select(Event.block_number, Event.tx_hash, Event.log_index, Event.contract, Event.event, Event.args)
             .where(Event.chain_id == chain_id, Event.block_number >= start, Event.block_number <= end)
             .order_by(Event.block_number, Event.log_index))
    with db.engine.connect() as conn:
        return [_record(r) for r in conn.execute(query)]


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class RecordSummary:
    """A record as the index knows it: its latest version and where it came from."""

    record_id: str
    patient: str
    author: str
    version: int
    content_hash: str
    data_class: int | None
    batch_id: str | None
    first_block: int
    last_block: int
    tx_hash: str


def records(db: IndexDB, chain_id: int, *, patient: str | None = None, author: str | None = None,
            limit: int | None = None, offset: int = 0) -> list[RecordSummary]:
    """The records of a patient, or authored by a provider (latest version of each), newest first."""
    if not patient and not author:
        raise IndexerError("name a patient or an author")
    rv = RecordVersion
    where = _matching(rv, chain_id, patient=patient)
    if author:
        ids = select(rv.record_id).where(rv.chain_id == chain_id, rv.author == _address(author, "author"))
        where.append(rv.record_id.in_(ids.scalar_subquery()))
    latest = (select(rv.record_id, func.max(rv.version).label("version"), func.min(rv.block_number).label("first"),
                     func.max(rv.data_class).label("data_class"))
              .where(*where).group_by(rv.record_id).subquery())
    query = (select(rv, latest.c.first, latest.c.data_class.label("any_class"))
             .join(latest, and_(rv.record_id == latest.c.record_id, rv.version == latest.c.version))
             .where(rv.chain_id == chain_id)
             .order_by(rv.block_number.desc(), rv.log_index.desc()).offset(offset))
    if limit is not None:
        query = query.limit(limit)
    out = []
    with db.engine.connect() as conn:
        for r in conn.execute(query).mappings():
            data_class = r["data_class"] if r["data_class"] is not None else r["any_class"]
            out.append(RecordSummary(r["record_id"], r["patient"], r["author"], r["version"], r["content_hash"],
                                     data_class, r["batch_id"], r["first"], r["block_number"], r["tx_hash"]))
    return out


def record_versions(db: IndexDB, chain_id: int, patients: Sequence[str]) -> list[RecordEvent]:
    """Every version of every record of `patients`, in chain order (what medledger.federation resolves a
    patient's custodians from; `RecordRegistry.patient_versions` is the same answer from a chain scan)."""
    wanted = [_address(p, "patient") for p in patients]
    if not wanted:
        return []
    rv = RecordVersion
    events = {"anchored": "RecordAnchored", "amended": "RecordAmended", "attested": "RecordAttested"}
    query = (select(rv).where(rv.chain_id == chain_id, rv.patient.in_(wanted))
             .order_by(rv.block_number, rv.log_index))
    with db.engine.connect() as conn:
        return [RecordEvent(record_id=r["record_id"], version=r["version"], content_hash=r["content_hash"],
                            patient=r["patient"], author=r["author"], event=events.get(r["kind"], r["kind"]),
                            block=r["block_number"], tx_hash=r["tx_hash"], data_class=r["data_class"],
                            batch_id=None if r["batch_id"] is None else int(r["batch_id"]),
                            log_index=r["log_index"])
                for r in conn.execute(query).mappings()]


# ----------------------------------------------------------------------------- claims
@dataclass(frozen=True)
class ClaimRow:
    claim_id: str
    provider: str
    insurer: str
    patient: str
    status: str
    billed: int
    approved: int
    contested: int
    awarded: int
    deadline: int
    revision: int
    adjudication: str | None
    submitted_block: int
    updated_block: int


@dataclass(frozen=True)
class ClaimQueue:
    """A party's claim work queue; each list is ordered by deadline (oldest first) and capped at `limit`."""

    party: str
    role: str                                   # insurer | provider
    counts: dict[str, int]                      # per status, uncapped
    open: list[ClaimRow] = field(default_factory=list)         # submitted: to adjudicate / awaiting adjudication
    contestable: list[ClaimRow] = field(default_factory=list)  # partially approved or denied, dispute window open
    disputed: list[ClaimRow] = field(default_factory=list)     # before an arbiter
    owed: int = 0                               # provider only: credited minus paid out


def _claim(r: Any) -> ClaimRow:
    return ClaimRow(r.claim_id, r.provider, r.insurer, r.patient, r.status, int(r.billed), int(r.approved),
                    int(r.contested), int(r.awarded), int(r.deadline), int(r.revision), r.adjudication,
                    int(r.submitted_block), int(r.updated_block))


def claim_queue(db: IndexDB, chain_id: int, *, insurer: str | None = None, provider: str | None = None,
                limit: int = 100) -> ClaimQueue:
    """The open claims of an insurer (to adjudicate, by deadline; disputes) or of a provider
    (awaiting adjudication, disputable, disputed, and what it is owed)."""
    if bool(insurer) == bool(provider):
        raise IndexerError("name exactly one of an insurer or a provider")
    role = "insurer" if insurer else "provider"
    party = _address(insurer or provider or "", role)
    column = Claim.insurer if insurer else Claim.provider
    mine = and_(Claim.chain_id == chain_id, column == party)
    lists: dict[str, list[ClaimRow]] = {}
    with db.engine.connect() as conn:
        counts = {s: int(n) for s, n in conn.execute(select(Claim.status, func.count()).where(mine)
                                                     .group_by(Claim.status))}
        for status_ in OPEN_STATUSES:
            query = (select(Claim).where(mine, Claim.status == status_)
                     .order_by(Claim.deadline, Claim.submitted_block).limit(limit))
            lists[status_] = [_claim(r) for r in conn.execute(query)]
        owed = 0
        if provider:
            credits = conn.execute(select(Claim.approved, Claim.awarded).where(mine)).all()
            owed = sum(int(a) + int(w) for a, w in credits)
            debits = conn.execute(select(Event.args).where(Event.chain_id == chain_id, Event.party == party,
                                                           Event.event.in_(PROVIDER_DEBITS))).scalars()
            owed -= sum(int(json.loads(a).get("amount", 0)) for a in debits)
    return ClaimQueue(party, role, counts, lists["submitted"], lists["contestable"], lists["disputed"], owed)


# ----------------------------------------------------------------------------- consents
@dataclass(frozen=True)
class ConsentState:
    """The consent of `patient` to `grantee` as of a block (from the last grant or revocation before it)."""

    patient: str
    grantee: str
    granted: bool
    purposes: int
    data_classes: int
    valid_from: int
    valid_until: int
    block: int             # block of the change that set this state
    tx_hash: str
    break_glass_until: int = 0  # an open break-glass (provider) expires at this time; 0 if none

    def live(self, now: int) -> bool:
        """Whether the consent is in force at time `now` (validity window; 0 means open-ended)."""
        return self.granted and self.valid_from <= now and (self.valid_until == 0 or now < self.valid_until)


def consent_state(db: IndexDB, chain_id: int, *, patient: str | None = None, grantee: str | None = None,
                  as_of_block: int | None = None) -> list[ConsentState]:
    """Consent per (patient, grantee) as of block `as_of_block` (default: the newest indexed)."""
    if not patient and not grantee:
        raise IndexerError("name a patient or a grantee")
    c = ConsentChange
    where = _matching(c, chain_id, patient=patient, grantee=grantee)
    if as_of_block is not None:
        where.append(c.block_number <= as_of_block)
    with db.engine.connect() as conn:
        rows = conn.execute(select(c).where(*where).order_by(c.block_number, c.log_index)).all()
    return list(_fold_consents(rows).values())


def _fold_consents(rows: Iterable[Any]) -> dict[tuple[str, str], ConsentState]:
    states: dict[tuple[str, str], ConsentState] = {}
    for r in rows:
        key = (r.patient, r.grantee)
        prior = states.get(key)
        glass = prior.break_glass_until if prior else 0
        if r.kind == "grant":
            states[key] = ConsentState(r.patient, r.grantee, True, r.purposes, r.data_classes, r.valid_from,
                                       r.valid_until, r.block_number, r.tx_hash, glass)
        elif r.kind == "revoke":
            states[key] = ConsentState(r.patient, r.grantee, False, 0, 0, 0, 0, r.block_number, r.tx_hash, glass)
        else:
            until = r.valid_until if r.kind == "break_glass_open" else 0
            base = prior or ConsentState(r.patient, r.grantee, False, 0, 0, 0, 0, r.block_number, r.tx_hash)
            states[key] = ConsentState(base.patient, base.grantee, base.granted, base.purposes, base.data_classes,
                                       base.valid_from, base.valid_until, base.block, base.tx_hash, until)
    return states


# ----------------------------------------------------------------------------- checkpoints
def checkpoints(db: IndexDB, chain_id: int, count: int = 16) -> list[tuple[int, str]]:
    """Up to `count` stored (block, hash) pairs spread over the indexed range, newest included."""
    with db.engine.connect() as conn:
        total = conn.execute(select(func.count()).where(Block.chain_id == chain_id)).scalar() or 0
        if total == 0:
            return []
        step = max(1, total // count)
        rows = conn.execute(select(Block.number, Block.hash).where(Block.chain_id == chain_id)
                            .order_by(Block.number)).all()
    picked = rows[::step][:count - 1] + [rows[-1]]
    return sorted({(int(n), h) for n, h in picked})
