"""InfluxDB line protocol over HTTP(S) with keep-alive: v1 `/write`, v2 `/api/v2/write`, or a custom path; the
status policy of an answer (`Outcome`) stays here, with the shipper that acts on it."""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import urllib3

if TYPE_CHECKING:
    from .config import InfluxTarget

MAX_RETRY_AFTER = 3600.0  # s; a server asking for more (or for NaN) is not followed
_SECRET_IN_QUERY = re.compile(r"([?&](?:p|password|token)=)[^&#\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the value of every p=, password= and token= query parameter replaced by ***: by position,
    so a user name equal to the password stays readable."""
    return _SECRET_IN_QUERY.sub(r"\1***", text)


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


class InfluxWriter:
    """Posts batches to one InfluxDB-compatible endpoint over a pooled, kept-alive connection."""

    def __init__(self, target: InfluxTarget, timeout: float = 30.0) -> None:
        self.target = target
        self.url = target.url()
        self.headers = target.headers()
        self.pool = urllib3.PoolManager(
            num_pools=1,
            maxsize=1,
            retries=False,
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            cert_reqs="CERT_REQUIRED" if target.verify_tls else "CERT_NONE",
            ca_certs=target.ca_file,
        )
        if not target.verify_tls:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def write(self, body: bytes) -> Outcome:
        try:
            response = self.pool.request("POST", self.url, body=body, headers=self.headers)
        except urllib3.exceptions.HTTPError as error:
            return Outcome(0, f"{self.target.base}: {error}")
        retry_after = None
        if value := response.headers.get("Retry-After"):
            with contextlib.suppress(ValueError):
                retry_after = float(value)
            if retry_after is not None and not 0 <= retry_after <= MAX_RETRY_AFTER:  # also NaN and inf
                retry_after = None
        return Outcome(response.status, response.data.decode("utf-8", "replace")[:500].strip(), retry_after)

    def close(self) -> None:
        self.pool.clear()
