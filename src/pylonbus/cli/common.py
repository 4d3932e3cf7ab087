"""What the programs share on the command line: verbosity and logging set-up."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """-v, -v2, --verbose, --verbose=3: like the C programs' optional-argument -v."""
    parser.add_argument(
        "-v",
        "--verbose",
        nargs="?",
        type=int,
        const=1,
        default=0,
        metavar="N",
        help="more log output (1: info, 2: debug, 3: every frame)",
    )


def log_level(verbose: int) -> int:
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def setup_logging(verbose: int, stream: object = None) -> None:
    logging.basicConfig(
        level=log_level(verbose),
        stream=stream or sys.stderr,  # type: ignore[arg-type]
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


class Parser(argparse.ArgumentParser):
    """Invalid options exit with status 1, like every other error of these programs."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")
