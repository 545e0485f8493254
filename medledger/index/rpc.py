"""A JSON-RPC reader made for public providers' limits: adaptive ``eth_getLogs`` ranges, retries, 429s.

Providers cap log queries by block range (Alchemy 2,000, QuickNode free 5, Infura 10,000) and by
result count (Infura 10,000: error -32005), with inclusive bounds. :meth:`RpcReader.get_logs_adaptive`
halves the range when a node says a query is too large, and doubles it again after successes.
Timeouts, connection errors, HTTP 429/5xx and JSON-RPC rate-limit errors are retried with
exponential backoff and jitter (``Retry-After`` is honoured).
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from ..errors import ChainError

#: Words that providers use when a log query is too large (range or result count).
LIMIT_HINTS = ("limit", "too many", "range", "exceed", "more than", "too large", "query returned", "block range",
               "response size", "10000 results")
#: JSON-RPC error codes that mean "ask for less" (-32005: Infura's result cap; -32602 range on some nodes).
LIMIT_CODES = frozenset({-32005, -32602, -32614})
RATE_HINTS = ("rate limit", "too many requests", "429", "capacity", "try again")


class RangeTooLarge(ChainError):
    """The node refused a log query as too large (block range or result count)."""


@dataclass
class RetryPolicy:
    attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 8.0


class RpcReader:
    """The few read calls the indexer needs, over one HTTP session per thread (the indexer reads the next
    chunk's logs in one thread while another checks block hashes)."""

    def __init__(self, url: str, *, timeout: float = 30.0, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._id = 0
        self.retries = 0  # transient failures seen (timeouts, 429s, 5xx): for progress and tests

    @property
    def session(self) -> requests.Session:
        """This thread's HTTP session (requests does not promise that one session is safe across threads)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def _next_id(self) -> int:
        with self._lock:
            self._id += 1
            return self._id

    def _retried(self) -> None:
        with self._lock:
            self.retries += 1

    # ------------------------------------------------------------------ transport
    def call(self, method: str, params: Sequence[Any]) -> Any:
        """One JSON-RPC call, retried on transient failures; raises ChainError or RangeTooLarge."""
        delay = self.retry.base_delay
        last = ""
        for attempt in range(self.retry.attempts):
            wait: float | None = None
            try:
                response = self.session.post(self.url, json={"jsonrpc": "2.0", "id": self._next_id(),
                                                              "method": method, "params": list(params)},
                                             timeout=self.timeout)
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
                last = f"{type(exc).__name__}"
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    last = f"HTTP {response.status_code}"
                    wait = _retry_after(response.headers)
                else:
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    if not isinstance(body, dict):
                        if response.status_code >= 400:
                            last = f"HTTP {response.status_code}"
                            raise ChainError(f"RPC {self.url} refused {method}: {last}")
                        last = "a malformed response"
                    elif "error" in body and body["error"] is not None:
                        error = body["error"] if isinstance(body["error"], dict) else {"message": str(body["error"])}
                        message = str(error.get("message", "")).splitlines()[0] if error.get("message") else ""
                        code = error.get("code")
                        lowered = message.lower()
                        if method == "eth_getLogs" and (code in LIMIT_CODES or any(h in lowered for h in LIMIT_HINTS)):
                            raise RangeTooLarge(f"{method}: {message} ({code})")
                        if any(h in lowered for h in RATE_HINTS):
                            last = f"rate limited ({message})"
                        else:
                            raise ChainError(f"RPC {self.url} refused {method}: {message} ({code})")
                    else:
                        return body.get("result")
            self._retried()
            if attempt + 1 < self.retry.attempts:
                pause = wait if wait is not None else delay * (0.5 + random.random())
                self._sleep(min(pause, self.retry.max_delay))
                delay = min(delay * 2, self.retry.max_delay)
        raise ChainError(f"RPC {self.url} failed {method} {self.retry.attempts} times (last: {last}); "
                         "is the node up, or is the provider throttling this key?")

    # ------------------------------------------------------------------ calls
    def chain_id(self) -> int:
        return int(self.call("eth_chainId", []), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber", []), 16)

    def block_hash(self, number: int) -> str | None:
        """The hash of block `number`, or None when the chain has no such block (yet, or any more)."""
        block = self.call("eth_getBlockByNumber", [hex(number), False])
        return None if not block else str(block["hash"]).lower()

    def block_hashes(self, numbers: Sequence[int]) -> dict[int, str | None]:
        """The hashes of several blocks in one JSON-RPC batch (one call each if the node refuses batches)."""
        numbers = list(numbers)
        if len(numbers) <= 1:
            return {n: self.block_hash(n) for n in numbers}
        payload = [{"jsonrpc": "2.0", "id": i, "method": "eth_getBlockByNumber", "params": [hex(n), False]}
                   for i, n in enumerate(numbers)]
        delay = self.retry.base_delay
        for attempt in range(self.retry.attempts):
            try:
                response = self.session.post(self.url, json=payload, timeout=self.timeout)
                body = response.json() if response.status_code == 200 else None
            except (requests.exceptions.RequestException, ValueError):
                body = None
            if isinstance(body, list) and len(body) == len(numbers) and all("result" in r for r in body):
                by_id = {r["id"]: r["result"] for r in body}
                return {n: (str(by_id[i]["hash"]).lower() if by_id.get(i) else None) for i, n in enumerate(numbers)}
            if isinstance(body, (dict, list)):
                break  # the node answered but does not do batches (or refused one item): one call each
            self._retried()
            if attempt + 1 < self.retry.attempts:
                self._sleep(min(delay * (0.5 + random.random()), self.retry.max_delay))
                delay = min(delay * 2, self.retry.max_delay)
        return {n: self.block_hash(n) for n in numbers}

    def get_logs(self, addresses: Sequence[str], start: int, end: int) -> list[dict[str, Any]]:
        """The logs of `addresses` in blocks [start, end] (both inclusive)."""
        logs = self.call("eth_getLogs", [{"address": list(addresses), "fromBlock": hex(start), "toBlock": hex(end)}])
        return [log for log in logs or [] if not log.get("removed")]


class AdaptiveRange:
    """The block-range size to ask for next: halves on a limit error, doubles after `grow_after` successes."""

    def __init__(self, initial: int = 2_000, minimum: int = 1, maximum: int = 10_000, grow_after: int = 2) -> None:
        self.size = max(minimum, min(initial, maximum))
        self.minimum, self.maximum, self.grow_after = minimum, maximum, grow_after
        self._streak = 0

    def shrink(self) -> bool:
        """Halves the range; False when it is already at the minimum."""
        if self.size <= self.minimum:
            return False
        self.size = max(self.minimum, self.size // 2)
        self._streak = 0
        return True

    def succeeded(self) -> None:
        self._streak += 1
        if self._streak >= self.grow_after and self.size < self.maximum:
            self.size = min(self.maximum, self.size * 2)
            self._streak = 0


def get_logs_adaptive(reader: RpcReader, addresses: Sequence[str], start: int, last: int,
                      window: AdaptiveRange) -> tuple[int, list[dict[str, Any]]]:
    """Logs from `start` up to at most `last`: returns (end block actually covered, logs)."""
    while True:
        end = min(last, start + window.size - 1)
        try:
            logs = reader.get_logs(addresses, start, end)
        except RangeTooLarge as exc:
            if not window.shrink():
                raise ChainError(f"the node refuses even a {window.size}-block log query at block {start}: {exc}") \
                    from None
            continue
        window.succeeded()
        return end, logs


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
