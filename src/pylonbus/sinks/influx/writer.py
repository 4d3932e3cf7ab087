"""InfluxDB line protocol over HTTP(S) with keep-alive: v1 `/write`, v2 `/api/v2/write`, or a custom path; the
status policy of an answer (`Outcome`) stays here, with the shipper that acts on it."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from .config import InfluxTarget, redact

MAX_RETRY_AFTER = 3600.0  # s; a server asking for more (or for NaN) is not followed


class _RedactFilter(logging.Filter):
    """urllib3 logs each request line at debug level; an --influxapi path may carry credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactFilter())


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
    socket is shut down, which ends the request in flight with an error."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.connection: HTTPConnection | None = None  # the pool's one connection, once made
        self.passed = False

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self.passed = False
        timer = threading.Timer(self.seconds, self._expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _expire(self) -> None:
        self.passed = True
        sock = getattr(self.connection, "sock", None)  # None between connections
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Watched(HTTPConnection):
    """A connection its writer's `Deadline` can end (the pool makes it with the pool's keywords)."""

    def __init__(self, *args: Any, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        deadline.connection = self


class _WatchedTLS(_Watched, HTTPSConnection):
    pass


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _Watched


class _TLSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedTLS


class InfluxWriter:
    """Posts batches to one InfluxDB-compatible endpoint over a pooled, kept-alive connection; `timeout` bounds
    connecting, each read and the whole request."""

    def __init__(self, target: InfluxTarget, timeout: float = 30.0) -> None:
        self.target = target
        self.url = target.url()
        self.headers = target.headers()
        self.secrets = target.secrets
        self.deadline = Deadline(timeout)
        url = urllib3.util.parse_url(self.url)
        self.path = url.request_uri
        options: dict[str, Any] = {"maxsize": 1, "retries": False, "deadline": self.deadline}
        options["timeout"] = urllib3.Timeout(connect=min(timeout, 10.0), read=timeout)
        self.pool: urllib3.HTTPConnectionPool
        if url.scheme == "https":
            cert_reqs = "CERT_REQUIRED" if target.verify_tls else "CERT_NONE"
            self.pool = _TLSPool(url.host or "", url.port, cert_reqs=cert_reqs, ca_certs=target.ca_file, **options)
        else:
            self.pool = _Pool(url.host or "", url.port, **options)
        if not target.verify_tls:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def write(self, body: bytes) -> Outcome:
        try:
            with self.deadline.running():
                response = self.pool.request("POST", self.path, body=body, headers=self.headers)
        except urllib3.exceptions.HTTPError as error:
            if self.deadline.passed:
                error_text = f"no complete answer within {self.deadline.seconds:.0f} s (the request was ended)"
            else:
                error_text = str(error)
            return Outcome(0, redact(f"{self.target.base}: {error_text}", self.secrets))
        retry_after = None
        if value := response.headers.get("Retry-After"):
            with contextlib.suppress(ValueError):
                retry_after = float(value)
            if retry_after is not None and not 0 <= retry_after <= MAX_RETRY_AFTER:  # also NaN and inf
                retry_after = None
        # What the peer says is shown in the log: an error page may echo the request, its credentials too.
        message = redact(response.data.decode("utf-8", "replace")[:500].strip(), self.secrets)
        return Outcome(response.status, message, retry_after)

    def close(self) -> None:
        self.pool.close()
