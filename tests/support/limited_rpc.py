"""A JSON-RPC proxy that behaves like a stingy public provider: block-range and result caps on
eth_getLogs (with the providers' own error codes), random HTTP 429s and random stalls (timeouts)."""
from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from medledger.testing import free_port


class LimitedRpc:
    def __init__(self, upstream: str, *, max_range: int | None = None, max_results: int | None = None,
                 p_429: float = 0.0, p_stall: float = 0.0, stall: float = 1.0, latency: float = 0.0,
                 seed: int = 7) -> None:
        self.upstream = upstream
        self.max_range, self.max_results = max_range, max_results
        self.p_429, self.p_stall, self.stall, self.latency = p_429, p_stall, stall, latency
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LimitedRpc:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _roll(self, p: float) -> bool:
        with self.lock:
            return self.random.random() < p

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: dict | None, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                method = request.get("method") if isinstance(request, dict) else "batch"
                if proxy.latency:
                    time.sleep(proxy.latency)
                if proxy._roll(proxy.p_429):
                    proxy.counts["429"] += 1
                    self._send(429, {"error": "Too Many Requests"}, {"Retry-After": "0"})
                    return
                if proxy._roll(proxy.p_stall):
                    proxy.counts["stall"] += 1
                    time.sleep(proxy.stall)  # longer than the client's timeout
                    self._send(504, None)
                    return
                if method == "batch":
                    proxy.counts["batch"] += 1
                    self._send(200, requests.post(proxy.upstream, json=request, timeout=30).json())
                    return
                if method == "eth_getLogs" and proxy.max_range is not None:
                    f = request["params"][0]
                    span = int(f["toBlock"], 16) - int(f["fromBlock"], 16) + 1
                    if span > proxy.max_range:
                        proxy.counts["range"] += 1
                        self._send(200, {"jsonrpc": "2.0", "id": request.get("id"), "error": {
                            "code": -32602, "message": f"block range {span} exceeds limit of {proxy.max_range}"}})
                        return
                body = requests.post(proxy.upstream, json=request, timeout=30).json()
                if method == "eth_getLogs" and proxy.max_results is not None \
                        and len(body.get("result") or []) > proxy.max_results:
                    proxy.counts["results"] += 1
                    self._send(200, {"jsonrpc": "2.0", "id": request.get("id"), "error": {
                        "code": -32005, "message": f"query returned more than {proxy.max_results} results"}})
                    return
                proxy.counts[method] += 1
                self._send(200, body)

        return Handler
