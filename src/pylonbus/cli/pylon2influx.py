"""`pylon2influx`: poll a Pylontech stack and write every module's analog values to InfluxDB, through a
durable spool; without --server, to standard output."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LinkError, PylonbusError
from ..link.detect import AUTO
from ..link.ports import DEFAULT_BAUD, DEFAULT_PORT
from ..protocol.families import DEFAULT, names
from ..protocol.families.pylontech.codes import MAX_GROUP
from ..service.settings import SETTINGS, merge
from ..sinks.influx.settings import SCHEMAS
from ..store.paths import default_energy_path, default_path
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
    version,
)

if TYPE_CHECKING:
    from ..link.link import Link
    from ..link.stack import Stack
    from ..service.config import Battery
    from ..service.console import ConsoleSource
    from ..service.daemon import Daemon

log = logging.getLogger("pylon2influx")
Port = tuple["Link", list["Stack"]]  # a port's link and the stacks of its groups


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
        action="append",
        help=f"serial port or URL (default {DEFAULT_PORT}); 'auto': the first of --auto-ports a battery answers on; "
        "once a port for several",
    )
    p.add_argument(
        "--bms",
        action="append",
        metavar="NAME",
        help=f"the BMS family: {', '.join(names())} (default {DEFAULT}) or auto (the one that answers); "
        "with several -d, one for all or one a port, in their order",
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
    p.add_argument("-b", "--baud", help=f"baud rate ({DEFAULT_BAUD})")
    p.add_argument(
        "-g",
        "--group",
        dest="groups",
        metavar="G[,G…]",
        help=f"group(s) 0-{MAX_GROUP} on the bus, e.g. 0,1 (default 0)",
    )
    p.add_argument(
        "-s", "--server", help="InfluxDB server: a name, HOST:PORT or a URL such as https://influx.lan:8086/path"
    )
    p.add_argument("-o", "--port", help="port when --server names none (8086)")
    p.add_argument("-n", "--db", help="InfluxDB v1 database")
    p.add_argument("-u", "--user", help="InfluxDB v1 user")
    p.add_argument("-p", "--password", help="InfluxDB v1 password (prefer INFLUX_PASSWORD or --password-file)")
    p.add_argument("-B", "--bucket", help="InfluxDB v2 bucket")
    p.add_argument("-O", "--org", help="InfluxDB v2 organisation")
    p.add_argument("-T", "--token", help="InfluxDB v2 token (prefer INFLUX_TOKEN or --token-file)")
    p.add_argument("-A", "--influxapi", metavar="PATH", help="write path appended to the server, replaces db..token")
    p.add_argument("-I", "--isslverifypeer", help="0: do not check TLS")
    p.add_argument("--ca-file", metavar="PATH", help="CA certificate(s) of the server, PEM (a private CA)")
    p.add_argument(
        "-c",
        "--cache",
        help="batches kept while the database is unreachable (default: two days at the query interval)",
    )
    p.add_argument("-q", "--query", help="query interval in s (5)")
    p.add_argument(
        "--rescan",
        metavar="S",
        help="probe the addresses without a module every S seconds; one that answers is polled (60)",
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
    p.add_argument(
        "--site",
        metavar="NAME",
        help="tag every line-protocol line site=NAME, so that many sites can write to one database",
    )
    p.add_argument(
        "--stdout",
        action="store_true",
        help="write the line protocol to standard output beside the other sinks (without --server, --mqtt or "
        "--http it goes there anyway)",
    )
    p.add_argument("--token-file", help="read the v2 token from this file")
    p.add_argument("--password-file", help="read the v1 password from this file")
    p.add_argument(
        "--schema",
        choices=SCHEMAS,
        help="InfluxDB lines: c (the C program's Battery,Module=N, default), full (pylontech_module and "
        "pylontech_stack in base units) or both",
    )
    p.add_argument(
        "--spool",
        metavar="FILE",
        help=f"spool database, used with --server/--mqtt; it keeps the energy counters too (default {default_path()})",
    )
    p.add_argument(
        "--energy-state",
        metavar="FILE",
        help="the energy counters' file when nothing is spooled (standard output, --http only; not with --once) "
        f"(default {default_energy_path()})",
    )
    m = p.add_argument_group("MQTT and Home Assistant")
    m.add_argument("--mqtt", metavar="URL", help="broker: mqtt://[USER@]HOST[:PORT] or mqtts://… for TLS")
    m.add_argument("--mqtt-password-file", metavar="FILE", help="the broker password (or MQTT_PASSWORD)")
    m.add_argument("--mqtt-prefix", metavar="P", help="topic prefix (pylontech)")
    m.add_argument("--ha-prefix", metavar="P", help="discovery prefix (homeassistant)")
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
    p.add_argument("--timeout", help="serial reply timeout in seconds (default: computed)")
    p.add_argument(
        "--console-device",
        metavar="PORT",
        help="also read the master's RS232 console port (115200 Bd): SOH, balancing cells, cell temperatures, "
        "lifetime counters; without -d the console alone gives the readings (RS485 taken by the inverter)",
    )
    p.add_argument("--console-every", metavar="S", help="read bat/soh/stat of each module every S seconds (60)")
    p.add_argument(
        "--console-wake", action="store_true", help="send the console the 1200 Bd wake-up frame some US2000B need"
    )
    p.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML file with these options (see README); flags override it"
    )
    p.add_argument(
        "--print-config", action="store_true", help="print the merged configuration as TOML (secrets ***) and exit"
    )
    add_verbose(p)
    for action in p._actions:
        setting = SETTINGS.get(action.dest)
        if setting is not None:
            # A setting's flag is read by the setting's own parser, and absent unless given: its default, and a
            # value from --config, come from the settings (service.settings.merge).
            action.default = argparse.SUPPRESS
            if setting.parse is not None and not action.choices and action.nargs != 0:
                action.type = setting.parse
    return p


def setup_logging(args: argparse.Namespace) -> None:
    """To syslog (-y) through its socket, else to stderr. Without a syslog to reach (a container, a minimal
    system) the log goes to stderr with one warning: a daemon that logs nowhere cannot be helped."""
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handlers: list[logging.Handler] = [stderr]
    if args.syslog or args.syslogtest:
        fallback = logging.StreamHandler(sys.stderr)
        fallback.setFormatter(stderr.formatter)
        # Beside syslog, what ends the program also goes to stderr, where whoever started it looks first.
        stderr.addFilter(lambda record: getattr(record, "fatal", False))
        from .syslog import Syslog  # here, not above: logging.handlers imports pickle, socket and queue (0.5 MB)

        handlers = [Syslog(fallback), stderr]
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(log_level(max(args.verbose, 1)))


def fatal(message: str, *args: object) -> None:
    """Log what ends the program: also on stderr when the log goes to syslog."""
    log.error(message, *args, extra={"fatal": True})


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The options: the settings merged (defaults, then the --config file, then the flags given), and the flags
    that are not settings (--once, --try …)."""
    parser = build_parser()
    flags = vars(parser.parse_args(argv))
    devices, families = flags.pop("device", []), flags.pop("bms", [])
    if len(families) > 1 and len(families) != len(devices):
        parser.error(f"--bms given {len(families)} times for {len(devices)} -d: give one for all, or one a port")
    if families:
        flags["bms"] = families[0]
    if devices:
        flags["device"] = devices[0]
    if len(devices) > 1:
        flags["batteries"] = [
            {"device": device} | ({"bms": families[n]} if len(families) > 1 else {}) for n, device in enumerate(devices)
        ]
    return argparse.Namespace(**merge(flags.get("config"), flags))


