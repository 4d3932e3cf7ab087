"""What the collector service is told to do: one dataclass, built by the CLI from its defaults, the --config file,
the environment (secrets) and the flags, in that order. Nothing here reads a file or the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..link.ports import DEFAULT_BAUD, DEFAULT_PORT

if TYPE_CHECKING:
    from ..sinks.influx.writer import InfluxTarget
    from ..sinks.mqtt.config import MqttConfig


@dataclass(slots=True)
class Config:
    device: str = DEFAULT_PORT
    baud: int = DEFAULT_BAUD
    groups: list[int] = field(default_factory=lambda: [0])
    interval: float = 5.0
    rescan: float = 60.0
    timeout: float | None = None
    once: bool = False
    every: bool = False  # write every cycle (the C schema writes changed values only)
    schema: str = "c"  # c, full or both
    spool: Path | None = None
    cache: int | None = None  # batches a queue keeps; default two days at the interval
    influx: InfluxTarget | None = None  # where and how to write to InfluxDB
    mqtt: MqttConfig | None = None
    http: str | None = None  # HOST:PORT the HTTP endpoint listens on

    @property
    def queue_limit(self) -> int:
        return self.cache or max(1, int(2 * 86400 / self.interval))

    @property
    def spooled(self) -> bool:
        """Whether a sink ships through the spool (then the energy counters are kept in it too)."""
        return self.influx is not None or self.mqtt is not None
