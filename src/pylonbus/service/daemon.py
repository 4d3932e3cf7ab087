"""The collector service's loop: the Poller's readings to every configured sink at a fixed period, until a
signal stops it. Signal handlers only set flags (`stop`, `report`); the loop acts on them."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..errors import PylonbusError
from .systemd import notify

if TYPE_CHECKING:
    from ..sinks import Sink
    from ..store.spool import Spool
    from .config import Config
    from .poller import Poller

log = logging.getLogger("pylon2influx")
EXIT_FLUSH = 5.0  # s to send what is spooled after SIGTERM
ONCE_FLUSH = 60.0  # s --once may take to send what is spooled


def open_spool(config: Config) -> Spool:
    from ..store.spool import Spool, default_path

    return Spool(config.spool or default_path(), config.queue_limit)


def build_sinks(config: Config, spool: Spool | None) -> list[Sink]:
    """The sinks the configuration names, each imported only when used; without a database or broker the line
    protocol goes to standard output."""
    sinks: list[Sink] = []
    queues = []  # the spool queues whose backlog the metrics show
    if config.influx is not None and spool is not None:
        from ..sinks.influx.sink import influx_sink

        sinks.append(influx_sink(config.influx, spool, config.every, config.schema))
        queues.append(spool)
    if config.mqtt is not None and spool is not None:
        from ..sinks.mqtt.sink import MqttSink

        queue = spool.queue("mqtt", config.queue_limit)
        sinks.append(MqttSink(config.mqtt, queue, config.interval))
        queues.append(queue)
    if not sinks:
        from ..sinks.influx.stdout import StdoutSink

        sinks.append(StdoutSink(every=config.every, schema=config.schema))
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

            poller.energy = EnergyMeter(config.interval, self.spool)
        self.sinks = build_sinks(config, self.spool)

    def cycle(self) -> bool:
        """Poll every module once and hand the reading to every sink; True when every module answered."""
        reading = self.poller.cycle()
        for sink in self.sinks:
            try:
                sink.publish(reading)
            except BrokenPipeError:
                self.stop.set()  # the reader of our output is gone
            except PylonbusError as error:  # one sink's fault never stops the others, nor polling
                log.error("%s", error)
        return all(module.online for module in reading.modules)

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
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                ok = self.cycle()
                cycles += 1
                # systemd (Type=notify, WatchdogSec=) restarts a daemon whose cycles stop.
                notify("WATCHDOG=1" if cycles > 1 else f"READY=1\nSTATUS=polling {self.poller.describe()}")
                if self.config.once:
                    left = sum(sink.close(ONCE_FLUSH) for sink in self.sinks)
                    return 0 if ok and not left else 1
                # A fixed period: neither slow polls nor the database stretch the interval.
                self._sleep_until(started + self.config.interval)
            notify("STOPPING=1")
            for sink in self.sinks:
                sink.close(EXIT_FLUSH)  # a few seconds to send what is spooled; the rest waits for the next start
            return 0
        finally:
            if self.poller.energy is not None:
                self.poller.energy.save(time.time(), force=True)

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
                log.warning("%s", self.statistics())