def _main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.print_config:
        from ..service.settings import render

        print(render(vars(args)), end="")
        return EXIT_OK
    if args.version:
        print(version("pylon2influx"))
        return EXIT_OK
    setup_logging(args)
    if args.syslogtest:
        log.info("testtext via syslog by pylon2influx")
        return EXIT_OK
    stop = threading.Event()
    started: list[Daemon] = []  # the daemon, once there is one for SIGHUP to report on
    install_signals(stop, started)  # before anything slow: a signal must never find the default action
    from ..service.config import check, configure

    problem = None if args.try_ else check(vars(args))
    if problem:
        print(f"pylon2influx: {problem}", file=sys.stderr)
        return EXIT_ERROR
    from ..link.autoport import PortLock, default_lock_dir
    from ..readings.reading import named
    from ..service import Poller
    from ..service.config import batteries
    from ..service.daemon import Daemon

    config = None
    if not args.try_:
        # Secrets, spool and database settings are checked before a port search or a scan that can take long.
        try:
            config = configure(vars(args))
        except PylonbusError as error:
            fatal("%s", error)
            return EXIT_ERROR
    locks = default_lock_dir(args.serial_starter_lock)
    try:
        # The daemon keeps probing for a port that -d auto does not find; --try and --once end.
        opened = open_ports(args, batteries(vars(args)), locks, None if config is None or args.once else stop)
    except PylonbusError as error:
        fatal("%s", error)
        return EXIT_ERROR
    if opened is None:
        return EXIT_OK if stop.is_set() else EXIT_NO_MODULE
    links = [link for link, _ in opened]
    stacks = [stack for _, port in opened for stack in port]
    console = None
    if args.console_device:
        from ..link.console import ConsoleLink
        from ..service.console import ConsoleSource

        port = ConsoleLink(args.console_device, wake=args.console_wake)
        console = ConsoleSource(port, args.groups[0], args.console_every, alone=not stacks, stop=stop)
    poller = Poller(stacks, args.rescan, fanout=args.fanout, stop=stop, console=console)
    daemon = None
    if config is not None:
        try:
            daemon = Daemon(config, poller)
        except PylonbusError as error:
            fatal("%s", error)
            return EXIT_ERROR
        started.append(daemon)
    held: list[PortLock] = []
    if locks is not None and daemon is not None:
        held = [PortLock(locks, link.port) for link in links if "://" not in link.port]
    try:
        for lock in held:
            if not lock.acquire(poller.stop):
                return EXIT_OK  # stopped while another process held the port
        poller.scan()
        if poller.stop.is_set():
            log.info("stopped during the start-up scan")
            return EXIT_OK
        found = [named(stack.family.name, f"group {stack.group}: {stack.modules}") for stack in stacks if stack.modules]
        if console is not None and console.alone:
            failed = scan_console(console, daemon is None or args.once)
            if failed is not None:
                return failed
        elif not found:
            ends = daemon is None or args.once
            (fatal if ends else log.error)(
                "no %s devices found on %s in group %s at %d Bd — check the group DIP switches, "
                "the baud rate and the A/B wiring%s",
                " or ".join(sorted({stack.family.name for stack in stacks})),
                ", ".join(link.port for link in links),
                ",".join(dict.fromkeys(str(stack.group) for stack in stacks)),
                args.baud,
                "" if ends else f"; probing again every {args.rescan:g} s",
            )
            if ends:
                return EXIT_NO_MODULE
        else:
            log.info("modules found: %s", "; ".join(found))
        if daemon is None:
            return EXIT_OK
        return daemon.run()
    except LinkError as error:
        # Most likely neither port was named: the default RS485 port was tried, and the console may be what the
        # user has.
        alone = (
            f"; -d is {DEFAULT_PORT} by default: name the RS485 port with -d PORT, or read the RS232 console alone "
            "with --console-device PORT"
        )
        fatal("%s%s", error, alone if args.device == DEFAULT_PORT and not args.console_device else "")
        return EXIT_ERROR
    finally:
        if daemon is not None:
            log.info("%s; terminated", daemon.statistics())
            daemon.close()
        for link in links:
            link.close()
        for lock in held:
            lock.release()


