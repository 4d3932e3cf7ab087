"""`pylontech --console`: the RS232 console of the stack's master module (SOH, balancing, lifetime counters),
and `pylontech --decode --console`: every reply of a captured console session."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from ..console import read_session
from ..console.results import CellTable, ConsoleResult, ConsoleText, SohTable, StackSummary
from ..errors import ConsoleError, NoReplyError
from ..protocol.plain import as_dict
from .common import EXIT_ERROR, EXIT_NO_MODULE, EXIT_OK
from .console_options import CONSOLE_COMMANDS
from .render import columns_of

HIDDEN = frozenset({"extra", "absent", "counters", "unreadable"})


def decode_console(files: list[str], as_json: bool) -> int:
    """Every reply of the captured sessions in `files` ('-': standard input)."""
    replies: list[tuple[str, ConsoleResult | ConsoleError]] = []
    for name in files:
        if name == "-":
            text = sys.stdin.read()
        else:
            try:
                with open(name, encoding="utf-8", errors="replace") as file:
                    text = file.read()
            except OSError as error:
                print(f"pylontech: cannot read {name}: {error.strerror}", file=sys.stderr)
                return EXIT_ERROR
        replies += read_session(text)
    if as_json:
        print(json.dumps({"replies": [entry(c, r) for c, r in replies]}, ensure_ascii=False, indent=2))
    else:
        print("\n".join(line for command, result in replies for line in [f"== {command or '?'}", *text_of(result)]))
    return EXIT_OK if any(not isinstance(r, ConsoleError) for _, r in replies) else EXIT_NO_MODULE


def entry(command: str, result: ConsoleResult | ConsoleError) -> dict[str, Any]:
    if isinstance(result, ConsoleError):
        return {"command": command, "error": str(result)}
    return {"command": command, "kind": type(result).__name__, "result": as_dict(result)}


def run_console(args: argparse.Namespace) -> int:
    """Ask the console what the flags name and show it as text, JSON or CSV."""
    from ..link.console import ConsoleLink

    allow = frozenset(args.console_allow)
    replies: list[tuple[str, ConsoleResult | ConsoleError]] = []
    try:
        with ConsoleLink(args.device, args.baud, wake=args.console_wake, allow=allow) as link:
            for command in commands_of(args, link):
                try:
                    replies.append((command, link.query(command)))
                except ConsoleError as error:  # refused or unreadable: the other commands still run
                    print(f"pylontech: {command}: {error}", file=sys.stderr)
                    replies.append((command, error))
    except NoReplyError as error:
        print(f"pylontech: {error}", file=sys.stderr)
        return EXIT_NO_MODULE
    except PermissionError as error:
        print(f"pylontech: {error}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"port": args.device, "replies": [entry(c, r) for c, r in replies]}, ensure_ascii=False))
    elif args.csv:
        from .pylontech import CsvTable

        CsvTable().write([{"command": c} | row for c, r in replies for row in rows_of(r)])
    else:
        print("\n".join(line for c, r in replies for line in [f"== {c}", *text_of(r)]))
    return EXIT_OK if any(not isinstance(r, ConsoleError) for _, r in replies) else EXIT_ERROR


def commands_of(args: argparse.Namespace, link: Any) -> list[str]:
    """The console commands the flags ask for: `-a N` names the module, else every present one (`pwr`)."""
    if args.console_send:
        return [args.console_send]
    wanted = args.commands or ["packdata"]
    module = args.adr if isinstance(args.adr, int) else None
    if module is None and wanted == ["packdata"]:
        return ["pwr"]
    if module is None and not isinstance(summary := link.query("pwr"), StackSummary):
        # A Force H2 tower: its `pwr` is one row, and `bat`, `soh`, `stat` alone answer for all its cells.
        return ["pwr" if name == "packdata" else CONSOLE_COMMANDS[name] for name in wanted]
    modules = [module] if module is not None else list(summary.present)
    out = []
    for name in wanted:
        per_module = ["pwr {}", "bat {}"] if name == "packdata" else [CONSOLE_COMMANDS[name] + " {}"]
        out += [form.format(n) for n in modules for form in per_module]
    return out


def rows_of(result: ConsoleResult | ConsoleError) -> list[dict[str, Any]]:
    """Flat rows (names with their unit): one a module or cell of a table, one for any other result."""
    if isinstance(result, ConsoleError):
        return [{"error": str(result)}]
    if isinstance(result, ConsoleText):
        return [{"line": line} for line in result.lines]
    if isinstance(result, StackSummary):
        return [_flat(m) for m in result.modules if not m.absent]
    if isinstance(result, CellTable | SohTable):
        return [{"module": result.module} | _flat(cell) for cell in result.cells]
    return [_flat(result)]


def _flat(result: Any) -> dict[str, Any]:
    units: dict[str, str] = getattr(type(result), "UNITS", {})
    row: dict[str, Any] = {}
    for field in dataclasses.fields(result):
        value = getattr(result, field.name)
        if isinstance(value, dict):
            row |= value
        elif field.name not in HIDDEN:
            unit = units.get(field.name, "")
            row[f"{field.name.replace('_', ' ')} {unit}".strip()] = (
                " ".join(value) if isinstance(value, tuple) else value
            )
    return row


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def text_of(result: ConsoleResult | ConsoleError) -> list[str]:
    """A result for people: a table a row a module or cell, `label: value` lines for the others."""
    if isinstance(result, ConsoleError):
        return [f"  !! {result}"]
    rows = rows_of(result)
    if isinstance(result, ConsoleText):
        return [f"  {row['line']}" for row in rows]
    if isinstance(result, StackSummary | CellTable | SohTable):
        lines = table(rows)
        if isinstance(result, CellTable):
            lines.append(f"  balancing cells: {', '.join(map(str, result.balancing_cells)) or 'none'}")
        if isinstance(result, StackSummary) and result.average_temperature is not None:
            lines.append(f"  average temperature °C: {_shown(result.average_temperature)}")  # Force H2 `unit`
        return lines + [f"  !! unreadable: {reason}" for reason in result.unreadable]
    width = max(map(len, rows[0]), default=0)
    lines = [f"  {key:>{width}}: {_shown(value)}" for key, value in rows[0].items() if value is not None]
    return lines + [f"  !! unreadable: {reason}" for reason in getattr(result, "unreadable", ())]


def table(rows: list[dict[str, Any]]) -> list[str]:
    """Aligned columns, those with no value in any row left out."""
    columns = [c for c in columns_of(rows) if any(row.get(c) is not None for row in rows)]
    cells = [[_shown(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    return [
        "  " + "  ".join(f"{text:>{w}}" for text, w in zip(line, widths, strict=True)) for line in [columns, *cells]
    ]
