"""`pylontech-sim`: a simulated Pylontech stack on a pseudo-terminal or a TCP port."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from .. import __version__
from ..sim import Bus, Faults, Responder, Stack
from ..sim.model import PRESETS
from ..sim.serve import serve_pty, serve_tcp
from .common import add_verbose, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pylontech-sim",
        description="Simulate a Pylontech battery stack on a pseudo-terminal or a TCP port.",
        epilog="Stack syntax: groups separated by ';' (group 0 first), modules by ',', 'MODEL*N' for N alike, "
        "e.g. 'US3000C*3;US2000B,US2000B'. Models: " + ", ".join(PRESETS) + ".",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal; prints its path")
    where.add_argument("--tcp", metavar="HOST:PORT", help="serve on TCP like an RS485 gateway (port 0: any)")
    parser.add_argument("--link", metavar="PATH", help="with --pty: also make PATH a symlink to the terminal")
    parser.add_argument("--stack", help="the whole stack, see below (overrides --modules/--model/--group)")
    parser.add_argument("--modules", type=int, default=3, help="modules in the group (default 3)")
    parser.add_argument("--model", default="US3000C", help="model of every module (default US3000C)")
    parser.add_argument("--group", type=int, default=0, help="group number 0-15 (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: same seed, same battery")
    parser.add_argument("--frozen", action="store_true", help="values do not change over time")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument("-b", "--baud", type=int, default=115200, help="pace replies at this baud rate")
    parser.add_argument("--no-pace", action="store_true", help="send replies at once, not at wire speed")
    for name in Faults.names():
        unit = "seconds before each reply" if name == "delay" else "probability per reply, 0-1"
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=0.0, metavar="X", help=unit)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_verbose(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    spec = args.stack or ";" * args.group + f"{args.model}*{args.modules}"
    try:
        stack = Stack.parse(spec, seed=args.seed, frozen=args.frozen, speed=args.speed, start=time.monotonic())
    except ValueError as error:
        print(f"pylontech-sim: {error}", file=sys.stderr)
        return 1
    faults = Faults(**{name: getattr(args, name) for name in Faults.names()})
    responder = Responder(stack, faults, seed=args.seed)

    def make_bus() -> Bus:
        return Bus(responder, args.baud, pace=not args.no_pace)

    def ready(path: str) -> None:
        print(path, flush=True)
        modules = ", ".join(f"{m.preset.name}@0x{m.address:02X}" for m in stack.modules.values())
        print(f"pylontech-sim: serving {modules}", file=sys.stderr, flush=True)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if args.pty:
            serve_pty(make_bus, args.link, ready, stop)
        else:
            host, _, port = args.tcp.rpartition(":")
            serve_tcp(make_bus, host or "127.0.0.1", int(port), ready, stop)
    except (OSError, ValueError) as error:
        print(f"pylontech-sim: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