def scan_console(console: ConsoleSource, ends: bool) -> int | None:
    """The console read alone: the modules its `pwr` lists, said. None to go on; where it does not answer and
    the program `ends` (--once, --try), the exit status as for RS485: 1 for a port that does not open, 2 for
    one where nothing answers; a daemon asks it again every cycle."""
    from ..errors import ConsoleError, PortError

    try:
        console.scan()
    except (LinkError, ConsoleError) as error:
        if ends:
            fatal("%s", error)
            return EXIT_ERROR if isinstance(error, PortError) else EXIT_NO_MODULE
        log.error("%s; no readings are published until it answers; it is asked again every cycle", error)
        console.silent = True  # its answer is said once, when it comes
        return None
    if not console.known:
        (fatal if ends else log.error)("the console on %s lists no module in its pwr table", console.link.port)
        return EXIT_NO_MODULE if ends else None
    log.info("modules found: %s", console.describe())
    return None


def open_ports(
    args: argparse.Namespace, ports: list[Battery], locks: Path | None, keep_probing: threading.Event | None = None
) -> list[tuple[Link, list[Stack]]] | None:
    """A link a port and a stack a group on it, of the port's family; `-d auto` and `--bms auto` are resolved
    here (each `battery` then names what it found). None, said, where nothing answers; ConfigError for stacks
    the sinks cannot tell apart or write (`check_stacks`), before the ports are probed and after. With
    `keep_probing` (the daemon's stop event), a `-d auto` that finds no port is probed again until one answers
    or the event is set (then None)."""
    from ..link.autoport import resolve
    from ..link.detect import detect
    from ..link.link import Link
    from ..link.stack import Stack
    from ..service.config import check_stacks

    if not args.try_:
        check_stacks(ports, args.schema)
    opened: list[Port] = []
    for battery in ports:
        device = resolve(battery.device, args.auto_ports, battery.baud, battery.groups[0], locks, battery.bms)
        if device is None and keep_probing is not None:
            device = wait_for_port(args, battery, locks, keep_probing)
        if device is None:
            if keep_probing is None:
                fatal("%s", no_port(args))
            break
        battery.device = device
        link = Link(device, battery.baud, timeout=args.timeout)
        opened.append((link, []))
        if battery.bms == AUTO:
            family = detect(link, battery.groups[0])
            if family is None:
                fatal(
                    "--bms auto: no BMS family answers on %s in group %d at %d Bd; check the wiring and the baud rate, "
                    "or give --bms NAME to keep probing",
                    device,
                    battery.groups[0],
                    battery.baud,
                )
                break
            log.info("--bms auto: %s answers on %s", family.title, device)
            battery.bms = family.name
        opened[-1][1].extend(Stack(link, group, bms=battery.bms) for group in battery.groups)
    else:
        try:
            if not args.try_:
                check_stacks(ports, args.schema)  # with the families `auto` found
            return opened
        except PylonbusError:
            for link, _ in opened:
                link.close()
            raise
    for link, _ in opened:
        link.close()
    return None


