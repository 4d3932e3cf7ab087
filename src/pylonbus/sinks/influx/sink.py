"""The InfluxDB sink: each reading becomes the C program's line protocol, committed to the durable spool, and a
thread of its own ships the spool to the server (`influx_http`), so a slow or absent database never holds up
polling and an outage loses nothing."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from ...errors import PylonbusError
from ...store.backlog import Backlog
from ...store.spool import Spool, SpoolError
from .config import InfluxTarget, redact
from .lineproto import LineProtocol
from .shipper import Shipper
from .writer import InfluxWriter

if TYPE_CHECKING:
    from ...readings.reading import Reading

log = logging.getLogger("pylon2influx")


def influx_sink(target: InfluxTarget, spool: Spool, every: bool, schema: str, site: str | None = None) -> InfluxSink:
    """The sink for a configured server, its token checked before anything is polled."""
    if target.kind == "v2" and not target.token:
        raise PylonbusError("InfluxDB v2 needs a token: --token, --token-file or INFLUX_TOKEN")
    return InfluxSink(target, spool, every, schema, site)


class InfluxSink:
    spooling = True

    def __init__(
        self, target: InfluxTarget, spool: Spool, every: bool = False, schema: str = "c", site: str | None = None
    ) -> None:
        self.lines = LineProtocol(every, schema, confirmed=True, site=site)
        self.shipper = Shipper(spool, InfluxWriter(target), accepted=self.lines.accepted)
        self.backlog = Backlog(spool)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        log.info(
            "writing to InfluxDB %s at %s, spool %s (%d batches at most)",
            target.kind,
            redact(target.url()),
            spool.path,
            spool.limit,
        )

    @property
    def spool(self) -> Spool:
        return self.shipper.spool

    def start(self) -> None:
        self._thread = threading.Thread(target=self.shipper.run, args=(self._stop,), daemon=True)
        self._thread.start()

    def publish(self, reading: Reading) -> None:
        lines = self.lines.lines(reading)
        if lines and self.backlog.put("\n".join(lines).encode(), len(lines)):
            self.spool.on_commit(self.shipper.wake.set)  # once it can be read: woken earlier, it waits for the lock

    def statistics(self) -> str:
        s = self.shipper.stats
        try:
            dropped = self.spool.counter("rejected_dropped")
            rejected = f"rejected: {self.spool.counter('rejected')} ({dropped} dropped from the table), "
        except SpoolError:
            rejected = ""
        return f"sent: {s.sent_batches} batches ({s.sent_lines} lines), failed posts: {s.failures}, {rejected}" + (
            self.backlog.describe()
        )

    def close(self, seconds: float) -> int:
        """Stop the shipper, then send what is spooled; `seconds` for both. The batches left for next time."""
        deadline = time.monotonic() + seconds
        self._stop.set()
        self.shipper.wake.set()  # out of its wait for a batch
        if self._thread is not None:
            self._thread.join(seconds)
            if self._thread.is_alive():  # in a request that has not timed out yet: what is left stays spooled
                with contextlib.suppress(SpoolError):
                    self.spool.settle()
                return self.spool.pending() + len(self.backlog.unspooled)
        left = self.shipper.flush(max(0.0, deadline - time.monotonic())) + len(self.backlog.unspooled)
        if left:
            log.info("%d batch(es) stay in the spool %s for the next start", left, self.spool.path)
        return left
