"""InfluxDB line protocol over HTTP(S) with keep-alive: v1 `/write`, v2 `/api/v2/write`, or a custom path; the
status policy of an answer (`Outcome`) stays here, with the shipper that acts on it."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from ...errors import PylonbusError
from .. import tls_context
from .config import InfluxTarget, redact
from .connection import Connection, HttpError, describe

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 3600.0  # s; a server asking for more (or for NaN) is not followed


@dataclass(frozen=True)
class Outcome:
    """What became of one write: `status` is the HTTP code, or 0 for a transport error or timeout."""

    status: int
    message: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def what(self) -> str:
        """The answer in a few words for the log."""
        return f"HTTP {self.status}" if self.status else "no connection"

    @property
    def malformed(self) -> bool:
        """The server refuses the data itself: retrying it can never succeed."""
        return self.status == 400

    @property
    def too_large(self) -> bool:
        return self.status == 413

    @property
    def misconfigured(self) -> bool:
        """Wrong token, org, bucket or database: keep the data, fix the configuration."""
        return self.status in (401, 403, 404)


class Writer(Protocol):
    """Where the shipper sends request bodies: `write(body) -> Outcome`."""

    def write(self, body: bytes) -> Outcome: ...

    def close(self) -> None: ...


class Deadline:
    """Bounds a whole request: a read timeout bounds each wait for a byte, so a peer that sends its headers a
    byte a second would hold a request for as long as it likes. When the deadline passes, the connection's
    socket is shut down, which ends the request in flight with an error.

    One watching thread serves every request (a timer thread started for each cost 0.25 ms of CPU a request):
    each request's end is later than the one before, so the watcher, asleep until an earlier request's end,
    is never late for the one in flight."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.connection: Connection | None = None
        self.passed = False
        self._ends: float | None = None  # when the request in flight must have ended (monotonic); None: none
        self._armed = threading.Event()
        threading.Thread(target=self._watch, name="request-deadline", daemon=True).start()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self.passed = False
        self._ends = time.monotonic() + self.seconds
        self._armed.set()
        try:
            yield
        finally:
            self._ends = None

    def _watch(self) -> None:
        while True:
            ends = self._ends
            if ends is None:
                self._armed.wait()
                self._armed.clear()
                continue
            left = ends - time.monotonic()
            if left > 0:
                time.sleep(left)
            elif ends == self._ends:  # still the same request: end it, then wait for the next one
                self._expire()
                self._armed.clear()
                if self._ends == ends:  # (a request that began meanwhile set the event again)
                    self._armed.wait()

    def _expire(self) -> None:
        self.passed = True
        sock = getattr(self.connection, "sock", None)  # None between connections
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class InfluxWriter:
    """Posts batches to one InfluxDB-compatible endpoint over one kept-alive connection; `timeout` bounds
    connecting (10 s at most), each read and the whole request."""

    def __init__(self, target: InfluxTarget, timeout: float = 30.0) -> None:
        self.target = target
        self.url = target.url()
        self.headers = target.headers()
        self.secrets = target.secrets
        if any(mark in value for value in self.headers.values() for mark in "\r\n"):
            raise PylonbusError("the InfluxDB token, user or password holds a line break (a token file's second line?)")
        self.deadline = Deadline(timeout)
        parts = urllib.parse.urlsplit(self.url)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        https = parts.scheme == "https"
        tls = tls_context(target.ca_file, target.verify_tls) if https else None
        port = parts.port or (443 if https else 80)
        self.connection = Connection(parts.hostname or "", port, min(timeout, 10.0), timeout, tls)
        self.deadline.connection = self.connection

    def write(self, body: bytes) -> Outcome:
        try:
            with self.deadline.running():
                answer = self.connection.post(self.path, self.headers, body)
        except (OSError, HttpError) as error:
            self.connection.close()  # whatever state it is in, the next request starts afresh
            if self.deadline.passed:
                error_text = f"no complete answer within {self.deadline.seconds:.0f} s (the request was ended)"
            else:
                error_text = describe(error)
            return Outcome(0, redact(f"{self.target.base}: {error_text}", self.secrets))
        if log.isEnabledFor(logging.DEBUG):  # a request a cycle: the redaction only where it is shown
            log.debug('%s "POST %s" %d %d', self.target.base, redact(self.path), answer.status, len(answer.body))
        retry_after = None
        if value := answer.headers.get("retry-after"):
            with contextlib.suppress(ValueError):
                retry_after = float(value)
            if retry_after is not None and not 0 <= retry_after <= MAX_RETRY_AFTER:  # also NaN and inf
                retry_after = None
        # What the peer says is shown in the log: an error page may echo the request, its credentials too.
        text = answer.body[:2000].decode("utf-8", "replace")[:500].strip()
        message = redact(text, self.secrets) if text else ""
        return Outcome(answer.status, message, retry_after)

    def close(self) -> None:
        self.connection.close()
