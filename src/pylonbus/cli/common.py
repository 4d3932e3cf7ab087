"""What the programs share on the command line: option types, verbosity, logging set-up, and the guard that
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

EXIT_OK, EXIT_ERROR, EXIT_NO_MODULE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a Unix tool killed by SIGPIPE reports


def version(prog: str) -> str:
    """One form for every program's --version."""
    return f"{prog} (pylonbus) {__version__}"


def _verbosity(text: str) -> int:
    """`-v 2`, `-v2`, `--verbose=2`, and `-vv`/`-vvv` (argparse hands the extra v's over as the value)."""
    if text.isdigit():
        return int(text)
    if text and set(text) == {"v"}:
        return len(text) + 1
    raise argparse.ArgumentTypeError(f"verbosity is a number 0-3 or -vv/-vvv, got {text!r}")


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """-v, -vv, -vvv, -v 2, --verbose=3: like the C programs' optional-argument -v."""
    parser.add_argument(
        "-v",
        "--verbose",
        nargs="?",
        type=_verbosity,
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


def ranged(kind: Callable[[str], float], low: float, high: float | None) -> Callable[[str], float]:
    """An argparse type: a number of `kind` within low..high (no upper bound if `high` is None); argparse
    puts the option's name before the message."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"{low:g}-{high:g}" if high is not None else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range ({bound})")
        return value

    return parse


def whole(low: int, high: int | None) -> Callable[[str], int]:
    """An argparse type: an integer (decimal or 0x…) within low..high."""
    parse = ranged(lambda text: int(text, 0), low, high)
    return lambda text: int(parse(text))


def seconds(low: float = 0.001) -> Callable[[str], float]:
    return ranged(float, low, None)


def fraction() -> Callable[[str], float]:
    return ranged(float, 0.0, 1.0)


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
    return (
        f"-d auto: no Pylontech stack answers on {args.auto_ports} at {args.baud} Bd "
        "(-v 1 says why each port was skipped); check the adapter, the baud rate and the A/B wiring"
    )
