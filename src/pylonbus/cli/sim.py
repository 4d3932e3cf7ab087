"""`pylontech-sim`: a simulated battery stack (Pylontech, or another family with `--bms`) on a pseudo-terminal or
a TCP port."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable

from ..link.ports import BAUD_RANGE, DEFAULT_BAUD
from ..options import fraction, ranged, whole
from ..protocol.families import DEFAULT, names
from ..protocol.families.pylontech.codes import MAX_GROUP, MAX_MODULE
from ..signals import SignalRelay
from ..sim import Bus, Faults, responder_class
from ..sim.console import FIRMWARES, ConsoleBus
from ..sim.model import group_spec
from ..sim.serve import Line, serve_pty, serve_tcp
from .common import Parser, add_verbose, guarded, setup_logging, version


def tcp_address(text: str) -> tuple[str, int]:
    """HOST:PORT (port 0: any free port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:8899 (port 0: any), got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def console_address(text: str) -> tuple[str, int] | str:
    """`pty` or HOST:PORT."""
    return text if text == "pty" else tcp_address(text)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pylontech-sim",
        description="Simulate a Pylontech battery stack on a pseudo-terminal or a TCP port.",
        epilog="Stack syntax: groups separated by ';' (group 0 first), modules by ',', 'MODEL*N' for N alike, "
        "e.g. 'US3000C*3;US2000B,US2000B'; '-' for an empty address, and alone for a line without a battery "
        "(with --echo: an adapter that only echoes). Models of each --bms: "
        + "; ".join(f"{name}: {', '.join(responder_class(name).presets)}" for name in names())
        + ".",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal; prints its path")
    where.add_argument(
        "--tcp", type=tcp_address, metavar="HOST:PORT", help="serve on TCP like an RS485 gateway (port 0: any)"
    )
    parser.add_argument("--link", metavar="PATH", help="with --pty: also make PATH a symlink to the terminal")
    parser.add_argument(
        "--bms", choices=names(), default=DEFAULT, help=f"the BMS family the stack speaks (default {DEFAULT})"
    )
    parser.add_argument("--stack", help="the whole stack, see below (overrides --modules/--model/--group)")
    parser.add_argument("--modules", type=whole(1, MAX_MODULE), default=3, help="modules in the group (default 3)")
    parser.add_argument("--model", help="model of every module (default US3000C, or the family's first model)")
    parser.add_argument("--group", type=whole(0, MAX_GROUP), default=0, help=f"group number 0-{MAX_GROUP} (default 0)")
    parser.add_argument("--seed", type=whole(0, None), default=0, help="random seed: same seed, same battery")
    parser.add_argument("--frozen", action="store_true", help="values do not change over time")
    parser.add_argument("--speed", type=ranged(float, 0, None), default=1.0, help="simulated seconds per real second")
    parser.add_argument(
        "-b", "--baud", type=whole(*BAUD_RANGE), default=DEFAULT_BAUD, help="pace replies at this baud rate"
    )
    parser.add_argument("--no-pace", action="store_true", help="send replies at once, not at wire speed")
    parser.add_argument(
        "--echo", action="store_true", help="the line echoes: every byte a client sends comes back before any reply"
    )
    parser.add_argument(
        "--alarm",
        action="append",
        default=[],
        metavar="[G/]M:NAME",
        help="module M (of group G) reports alarm NAME, e.g. 2:cell_voltage_high; repeatable",
    )
    for name in Faults.names():
        option = f"--{name.replace('_', '-')}"
        if name == "delay":
            kind, text = ranged(float, 0, 60), "seconds before each reply, 0-60"
        else:
            kind, text = fraction(), "probability per reply, 0-1"
        parser.add_argument(option, type=kind, default=0.0, metavar="X", help=text)
    parser.add_argument(
        "--console",
        action="store_true",
        help="serve the RS232 console of the master module (115200 Bd) instead of RS485",
    )
    parser.add_argument(
        "--console-on",
        type=console_address,
        metavar="pty|HOST:PORT",
        help="also serve the console of the same stack on a new pseudo-terminal or a TCP port (its path: 2nd line)",
    )
    parser.add_argument(
        "--console-firmware",
        choices=sorted(FIRMWARES),
        default="us2000c",
        help="the console's column sets and prompt (default us2000c)",
    )
    parser.add_argument("--version", action="version", version=version("pylontech-sim"))
    add_verbose(parser)
    return parser


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    played = responder_class(args.bms)
    try:
        model = args.model or played.default_model
        spec = args.stack or group_spec(model, args.modules, args.group, played.family)
        stack = played.parse_stack(spec, seed=args.seed, frozen=args.frozen, speed=args.speed, start=time.monotonic())
        for alarm in args.alarm:
            stack.raise_alarm(alarm)
    except ValueError as error:
        print(f"pylontech-sim: {error}", file=sys.stderr)
        return 1
    faults = Faults(**{name: getattr(args, name) for name in Faults.names()})
    responder = played(stack, faults, seed=args.seed)

    def make_bus() -> Bus:
        return Bus(responder, args.baud, pace=not args.no_pace, echo=args.echo)

    def make_console() -> ConsoleBus:
        return ConsoleBus(stack, FIRMWARES[args.console_firmware], faults, pace=not args.no_pace)

    stop = threading.Event()
    console_path: list[str] = []

    def ready(path: str) -> None:
        print(path, flush=True)
        for path in console_path:
            print(path, flush=True)
        modules = ", ".join(f"{m.preset.name}@0x{m.address:02X}" for m in stack.modules.values()) or "no module"
        echo = ", echoing every request" if args.echo else ""
        if args.console or console_path:
            echo += f", the console as firmware {args.console_firmware}"
        print(f"pylontech-sim: serving {modules}{echo}", file=sys.stderr, flush=True)

    SignalRelay(dict.fromkeys((signal.SIGTERM, signal.SIGINT), stop.set)).install()  # no work inside a handler
    try:
        if args.console_on is not None:
            tcp = None if args.console_on == "pty" else args.console_on
            console_path.append(_serve_in_thread(make_console, tcp, stop))
        serve(make_console if args.console else make_bus, args.tcp, args.link, ready, stop)
    except (OSError, ValueError) as error:
        print(f"pylontech-sim: {error}", file=sys.stderr)
        return 1
    return 0


def serve(
    make: Callable[[], Line],
    tcp: tuple[str, int] | None,
    link: str | None,
    ready: Callable[[str], None],
    stop: threading.Event,
) -> None:
    if tcp is None:
        serve_pty(make, link, ready, stop)
    else:
        serve_tcp(make, *tcp, ready, stop)


def _serve_in_thread(make: Callable[[], Line], tcp: tuple[str, int] | None, stop: threading.Event) -> str:
    """Serve a second port (the console) beside the main one; its path once it is ready."""
    paths: list[str] = []
    started = threading.Event()

    def ready(path: str) -> None:
        paths.append(path)
        started.set()

    threading.Thread(target=serve, args=(make, tcp, None, ready, stop), daemon=True).start()
    started.wait(10)
    if not paths:
        raise OSError("the console port could not be opened")
    return paths[0]


main = guarded("pylontech-sim", _main)

if __name__ == "__main__":
    sys.exit(main())
