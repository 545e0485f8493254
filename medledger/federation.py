"""A patient's history across custodians (issue 17, "Federation"): one call, every custodian's gateway.

1. **Which records, and whose.** Every version the chain anchored for the patient (from the event index,
   `medledger.index.queries.record_versions`, or a chain scan, `RecordRegistry.patient_versions`) is folded by
   :func:`custody` into one :class:`CustodyRecord` per record. Its custodian is the record's anchoring
   author: the provider whose gateway sealed and stores it.
2. **Where.** Each custodian's gateway endpoint is read from the CareRegistry (`gatewayEndpointOf`) and checked
   with :func:`medledger.endpoints.check_gateway_url` before it is contacted: the contract checks only the
   length, so a published URL is untrusted input.
3. **Fetch.** Each record is read from its custodian's gateway with an authenticated
   :class:`~medledger.gateway.client.GatewayClient` signed by the reader's own key (the patient, one of her
   pairwise pseudonyms, or a consented party). The gateway decides consent and audits the read.

Custodians are asked concurrently (at most `MAX_CONCURRENT_CUSTODIANS` at once); the timeline and the reports
come out in a deterministic order (anchoring order; custodians by their first record). A custodian without an
endpoint, an unreachable gateway or a refusal is one :class:`CustodianReport`; the other custodians' records
are still fetched. :attr:`History.complete` says whether every record was.
The CLI (`medledger record history`) and the browser app call :func:`fetch_history`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from . import scopes
from .accounts import Signer
from .contracts import CareRegistry, RecordEvent
from .endpoints import check_gateway_url
from .errors import GatewayEndpointInvalid, GatewayUnreachable
from .gateway.client import GatewayClient, GatewayClientError


class FetchStatus(StrEnum):
    """What became of one record."""

    FETCHED = "fetched"
    REFUSED = "refused"          # the gateway refused the reader (403, with its reasons)
    NOT_FOUND = "not found"      # the gateway answered 404: it holds no such record, or it is not the reader's to know
    UNAVAILABLE = "unavailable"  # the custodian could not be asked (no endpoint, unreachable, sign-in refused)


class CustodianStatus(StrEnum):
    """What became of one custodian."""

    OK = "ok"                    # every record fetched
    PARTIAL = "partial"          # some records fetched, some refused or not found
    REFUSED = "refused"          # none fetched: sign-in or every record refused or not found
    NO_ENDPOINT = "no endpoint"  # the custodian publishes no gateway endpoint
    BAD_ENDPOINT = "bad endpoint"  # it publishes a URL that is not an https origin (never contacted)
    UNREACHABLE = "unreachable"  # no MedLedger gateway of this chain answers there


@dataclass(frozen=True)
class CustodyRecord:
    """One record of the patient and its custodian, from the chain's anchoring events."""

    record_id: str
    patient: str
    custodian: str          # the anchoring author (version 1, or the first version seen)
    version: int            # the latest version anchored
    anchored_block: int
    log_index: int
    data_class: int | None


def custody(versions: Iterable[RecordEvent]) -> list[CustodyRecord]:
    """One CustodyRecord per record of `versions` (any order), in anchoring order."""
    first: dict[str, RecordEvent] = {}
    latest: dict[str, int] = {}
    for ev in sorted(versions, key=lambda e: (e.block, e.log_index)):
        first.setdefault(ev.record_id, ev)
        latest[ev.record_id] = max(latest.get(ev.record_id, 0), ev.version)
    return [CustodyRecord(rid, ev.patient, ev.author, latest[rid], ev.block, ev.log_index, ev.data_class)
            for rid, ev in first.items()]


@dataclass(frozen=True)
class Entry:
    """One record of the timeline: where it lives and what its custodian's gateway answered."""

    record: CustodyRecord
    anchored_at: int                    # the anchoring block's time (Unix seconds)
    endpoint: str | None
    status: FetchStatus
    reason: str = ""
    document: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def resource_types(self) -> list[str]:
        """The FHIR resource types the reader was given (in the Bundle's order, each once)."""
        entries = (self.document or {}).get("entry", [])
        return list(dict.fromkeys(e.get("resource", {}).get("resourceType", "?") for e in entries))

    @property
    def last_updated(self) -> str | None:
        return (self.document or {}).get("meta", {}).get("lastUpdated")


@dataclass(frozen=True)
class CustodianReport:
    """One custodian: its endpoint and what became of its records, in one line (:meth:`line`)."""

    custodian: str
    endpoint: str | None
    status: CustodianStatus
    records: int
    fetched: int
    reason: str = ""

    def line(self, name: str | None = None) -> str:
        who = f"{name} ({self.custodian})" if name else self.custodian
        where = f" at {self.endpoint}" if self.endpoint else ""
        counts = f"{self.fetched} of {self.records} record(s) fetched"
        return f"{who}{where}: {self.status.value}, {counts}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True)
class History:
    """A patient's merged timeline across custodians."""

    patients: tuple[str, ...]
    entries: tuple[Entry, ...]
    custodians: tuple[CustodianReport, ...]

    @property
    def complete(self) -> bool:
        """Whether every record was fetched."""
        return all(e.status is FetchStatus.FETCHED for e in self.entries)


Connect = Callable[[str, Signer, int, httpx.Client], GatewayClient]

#: Custodians asked at the same time (each on its own connection pool); the rest wait for a free worker.
MAX_CONCURRENT_CUSTODIANS = 8


def _connect(url: str, signer: Signer, chain_id: int, http: httpx.Client) -> GatewayClient:
    """A signed-in client of the gateway at `url` for `signer` (`GatewayClient.connect`, on this custodian's pool)."""
    return GatewayClient.connect(url, signer, chain_id, http=http)


