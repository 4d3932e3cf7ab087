"""The MQTT sink's part of the configuration, checked where it is made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import PylonbusError
from ...options import BadValue
from .settings import DEFAULT_PREFIX, broker_url, topic_prefix


@dataclass(slots=True)
class MqttConfig:
    url: str  # mqtt://[USER@]HOST[:PORT] or mqtts://…
    password: str | None = None
    prefix: str = DEFAULT_PREFIX
    ha_prefix: str = "homeassistant"
    discovery: bool = True
    cleanup: bool = False  # empty retained configs for modules of earlier runs not seen now
    verify_tls: bool = True
    ca_file: Path | None = None
    rescan: float = 60.0  # s between two probes for missing modules: --ha-cleanup waits that long, and a cycle

    def __post_init__(self) -> None:
        # The settings' parsers check flags and file keys as they are read; this catches what a program that
        # embeds the collector hands over directly (`load(mqtt_prefix=…)`), before anything is spooled.
        for option, parse, value in (
            ("--mqtt", broker_url, self.url),
            ("--mqtt-prefix", topic_prefix, self.prefix),
            ("--ha-prefix", topic_prefix, self.ha_prefix),
        ):
            try:
                parse(value)
            except BadValue as error:
                raise PylonbusError(f"{option}: {error}") from None
