"""Where the collector's settings come from, merged in one place: the built-in defaults, then a TOML file (a table
a part: [battery], [influx], [mqtt], [http], [log]), then the environment (secrets), then what a program was told
(its flags). A library or a service manager uses this as the command line does.

Several batteries (one port each, each maybe another BMS family) are `[[battery]]` tables, or `-d` given once a
port: the merged settings then hold `batteries`, a dict of PORT_KEYS a port, the first also as the plain keys."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import PylonbusError
from ..link.detect import bms_name
from ..link.ports import AUTO_PORTS, BAUD_RANGE, DEFAULT_BAUD, DEFAULT_PORT
from ..options import BadValue, Setting, numbers, path, ranged, seconds, site_name, verbosity, whole
from ..protocol.families import DEFAULT
from ..protocol.families.pylontech.codes import MAX_GROUP
from ..sinks.http import settings as http
from ..sinks.influx import settings as influx
from ..sinks.mqtt import settings as mqtt

BATTERY = (
    Setting("device", default=DEFAULT_PORT),
    Setting("bms", default=DEFAULT, parse=bms_name),
    Setting("baud", default=DEFAULT_BAUD, parse=whole(*BAUD_RANGE)),
    Setting("groups", default=[0], parse=numbers(0, MAX_GROUP)),
    Setting("interval", "query", default=5.0, parse=ranged(float, 1, None)),
    Setting("rescan", default=60.0, parse=ranged(float, 1, None)),
    Setting("fanout", default=True, flag=True),
    Setting("timeout", parse=seconds()),
    Setting("auto_ports", default=AUTO_PORTS),
    Setting("serial_starter_lock"),
    Setting("energy_state", parse=path),  # the energy counters' file where no sink spools
    Setting("site", parse=site_name),  # a `site` tag on every line-protocol line (many sites, one database)
    Setting("console_device"),  # the RS232 console port beside RS485 (SOH, balancing, lifetime counters)
    Setting("console_every", default=60.0, parse=ranged(float, 1, None)),
    Setting("console_wake", default=False, flag=True),  # the 1200 Bd frame some US2000B need first
)
#: What each battery of several (a `[[battery]]` table, a `-d` of several) gives for itself; the other keys of
#: [battery] are the daemon's, for every port alike.
PORT_KEYS = ("device", "bms", "baud", "groups")
LOG = (Setting("verbose", default=0, parse=verbosity), Setting("syslog", default=False, flag=True))

#: Each table of the file and its settings, in the order --print-config shows them.
TABLES: dict[str, tuple[Setting, ...]] = {
    "battery": BATTERY,
    "influx": influx.SETTINGS,
    "mqtt": mqtt.SETTINGS,
    "http": http.SETTINGS,
    "log": LOG,
}
SETTINGS = {setting.name: setting for table in TABLES.values() for setting in table}
#: Kept out of the file (a file of their own, or the environment): key -> what to use instead.
SECRETS = {"password": "password_file", "token": "token_file"}
#: Secret -> the environment variable it may come from, below a flag and a file of its own.
ENVIRONMENT = {"password": "INFLUX_PASSWORD", "token": "INFLUX_TOKEN", "mqtt_password": "MQTT_PASSWORD"}


class ConfigError(PylonbusError):
    """The configuration file cannot be read or holds a key or value that is not allowed."""


def defaults() -> dict[str, Any]:
    return {name: setting.default for name, setting in SETTINGS.items()}


def _line_of(text: str, table: str, key: str) -> int:
    """The line of `key` in `[table]` (1 when it cannot be told), for messages that point at the file."""
    in_table = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = stripped.strip("[]").strip() == table
            if in_table and not key:
                return number
        elif in_table and re.match(rf'["\']?{re.escape(key)}["\']?\s*=', stripped):
            return number
    return 1


def read_file(path: Path) -> dict[str, Any]:
    """The settings a config file gives, each value checked as its flag would be."""
    import tomllib  # only with --config: 6 ms of every start otherwise

    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except OSError as error:
        raise ConfigError(f"--config {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: byte 0x{error.object[error.start]:02X} is not UTF-8 text; save the file as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    given: dict[str, Any] = {}
    batteries = data.get("battery")
    if isinstance(batteries, list) and batteries and all(isinstance(b, dict) for b in batteries):
        data["battery"] = batteries[0]
        given["batteries"] = [_port(path, text, number, table) for number, table in enumerate(batteries)]
    for table, values in data.items():
        if table not in TABLES or not isinstance(values, dict):
            known = ", ".join(f"[{name}]" for name in TABLES)
            raise ConfigError(f"{path}:{_line_of(text, table, '')}: unknown table [{table}]; known: {known}")
        keys = {setting.key: setting for setting in TABLES[table]}
        for key, value in values.items():
            where = f"{path}:{_line_of(text, table, key)}"
            if key in SECRETS and table in ("influx", "mqtt"):
                raise ConfigError(f"{where}: {key} does not belong in this file; use {SECRETS[key]} or the environment")
            setting = keys.get(key)
            if setting is None:
                raise ConfigError(f"{where}: unknown key {key} in [{table}]; known: {', '.join(keys)}")
            try:
                given[setting.name] = setting.read(value)
            except BadValue as error:
                raise ConfigError(f"{where}: {key}{' ' if setting.flag else ': '}{error}") from None
    return given


def _port(path: Path, text: str, number: int, table: dict[str, Any]) -> dict[str, Any]:
    """What the `number`th `[[battery]]` table gives of PORT_KEYS (checked as a flag); only the first may give
    the daemon's other keys, read with [battery]."""
    settings = {setting.key: setting for setting in BATTERY}
    port: dict[str, Any] = {}
    for key, value in table.items():
        if key not in PORT_KEYS and number:
            where = f"{path}:{_line_of(text, 'battery', key)}"
            raise ConfigError(
                f"{where}: {key} applies to every battery; give it in the first [[battery]] table, "
                f"a later one gives only {', '.join(PORT_KEYS)}"
            )
        if key in PORT_KEYS:
            try:
                port[key] = settings[key].read(value)
            except BadValue as error:
                raise ConfigError(f"{path}:{_line_of(text, 'battery', key)}: {key}: {error}") from None
    return port


