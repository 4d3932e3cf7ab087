"""`pylontech`: query a Pylontech stack from the command line (the C CLI's flags, plus --json and --decode)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from ..link.detect import AUTO, bms_name
from ..link.ports import BAUD_RANGE, DEFAULT_BAUD, DEFAULT_PORT
from ..options import seconds, whole
from ..protocol.families import DEFAULT, names
from ..protocol.families.pylontech.codes import MAX_GROUP, MAX_MODULE
from .common import (
    EXIT_ERROR,
    EXIT_NO_MODULE,
    EXIT_OK,
    Parser,
    add_auto_ports,
    add_verbose,
    guarded,
    no_port,
    setup_logging,
    version,
)
from .console_options import add_console_options, check_console

if TYPE_CHECKING:
    from ..link.link import Link
    from ..link.stack import ScanProgress, Stack
    from ..protocol.pack import PackAlarm

# The C CLI's command letters. Several run one after the other (the C program keeps only the last).
COMMANDS = (
    ("-s", "--scan", "scan", "scan the group for modules 1-14 and list each with model, firmware and serial"),
    ("-y", "--systemparam", "systemparam", "show system parameters (protection limits)"),
    ("-l", "--alarm", "alarm", "show alarm information"),
    ("-S", "--serial", "serial", "show the module's serial number"),
    ("-P", "--packdata", "packdata", "show analog data: cells, temperatures, current, voltage, capacity"),
    ("-c", "--charge", "charge", "show charge/discharge management information"),
    ("-m", "--manufact", "manufact", "show manufacturer information"),
    ("-F", "--firmware", "firmware", "show firmware version (0x96)"),
)
READERS = {  # command: (the family's role, title); None: Pylontech's own command, read by the Stack method
    "systemparam": ("parameters", "system parameters"),
    "alarm": ("alarm", "alarms"),
    "serial": ("serial", "serial number"),
    "packdata": ("analog", "analog data"),
    "charge": (None, "charge/discharge management"),
    "manufact": ("identity", "manufacturer"),
    "firmware": ("firmware", "firmware"),
}
EPILOG = f"""\
PORT is a device path, socket://HOST:PORT, rfc2217://HOST:PORT or sim://?stack=US3000C*3.
Exit status: 0 success — also when some modules of the summary did not answer (each is marked with the
reason and listed on standard error); 1 error (port, options); 2 no module answered (with --try: none on
this port, baud rate and group).
--decode reads frames from the arguments, files named there or, with none or '-', from standard input;
each line of a log may hold one frame anywhere in it; a spy:// trace is read as it is written.
Commands for --command: 0x42 ANALOG, 0x44 ALARM, 0x47, 0x4F, 0x51, 0x61, 0x92, 0x93, 0x96 (in hex, e.g. 42).
Modules: 1-{MAX_MODULE}; groups: 0-{MAX_GROUP}."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pylontech",
        description="Query Pylontech low-voltage batteries on RS485. Without a command: a summary of all modules.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-d",
        "--device",
        default=DEFAULT_PORT,
        metavar="PORT",
        help=f"serial port or URL (default {DEFAULT_PORT}); 'auto': the first of --auto-ports a battery answers on",
    )
    add_auto_ports(parser)
    parser.add_argument(
        "-b",
        "--baud",
        type=whole(*BAUD_RANGE),
        default=DEFAULT_BAUD,
        help=f"baud rate (default {DEFAULT_BAUD}; the battery's DIP switch sets 9600 or 115200; the console: 115200)",
    )
    parser.add_argument(
        "-a",
        "--adr",
        type=module_or_all,
        metavar="N",
        help=f"module number 1-{MAX_MODULE} in the group, or 'all' (the default of a command: every module found)",
    )
    parser.add_argument("-g", "--group", type=whole(0, MAX_GROUP), default=0, metavar="N", help=f"group 0-{MAX_GROUP}")
    parser.add_argument(
        "--bms",
        type=bms_name,
        default=DEFAULT,
        metavar="NAME",
        help=f"the BMS family: {', '.join(names())} (default {DEFAULT}), or auto (the one that answers); with "
        "--decode, how to read frames that do not prove their family",
    )
    for short, long, name, text in COMMANDS:
        parser.add_argument(short, long, dest="commands", action="append_const", const=name, help=text)
    parser.add_argument(
        "-t", "--try", dest="try_", action="store_true", help="exit 0 if a battery answers on the port, else 2"
    )
    parser.add_argument(
        "--udev-rule",
        action="store_true",
        help="print a udev rule naming the USB adapter a battery answers on /dev/ttyUSB_pylontech (with -d auto: "
        "the one found), for /etc/udev/rules.d/",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document (units V, A, °C, Ah, %%)")
    parser.add_argument("--jsonl", action="store_true", help="with --decode: one JSON document per frame and line")
    parser.add_argument("--csv", action="store_true", help="CSV with a header (units in the names), a row a module")
    parser.add_argument(
        "-w",
        "--watch",
        type=seconds(0.5),
        metavar="S",
        help="repeat every S seconds (redrawn on a terminal, else one block or JSON line a round); Ctrl-C ends",
    )
    parser.add_argument(
        "--timeout",
        type=seconds(),
        metavar="S",
        help="reply timeout in seconds (default: from baud rate and reply size)",
    )
    parser.add_argument(
        "--decode", action="store_true", help="decode captured frames (FRAME arguments or standard input)"
    )
    parser.add_argument(
        "--command",
        dest="reply_to",
        metavar="CID2",
        help="with --decode: the command the replies answer, in hex (e.g. 42)",
    )
    parser.add_argument(
        "frames", nargs="*", metavar="FRAME", help="with --decode: frames or files to decode, '-' for stdin"
    )
    add_console_options(parser)
    parser.add_argument("--version", action="version", version=version("pylontech"))
    add_verbose(parser)
    return parser


def module_or_all(text: str) -> int | str:
    if text.strip().lower() == "all":
        return "all"
    try:
        return whole(1, MAX_MODULE)(text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{error}; or 'all' for every module") from None


def check(args: argparse.Namespace) -> str | None:
    """The first combination of options that cannot work, worded as what to change."""
    problem = check_console(args, flag_of)
    if problem or args.console:
        return problem
    if args.decode:
        if args.commands:
            return f"--decode decodes frames and sends nothing; drop {', '.join(flag_of(c) for c in args.commands)}"
        return None
    for flag, given in (("--try", args.try_), ("--udev-rule", args.udev_rule)):
        if given and args.commands:
            return f"{flag} only checks that a battery answers; drop {', '.join(flag_of(c) for c in args.commands)}"
        if given and args.adr == "all":
            return f"{flag} probes one module; give -a N or leave -a out"
    if args.try_ and args.udev_rule:
        return "--try and --udev-rule exclude each other (--udev-rule checks that a battery answers, too)"
    if args.frames:
        return f"unexpected argument {args.frames[0]!r}; to decode frames, add --decode"
    if args.reply_to is not None:
        return "--command names the command of the frames given to --decode; add --decode"
    if args.jsonl:
        return "--jsonl applies to --decode; use --json for a query"
    if args.json and args.csv:
        return "--json and --csv exclude each other"
    return None


def flag_of(command: str) -> str:
    return next((short for short, _, name, _ in COMMANDS if name == command), f"--{command}")


def _main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = check(args)
    if problem:
        parser.error(problem)
    setup_logging(args.verbose)
    if args.console:
        from .console import decode_console, run_console

        return decode_console(args.frames or ["-"], args.json) if args.decode else run_console(args)
    if args.decode:
        from ..protocol.families import family
        from .decode import decode_frames, parse_command

        bms = None if args.bms == AUTO else args.bms
        try:
            reply_to = None if args.reply_to is None else parse_command(args.reply_to, family(bms or DEFAULT))
        except ValueError as error:
            parser.error(f"--command: {error}")
        as_json = "lines" if args.jsonl else "array" if args.json else ""
        return decode_frames(args.frames or ["-"], reply_to, as_json, verbose=args.verbose >= 2, bms=bms)

    from ..errors import NoReplyError
    from ..link.autoport import default_lock_dir, resolve
    from ..link.link import Link

    device = resolve(args.device, args.auto_ports, args.baud, args.group, default_lock_dir(None), args.bms)
    if device is None:
        print(f"pylontech: {no_port(args)}", file=sys.stderr)
        return EXIT_NO_MODULE
    try:
        with Link(device, args.baud, timeout=args.timeout) as link:
            stack = open_stack(link, args)
            if stack is None:
                return EXIT_NO_MODULE
            if args.try_:
                return probe(stack, args)
            if args.udev_rule:
                return udev_rule(stack, args)
            if args.watch:
                return watch(stack, args)
            return show(run(stack, args), args)
    except NoReplyError as error:
        print(f"pylontech: {error}", file=sys.stderr)
        return EXIT_NO_MODULE
    except ValueError as error:  # a command the family does not have
        print(f"pylontech: {error}", file=sys.stderr)
        return EXIT_ERROR


def open_stack(link: Link, args: argparse.Namespace) -> Stack | None:
    """The group on the link, of the family --bms names; with `auto` the family that answers (None, said,
    when none does)."""
    from ..link.detect import detect
    from ..link.stack import Stack

    if args.bms != AUTO:
        return Stack(link, args.group, args.bms)
    family = detect(link, args.group, args.adr if isinstance(args.adr, int) else 1)
    if family is None:
        print(
            f"pylontech: --bms auto: no BMS family ({', '.join(names())}) answers on {link.port} at {link.baud} Bd "
            f"in group {args.group} — check the wiring and the baud rate",
            file=sys.stderr,
        )
        return None
    return Stack(link, args.group, family)


def probe(stack: Stack, args: argparse.Namespace) -> int:
    """--try: does a module of the family answer on this port, at this baud rate, in this group?"""
    where = f"{stack.link.port} at {stack.link.baud} Bd"
    module = args.adr or 1
    if stack.probe(module):
        named = f" (--bms {stack.family.name})" if args.bms == AUTO else ""
        print(f"a {stack.family.title} battery answers on {where} (group {stack.group}, module {module}){named}")
        return EXIT_OK
    print(f"pylontech: {_nobody(stack)}", file=sys.stderr)
    return EXIT_NO_MODULE


def udev_rule(stack: Stack, args: argparse.Namespace) -> int:
    """--udev-rule: the rule for the adapter of this port, once a battery has answered on it."""
    from ..link.udev import render_rule, usb_identity

    if not stack.probe(args.adr or 1):
        print(f"pylontech: {_nobody(stack)}", file=sys.stderr)
        return EXIT_NO_MODULE
    print(render_rule(usb_identity(stack.link.port)), end="")
    return EXIT_OK


class View(NamedTuple):
    """What one command shows: exit status, JSON document, text lines and CSV rows (keys with units). A named
    tuple, not a dataclass: importing dataclasses cost 4 ms of every start-up, --version included."""

    status: int
    document: Any
    lines: list[str]
    rows: Sequence[dict[str, Any]] = ()


def show(view: View, args: argparse.Namespace, table: CsvTable | None = None) -> int:
    if args.json:
        print(json.dumps(view.document, ensure_ascii=False, indent=None if args.watch else 2))
    elif args.csv:
        (table or CsvTable()).write(view.rows)
    elif view.lines:
        print("\n".join(view.lines))
    sys.stdout.flush()
    return view.status


class CsvTable:
    """CSV on standard output as one table: a header, then rows, round after round (--watch); a header again
    only when a round brings a column the last header lacks (a module that gave no data comes back)."""

    def __init__(self) -> None:
        self.columns: list[str] = []

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        import csv

        from .render import columns_of

        columns = columns_of(rows)
        if not self.columns or not set(columns) <= set(self.columns):
            self.columns = columns
            csv.writer(sys.stdout, lineterminator="\n").writerow(columns)
        csv.DictWriter(sys.stdout, self.columns, lineterminator="\n").writerows(rows)


def watch(stack: Stack, args: argparse.Namespace) -> int:
    """Show the view every `--watch` seconds until Ctrl-C, which ends with status 0. CSV rows start with the
    time of their round, so the rounds make one table."""
    redraw = sys.stdout.isatty() and not (args.json or args.csv)
    table = CsvTable()
    try:
        while True:
            started = time.monotonic()
            view = run(stack, args)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            if redraw:
                print(f"\033[H\033[2Jevery {args.watch:g} s on {stack.link.port}, {stamp}\n")
            elif not args.json and not args.csv:
                print(f"-- {stamp}")
            show(view._replace(rows=[{"time": stamp} | row for row in view.rows]), args, table)
            time.sleep(max(0.0, started + args.watch - time.monotonic()))
    except KeyboardInterrupt:
        return EXIT_OK


def run(stack: Stack, args: argparse.Namespace) -> View:
    """The views of every command given (the summary without one), one after the other."""
    commands = args.commands or ["summary"]
    views = {}
    for command in commands:
        if command == "summary":
            views[command] = summary(stack, args)
        elif command == "scan":
            views[command] = scan(stack, args)
        else:
            views[command] = read(stack, args, command)
    if len(views) == 1:
        return views[commands[0]]
    lines = [line for view in views.values() for line in [*view.lines, ""]][:-1]
    rows = [{"command": name} | row for name, view in views.items() for row in view.rows]
    document = {"group": stack.group, "results": {name: view.document for name, view in views.items()}}
    return View(max(view.status for view in views.values()), document, lines, rows)


def read(stack: Stack, args: argparse.Namespace, command: str) -> View:
    """One read command for one module (-a N) or for every module of the group."""
    from ..errors import LinkError, ProtocolError
    from ..protocol.plain import as_dict
    from .render import flat_fields, render_columns, render_text

    role, title = READERS[command]
    verbose = args.verbose >= 2
    if role is not None:
        stack.command(role)  # ValueError, said in one line, when the family has no such command
    elif stack.family.name != DEFAULT:
        raise ValueError(f"{title} is a Pylontech command; {stack.family.title} batteries have none")
    reader = stack.charge_discharge if role is None else partial(stack.read, role)
    if args.adr not in (None, "all"):
        result = reader(args.adr)
        lines = [f"group {stack.group} module {args.adr}, {title}:", *render_text(result, "  ", verbose)]
        document = {"group": stack.group, "module": args.adr, "command": command, "result": as_dict(result)}
        return View(EXIT_OK, document, lines, [{"module": args.adr} | flat_fields(result, verbose)])
    modules = known_modules(stack, args)
    if not modules:
        return View(EXIT_NO_MODULE, {"group": stack.group, "command": command, "modules": []}, [])
    results: dict[int, Any] = {}
    entries: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for module in modules:
        try:
            results[module] = result = reader(module)
        except (LinkError, ProtocolError) as error:
            print(f"pylontech: module {module}: {error}", file=sys.stderr)
            entries.append({"module": module, "error": str(error)})
            rows.append({"module": module, "error": str(error)})
            continue
        entries.append({"module": module, "result": as_dict(result)})
        rows.append({"module": module} | flat_fields(result, verbose))
    status = EXIT_OK if results else EXIT_NO_MODULE
    lines = [f"group {stack.group}, {title}:", *render_columns(results, "  ", verbose)]
    lines += [f"  module {e['module']}: !! {e['error']}" for e in entries if "error" in e]
    return View(status, {"group": stack.group, "command": command, "modules": entries}, lines, rows)


def scan_modules(stack: Stack, args: argparse.Namespace) -> list[int]:
    """The modules of the group, with a progress line on a terminal: a slow line is not a silent one."""
    interactive = sys.stderr.isatty()

    def progress(step: ScanProgress) -> None:
        mark = "found" if step.found else "-"
        print(f"\rchecking module {step.module:2d}/{MAX_MODULE} {mark:6}", end="", file=sys.stderr, flush=True)

    modules = stack.scan(progress if interactive else None)
    if interactive:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
    return modules


def known_modules(stack: Stack, args: argparse.Namespace) -> list[int]:
    """The modules found so far (a --watch round after the first), else those a scan finds; none is said."""
    modules = stack.modules or scan_modules(stack, args)
    if not modules:
        print(f"pylontech: {_nobody(stack)}", file=sys.stderr)
    return modules


def _nobody(stack: Stack) -> str:
    where = f"on {stack.link.port} at {stack.link.baud} Bd"
    if stack.link.echoes:  # what a user sees of an echoing adapter on a line no battery is on
        return (
            f"only the request came back {where}: the adapter echoes, and no battery answers in group "
            f"{stack.group} — check that the battery is on, the A/B wiring and the group DIP switches"
        )
    return (
        f"no module answered in group {stack.group} {where} "
        "— check the group DIP switches, the baud rate and the A/B wiring"
    )


def scan(stack: Stack, args: argparse.Namespace) -> View:
    from ..errors import LinkError, ProtocolError

    found = []
    for module in scan_modules(stack, args):
        entry: dict[str, Any] = {"module": module, "adr": stack.family.address(stack.group, module)}
        try:
            entry |= _who(stack, module)
        except (LinkError, ProtocolError) as error:
            entry["error"] = str(error)
        found.append(entry)
    lines = [
        f"module {e['module']:2d} (ADR 0x{e['adr']:02X}): "
        + (
            f"{e.get('model', '?')} V{e.get('software_version', '?')} S/N {e.get('serial', '?')}"
            if "error" not in e
            else f"answers, but: {e['error']}"
        )
        for e in found
    ]
    lines.append(
        f"{len(found)} module(s) found in group {stack.group} on {stack.link.port}" if found else _nobody(stack)
    )
    return View(EXIT_OK if found else EXIT_NO_MODULE, {"group": stack.group, "modules": found}, lines, found)


SUMMARY_COLUMNS = (  # (key, header, width, format)
    ("module", "#", 2, "d"),
    ("manufacturer", "manufacturer", 12, ""),
    ("model", "model", 10, ""),
    ("serial", "serial", 17, ""),
    ("soc", "SOC %", 6, ".1f"),
    ("voltage", "voltage V", 9, ".3f"),
    ("current", "current A", 9, ".1f"),
    ("min_cell_voltage", "cell min V", 10, ".3f"),
    ("max_cell_voltage", "cell max V", 10, ".3f"),
    ("min_temperature", "min °C", 6, ".1f"),
    ("max_temperature", "max °C", 6, ".1f"),
)


#: The analog field each value of a summary row comes from, for its unit.
_ROW_SOURCES = {
    "soc": "soc",
    "voltage": "voltage",
    "current": "current",
    "min_cell_voltage": "cell_voltages",
    "max_cell_voltage": "cell_voltages",
    "min_temperature": "temperatures",
    "max_temperature": "temperatures",
    "remaining_capacity": "remaining_capacity",
    "total_capacity": "total_capacity",
    "power": "power",
}


def _who(stack: Stack, module: int) -> dict[str, Any]:
    """Model, software version and serial for the scan: the version of the identity reply where it has one
    (Pylontech's 0x51), else the firmware command's."""
    from ..protocol.family import FIRMWARE, IDENTITY, SERIAL

    roles = stack.family.roles
    info = stack.read(IDENTITY, module) if IDENTITY in roles else None
    version = getattr(info, "software_version_text", None)
    wanted = (SERIAL,) if version is not None else (SERIAL, FIRMWARE)
    found = stack.identity(module, wanted)
    model = None if info is None else info.identity.get("model")
    who = {"model": model, "software_version": version or found.firmware, "serial": found.serial}
    return {key: value for key, value in who.items() if value is not None}


#: How bad a module's state is, from best to worst: what the first line of the summary names for the stack.
STATES = ("ok", "no data", "alarm", "protection")


def module_state(alarm: PackAlarm) -> str:
    """A raised protection flag is worse than a value out of its limits. Pylontech's status 1 holds the
    protections (the BMS cut charging or discharging); the other families' alarm words do not say which is
    which, so theirs count as alarms."""
    from ..protocol.families.pylontech.results import PackAlarm as PylontechAlarm

    if isinstance(alarm, PylontechAlarm) and alarm.status1:
        return "protection"
    return "alarm" if alarm.alarms else "ok"


def _row(stack: Stack, module: int) -> dict[str, Any]:
    from ..protocol.family import IDENTITY, SERIAL

    # Each read raises: a module that does not say who it is is marked in the summary, as one without values.
    identity = {
        k: v
        for role in (IDENTITY, SERIAL)
        if role in stack.family.roles
        for k, v in stack.read(role, module).identity.items()
    }
    analog = stack.analog(module)
    alarm = stack.alarm(module)
    return {
        "module": module,
        "manufacturer": identity.get("manufacturer"),
        "model": identity.get("model"),
        "serial": identity.get("serial"),
        "soc": analog.soc,
        "voltage": analog.voltage,
        "current": analog.current,
        "min_cell_voltage": min(analog.cell_voltages),
        "max_cell_voltage": max(analog.cell_voltages),
        "min_temperature": min(analog.temperatures, default=None),
        "max_temperature": max(analog.temperatures, default=None),
        "remaining_capacity": analog.remaining_capacity,
        "total_capacity": analog.total_capacity,
        "power": analog.power,
        "state": module_state(alarm),
        "alarms": alarm.alarms,
    }


def stack_state(rows: Sequence[dict[str, Any]]) -> str:
    """The first line of the summary: the worst state of any module, and who is in it."""
    states = [r.get("state", "no data") for r in rows]
    worst = max(states, key=STATES.index)
    if worst == "ok":
        return f"stack OK: {len(rows)} module(s), no alarm"
    named = [
        f"module {r['module']}: " + (", ".join(r["alarms"]) if "alarms" in r else "no data")
        for r, state in zip(rows, states, strict=True)
        if state != "ok"
    ]
    return f"stack {worst.upper()}: " + "; ".join(named)


def _cell(value: Any, width: int, form: str) -> str:
    if value is None:
        return f"{'-':>{width}}"
    return f"{value:>{width}{form}}" if form else f"{value:<{width}}"


def summary(stack: Stack, args: argparse.Namespace) -> View:
    from ..errors import LinkError, ProtocolError
    from ..protocol.families.pylontech.layouts import units_of
    from ..protocol.families.pylontech.results import AnalogData

    modules = known_modules(stack, args)
    if not modules:
        return View(EXIT_NO_MODULE, {"group": stack.group, "modules": [], "total": None}, [])
    rows: list[dict[str, Any]] = []
    for module in modules:
        try:
            rows.append(_row(stack, module))
        except (LinkError, ProtocolError) as error:
            print(f"pylontech: module {module} left out of the summary: {error}", file=sys.stderr)
            rows.append({"module": module, "error": str(error)})
    good = [r for r in rows if "error" not in r]
    units = units_of(AnalogData)
    csv_rows = [
        {
            " ".join(filter(None, (key.replace("_", " "), units.get(_ROW_SOURCES.get(key, ""), "")))): (
                "; ".join(v) if key == "alarms" else v
            )
            for key, v in r.items()
        }
        for r in rows
    ]
    if not good:
        return View(EXIT_NO_MODULE, {"group": stack.group, "modules": rows, "total": None}, [], csv_rows)
    total = sum(r["total_capacity"] for r in good)
    remaining = sum(r["remaining_capacity"] for r in good)
    current = sum(r["current"] for r in good)
    power = sum(r["power"] for r in good)
    voltage = sum(r["voltage"] for r in good) / len(good)
    totals = {
        "state": max((r.get("state", "no data") for r in rows), key=STATES.index),
        "modules": len(good),
        "missing": len(rows) - len(good),
        "total_capacity": round(total, 3),
        "remaining_capacity": round(remaining, 3),
        "soc": round(100 * remaining / total, 1) if total else None,
        "energy": round(total * voltage / 1000, 2),
        "current": round(current, 1),
        "power": round(power, 1),
    }
    header = " ".join(f"{title:>{width}}" if form else f"{title:<{width}}" for _, title, width, form in SUMMARY_COLUMNS)
    lines = [stack_state(rows), f"{header} alarms"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['module']:>2} !! no data: {r['error']}")
            continue
        cells = " ".join(_cell(r[key], width, form) for key, _, width, form in SUMMARY_COLUMNS)
        lines.append(f"{cells} {', '.join(r['alarms']) or '-'}")
    missing = f" ({totals['missing']} module(s) missing)" if totals["missing"] else ""
    lines.append(
        f"total capacity {total:.1f} Ah (~{totals['energy']:.2f} kWh), remaining {remaining:.1f} Ah "
        f"(SOC {totals['soc']} %), current {current:.1f} A, power {power / 1000:.2f} kW{missing}"
    )
    return View(EXIT_OK, {"group": stack.group, "modules": rows, "total": totals}, lines, csv_rows)


main = guarded("pylontech", _main)

if __name__ == "__main__":
    sys.exit(main())
