"""`pylontech`: query a Pylontech stack from the command line (the C CLI's flags, plus --json and --decode)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import __version__
from ..client import BAUD_RANGE, DEFAULT_BAUD, DEFAULT_PORT, Link, ScanProgress, Stack
from ..errors import LinkError, NoReplyError, PortError, ProtocolError
from ..protocol.codes import MAX_GROUP, MAX_MODULE
from ..render import as_dict, render_text
from .common import Parser, add_verbose, setup_logging
from .decode import decode_frames

EXIT_OK, EXIT_ERROR, EXIT_NO_MODULE = 0, 1, 2

# The C CLI's command letters; like there, the last one given wins.
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


def _ranged(low: int, high: int, what: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} {value} is out of range {low}-{high}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pylontech",
        description="Query Pylontech low-voltage batteries on RS485. Without a command: a summary of all modules.",
        epilog="PORT is a device path, socket://HOST:PORT, rfc2217://HOST:PORT or sim://?stack=US3000C*3. "
        "Exit status: 0 success, 1 error, 2 no module answered.",
    )
    parser.add_argument(
        "-d", "--device", default=DEFAULT_PORT, metavar="PORT", help=f"serial port or URL (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "-b",
        "--baud",
        type=_ranged(*BAUD_RANGE, "baud rate"),
        default=DEFAULT_BAUD,
        help=f"baud rate (default {DEFAULT_BAUD}; the battery's DIP switch sets 9600 or 115200)",
    )
    parser.add_argument(
        "-a",
        "--adr",
        type=_ranged(1, MAX_MODULE, "module"),
        default=1,
        metavar="N",
        help=f"module number 1-{MAX_MODULE} in the group (default 1)",
    )
    parser.add_argument(
        "-g",
        "--group",
        type=_ranged(0, MAX_GROUP, "group"),
        default=0,
        metavar="N",
        help=f"group 0-{MAX_GROUP} (default 0)",
    )
    for short, long, name, text in COMMANDS:
        parser.add_argument(short, long, dest="command", action="store_const", const=name, help=text)
    parser.add_argument("--json", action="store_true", help="print one JSON document (units V, A, °C, Ah, %%)")
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="reply timeout in seconds (default: from baud rate and reply size)"
    )
    parser.add_argument(
        "--decode",
        nargs="+",
        metavar="FRAME",
        help="decode captured frames instead of querying ('-' reads them from stdin)",
    )
    parser.add_argument(
        "--command",
        type=lambda t: int(t, 16),
        metavar="CID2",
        help="with --decode: the command replies answer, in hex (e.g. 42)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s (pylonbus) {__version__}")
    add_verbose(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.decode:
        return decode_frames(args.decode, args.command, args.json)
    link = Link(args.device, args.baud, timeout=args.timeout)
    try:
        with link:
            return run(Stack(link, args.group), args)
    except PortError as error:
        print(f"pylontech: {error}", file=sys.stderr)
        return EXIT_ERROR
    except NoReplyError as error:
        print(f"pylontech: {error}", file=sys.stderr)
        return EXIT_NO_MODULE
    except (LinkError, ProtocolError) as error:
        print(f"pylontech: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR


def emit(args: argparse.Namespace, document: Any, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        print("\n".join(lines))


def run(stack: Stack, args: argparse.Namespace) -> int:
    command = args.command
    if command == "scan":
        return scan(stack, args)
    if command is None:
        return summary(stack, args)
    reader = {
        "systemparam": stack.system_parameters,
        "alarm": stack.alarm,
        "serial": stack.serial_number,
        "packdata": stack.analog,
        "charge": stack.charge_discharge,
        "manufact": stack.manufacturer,
        "firmware": stack.firmware,
    }[command]
    result = reader(args.adr)
    title = f"group {stack.group} module {args.adr}"
    lines = [f"{title}:", *render_text(result, "  ")]
    if command == "alarm":
        alarms = getattr(result, "alarms", [])
        lines.append("  ALARMS: " + "; ".join(alarms) if alarms else "  no alarms")
    emit(args, {"group": stack.group, "module": args.adr, "command": command, "result": as_dict(result)}, lines)
    return EXIT_OK


def scan(stack: Stack, args: argparse.Namespace) -> int:
    interactive = sys.stderr.isatty() and not args.json

    def progress(step: ScanProgress) -> None:
        if interactive:
            mark = "found" if step.found else "-"
            print(f"\rchecking module {step.module:2d}/{MAX_MODULE} {mark:6}", end="", file=sys.stderr, flush=True)

    modules = stack.scan(progress)
    if interactive:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    found = []
    for module in modules:
        entry: dict[str, Any] = {"module": module}
        try:
            info = stack.manufacturer(module)
            entry |= {"device_name": info.device_name, "software_version": info.software_version_text}
            entry["serial"] = stack.serial_number(module).serial
        except (NoReplyError, ProtocolError) as error:
            entry["error"] = str(error)
        found.append(entry)
    lines = [
        f"module {e['module']:2d} (ADR 0x{(stack.group << 4) + e['module'] + 1:02X}): "
        + (
            f"{e.get('device_name', '?')} V{e.get('software_version', '?')} S/N {e.get('serial', '?')}"
            if "error" not in e
            else f"answers, but: {e['error']}"
        )
        for e in found
    ]
    lines.append(
        f"{len(found)} module(s) found in group {stack.group} on {stack.link.port}"
        if found
        else f"no module answered in group {stack.group} on {stack.link.port} at {stack.link.baud} Bd"
    )
    emit(args, {"group": stack.group, "modules": found}, lines)
    return EXIT_OK if found else EXIT_NO_MODULE


def summary(stack: Stack, args: argparse.Namespace) -> int:
    modules = stack.scan()
    if not modules:
        print(
            f"pylontech: no module answered in group {stack.group} on {stack.link.port} at {stack.link.baud} Bd "
            "— check the group DIP switches, the baud rate and the A/B wiring",
            file=sys.stderr,
        )
        return EXIT_NO_MODULE
    rows = []
    for module in modules:
        info = stack.manufacturer(module)
        analog = stack.analog(module)
        rows.append(
            {
                "module": module,
                "manufacturer": info.manufacturer.rstrip("-"),
                "model": info.device_name,
                "serial": stack.serial_number(module).serial,
                "soc": analog.soc,
                "voltage": analog.voltage,
                "current": analog.current,
                "min_cell_voltage": min(analog.cell_voltages),
                "max_cell_voltage": max(analog.cell_voltages),
                "min_temperature": min(analog.temperatures),
                "max_temperature": max(analog.temperatures),
                "remaining_capacity": analog.remaining_capacity,
                "total_capacity": analog.total_capacity,
                "power": analog.power,
            }
        )
    total = sum(r["total_capacity"] for r in rows)
    remaining = sum(r["remaining_capacity"] for r in rows)
    current = sum(r["current"] for r in rows)
    power = sum(r["power"] for r in rows)
    voltage = sum(r["voltage"] for r in rows) / len(rows)
    totals = {
        "modules": len(rows),
        "total_capacity": round(total, 3),
        "remaining_capacity": round(remaining, 3),
        "soc": round(100 * remaining / total, 1) if total else None,
        "energy": round(total * voltage / 1000, 2),
        "current": round(current, 1),
        "power": round(power, 1),
    }
    header = (
        f"{'#':>2} {'manufacturer':<12} {'model':<10} {'serial':<17} {'SOC %':>6} {'voltage':>8} "
        f"{'current':>8} {'cell min':>8} {'cell max':>8} {'°C min':>6} {'°C max':>6}"
    )
    lines = [header]
    for r in rows:
        lines.append(
            f"{r['module']:>2} {r['manufacturer']:<12} {r['model']:<10} {r['serial']:<17} "
            f"{r['soc'] if r['soc'] is not None else '-':>6} {r['voltage']:>8.3f} {r['current']:>8.1f} "
            f"{r['min_cell_voltage']:>8.3f} {r['max_cell_voltage']:>8.3f} "
            f"{r['min_temperature']:>6.1f} {r['max_temperature']:>6.1f}"
        )
    lines.append(
        f"total capacity {total:.1f} Ah (~{totals['energy']:.2f} kWh), remaining {remaining:.1f} Ah "
        f"(SOC {totals['soc']} %), current {current:.1f} A, power {power / 1000:.2f} kW"
    )
    emit(args, {"group": stack.group, "modules": rows, "total": totals}, lines)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