def merge(file: Path | None = None, flags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every setting: the defaults, then `file`, then `flags`. Secrets come later, when the service is configured:
    from their own file (password_file …), else a flag, else the environment (`ENVIRONMENT`)."""
    merged = defaults()
    from_file = read_file(file) if file is not None else {}
    merged |= from_file
    given = dict(flags or {})
    ports_named = {"batteries", "device"} & {*from_file, *given}
    if (merged.get("console_device") or given.get("console_device")) and not ports_named:
        merged["device"] = None  # the console alone: no RS485 port is read (the inverter has it)
    if "batteries" in given or "device" in given:  # the ports of the command line replace the file's
        merged.pop("batteries", None)
    batteries = given.get("batteries") or [
        port | {key: given[key] for key in PORT_KEYS if key in given} for port in merged.get("batteries", [])
    ]  # a flag such as -b 9600 is every port's
    merged |= given
    if batteries:
        # A key a port leaves out is the first port's; the first's are the plain keys (what one port reads).
        merged |= {key: batteries[0].get(key, merged[key]) for key in PORT_KEYS}
        merged["batteries"] = [{key: port.get(key, merged[key]) for key in PORT_KEYS} for port in batteries]
    return merged


def render(settings: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str:
    """The settings as TOML, a table a part; the InfluxDB secrets given on the command line or in the environment
    as ***."""
    environ = os.environ if environ is None else environ
    secrets = [name for name in SECRETS if settings.get(name) or environ.get(ENVIRONMENT[name])]
    ports = settings.get("batteries") or []
    lines: list[str] = []
    for table, entries in TABLES.items():
        lines.append(f"[[{table}]]" if table == "battery" and ports else f"[{table}]")
        lines += _values(settings, entries)
        if table == "influx":
            lines += [f'# {name} = "***"  (given on the command line or in the environment)' for name in secrets]
        if table == "battery":
            for port in ports[1:]:
                lines += ["", "[[battery]]", *_values(port, [s for s in entries if s.name in PORT_KEYS])]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _values(settings: Mapping[str, Any], entries: Iterable[Setting]) -> list[str]:
    lines = []
    for setting in entries:
        value = settings.get(setting.name)
        if setting.flag and value is not None:
            value = bool(value)
        if value is not None:
            lines.append(f"{setting.key} = {_toml(value)}")
    return lines


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    import json

    return json.dumps(str(value), ensure_ascii=False)
