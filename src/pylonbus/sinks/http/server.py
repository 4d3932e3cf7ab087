"""The HTTP sink: one listening socket that serves `/metrics` (Prometheus text format), `/` (a live page of the
stack), `/api/state` (the newest reading as JSON) and `/healthz`. Each cycle renders its documents once, so a
request only copies bytes; stdlib only."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

from ...errors import PylonbusError
from ...readings.documents import reading_state
from .metrics import exposition

if TYPE_CHECKING:
    from ...readings.reading import Reading
    from ...store.spool import Spool

log = logging.getLogger("pylon2influx")
STALE_INTERVALS = 3  # a last good cycle older than this many intervals makes /healthz 503 and the page warn


def listen_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6); the host is required, so that nobody exposes the page by accident."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PylonbusError(f"--http {text}: give HOST:PORT, e.g. 127.0.0.1:9101 (0.0.0.0:9101 for every interface)")
    return host, int(port)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    sink: HttpSink


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a scraper or the page reuses its connection
    server: _Server

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        sink = self.server.sink
        path = self.path.split("?", 1)[0]
        status = 200
        if path == "/metrics":
            body, kind = sink.metrics, "text/plain; version=0.0.4; charset=utf-8"
        elif path == "/api/state":
            body, kind = sink.state_json(), "application/json"
        elif path == "/healthz":
            healthy = sink.healthy()
            status = 200 if healthy else 503
            body, kind = (b"ok\n" if healthy else b"stale\n"), "text/plain; charset=utf-8"
        elif path in ("/", "/index.html"):
            body, kind = PAGE, "text/html; charset=utf-8"
        else:
            status, body, kind = 404, b"not found: try /, /metrics, /api/state or /healthz\n", "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, self.address_string(), *args)


PAGE = resources.files(__package__).joinpath("live.html").read_bytes()


class HttpSink:
    spooling = False

    def __init__(self, listen: str, interval: float, queues: list[Spool] | None = None) -> None:
        host, port = listen_address(listen)
        try:
            self.server = _Server((host, port), _Handler)
        except OSError as error:
            raise PylonbusError(f"--http {listen}: {error.strerror or error}; choose another address or port") from None
        self.server.sink = self
        self.listen = listen
        self.interval = interval
        self.queues = queues or []
        self.metrics = b"# no cycle yet\n"
        self._state: dict[str, Any] = {"stacks": []}
        self.last_success: float | None = None  # s since the epoch, start of the last cycle a module answered
        self._last_good = -float("inf")  # the same on the monotonic clock
        self._thread: threading.Thread | None = None
        log.info("serving http://%s/ (metrics at /metrics)", listen)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)
        self._thread.start()

    def publish(self, reading: Reading) -> None:
        state = reading_state(reading)
        if any(module.online for module in reading.modules):
            self.last_success = reading.time_ns / 1e9
            self._last_good = time.monotonic()
        spool = None
        if self.queues:
            try:
                spool = (sum(q.pending() for q in self.queues), sum(q.counter("dropped") for q in self.queues))
            except PylonbusError:
                spool = None
        self.metrics = exposition(state, self.last_success, spool).encode()
        self._state = state | {"interval": self.interval, "last_success": self.last_success}

    def healthy(self) -> bool:
        return time.monotonic() - self._last_good <= STALE_INTERVALS * self.interval

    def state_json(self) -> bytes:
        return json.dumps(self._state | {"stale": not self.healthy(), "now": time.time()}).encode()

    def statistics(self) -> str:
        return f"http on {self.listen}"

    def close(self, seconds: float) -> int:
        if self._thread is not None:
            self.server.shutdown()
        self.server.server_close()
        return 0