class _Custodian:
    """The fetches of one custodian's records (one HTTP connection pool, one sign-in per reader)."""

    def __init__(self, custodian: str, endpoint: str | None, records: list[CustodyRecord], chain_id: int,
                 reader_of: Callable[[str], Signer], purpose: str, timeout: float, connect: Connect) -> None:
        self.custodian, self.endpoint, self.records = custodian, endpoint, records
        self.chain_id, self.reader_of, self.purpose, self.timeout, self.connect = (chain_id, reader_of, purpose,
                                                                                   timeout, connect)
        self.results: dict[str, tuple[FetchStatus, str, dict[str, Any] | None]] = {}

    def _all(self, status: FetchStatus, reason: str, records: Iterable[CustodyRecord] | None = None) -> None:
        for r in records if records is not None else self.records:
            self.results.setdefault(r.record_id, (status, reason, None))

    def run(self) -> CustodianReport:
        if self.endpoint is None:
            reason = "publishes no gateway endpoint (`medledger registry endpoint set URL`)"
            self._all(FetchStatus.UNAVAILABLE, "the custodian publishes no gateway endpoint")
            return self._report(CustodianStatus.NO_ENDPOINT, reason)
        try:
            url = check_gateway_url(self.endpoint)
        except GatewayEndpointInvalid as exc:
            self._all(FetchStatus.UNAVAILABLE, "the custodian's published endpoint is not usable")
            return self._report(CustodianStatus.BAD_ENDPOINT, f"not contacted: {exc}")
        by_reader: dict[str, list[CustodyRecord]] = {}
        for r in self.records:
            by_reader.setdefault(r.patient, []).append(r)
        refusals: list[str] = []
        with httpx.Client(base_url=url, timeout=self.timeout) as http:
            for patient, records in by_reader.items():
                try:  # the client raises the domain errors only: GatewayUnreachable or GatewayClientError
                    client = self.connect(url, self.reader_of(patient), self.chain_id, http)
                    for r in records:
                        try:
                            doc = client.get_record(r.record_id, self.purpose)
                        except GatewayClientError as exc:
                            if isinstance(exc, GatewayUnreachable):
                                raise
                            status = FetchStatus.NOT_FOUND if exc.status == 404 else FetchStatus.REFUSED
                            refusals.append(str(exc))
                            self.results[r.record_id] = (status, str(exc), None)
                            continue
                        self.results[r.record_id] = (FetchStatus.FETCHED, "", doc)
                except GatewayClientError as exc:
                    if isinstance(exc, GatewayUnreachable) or exc.status == 421:  # nothing, not a gateway, other chain
                        self._all(FetchStatus.UNAVAILABLE, str(exc))
                        return self._report(CustodianStatus.UNREACHABLE, str(exc))
                    refusals.append(f"sign-in refused: {exc}")
                    self._all(FetchStatus.REFUSED, f"sign-in refused: {exc}", records)
        fetched = sum(s is FetchStatus.FETCHED for s, _, _ in self.results.values())
        if fetched == len(self.records):
            return self._report(CustodianStatus.OK, "")
        reasons = "; ".join(dict.fromkeys(refusals))
        return self._report(CustodianStatus.PARTIAL if fetched else CustodianStatus.REFUSED, reasons)

    def _report(self, status: CustodianStatus, reason: str) -> CustodianReport:
        fetched = sum(s is FetchStatus.FETCHED for s, _, _ in self.results.values())
        return CustodianReport(self.custodian, self.endpoint, status, len(self.records), fetched, reason)


def fetch_history(records: Sequence[CustodyRecord], care: CareRegistry, reader_of: Callable[[str], Signer], *,
                  purpose: str = "TREAT", timeout: float = 10.0, connect: Connect = _connect,
                  max_concurrent: int = MAX_CONCURRENT_CUSTODIANS) -> History:
    """Fetches every record of `records` from its custodian's gateway, as the signer `reader_of(patient)` gives
    for the record's patient (address), and merges them into one timeline in anchoring order. Up to
    `max_concurrent` custodians are asked at once; the output does not depend on which answers first."""
    purpose = scopes.purpose(purpose).name  # ScopeError naming the known purposes, before any request
    chain = care.chain
    chain_id = chain.chain_id
    by_custodian: dict[str, list[CustodyRecord]] = {}
    for r in records:
        by_custodian.setdefault(r.custodian, []).append(r)
    endpoints = {custodian: care.gateway_endpoint(custodian) for custodian in by_custodian}
    signers = {r.patient: reader_of(r.patient) for r in records}  # here, not in the workers: a keystore may prompt
    jobs = [_Custodian(custodian, endpoints[custodian], own, chain_id, signers.__getitem__, purpose, timeout, connect)
            for custodian, own in by_custodian.items()]
    # Custodians are asked concurrently (a slow or dead one costs its own timeout, not everyone's); the reports
    # keep the custodians' order of first anchoring, whatever order they answer in.
    with ThreadPoolExecutor(max_workers=max(1, min(max_concurrent, len(jobs))),
                            thread_name_prefix="medledger-federation") as pool:
        reports = list(pool.map(_Custodian.run, jobs))
    results: dict[str, tuple[FetchStatus, str, dict[str, Any] | None]] = {}
    for job in jobs:
        results.update(job.results)
    times: dict[int, int] = {}
    for r in records:
        if r.anchored_block not in times:
            times[r.anchored_block] = int(chain.w3.eth.get_block(r.anchored_block)["timestamp"])
    entries = [Entry(r, times[r.anchored_block], endpoints[r.custodian], *results[r.record_id])
               for r in sorted(records, key=lambda r: (r.anchored_block, r.log_index, r.record_id))]
    patients = tuple(dict.fromkeys(r.patient for r in records))
    return History(patients, tuple(entries), tuple(reports))
