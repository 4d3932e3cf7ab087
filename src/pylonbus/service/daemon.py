"""The collector service's loop: the Poller's readings to every configured sink at a fixed period, until a
signal stops it. Signal handlers only set flags (`stop`, `report`); the loop acts on them."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from ..errors import PylonbusError
from .clock import Clock
from .systemd import notify

if TYPE_CHECKING:
    from ..readings.reading import Reading
    from ..sinks import Sink
    from ..store.spool import Spool, Store
    from .config import Config
    from .poller import Poller

log = logging.getLogger("pylon2influx")
# SIGHUP's answer: its own level, so that it is logged at every verbosity SIGUSR1 can lower the log to.
report_log = logging.getLogger("pylon2influx.statistics")
report_log.setLevel(logging.INFO)
# What the sinks together may take to send what is spooled: SIGTERM must end the process within 2 s in any state
# (systemd and users wait on it), and --once must end within 10 s with the database or broker down; what is left
# waits in the spool for the next start.
EXIT_FLUSH = 1.0
ONCE_FLUSH = 5.0


def open_spool(config: Config) -> Spool:
    """The spool, locked to this process first: a second daemon on it would send its batches twice."""
    from ..store.lock import hold
    from ..store.paths import default_path
    from ..store.spool import Spool

    path = config.spool or default_path()
    return Spool(path, config.queue_limit, ours=hold(path, "--spool"), check_later=not config.once, alone=True)


def open_energy_state(config: Config) -> Store | None:
    """Where no sink spools, the energy counters' own file (locked like a spool). None for --once: its one
    reading integrates nothing, and it must not stand in the way of a daemon that keeps the file."""
    if config.once:
        return None
    from ..store.lock import hold
    from ..store.paths import default_energy_path
    from ..store.spool import Store

    path = config.energy_state or default_energy_path()
    return Store(path, option="--energy-state", ours=hold(path, "--energy-state"))


def build_sinks(config: Config, spool: Spool | None) -> list[Sink]:
    """The sinks the configuration names, each imported only when used. Standard output is a sink of its own: on
    when no other is configured (the C program's mode without a server) or when `stdout` asks for it, so that
    `--http` alone does not fill a journal with line protocol."""
    sinks: list[Sink] = []
    queues = []  # the spool queues whose backlog the metrics show
    if config.influx is not None and spool is not None:
        from ..sinks.influx.sink import influx_sink

        sinks.append(influx_sink(config.influx, spool, config.every, config.schema, config.site))
        queues.append(spool)
    if config.mqtt is not None and spool is not None:
        from ..sinks.mqtt.sink import MqttSink

        queue = spool.queue("mqtt", config.queue_limit)
        sinks.append(MqttSink(config.mqtt, queue, config.interval))
        queues.append(queue)
    if config.stdout or (not sinks and config.http is None):
        from ..sinks.influx.stdout import StdoutSink

        sinks.append(StdoutSink(every=config.every, schema=config.schema, site=config.site))
    if config.http is not None:
        from ..sinks.http.server import HttpSink

        sinks.append(HttpSink(config.http, config.interval, queues))
    return sinks


class Daemon:
    def __init__(self, config: Config, poller: Poller) -> None:
        self.config = config
        self.poller = poller
        self.stop = poller.stop  # set by SIGTERM/SIGINT
        self.wake = threading.Event()  # set by every signal, so that the main loop acts on it at once
        self.report = False  # SIGHUP asked for the statistics
        self.spool = open_spool(config) if config.spooled else None
        if poller.energy is None:
            from ..readings.energy import EnergyMeter

            poller.energy = EnergyMeter(config.interval, self.spool or open_energy_state(config))
        self.sinks = build_sinks(config, self.spool)
        self.clock = Clock()
        self.commit_failing = False  # the cycles' spool commits fail (said once)

    def cycle(self) -> bool:
        """Poll every module once and hand the reading to every sink; True when every module answered. The
        energy counters are committed before anything shows them: a spooling sink's batch carries them in its
        own commit, and before a sink that shows them at once they are committed if no batch did; counters
        nothing showed are committed once a minute, and at exit."""
        reading = self.poller.cycle()
        if self.stop.is_set():
            return False  # cut short by SIGTERM: its stack figures would miss modules, so it is not published
        for ready in self.clock.settle(reading):  # none while the system clock is not set
            self._publish(ready)
        self._commit_energy(unseen=True)
        return all(module.online for module in reading.modules)

    def _publish(self, reading: Reading) -> None:
        # The spooling sinks' batches, the energy counters and the deletion of the batches sent since the last
        # commit in one commit: one fsync'd transaction a cycle at most, not one a sink, nor one for the counters
        # or the deletions alone (those wait for the next batch, the counters at most a minute).
        try:
            with self.spool.transaction() if self.spool is not None else contextlib.nullcontext():
                for sink in self.sinks:
                    if sink.spooling:
                        self._hand(sink, reading)
                if self.spool is not None:
                    self._commit_energy(unseen=True)
        except PylonbusError as error:  # the commit failed: the sinks hold the cycle's batches in memory
            if not self.commit_failing:
                log.error("%s; batches are held in memory until the spool works again", error)
            self.commit_failing = True
        else:
            self.commit_failing = False
        for sink in self.sinks:
            if not sink.spooling:
                self._commit_energy()
                self._hand(sink, reading)

    def _hand(self, sink: Sink, reading: Reading) -> None:
        try:
            sink.publish(reading)
        except BrokenPipeError:
            self.stop.set()  # the reader of our output is gone
        except PylonbusError as error:  # one sink's fault never stops the others, nor polling
            log.error("%s", error)

    def _commit_energy(self, unseen: bool = False) -> None:
        """The counters committed (`unseen`: counters nothing has shown, at most once a minute)."""
        if self.poller.energy is not None:
            self.poller.energy.commit(time.monotonic() if unseen else None)

    def statistics(self) -> str:
        parts = [f"modules: {self.poller.describe()}", *(sink.statistics() for sink in self.sinks)]
        return ", ".join([*parts, f"poll errors: {self.poller.errors}"])

    def run(self) -> int:
        """0 when stopped by a signal or when --once sent everything; 1 when --once left something unsent or
        a module unread."""
        if not self.config.once:
            for sink in self.sinks:
                sink.start()
        cycles = 0
        while not self.stop.is_set():
            started = time.monotonic()
            ok = self.cycle()
            cycles += 1
            # systemd (Type=notify, WatchdogSec=) restarts a daemon whose cycles stop.
            notify("WATCHDOG=1" if cycles > 1 else f"READY=1\nSTATUS=polling {self.poller.describe()}")
            if self.config.once:
                self._commit_energy()
                unsent = self._close_sinks(ONCE_FLUSH) + self.clock.unsent()
                return 0 if ok and not unsent else 1
            # A fixed period: neither slow polls nor the database stretch the interval.
            self._sleep_until(started + self.config.interval)
        notify("STOPPING=1")
        self._commit_energy()
        self._close_sinks(EXIT_FLUSH)
        self.clock.unsent()
        return 0

    def close(self) -> None:
        """Close the spool after the last statistics: closed cleanly, it is not read through at the next start."""
        if self.spool is not None:
            self.spool.close()

    def _close_sinks(self, seconds: float) -> int:
        """Close every sink within `seconds` in all; how much is left unsent."""
        deadline = time.monotonic() + seconds
        return sum(sink.close(max(0.0, deadline - time.monotonic())) for sink in self.sinks)

    def _sleep_until(self, deadline: float) -> None:
        """Wait for the next cycle; a signal wakes the loop to act on it here, outside the signal handler. A lost
        port is reopened meanwhile as its back-off allows, and polled at once when it opens."""
        while not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.poller.reconnect():
                return
            retry = self.poller.retry_in()
            self.wake.wait(remaining if retry is None else min(remaining, retry))
            self.wake.clear()
            if self.report:
                self.report = False
                report_log.warning("%s", self.statistics())
