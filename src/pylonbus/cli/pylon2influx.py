"""`pylon2influx`: poll a Pylontech stack and write every module's analog values to InfluxDB, through a
durable spool; without --server, to standard output."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..client import BAUD_RANGE, DEFAULT_BAUD, DEFAULT_PORT, Link, Stack
from ..errors import LinkError, ProtocolError
from ..lineproto import ZERO, Snapshot, battery_line, changed
from ..protocol.codes import MAX_GROUP
from ..shipper import Shipper
from ..sinks import Outcome
from ..sinks.influx import InfluxSink, InfluxTarget
from ..sinks.stdout import StdoutSink
from ..spool import Spool, default_path
from .common import Parser, add_verbose, log_level

log = logging.getLogger("pylon2influx")
EXIT_OK, EXIT_ERROR, EXIT_NO_MODULE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="pylon2influx",
        description="Write Pylontech battery data to InfluxDB (v1, v2 or any line-protocol endpoint). "
        "Without --server the line protocol goes to standard output.",
        epilog="Secrets can also come from INFLUX_TOKEN / INFLUX_PASSWORD or --token-file / --password-file.",
    )
    p.add_argument("-d", "--device", default=DEFAULT_PORT, help=f"serial port or URL (default {DEFAULT_PORT})")
    p.add_argument("-b", "--baud", type=int, default=DEFAULT_BAUD, help=f"baud rate (default {DEFAULT_BAUD})")
    p.add_argument("-g", "--group", type=int, default=0, help="group 0-15 (default 0)")
    p.add_argument("-s", "--server", help="InfluxDB server name or URL (https:// for TLS)")
    p.add_argument("-o", "--port", type=int, default=8086, help="InfluxDB port (default 8086)")
    p.add_argument("-n", "--db", help="InfluxDB v1 database")
    p.add_argument("-u", "--user", help="InfluxDB v1 user")
    p.add_argument("-p", "--password", help="InfluxDB v1 password (prefer INFLUX_PASSWORD or --password-file)")
    p.add_argument("-B", "--bucket", help="InfluxDB v2 bucket")
    p.add_argument("-O", "--org", help="InfluxDB v2 organisation")
    p.add_argument("-T", "--token", help="InfluxDB v2 token (prefer INFLUX_TOKEN or --token-file)")
    p.add_argument("-A", "--influxapi", metavar="PATH", help="write path appended to server:port, replaces db..token")
    p.add_argument("-I", "--isslverifypeer", type=int, default=1, help="0: do not check the TLS certificate")
    p.add_argument(
        "-c",
        "--cache",
        type=int,
        help="batches kept while the database is unreachable (default: two days at the query interval)",
    )
    p.add_argument("-q", "--query", type=float, default=5.0, help="query interval in seconds (default 5)")
    p.add_argument("-t", "--try", dest="try_", action="store_true", help="exit 0 if a battery answers, else 2")
    p.add_argument("-y", "--syslog", action="store_true", help="log to syslog instead of stderr")
    p.add_argument("-Y", "--syslogtest", action="store_true", help="send a test message to syslog and exit")
    p.add_argument("-e", "--version", action="store_true", help="show the version and exit")
    p.add_argument("--once", action="store_true", help="one cycle, then exit with its status")
    p.add_argument("--all", action="store_true", help="write every cycle (no change filter)")
    p.add_argument("--token-file", type=Path, help="read the v2 token from this file")
    p.add_argument("--password-file", type=Path, help="read the v1 password from this file")
    p.add_argument("--spool", type=Path, help=f"spool database (default {default_path()})")
    p.add_argument("--timeout", type=float, help="serial reply timeout in seconds (default: computed)")
    add_verbose(p)
    return p


def secret(value: str | None, path: Path | None, env: str) -> str | None:
    if path is not None:
        return path.read_text().strip()
    return value or os.environ.get(env) or None


def validate(args: argparse.Namespace) -> str | None:
    """The first problem with the options, worded as what to change; None if all is well."""
    if not 0 <= args.group <= MAX_GROUP:
        return f"--group {args.group} is out of range 0-{MAX_GROUP}"
    if not BAUD_RANGE[0] <= args.baud <= BAUD_RANGE[1]:
        return f"--baud {args.baud} is out of range {BAUD_RANGE[0]}-{BAUD_RANGE[1]}"
    if args.isslverifypeer not in (0, 1):
        return "--isslverifypeer must be 0 or 1"
    if args.query < 1:
        return "--query must be at least 1 second"
    if not 0 < args.port <= 65535:
        return f"--port {args.port} is out of range 1-65535"
    if args.cache is not None and args.cache < 1:
        return "--cache must be at least 1"
    if not args.server or args.influxapi or args.try_:
        return None
    if args.org or args.bucket or args.token:
        for name in ("org", "bucket", "token"):
            if not getattr(args, name):
                return f"InfluxDB v2 needs --org, --bucket and --token; --{name} is missing"
        if args.db or args.user or args.password:
            log.warning("--db, --user and --password are ignored for InfluxDB v2")
    elif not args.db:
        return "InfluxDB v1 needs --db (or give --org, --bucket and --token for v2, or --influxapi)"
    return None


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


class Daemon:
    def __init__(self, args: argparse.Namespace, stack: Stack) -> None:
        self.args = args
        self.stack = stack
        self.last: dict[int, Snapshot] = {}
        self.poll_errors = 0
        self.stop = threading.Event()
        self.shipper: Shipper | None = None
        self.stdout: StdoutSink | None = None
        if args.server:
            target = InfluxTarget(
                args.server,
                args.port,
                args.db,
                args.user,
                secret(args.password, args.password_file, "INFLUX_PASSWORD"),
                args.org,
                args.bucket,
                secret(args.token, args.token_file, "INFLUX_TOKEN"),
                args.influxapi,
                bool(args.isslverifypeer),
            )
            limit = args.cache or max(1, int(2 * 86400 / args.query))
            spool = Spool(args.spool or default_path(), limit)
            self.shipper = Shipper(spool, InfluxSink(target))
            log.info(
                "writing to InfluxDB %s at %s, spool %s (%d batches at most)",
                target.kind,
                target.redacted_url(),
                spool.path,
                limit,
            )
        else:
            self.stdout = StdoutSink()

    def cycle(self) -> bool:
        """Poll every module once and hand the changed ones on; True when every module answered."""
        timestamp = time.time_ns()
        lines = []
        snapshots = {}
        ok = True
        for module in self.stack.modules:
            try:
                pack = self.stack.analog(module)
            except (LinkError, ProtocolError) as error:
                self.poll_errors += 1
                ok = False
                log.warning("module %d skipped this cycle: %s", module, error)
                continue
            snapshot = Snapshot.of(pack)
            if self.args.all or changed(snapshot, self.last.get(module, ZERO)):
                lines.append(battery_line(module, pack, timestamp, self.stack.group))
                snapshots[module] = snapshot
        if lines:
            body = "\n".join(lines).encode()
            if self.shipper is not None:
                self.shipper.spool.add(body, len(lines))
                self.shipper.wake.set()
            elif self.stdout is not None and not self.stdout.write(body).ok:
                self.stop.set()  # the reader of our output is gone
            self.last.update(snapshots)
        return ok

    def statistics(self) -> str:
        if self.shipper is None:
            return f"poll errors: {self.poll_errors}"
        s, spool = self.shipper.stats, self.shipper.spool
        return (
            f"sent: {s.sent_batches} batches ({s.sent_lines} lines), failed posts: {s.failures}, "
            f"spooled: {spool.pending()}, dropped: {spool.counter('dropped')}, "
            f"rejected: {spool.counter('rejected')}, poll errors: {self.poll_errors}"
        )

    def run(self) -> int:
        shipper_thread = None
        if self.shipper is not None and not self.args.once:
            shipper_thread = threading.Thread(target=self.shipper.run, args=(self.stop,), daemon=True)
            shipper_thread.start()
        status = EXIT_OK
        while not self.stop.is_set():
            started = time.monotonic()
            ok = self.cycle()
            if self.args.once:
                status = EXIT_OK if ok and self._flush() else EXIT_ERROR
                break
            # A fixed period: neither slow polls nor the database stretch the interval.
            self.stop.wait(max(0.0, started + self.args.query - time.monotonic()))
        if shipper_thread is not None:
            shipper_thread.join(10)
        return status

    def _flush(self) -> bool:
        """--once: send what is spooled now; True when nothing is left."""
        if self.shipper is None:
            return True
        while self.shipper.spool.pending():
            outcome: Outcome | None = self.shipper.send_pending()
            if outcome is not None:
                log.error(
                    "database write failed (HTTP %s): %s; the batch stays spooled", outcome.status, outcome.message
                )
                return False
        return True


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        print(f"pylon2influx (pylonbus) {__version__}")
        return EXIT_OK
    setup_logging(args)
    if args.syslogtest:
        log.info("testtext via syslog by pylon2influx")
        return EXIT_OK
    try:
        problem = validate(args)
    except OSError as error:
        problem = str(error)
    if problem:
        print(f"pylon2influx: {problem}", file=sys.stderr)
        return EXIT_ERROR
    link = Link(args.device, args.baud, timeout=args.timeout)
    stack = Stack(link, args.group)
    try:
        modules = stack.scan()
    except LinkError as error:
        log.error("%s", error)
        return EXIT_ERROR
    if not modules:
        log.error(
            "no pylontech devices found on %s in group %d at %d Bd — check the group DIP switches, "
            "the baud rate and the A/B wiring",
            args.device,
            args.group,
            args.baud,
        )
        return EXIT_NO_MODULE
    log.info("%d module(s) found in group %d: %s", len(modules), args.group, modules)
    if args.try_:
        return EXIT_OK
    try:
        daemon = Daemon(args, stack)
    except (OSError, ValueError) as error:
        log.error("%s", error)
        return EXIT_ERROR
    install_signals(daemon)
    try:
        return daemon.run()
    finally:
        log.info("%s; terminated", daemon.statistics())
        link.close()


def install_signals(daemon: Daemon) -> None:
    def verbosity(step: int) -> Any:
        def handler(*_: object) -> None:
            root = logging.getLogger()
            root.setLevel(min(max(root.level - 10 * step, logging.DEBUG), logging.ERROR))

        return handler

    signal.signal(signal.SIGTERM, lambda *_: daemon.stop.set())
    signal.signal(signal.SIGINT, lambda *_: daemon.stop.set())
    signal.signal(signal.SIGHUP, lambda *_: log.warning("%s", daemon.statistics()))
    signal.signal(signal.SIGUSR1, verbosity(-1))
    signal.signal(signal.SIGUSR2, verbosity(+1))


if __name__ == "__main__":
    sys.exit(main())
