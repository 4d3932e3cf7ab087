"""The MQTT sink's part of the configuration: the `[mqtt]` table of the config file and the --mqtt options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...options import Setting, path

SETTINGS = (
    Setting("url", "mqtt"),
    Setting("prefix", "mqtt_prefix", default="pylontech"),
    Setting("ha_prefix", default="homeassistant"),
    Setting("ha_discovery", default=True, flag=True),
    Setting("ha_cleanup", default=False, flag=True),
    Setting("password_file", "mqtt_password_file", parse=path),
)


@dataclass(slots=True)
class MqttConfig:
    url: str  # mqtt://[USER@]HOST[:PORT] or mqtts://…
    password: str | None = None
    prefix: str = "pylontech"
    ha_prefix: str = "homeassistant"
    discovery: bool = True
    cleanup: bool = False  # empty retained configs for modules of earlier runs not seen now
    verify_tls: bool = True
    ca_file: Path | None = None
