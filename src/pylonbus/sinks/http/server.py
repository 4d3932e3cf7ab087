"""The HTTP sink: one listening socket that serves `/metrics` (Prometheus text format), `/` (a live page of the
stack), `/api/state` (the newest reading as JSON) and `/healthz`. A reading is rendered on the first request after it
arrived, once, so a cycle nobody asks about costs nothing and a request only copies bytes; stdlib only.

One thread serves every connection from a selector: a crowd of clients costs sockets, never threads, and the
sockets are capped well under the process's file limit so that the spool, the serial port and the database
connection always get theirs. Every connection has a deadline (idle, a request's head, a response's sending),
so idle and slow (slowloris) clients are closed, and at the cap the longest quiet connection makes room for a new
one: a scraper is served whatever the others do."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import re
import resource
import selectors
import socket
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import PylonbusError
from ...readings.documents import reading_state
from ...wakeup import Wakeup
from .. import address_host
from .metrics import exposition

if TYPE_CHECKING:
    from ...readings.reading import Reading
    from ...store.spool import Spool

log = logging.getLogger("pylon2influx")
STALE_INTERVALS = 3  # a last good cycle older than this many intervals makes /healthz 503 and the page warn
MAX_CONNECTIONS = 256  # a scraper and a few pages need a handful; this bounds what a crowd costs
FD_RESERVE = 128  # file descriptors left to the rest of the daemon (spool, serial port, database, broker)
IDLE_TIMEOUT = 15.0  # s a kept-alive connection may wait for its next request (told in Keep-Alive)
REQUEST_TIMEOUT = 10.0  # s from a request's first byte to its whole head: a byte every few seconds is no request
SEND_TIMEOUT = 10.0  # s a response may take to leave, for a client that does not read
MAX_HEAD = 8192  # bytes of request line and headers
ACCEPT_PAUSE = 1.0  # s without accepting after the process ran out of file descriptors
TICK = 0.25  # s between deadline sweeps while a connection is open (with none, the thread sleeps until one comes)
HEAD_END = re.compile(rb"\r?\n\r?\n")
ADDRESS = re.compile(
    r"\[(?P<v6>[0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]:(?P<port6>\d{1,5})|(?P<host>[^\s:\[\]/]+):(?P<port>\d{1,5})"
)
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds: float) -> str:
    """RFC 9110's IMF-fixdate of a time (`Tue, 01 Dec 2026 20:53:03 GMT`), its names in English whatever the
    locale: `email.utils.formatdate` writes the same, but loads the email package, random and calendar (0.4 MB)."""
    t = time.gmtime(seconds)
    return (
        f"{WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def listen_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6); the host is required, so that nobody exposes the page by accident."""
    match = ADDRESS.fullmatch(text)
    port = int(match["port6"] or match["port"]) if match else 0
    if match is None or not 0 < port < 65536:
        raise PylonbusError(
            f"--http {text}: give HOST:PORT, e.g. 127.0.0.1:9101 (0.0.0.0:9101 for every interface, [::1]:9101 "
            "for IPv6)"
        )
    return match["v6"] or match["host"], port


