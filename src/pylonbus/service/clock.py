"""The system clock as the daemon may trust it. A Raspberry Pi has no real-time clock: it boots in 1970 (or at the
time fake-hwclock saved) and NTP steps the clock minutes later; clocks also step backwards. A reading stamped in
1970 is a wrong value in every database and broker it reaches, so readings taken before the clock reads a
plausible date are held, and stamped from their age on the monotonic clock once it does. A step of the clock is
logged once; nothing else in the daemon depends on the wall clock (its timers are monotonic, the spool keeps its
own order)."""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..readings.reading import Reading

log = logging.getLogger("pylon2influx")

#: No clock that reads earlier than this is set: it is before this version of pylonbus was made.
EARLIEST = "2026-01-01"
EARLIEST_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z (datetime costs the start-up 3 ms)
#: A change of the wall clock against the monotonic one larger than this between two cycles is a step (NTP slews
#: smaller corrections, at most 0.5 ms a second).
STEP = 2.0  # s
#: Readings held at most while the clock is not set; the oldest give way. NTP sets a Pi's clock within a minute
#: of the network coming up; this is 10 minutes at the default interval.
HELD = 600


def utc(time_ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time_ns // 1_000_000_000))


def span(seconds: float) -> str:
    minutes, secs = divmod(round(abs(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts) or f"{abs(seconds):.1f} s"


class Clock:
    """Hands on the readings the clock can stamp: `settle(reading)` returns [] while the clock is not set, and
    every held reading, restamped from its monotonic age, once it is."""

    def __init__(self, held: int = HELD) -> None:
        self.held: deque[Reading] = deque(maxlen=held)
        self.dropped = 0  # held readings that gave way to newer ones
        self._offset: float | None = None  # wall minus monotonic clock at the last reading, s

    def settle(self, reading: Reading) -> list[Reading]:
        offset, self._offset = self._offset, reading.time_ns / 1e9 - reading.monotonic
        if reading.time_ns < EARLIEST_NS:
            if not self.held and not self.dropped:
                log.warning(
                    "the system clock reads %s, before %s: it is not set (no real-time clock; NTP not yet "
                    "synchronised). Readings are held, up to %d, and stamped when it is set; set the clock, or "
                    "enable NTP (timedatectl set-ntp true) or an RTC, if this lasts",
                    utc(reading.time_ns),
                    EARLIEST,
                    self.held.maxlen,
                )
            if len(self.held) == self.held.maxlen:
                self.dropped += 1
            self.held.append(reading)
            return []
        if not self.held:
            if offset is not None and abs(self._offset - offset) > STEP:
                self._step(self._offset - offset, reading)
            return [reading]
        held = [self._restamp(old, reading) for old in self.held]
        log.warning(
            "the system clock is set (%s): %d reading(s) taken before were stamped from their age and sent%s",
            utc(reading.time_ns),
            len(held),
            f"; {self.dropped} older one(s) were dropped (more than {self.held.maxlen} were held)"
            if self.dropped
            else "",
        )
        self.held.clear()
        self.dropped = 0
        return [*held, reading]

    def unsent(self) -> int:
        """At exit: the held readings, which nothing can stamp now; said in the log."""
        count = len(self.held) + self.dropped
        if count:
            log.warning(
                "%d reading(s) taken while the system clock was not set are dropped at exit: nothing could stamp them",
                count,
            )
        return count

    @staticmethod
    def _step(step: float, reading: Reading) -> None:
        """Said once a step, between two readings on a set clock (its being set is said by `settle`)."""
        log.warning(
            "the system clock stepped %s by %s (now %s); readings are stamped by the new time, the spool keeps "
            "its order and every timer runs on",
            "forward" if step > 0 else "back",
            span(step),
            utc(reading.time_ns),
        )

    @staticmethod
    def _restamp(old: Reading, now: Reading) -> Reading:
        old.time_ns = now.time_ns - round((now.monotonic - old.monotonic) * 1e9)
        old.documents = None
        return old
