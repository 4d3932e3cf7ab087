"""The options of `pylontech --console`, kept apart from the console code so that every start-up stays light."""

from __future__ import annotations

import argparse
from collections.abc import Callable

#: What each query flag asks the console.
CONSOLE_COMMANDS = {"packdata": "pwr", "manufact": "info", "soh": "soh", "stat": "stat"}


def add_console_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--console",
        action="store_true",
        help="talk to the RS232 console port instead of RS485 (115200 Bd unless -b): -P, -a N -P, -m, --soh, "
        "--stat; with --decode: read a captured console session",
    )
    parser.add_argument("--soh", dest="commands", action="append_const", const="soh", help="console: soh N")
    parser.add_argument("--stat", dest="commands", action="append_const", const="stat", help="console: stat N")
    parser.add_argument(
        "--console-send", metavar="CMD", help="console: send CMD (read-only commands only) and show its reply"
    )
    parser.add_argument(
        "--console-allow",
        action="append",
        default=[],
        metavar="WORD",
        help="console: allow command WORD although it is not read-only (e.g. login); repeatable",
    )
    parser.add_argument(
        "--console-wake", action="store_true", help="console: send the 1200 Bd wake-up frame some US2000B need first"
    )


def check_console(args: argparse.Namespace, flag_of: Callable[[str], str]) -> str | None:
    """The first console option that cannot work as given, worded as what to change."""
    commands = args.commands or []
    if not args.console:
        given = [f"--{c}" for c in ("soh", "stat") if c in commands]
        given += [
            flag
            for flag, value in (("--console-send", args.console_send), ("--console-wake", args.console_wake))
            if value
        ]
        return f"{given[0]} is a console option; add --console" if given else None
    if args.decode and (commands or args.console_send):
        sent = [*map(flag_of, commands), *(["--console-send"] if args.console_send else [])]
        return f"--decode --console reads a captured session and sends nothing; drop {', '.join(sent)}"
    others = [c for c in commands if c not in CONSOLE_COMMANDS]
    if others:
        return f"the console does not answer {', '.join(map(flag_of, others))}; it has -P, -m, --soh and --stat"
    if args.watch or args.try_ or args.jsonl:
        return "--watch, --try and --jsonl apply to RS485; drop them with --console"
    return None
