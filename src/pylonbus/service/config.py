"""What the collector service is told to do: one dataclass, made from the merged settings (`settings.merge`: the
defaults, a config file, flags), with each sink's part checked and its secrets read from their files or the
environment. The command line and a program that embeds the collector come in the same way:

    config = load(Path("/etc/pylon2influx.toml"), interval=10.0)
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PylonbusError
from ..link.detect import AUTO
from ..link.ports import DEFAULT_BAUD, DEFAULT_PORT
from ..protocol.families import DEFAULT
from ..sinks.influx.config import InfluxTarget, redact
from ..sinks.mqtt.config import MqttConfig
from .settings import ENVIRONMENT, ConfigError, merge

log = logging.getLogger("pylon2influx")


@dataclass(slots=True)
class Battery:
    """One port and what is on it: its groups, all of one BMS family (`auto`: the one that answers)."""

    device: str = DEFAULT_PORT
    baud: int = DEFAULT_BAUD
    groups: list[int] = field(default_factory=lambda: [0])
    bms: str = DEFAULT


@dataclass(slots=True)
class Config:
    device: str | None = DEFAULT_PORT  # None: the console alone (`console_device`)
    baud: int = DEFAULT_BAUD
    groups: list[int] = field(default_factory=lambda: [0])
    bms: str = DEFAULT
    batteries: list[Battery] = field(default_factory=list)  # every port; the first is device, baud, groups, bms
    interval: float = 5.0
    rescan: float = 60.0
    timeout: float | None = None
    once: bool = False
    every: bool = False  # write every cycle (the C schema writes changed values only)
    schema: str = "c"  # c, full or both
    spool: Path | None = None
    energy_state: Path | None = None  # the energy counters' file where no sink spools
    cache: int | None = None  # batches a queue keeps; default two days at the interval
    influx: InfluxTarget | None = None  # where and how to write to InfluxDB
    mqtt: MqttConfig | None = None
    http: str | None = None  # HOST:PORT the HTTP endpoint listens on
    stdout: bool = False  # the line protocol to standard output also when another sink is configured
    site: str | None = None  # a `site` tag on every line, for many sites in one database

    @property
    def queue_limit(self) -> int:
        return self.cache or max(1, int(2 * 86400 / self.interval))

    @property
    def spooled(self) -> bool:
        """Whether a sink ships through the spool (then the energy counters are kept in it too, else in
        `energy_state`)."""
        return self.influx is not None or self.mqtt is not None


def load(file: Path | None = None, environ: Mapping[str, str] | None = None, **flags: Any) -> Config:
    """The configuration of `file` (TOML), with `environ`'s secrets and `flags` (settings by their command-line
    names: interval is `query`, verify_tls `isslverifypeer`) over it."""
    settings = merge(file, flags)
    problem = check(settings)
    if problem:
        raise ConfigError(problem)
    return configure(settings, environ)


def check(settings: Mapping[str, Any]) -> str | None:
    """The first problem with the InfluxDB settings, worded as what to change; None if all is well."""
    server = settings.get("server")
    if not server:
        return None
    scheme, sep, _ = server.partition("://")
    shown = redact(server)  # its user-info may hold the password
    if sep and scheme.lower() not in ("http", "https"):
        return f"--server {shown}: InfluxDB speaks http:// or https://, not {scheme}://"
    try:
        InfluxTarget(server, settings["port"]).base  # noqa: B018 - parses the server URL
    except ValueError as error:
        return f"--server {shown}: {redact(str(error))}; give a name, HOST:PORT or a URL"
    if settings.get("influxapi"):
        return None
    if settings.get("org") or settings.get("bucket") or settings.get("token") or settings.get("token_file"):
        for name in ("org", "bucket"):
            if not settings.get(name):
                return f"InfluxDB v2 needs --org, --bucket and --token; --{name} is missing"
        if settings.get("db") or settings.get("user") or settings.get("password"):
            log.warning("--db, --user and --password are ignored for InfluxDB v2")
    elif not settings.get("db"):
        return "InfluxDB v1 needs --db (or give --org, --bucket and --token for v2, or --influxapi)"
    password = settings.get("password")
    if password and password.isdigit() and not settings.get("user"):
        log.warning("-p/--password is the database password, and it looks like a port number: did you mean -o/--port?")
    return None


MAX_SECRET = 64 * 1024  # bytes; a password or token file is a line, and /dev/zero must not fill the memory


def _secret(settings: Mapping[str, Any], name: str, environ: Mapping[str, str]) -> str | None:
    """A secret from its own file, else the flag, else the environment."""
    file = f"{name}_file"
    path = settings.get(file)
    if path is None:
        return settings.get(name) or environ.get(ENVIRONMENT[name]) or None
    option = f"--{file.replace('_', '-')} {path}"
    try:
        with open(path, "rb") as opened:
            if not stat.S_ISREG(os.fstat(opened.fileno()).st_mode):
                raise PylonbusError(f"{option}: not a regular file; give the file that holds the secret")
            data = opened.read(MAX_SECRET + 1)
    except OSError as error:
        raise PylonbusError(f"{option}: {error.strerror or error}") from None
    if len(data) > MAX_SECRET:
        raise PylonbusError(f"{option}: larger than {MAX_SECRET // 1024} KiB; a secret file holds one line")
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        raise PylonbusError(f"{option}: not UTF-8 text") from None


def batteries(settings: Mapping[str, Any]) -> list[Battery]:
    """Every port of the settings, each with its family; none when the console is read alone."""
    ports = settings.get("batteries") or ([] if settings["device"] is None else [settings])
    return [Battery(port["device"], port["baud"], list(port["groups"]), port["bms"]) for port in ports]


def check_stacks(batteries: list[Battery], schema: str) -> None:
    """ConfigError where two ports would be one stack to the sinks (a stack is known by its family and group),
    and for another family with the C schema alone, whose Battery lines only Pylontech has: it would write
    nothing. Again once `auto` named the families."""
    other = next((b.bms for b in batteries if b.bms not in (DEFAULT, AUTO)), None)
    if schema == "c" and other is not None:
        raise ConfigError(
            f"--schema c writes the C program's Battery lines, which only Pylontech has; give --schema full "
            f"(or both) for {other}"
        )
    seen: dict[tuple[str, int], Battery] = {}
    for battery in batteries:
        for group in battery.groups:
            first = seen.setdefault((battery.bms, group), battery)
            if first is not battery and battery.bms != AUTO:
                raise ConfigError(
                    f"{first.device} and {battery.device} both hold group {group} of BMS family {battery.bms}: "
                    "a stack is known by its family and group; give one of them another group, or run a daemon for each"
                )


def configure(settings: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Config:
    """The service's configuration from merged settings, with the secrets read from their files or `environ`
    (os.environ by default)."""
    environ = os.environ if environ is None else environ
    ca_file = settings.get("ca_file")
    server, broker = settings.get("server"), settings.get("mqtt")
    # Checked here, once for every sink that uses it (InfluxDB and MQTT over TLS), before the scan.
    if (server or broker) and ca_file is not None and not Path(ca_file).is_file():
        raise PylonbusError(f"--ca-file {ca_file}: no such file")
    verify_tls = bool(settings["isslverifypeer"])
    # Field by field, as the settings name them (interval is --query): a typed constructor mypy checks.
    config = Config(
        device=settings["device"],
        baud=settings["baud"],
        groups=settings["groups"],
        bms=settings["bms"],
        batteries=batteries(settings),
        interval=settings["query"],
        rescan=settings["rescan"],
        timeout=settings["timeout"],
        once=bool(settings.get("once")),
        every=settings["all"],
        schema=settings["schema"],
        spool=settings["spool"],
        energy_state=settings["energy_state"],
        cache=settings["cache"],
        http=settings["http"],
        stdout=bool(settings["stdout"]),
        site=settings["site"],
    )
    if server:
        # The kind is chosen by what the file and the flags say; a token in the environment beside a v1 --db must
        # not turn it into a v2 write to org=None.
        v2 = any(settings.get(name) for name in ("org", "bucket", "token", "token_file"))
        config.influx = InfluxTarget(
            server,
            settings["port"],
            settings["db"],
            settings["user"],
            _secret(settings, "password", environ),
            settings["org"],
            settings["bucket"],
            _secret(settings, "token", environ) if v2 else None,
            settings["influxapi"],
            verify_tls,
            None if ca_file is None else str(ca_file),
        )
    check_stacks(config.batteries, config.schema)
    if not config.batteries and config.schema == "c" and (server or settings["stdout"] or not (broker or config.http)):
        raise ConfigError(
            f"--console-device {settings['console_device']} without -d: --schema c writes the C program's Battery "
            "lines, which need every cell voltage, both capacities and the cycles each cycle, and the console's "
            "pwr gives none of them; give --schema full (or both: its Battery lines are left out), or add -d PORT"
        )
    if broker:
        config.mqtt = MqttConfig(
            broker,
            _secret(settings, "mqtt_password", environ),
            settings["mqtt_prefix"],
            settings["ha_prefix"],
            settings["ha_discovery"],
            settings["ha_cleanup"],
            verify_tls,
            None if ca_file is None else Path(ca_file),
            settings["rescan"],
        )
    return config
