"""`pylon2influx`: poll a Pylontech stack and write every module's analog values to InfluxDB, through a
durable spool; without --server, to standard output."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LinkError, PylonbusError
from ..link.ports import BAUD_RANGE, DEFAULT_BAUD, DEFAULT_PORT
from ..protocol.families.pylontech.codes import MAX_GROUP
from ..sinks.influx.lineproto import SCHEMAS
from .common import (
    EXIT_ERROR,
    EXIT_NO_MODULE,
    EXIT_OK,
    Parser,
    add_auto_ports,
    add_verbose,
    guarded,
    log_level,
    no_port,
    ranged,
    seconds,
    version,
    whole,
)

if TYPE_CHECKING:
    from ..service.config import Config
    from ..service.daemon import Daemon

log = logging.getLogger("pylon2influx")
DEFAULT_RESCAN = 60.0


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="pylon2influx",
        description="Write Pylontech battery data to InfluxDB (v1, v2 or any line-protocol endpoint). "
        "Without --server the line protocol goes to standard output.",
        epilog="Secrets can also come from INFLUX_TOKEN / INFLUX_PASSWORD or --token-file / --password-file. "
        "Exit status: 0 stopped by a signal or --once succeeded, 1 error, 2 no module answered (--try, --once; "
        "otherwise the daemon keeps probing).",
    )
    p.add_argument(
        "-d",
        "--device",
        default=DEFAULT_PORT,
        help=f"serial port or URL (default {DEFAULT_PORT}); 'auto': the first of --auto-ports a battery answers on",
    )
    add_auto_ports(p)
    p.add_argument(
        "--serial-starter-lock",
        nargs="?",
        const="",
        metavar="DIR",
        help="take the port's lock the way Victron's serial-starter does, in DIR (default /var/lock/serial-starter "
        "where it exists; 'off' disables)",
    )
    p.add_argument("-b", "--baud", type=whole(*BAUD_RANGE), default=DEFAULT_BAUD, help=f"baud rate ({DEFAULT_BAUD})")
    p.add_argument(
        "-g",
        "--group",
        dest="groups",
        type=group_list,
        default=[0],
        metavar="G[,G…]",
        help=f"group(s) 0-{MAX_GROUP} on the bus, e.g. 0,1 (default 0)",
    )
    p.add_argument(
        "-s", "--server", help="InfluxDB server: a name, HOST:PORT or a URL such as https://influx.lan:8086/path"
    )
    p.add_argument("-o", "--port", type=whole(1, 65535), default=8086, help="port when --server names none (8086)")
    p.add_argument("-n", "--db", help="InfluxDB v1 database")
    p.add_argument("-u", "--user", help="InfluxDB v1 user")
    p.add_argument("-p", "--password", help="InfluxDB v1 password (prefer INFLUX_PASSWORD or --password-file)")
    p.add_argument("-B", "--bucket", help="InfluxDB v2 bucket")
    p.add_argument("-O", "--org", help="InfluxDB v2 organisation")
    p.add_argument("-T", "--token", help="InfluxDB v2 token (prefer INFLUX_TOKEN or --token-file)")
    p.add_argument("-A", "--influxapi", metavar="PATH", help="write path appended to the server, replaces db..token")
    p.add_argument("-I", "--isslverifypeer", type=whole(0, 1), default=1, help="0: do not check TLS")
    p.add_argument("--ca-file", type=Path, metavar="PATH", help="CA certificate(s) of the server, PEM (a private CA)")
    p.add_argument(
        "-c",
        "--cache",
        type=whole(1, None),
        help="batches kept while the database is unreachable (default: two days at the query interval)",
    )
    p.add_argument("-q", "--query", type=ranged(float, 1, None), default=5.0, help="query interval in s (5)")
    p.add_argument(
        "--rescan",
        type=ranged(float, 1, None),
        default=DEFAULT_RESCAN,
        metavar="S",
        help=f"probe the addresses without a module every S seconds; one that answers is polled ({DEFAULT_RESCAN:g})",
    )
    p.add_argument(
        "--no-fanout",
        dest="fanout",
        action="store_false",
        help="two requests to each module every cycle, even where the master answers for its whole group",
    )
    p.add_argument("-t", "--try", dest="try_", action="store_true", help="exit 0 if a battery answers, else 2")
    p.add_argument("-y", "--syslog", action="store_true", help="log to syslog instead of stderr")
    p.add_argument("-Y", "--syslogtest", action="store_true", help="send a test message to syslog and exit")
    p.add_argument("-e", "--version", action="store_true", help="show the version and exit")
    p.add_argument("--once", action="store_true", help="one cycle, then exit with its status")
    p.add_argument("--all", action="store_true", help="write every cycle (no change filter)")
    p.add_argument("--token-file", type=Path, help="read the v2 token from this file")
    p.add_argument("--password-file", type=Path, help="read the v1 password from this file")
    p.add_argument(
        "--schema",
        choices=SCHEMAS,
        default="c",
        help="InfluxDB lines: c (the C program's Battery,Module=N, default), full (pylontech_module and "
        "pylontech_stack in base units) or both",
    )
    p.add_argument("--spool", type=Path, help="spool database, used with --server/--mqtt (default: see README)")
    m = p.add_argument_group("MQTT and Home Assistant (pip install 'pylonbus[mqtt]')")
    m.add_argument("--mqtt", metavar="URL", help="broker: mqtt://[USER@]HOST[:PORT] or mqtts://… for TLS")
    m.add_argument("--mqtt-password-file", type=Path, metavar="FILE", help="the broker password (or MQTT_PASSWORD)")
    m.add_argument("--mqtt-prefix", default="pylontech", metavar="P", help="topic prefix (pylontech)")
    m.add_argument("--ha-prefix", default="homeassistant", metavar="P", help="discovery prefix (homeassistant)")
    m.add_argument(
        "--no-ha-discovery", dest="ha_discovery", action="store_false", help="publish no Home Assistant discovery"
    )
    p.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve /metrics (Prometheus), a live page, /api/state and /healthz here, e.g. 127.0.0.1:9101",
    )
    m.add_argument(
        "--ha-cleanup", action="store_true", help="remove the Home Assistant devices of modules not seen in this run"
    )
    p.add_argument("--timeout", type=seconds(), help="serial reply timeout in seconds (default: computed)")
    p.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML file with these options (see README); flags override it"
    )
    p.add_argument(
        "--print-config", action="store_true", help="print the merged configuration as TOML (secrets ***) and exit"
    )
    add_verbose(p)
    return p


def group_list(text: str) -> list[int]:
    """`0`, `0,1`: the groups polled, each once, in order."""
    parse = whole(0, MAX_GROUP)
    return list(dict.fromkeys(parse(part) for part in text.split(",") if part.strip()))


def secret(value: str | None, path: Path | None, env: str, option: str) -> str | None:
    if path is not None:
        try:
            return path.read_text().strip()
        except OSError as error:
            raise PylonbusError(f"{option} {path}: {error.strerror or error}") from None
    return value or os.environ.get(env) or None


def validate(args: argparse.Namespace) -> str | None:
    """The first problem with the options, worded as what to change; None if all is well."""
    if not args.server or args.try_:
        return None
    from ..sinks.influx.writer import InfluxTarget

    try:
        InfluxTarget(args.server, args.port).base  # noqa: B018 - parses the server URL
    except ValueError as error:
        return f"--server {args.server}: {error}; give a name, HOST:PORT or a URL"
    if args.influxapi:
        return None
    if args.org or args.bucket or args.token or args.token_file:
        for name in ("org", "bucket"):
            if not getattr(args, name):
                return f"InfluxDB v2 needs --org, --bucket and --token; --{name} is missing"
        if args.db or args.user or args.password:
            log.warning("--db, --user and --password are ignored for InfluxDB v2")
    elif not args.db:
        return "InfluxDB v1 needs --db (or give --org, --bucket and --token for v2, or --influxapi)"
    if args.password and args.password.isdigit() and not args.user:
        log.warning("-p/--password is the database password, and it looks like a port number: did you mean -o/--port?")
    return None


def config_of(args: argparse.Namespace) -> Config:
    """The service's configuration from the merged options, with the secrets read from their files or the
    environment."""
    from ..service.config import Config
    from ..sinks.mqtt.config import MqttConfig

    # Checked here, once for every sink that uses it (InfluxDB and MQTT over TLS), before the scan.
    if (args.server or args.mqtt) and args.ca_file is not None and not args.ca_file.is_file():
        raise PylonbusError(f"--ca-file {args.ca_file}: no such file")
    config = Config(
        device=args.device,
        baud=args.baud,
        groups=args.groups,
        interval=args.query,
        rescan=args.rescan,
        timeout=args.timeout,
        once=args.once,
        every=args.all,
        schema=args.schema,
        spool=args.spool,
        cache=args.cache,
        http=args.http,
    )
    if args.server:
        from ..sinks.influx.writer import InfluxTarget

        config.influx = InfluxTarget(
            args.server,
            args.port,
            args.db,
            args.user,
            secret(args.password, args.password_file, "INFLUX_PASSWORD", "--password-file"),
            args.org,
            args.bucket,
            secret(args.token, args.token_file, "INFLUX_TOKEN", "--token-file"),
            args.influxapi,
            bool(args.isslverifypeer),
            None if args.ca_file is None else str(args.ca_file),
        )
    if args.mqtt:
        config.mqtt = MqttConfig(
            args.mqtt,
            secret(None, args.mqtt_password_file, "MQTT_PASSWORD", "--mqtt-password-file"),
            args.mqtt_prefix,
            args.ha_prefix,
            args.ha_discovery,
            args.ha_cleanup,
            bool(args.isslverifypeer),
            args.ca_file,
        )
    return config


def setup_logging(args: argparse.Namespace) -> None:
    handler: logging.Handler
    if args.syslog or args.syslogtest:
        address = "/dev/log" if Path("/dev/log").exists() else ("localhost", 514)
        handler = logging.handlers.SysLogHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.setFormatter(logging.Formatter("pylon2influx[%(process)d]: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level(max(args.verbose, 1)))


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The options: built-in defaults, then the --config file, then the command line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config is not None:
        from .config_file import load

        parser.set_defaults(**load(args.config, parser))
        args = parser.parse_args(argv)
    return args


def _main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.print_config:
        from .config_file import render

        given = {"password": (args.password, "INFLUX_PASSWORD"), "token": (args.token, "INFLUX_TOKEN")}
        print(render(args, [name for name, (flag, env) in given.items() if flag or os.environ.get(env)]), end="")
        return EXIT_OK
    if args.version:
        print(version("pylon2influx"))
        return EXIT_OK
    setup_logging(args)
    if args.syslogtest:
        log.info("testtext via syslog by pylon2influx")
        return EXIT_OK
    problem = validate(args)
    if problem:
        print(f"pylon2influx: {problem}", file=sys.stderr)
        return EXIT_ERROR
    from ..link.autoport import PortLock, default_lock_dir, resolve
    from ..link.link import Link
    from ..link.stack import Stack
    from ..service import Poller
    from ..service.daemon import Daemon

    locks = default_lock_dir(args.serial_starter_lock)
    device = resolve(args.device, args.auto_ports, args.baud, args.groups[0], locks)
    if device is None:
        log.error("%s", no_port(args))
        return EXIT_NO_MODULE
    args.device = device
    link = Link(device, args.baud, timeout=args.timeout)
    poller = Poller([Stack(link, group) for group in args.groups], args.rescan, fanout=args.fanout)
    daemon = None
    if not args.try_:
        # Secrets, spool and database settings are checked before a scan that can take seconds.
        try:
            daemon = Daemon(config_of(args), poller)
        except PylonbusError as error:
            log.error("%s", error)
            return EXIT_ERROR
        install_signals(daemon)
    groups = ",".join(map(str, args.groups))
    lock = PortLock(locks, device) if locks is not None and daemon is not None and "://" not in device else None
    try:
        if lock is not None and not lock.acquire(poller.stop):
            return EXIT_OK  # stopped while another process held the port
        poller.scan()
        if poller.stop.is_set():
            log.info("stopped during the start-up scan")
            return EXIT_OK
        found = [f"group {stack.group}: {stack.modules}" for stack in poller.stacks if stack.modules]
        if not found:
            log.error(
                "no pylontech devices found on %s in group %s at %d Bd — check the group DIP switches, "
                "the baud rate and the A/B wiring%s",
                args.device,
                groups,
                args.baud,
                "" if daemon is None or args.once else f"; probing again every {args.rescan:g} s",
            )
            if daemon is None or args.once:
                return EXIT_NO_MODULE
        else:
            log.info("modules found: %s", "; ".join(found))
        if daemon is None:
            return EXIT_OK
        return daemon.run()
    except LinkError as error:
        log.error("%s", error)
        return EXIT_ERROR
    finally:
        if daemon is not None:
            log.info("%s; terminated", daemon.statistics())
        link.close()
        if lock is not None:
            lock.release()


def install_signals(daemon: Daemon) -> None:
    """Handlers only set flags: the work (statistics, which read the spool) happens in the main loop."""

    def stop(*_: object) -> None:
        daemon.stop.set()
        daemon.wake.set()

    def report(*_: object) -> None:
        daemon.report = True
        daemon.wake.set()

    def verbosity(step: int) -> Any:
        def handler(*_: object) -> None:
            root = logging.getLogger()
            root.setLevel(min(max(root.level - 10 * step, logging.DEBUG), logging.ERROR))

        return handler

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, report)
    signal.signal(signal.SIGUSR1, verbosity(-1))
    signal.signal(signal.SIGUSR2, verbosity(+1))


main = guarded("pylon2influx", _main)

if __name__ == "__main__":
    sys.exit(main())