def wait_for_port(args: argparse.Namespace, battery: Battery, locks: Path | None, stop: threading.Event) -> str | None:
    """-d auto found no port: probed again every --rescan s, as an address without a module is, until one answers
    (its port) or a signal stops the daemon (None). systemd hears that the service runs and is alive meanwhile."""
    from ..link.autoport import resolve
    from ..service.systemd import notify

    log.error("%s; probing again every %g s", no_port(args), args.rescan)
    notify(f"READY=1\nSTATUS=-d auto: no port answers yet; probing every {args.rescan:g} s")
    while not stop.wait(args.rescan):
        notify("WATCHDOG=1")
        device = resolve(battery.device, args.auto_ports, battery.baud, battery.groups[0], locks, battery.bms)
        if device is not None:
            log.warning("-d auto: a battery answers on %s; starting", device)
            return device
    return None


def install_signals(stop: threading.Event, started: list[Daemon]) -> None:
    """SIGTERM/SIGINT set `stop`, SIGHUP has the daemon log its statistics, SIGUSR1/SIGUSR2 lower/raise the
    verbosity; acted on by the relay thread, never inside a handler (a burst of thousands must neither nest nor
    block)."""
    from ..signals import SignalRelay

    def end() -> None:
        stop.set()
        for daemon in started:
            daemon.wake.set()

    def report() -> None:
        for daemon in started:
            daemon.report = True
            daemon.wake.set()

    def verbosity(step: int) -> Callable[[], None]:
        def change() -> None:
            root = logging.getLogger()
            root.setLevel(min(max(root.level - 10 * step, logging.DEBUG), logging.ERROR))

        return change

    actions: dict[int, Callable[[], None]] = {signal.SIGTERM: end, signal.SIGINT: end, signal.SIGHUP: report}
    actions |= {signal.SIGUSR1: verbosity(-1), signal.SIGUSR2: verbosity(+1)}
    SignalRelay(actions, first=(signal.SIGTERM, signal.SIGINT)).install()


main = guarded("pylon2influx", _main)

if __name__ == "__main__":
    sys.exit(main())
