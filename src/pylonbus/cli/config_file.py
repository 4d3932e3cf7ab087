"""`pylon2influx --config FILE`: a TOML file whose keys are the long options, one table for each part. The file
sets the defaults of the command line, so a flag given there overrides it; `--print-config` shows the merge."""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import PylonbusError

#: table -> key -> argparse dest. A key is the long option with `_` for `-`.
KEYS: dict[str, dict[str, str]] = {
    "battery": {
        "device": "device",
        "baud": "baud",
        "groups": "groups",
        "interval": "query",
        "rescan": "rescan",
        "fanout": "fanout",
        "timeout": "timeout",
        "auto_ports": "auto_ports",
        "serial_starter_lock": "serial_starter_lock",
    },
    "influx": {
        "server": "server",
        "port": "port",
        "db": "db",
        "user": "user",
        "bucket": "bucket",
        "org": "org",
        "influxapi": "influxapi",
        "ca_file": "ca_file",
        "verify_tls": "isslverifypeer",
        "cache": "cache",
        "spool": "spool",
        "all": "all",
        "schema": "schema",
        "password_file": "password_file",
        "token_file": "token_file",
    },
    "mqtt": {
        "url": "mqtt",
        "prefix": "mqtt_prefix",
        "ha_prefix": "ha_prefix",
        "ha_discovery": "ha_discovery",
        "ha_cleanup": "ha_cleanup",
        "password_file": "mqtt_password_file",
    },
    "http": {"listen": "http"},
    "log": {"verbose": "verbose", "syslog": "syslog"},
}
SECRETS = {
    "password": "password_file",
    "token": "token_file",
}  # in [influx] and [mqtt]  # kept out of files: a file of their own, or env


class ConfigError(PylonbusError):
    """The configuration file cannot be read or holds a key or value that is not allowed."""


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


def load(path: Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """argparse defaults from the file, each value checked by the option's own type."""
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except OSError as error:
        raise ConfigError(f"--config {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    actions = {action.dest: action for action in parser._actions}
    defaults: dict[str, Any] = {}
    for table, values in data.items():
        if table not in KEYS or not isinstance(values, dict):
            known = ", ".join(f"[{name}]" for name in KEYS)
            raise ConfigError(f"{path}:{_line_of(text, table, '')}: unknown table [{table}]; known: {known}")
        for key, value in values.items():
            where = f"{path}:{_line_of(text, table, key)}"
            if key in SECRETS and table in ("influx", "mqtt"):
                raise ConfigError(f"{where}: {key} does not belong in this file; use {SECRETS[key]} or the environment")
            dest = KEYS[table].get(key)
            if dest is None:
                raise ConfigError(f"{where}: unknown key {key} in [{table}]; known: {', '.join(KEYS[table])}")
            defaults[dest] = _value(actions[dest], value, f"{where}: {key}")
    return defaults


def _value(action: argparse.Action, value: Any, where: str) -> Any:
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction) or action.dest == "isslverifypeer":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return int(value) if action.dest == "isslverifypeer" else value
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    if action.type is None:
        return text
    try:
        return action.type(text)  # type: ignore[operator]
    except (argparse.ArgumentTypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


def render(args: argparse.Namespace, secrets: list[str]) -> str:
    """The merged configuration as TOML; `secrets` (given on the command line or in the environment) as ***."""
    lines: list[str] = []
    for table, keys in KEYS.items():
        lines.append(f"[{table}]")
        for key, dest in keys.items():
            value = getattr(args, dest, None)
            if dest == "isslverifypeer":
                value = bool(value)
            if value is not None:
                lines.append(f"{key} = {_toml(value)}")
        if table == "influx":
            lines += [f'# {name} = "***"  (given on the command line or in the environment)' for name in secrets]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