def connection_cap() -> int:
    """MAX_CONNECTIONS, or fewer where the file limit leaves less beside FD_RESERVE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(4, min(MAX_CONNECTIONS, soft - FD_RESERVE))


def bind(listen: str) -> socket.socket:
    """The listening socket of `listen`, IPv4 or IPv6 as its host is."""
    host, port = listen_address(listen)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            address_host(host), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        server = socket.socket(family, kind, proto)
    except OSError as error:
        raise PylonbusError(f"--http {listen}: {error.strerror or error}; choose another address or port") from None
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
        server.bind(address)
        server.listen(128)
    except OSError as error:
        server.close()
        raise PylonbusError(f"--http {listen}: {error.strerror or error}; choose another address or port") from None
    server.setblocking(False)
    return server


class _Connection:
    __slots__ = ("deadline", "inbox", "keep", "outbox", "peer", "sock", "started")

    def __init__(self, sock: socket.socket, peer: str, now: float) -> None:
        self.sock = sock
        self.peer = peer
        self.inbox = bytearray()
        self.outbox: list[memoryview] = []
        self.deadline = now + IDLE_TIMEOUT
        self.started = 0.0  # when the request being read began; 0 while idle
        self.keep = True


# Package data beside this module (importlib.resources would import zipfile, tempfile, bz2 and lzma: 1.5 MB).
PAGE = Path(__file__).with_name("live.html").read_bytes()


class HttpSink:
    spooling = False

    def __init__(self, listen: str, interval: float, queues: list[Spool] | None = None) -> None:
        self.server = bind(listen)
        self.listen = listen
        self.interval = interval
        self.queues = queues or []
        # The newest reading with what /metrics shows beside it (last success, spool), replaced in one assignment
        # by `publish`; and its rendering (/metrics, the JSON state), made from it by the serving thread.
        self._latest: tuple[Reading, float | None] | None = None
        self._rendered: tuple[object, bytes, bytes] = (None, b"# no cycle yet\n", json.dumps({"stacks": []}).encode())
        self.last_success: float | None = None  # s since the epoch, start of the last cycle a module answered
        self._last_good = -float("inf")  # the same on the monotonic clock
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._wakeup = Wakeup()  # close() stops the thread
        self._connections: OrderedDict[int, _Connection] = OrderedDict()  # the longest quiet first
        self._cap = connection_cap()
        self._accept_paused_until = 0.0
        self._date = (0, "")
        self.counts = {"requests": 0, "shed": 0, "timed out": 0, "refused": 0}
        self._told: set[str] = set()
        log.info("serving http://%s/ (metrics at /metrics)", listen)

    def start(self) -> None:
        self._selector.register(self.server, selectors.EVENT_READ)
        self._selector.register(self._wakeup.fd, selectors.EVENT_READ, self._wakeup)
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._thread.start()

    def publish(self, reading: Reading) -> None:
        if any(module.online for module in reading.modules):
            self.last_success = reading.time_ns / 1e9
            self._last_good = time.monotonic()
        self._latest = (reading, self.last_success)

    def _render(self) -> tuple[bytes, bytes]:
        """/metrics and the JSON state (without `stale` and `now`, which each request adds) of the newest
        reading, rendered on the first request that wants them."""
        latest = self._latest
        if latest is not None and self._rendered[0] is not latest:
            reading, last_success = latest
            state = reading_state(reading)
            spool = self._spool()
            metrics = exposition(state, last_success, spool).encode()
            body = json.dumps(state | {"interval": self.interval, "last_success": last_success}).encode()
            self._rendered = (latest, metrics, body)
        return self._rendered[1], self._rendered[2]

    def _spool(self) -> tuple[int, int] | None:
        """Batches waiting and dropped in the sinks' queues, read when /metrics is rendered (not every cycle)."""
        if not self.queues:
            return None
        try:
            return sum(q.pending() for q in self.queues), sum(q.counter("dropped") for q in self.queues)
        except PylonbusError:
            return None

    @property
    def metrics(self) -> bytes:
        return self._render()[0]

    def healthy(self) -> bool:
        return time.monotonic() - self._last_good <= STALE_INTERVALS * self.interval

    def state_json(self) -> bytes:
        state = self._render()[1]
        return b'%s, "stale": %s, "now": %s}' % (
            state[:-1],
            b"false" if self.healthy() else b"true",
            repr(time.time()).encode(),
        )

    def statistics(self) -> str:
        counts = ", ".join(f"{name}: {count}" for name, count in self.counts.items())
        return f"http on {self.listen} ({len(self._connections)} connections open, {counts})"

    def close(self, seconds: float) -> int:
        if self._thread is not None:
            self._stop.set()
            self._wakeup.set()
            self._thread.join(max(seconds, TICK * 2))
        for connection in list(self._connections.values()):
            self._drop(connection)
        self._selector.close()
        self.server.close()
        if self._thread is None or not self._thread.is_alive():
            self._wakeup.close()
        return 0

    def _tell_once(self, what: str, message: str, *args: object) -> None:
        """A client's misbehaviour in the log once; the statistics (SIGHUP, exit) count the rest."""
        if what not in self._told:
            self._told.add(what)
            log.warning(message + "; later ones are counted in the statistics (SIGHUP)", *args)

    def _serve(self) -> None:
        sweep = 0.0
        while not self._stop.is_set():
            # Woken 4 times a second with nothing to sweep, the thread cost 0.3 ms of CPU a cycle of 1 s.
            timeout = TICK if self._connections or self._accept_paused_until else None
            for key, events in self._selector.select(timeout):
                if key.data is None:
                    self._accept()
                elif key.data is self._wakeup:
                    self._wakeup.clear()
                elif events & selectors.EVENT_READ:
                    self._receive(key.data)
                elif self._send(key.data):
                    self._answer_waiting(key.data)
            now = time.monotonic()
            if now >= sweep:
                sweep = now + TICK
                self._expire(now)

    def _accept(self) -> None:
        now = time.monotonic()
        for _ in range(64):  # then the connections already open get their turn
            try:
                sock, peer = self.server.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Accepting again at once would spin on the same error: wait for descriptors to come free.
                    self.counts["refused"] += 1
                    self._tell_once(
                        "fds",
                        "http: no file descriptor for a new connection (%s); not accepting for %.0f s",
                        error.strerror,
                        ACCEPT_PAUSE,
                    )
                    self._selector.unregister(self.server)
                    self._accept_paused_until = now + ACCEPT_PAUSE
                return
            if len(self._connections) >= self._cap:
                self.counts["shed"] += 1
                self._tell_once(
                    "cap",
                    "http: %d connections open, the limit; the longest quiet one is closed for each new one",
                    self._cap,
                )
                self._drop(next(iter(self._connections.values())))
            sock.setblocking(False)
            connection = _Connection(sock, str(peer[0]), now)
            self._connections[sock.fileno()] = connection
            self._selector.register(sock, selectors.EVENT_READ, connection)

    def _expire(self, now: float) -> None:
        if self._accept_paused_until and now >= self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._selector.register(self.server, selectors.EVENT_READ)
        for connection in [c for c in self._connections.values() if c.deadline <= now]:
            if connection.started or connection.outbox:  # idle ones just had nothing more to ask
                self.counts["timed out"] += 1
                what = "sent no whole request" if connection.started else "did not take its response"
                self._tell_once(
                    "slow", "http: a client at %s %s within %.0f s; closed", connection.peer, what, REQUEST_TIMEOUT
                )
            self._drop(connection)

    def _drop(self, connection: _Connection) -> None:
        self._connections.pop(connection.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):  # never registered, or the selector is closed
            self._selector.unregister(connection.sock)
        connection.sock.close()

    def _receive(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(connection)
            return
        now = time.monotonic()
        if not connection.started:
            connection.started = now
            connection.deadline = now + REQUEST_TIMEOUT  # a byte now and then does not move it
        connection.inbox += data
        self._connections.move_to_end(connection.sock.fileno())
        self._answer_waiting(connection)

    def _answer_waiting(self, connection: _Connection) -> None:
        """Answer the requests in the inbox whose head is complete, while their answers leave at once; a client
        that does not read stops being read, so what it pipelines is bounded."""
        while (end := HEAD_END.search(connection.inbox)) is not None:
            head = bytes(connection.inbox[: end.start()]).lstrip(b"\r\n")  # blank lines before a request are allowed
            del connection.inbox[: end.end()]
            if not self._respond(connection, *self._request(connection, head)):
                return
        if len(connection.inbox) > MAX_HEAD:
            connection.keep = False
            self._respond(connection, 431, b"request head too long\n", "text/plain", send_body=True)
        elif connection.inbox and not connection.started:
            connection.started = time.monotonic()  # the next request has begun, before this answer went out
            connection.deadline = connection.started + REQUEST_TIMEOUT

    def _request(self, connection: _Connection, head: bytes) -> tuple[int, bytes, str, bool]:
        lines = head.decode("latin-1").splitlines()
        parts = lines[0].split() if lines else []
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            connection.keep = False
            return 400, b"bad request\n", "text/plain", True
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        tokens = {token.strip() for token in headers.get("connection", "").split(",")}
        connection.keep = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
            connection.keep = False  # a body we will not read would be taken for the next request
            return 400, b"a request has no body here\n", "text/plain", True
        if method not in ("GET", "HEAD"):
            connection.keep = False
            return 405, b"GET or HEAD only\n", "text/plain", True
        status, body, kind = self._route(target.split("?", 1)[0])
        log.debug("http %s: %s %s %d", connection.peer, method, target, status)
        return status, body, kind, method == "GET"

    def _route(self, path: str) -> tuple[int, bytes, str]:
        if path == "/metrics":
            return 200, self.metrics, "text/plain; version=0.0.4; charset=utf-8"
        if path == "/api/state":
            return 200, self.state_json(), "application/json"
        if path == "/healthz":
            healthy = self.healthy()
            return (
                (200, b"ok\n", "text/plain; charset=utf-8")
                if healthy
                else (503, b"stale\n", "text/plain; charset=utf-8")
            )
        if path in ("/", "/index.html"):
            return 200, PAGE, "text/html; charset=utf-8"
        return 404, b"not found: try /, /metrics, /api/state or /healthz\n", "text/plain"

    def _respond(self, connection: _Connection, status: int, body: bytes, kind: str, send_body: bool) -> bool:
        """Send a response; True when it left at once and the connection stays open for the next request."""
        self.counts["requests"] += 1
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, http_date(now))
        persistence = f"Keep-Alive: timeout={IDLE_TIMEOUT:.0f}" if connection.keep else "Connection: close"
        head = (
            f"HTTP/1.1 {status} {REASONS[status]}\r\nDate: {self._date[1]}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n{persistence}\r\n\r\n"
        )
        # The body is the shared rendering of this cycle: a view of it, not a copy per connection.
        connection.outbox = [memoryview(head.encode()), memoryview(body)] if send_body else [memoryview(head.encode())]
        connection.started = 0.0
        connection.deadline = time.monotonic() + SEND_TIMEOUT
        return self._send(connection)

    def _send(self, connection: _Connection) -> bool:
        """Send what is left of the response; True when all of it left and the connection stays open. Head and
        body leave in one call: sent apart, the body waited for the client's delayed ACK of the head (Nagle),
        40 ms a request."""
        try:
            while connection.outbox:
                sent = connection.sock.sendmsg(connection.outbox)
                while connection.outbox and sent >= len(connection.outbox[0]):
                    sent -= len(connection.outbox.pop(0))
                if sent:
                    connection.outbox[0] = connection.outbox[0][sent:]
        except BlockingIOError:
            self._selector.modify(connection.sock, selectors.EVENT_WRITE, connection)  # the rest when it drains
            return False
        except OSError:
            self._drop(connection)
            return False
        if not connection.keep:
            self._drop(connection)
            return False
        connection.deadline = time.monotonic() + IDLE_TIMEOUT
        self._selector.modify(connection.sock, selectors.EVENT_READ, connection)
        return True
