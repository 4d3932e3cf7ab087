"""What the programs share on the command line: verbosity, logging set-up, and the guard that
turns every failure into one line for the user instead of a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn, Protocol

from .. import PylonbusError, __version__
from ..link.ports import AUTO_PORTS
from ..logs import FRAME
from ..options import verbosity

EXIT_OK, EXIT_ERROR, EXIT_NO_MODULE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a Unix tool killed by SIGPIPE reports


def version(prog: str) -> str:
    """One form for every program's --version."""
    return f"{prog} (pylonbus) {__version__}"


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """-v, -vv, -vvv, -v 2, --verbose=3: like the C programs' optional-argument -v."""
    parser.add_argument(
        "-v",
        "--verbose",
        nargs="?",
        type=verbosity,
        const=1,
        default=0,
        metavar="N",
        help="more log output: 1 (-v) info, 2 (-vv) debug, 3 (-vvv) every frame sent and received",
    )


def log_level(verbose: int) -> int:
    return {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}.get(verbose, FRAME)


def setup_logging(verbose: int) -> None:
    logging.basicConfig(
        level=log_level(verbose),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


class Parser(argparse.ArgumentParser):
    """Invalid options exit with status 1, like every other error of these programs."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


class Main(Protocol):
    def __call__(self, argv: list[str] | None = None) -> int: ...


def guarded(prog: str, main: Callable[[list[str] | None], int]) -> Main:
    """`main` as a user sees it: errors in one line, Ctrl-C and a closed pipe quiet, never a traceback
    (`-v 2` adds it to the log for a bug report)."""

    def run(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, and keep Python's exit flush from failing too.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
        except PylonbusError as error:
            print(f"{prog}: {error}", file=sys.stderr)
            return EXIT_ERROR
        except Exception as error:  # a bug: say so in one line, the traceback goes to the debug log
            logging.getLogger(prog).debug("internal error", exc_info=True)
            print(
                f"{prog}: internal error: {type(error).__name__}: {error} — please report it with the output "
                "of the same command run with -v 2",
                file=sys.stderr,
            )
            return EXIT_ERROR

    return run


def add_auto_ports(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--auto-ports",
        default=AUTO_PORTS,
        metavar="GLOBS",
        help=f"with -d auto: the ports to probe, colon-separated globs (default {AUTO_PORTS})",
    )


def no_port(args: argparse.Namespace) -> str:
    """Why -d auto found nothing: no serial port at all (the adapter or its driver), or no battery on any."""
    from ..link.autoport import candidates

    if not candidates(args.auto_ports):
        return (
            f"-d auto: no serial port exists ({args.auto_ports} match nothing; -v 1 names each): is the adapter "
            "plugged in? `dmesg | tail` shows whether a driver (ftdi_sio, ch341, cp210x, cdc_acm) took it"
        )
    bms = getattr(args, "bms", "pylontech")
    what = "BMS" if bms == "auto" else "Pylontech" if bms == "pylontech" else f"{bms} BMS"
    other = "" if bms == "auto" else "; a BMS of another family: --bms auto"
    return (
        f"-d auto: no {what} stack answers on {args.auto_ports} at {args.baud} Bd "
        f"(-v 1 says why each port was skipped); check the adapter, the baud rate and the A/B wiring{other}"
    )
