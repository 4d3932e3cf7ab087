"""The InfluxDB sink: each reading becomes the C program's line protocol, committed to the durable spool, and a
thread of its own ships the spool to the server (`influx_http`), so a slow or absent database never holds up
polling and an outage loses nothing."""

from __future__ import annotations

import collections
import logging
import threading
from typing import TYPE_CHECKING

from ..lineproto import LineProtocol
from ..shipper import Shipper
from ..spool import Spool, SpoolError
from .influx_http import InfluxTarget, InfluxWriter, redact

if TYPE_CHECKING:
    from ..service.reading import Reading

log = logging.getLogger("pylon2influx")


class InfluxSink:
    def __init__(self, target: InfluxTarget, spool: Spool, every: bool = False) -> None:
        self.lines = LineProtocol(every)
        self.shipper = Shipper(spool, InfluxWriter(target))
        # Batches the spool could not take (read-only, failing disk), oldest first; kept until it works again.
        self.unspooled: collections.deque[tuple[bytes, int]] = collections.deque()
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
        if lines:
            self._spool("\n".join(lines).encode(), len(lines))

    def _spool(self, body: bytes, lines: int) -> None:
        """Commit the batch, and any the spool refused before, in the order they were taken."""
        failing = bool(self.unspooled)
        self.unspooled.append((body, lines))
        while len(self.unspooled) > self.spool.limit:
            self.unspooled.popleft()
            log.warning("spool unusable and %d batches held in memory: dropped the oldest", self.spool.limit)
        try:
            while self.unspooled:
                self.spool.add(*self.unspooled[0])
                self.unspooled.popleft()
        except SpoolError as error:
            if not failing:
                log.error("%s; batches are held in memory until the spool works again", error)
            return
        if failing:
            log.warning("spool %s works again; the batches held in memory are committed", self.spool.path)
        self.shipper.wake.set()

    def statistics(self) -> str:
        s = self.shipper.stats
        try:
            stored = f"spooled: {self.spool.pending()}, dropped: {self.spool.counter('dropped')}, "
            stored += f"rejected: {self.spool.counter('rejected')}"
        except SpoolError as error:
            stored = f"spool unusable ({error})"
        return (
            f"sent: {s.sent_batches} batches ({s.sent_lines} lines), failed posts: {s.failures}, {stored}, "
            f"held in memory: {len(self.unspooled)}"
        )

    def close(self, seconds: float) -> int:
        """Stop the shipper, then send what is spooled for at most `seconds`; the batches left for next time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(seconds)
            if self._thread.is_alive():  # in a request that has not timed out yet: what is left stays spooled
                return self.spool.pending() + len(self.unspooled)
        left = self.shipper.flush(seconds) + len(self.unspooled)
        if left:
            log.info("%d batch(es) stay in the spool %s for the next start", left, self.spool.path)
        return left
