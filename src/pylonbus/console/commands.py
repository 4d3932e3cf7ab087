"""What each console command answers: its columns or keys, and the reading of a reply into its typed result.

A reply is recognised by what it holds (a `pwr` header, a `Power  N` block, `Device address`…), not by
the command echoed, so a body captured without its echo reads too; the echo gives the module of `bat N`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any

from ..errors import CommandFailedError, ConsoleError, ConsoleFormatError, UnknownCommandError
from .framing import Reply, split_session
from .results import (
    Cell,
    CellTable,
    ClockTime,
    ConsoleResult,
    ConsoleText,
    DeviceInfo,
    ModuleDetail,
    ModuleSummary,
    SohCell,
    SohTable,
    StackSummary,
    Statistics,
    SystemSummary,
)
from .tables import (
    AMOUNT,
    ENERGY,
    FLAG,
    INTEGER,
    MILLI,
    PERCENT,
    STATE,
    TEXT,
    TIME,
    Column,
    Kind,
    Table,
    columns_by_header,
    read_fields,
    read_table,
)


def field_names(cls: type[Any]) -> set[str]:
    return {f.name for f in fields(cls)}


UNKNOWN = "Unknown command"
INVALID = "Invalid command or fail to excute."

#: `pwr`: the stack summary, one row an address (CONSOLE.md variants A–D); Force H2 `unit`, one row a unit
#: of the tower (`Index`, `BTlow`: the lowest cell temperature, `CoulombAH`: SOC and Ah, `CoulombWH`: % and Wh).
PWR_COLUMNS = (
    Column(("Power", "Index"), "module", INTEGER),
    Column(("Volt",), "voltage", MILLI),
    Column(("Curr",), "current", MILLI),
    Column(("Tempr",), "temperature", MILLI),
    Column(("Tlow", "BTlow"), "min_temperature", MILLI),
    Column(("Tlow.Id",), "min_temperature_index", INTEGER),
    Column(("Thigh", "BThigh"), "max_temperature", MILLI),
    Column(("Thigh.Id",), "max_temperature_index", INTEGER),
    Column(("Vlow", "BVlow"), "min_cell_voltage", MILLI),
    Column(("Vlow.Id",), "min_cell_voltage_index", INTEGER),
    Column(("Vhigh", "BVhigh"), "max_cell_voltage", MILLI),
    Column(("Vhigh.Id",), "max_cell_voltage_index", INTEGER),
    Column(("Base.St",), "base_state", STATE),
    Column(("Volt.St",), "voltage_state", STATE),
    Column(("Curr.St",), "current_state", STATE),
    Column(("Temp.St",), "temperature_state", STATE),
    Column(("Coulomb",), "soc", PERCENT),
    Column(("CoulombAH",), "remaining_capacity", AMOUNT, percent="soc"),
    Column(("CoulombWH",), "remaining_energy", ENERGY, percent="state_of_energy"),
    Column(("Time",), "time", TIME),
    Column(("B.V.St",), "battery_voltage_state", STATE),
    Column(("B.T.St",), "battery_temperature_state", STATE),
    Column(("MosTempr",), "mosfet_temperature", MILLI),
    Column(("M.T.St",), "mosfet_temperature_state", STATE),
    Column(("SysAlarm.St",), "system_alarm_state", STATE),
    Column(("Barcode",), "serial", TEXT),
    Column(("DevType",), "model", TEXT),
)


def _bare(kind: Kind, unit: str) -> Kind:
    """A column whose header names its unit (`AH(mAH)`, `WH(mWH)`), so its values may come without one."""
    return Kind(lambda text: kind.parse(text if text.endswith(unit) else f"{text} {unit}"), MILLI.write)


_MAH = _bare(AMOUNT, "mAH")

#: `bat N`: one row a cell (variants a–e).
BAT_COLUMNS = (
    Column(("Battery", "Bat"), "cell", INTEGER),
    Column(("Volt",), "voltage", MILLI),
    Column(("Curr",), "current", MILLI),
    Column(("Tempr",), "temperature", MILLI),
    Column(("Base State",), "base_state", STATE),
    Column(("Volt. State", "V.State"), "voltage_state", STATE),
    Column(("Curr. State",), "current_state", STATE),
    Column(("Temp. State", "T.State"), "temperature_state", STATE),
    Column(("CTemp. State",), "charge_temperature_state", STATE),
    Column(("DTemp. State",), "discharge_temperature_state", STATE),
    Column(("SOC",), "soc", PERCENT),
    Column(("Coulomb",), "remaining_capacity", AMOUNT, percent="soc"),
    Column(("AH(mAH)",), "remaining_capacity", _MAH, percent="soc"),
    Column(("WH(mWH)",), "remaining_energy", _bare(ENERGY, "mWH"), percent="state_of_energy"),
    Column(("BAL", "Bal"), "balancing", FLAG),
)

#: `soh N`: one row a cell.
SOH_COLUMNS = (
    Column(("Battery",), "cell", INTEGER),
    Column(("Voltage",), "voltage", MILLI),
    Column(("SOHCount",), "soh_count", INTEGER),
    Column(("SOHStatus",), "soh_status", TEXT),
)


def _hex(text: str) -> int:
    """`0x2000     COULFULL`: the number (the mnemonic repeats what its bits say)."""
    number = text.split()[0]
    if not re.fullmatch(r"0x[0-9A-Fa-f]+", number):
        raise ValueError("not a hex number")
    return int(number, 16)


HEX = Kind(_hex, lambda value: f"0x{value:X}")
WORDS = Kind(lambda text: tuple(text.split()), " ".join)

#: Force H2 `pwr`: the tower as one row (no `Power` column): the columns a module row has that the tower has
#: too, and the extremes of its units (`UVlow`: the lowest unit voltage), their states and the error code.
SYSTEM_COLUMNS = (
    *(column for column in PWR_COLUMNS if column.field in field_names(SystemSummary)),
    Column(("UTlow",), "min_unit_temperature", MILLI),
    Column(("UThigh",), "max_unit_temperature", MILLI),
    Column(("UVlow",), "min_unit_voltage", MILLI),
    Column(("UVhigh",), "max_unit_voltage", MILLI),
    Column(("U.V.St",), "unit_voltage_state", STATE),
    Column(("U.T.St",), "unit_temperature_state", STATE),
    Column(("Err Code",), "error_code", HEX),
)

#: The `Key : value` lines Force H2 prints before the tables of `pwr` and `unit` (mV, m°C, no unit printed).
HEAD_KEYS = (
    Column(("AverageTempr",), "average_temperature", MILLI),
    Column(("DC Volt",), "dc_voltage", MILLI),
    Column(("Bat Volt",), "battery_voltage", MILLI),
)

#: `pwr N`: ` Key : value unit` lines; the unit printed after the value is the column's `unit`.
PWR_N_KEYS = (
    Column(("Voltage",), "voltage", MILLI),
    Column(("B+B-.Volt",), "terminal_voltage", MILLI),
    Column(("Current",), "current", MILLI),
    Column(("Temperature",), "temperature", MILLI),
    Column(("Coulomb",), "soc", PERCENT),
    Column(("Total Coulomb",), "total_capacity", AMOUNT),
    Column(("Real Coulomb",), "real_capacity", AMOUNT),
    Column(("Max Voltage",), "max_voltage", MILLI),
    Column(("Charge Times",), "charge_times", INTEGER),
    Column(("Basic Status",), "base_state", STATE),
    Column(("Charge Sec.",), "charge_seconds", INTEGER),
    Column(("Discharge Sec.",), "discharge_seconds", INTEGER),
    Column(("Volt Status",), "voltage_state", STATE),
    Column(("Current Status",), "current_state", STATE),
    Column(("Tmpr. Status",), "temperature_state", STATE),
    Column(("Coul. Status",), "coulomb_state", STATE),
    Column(("Soh. Status",), "soh_state", STATE),
    Column(("Heater Status",), "heater_state", STATE),
    Column(("Protect ENA",), "protections", WORDS),
    Column(("Bat Events",), "battery_events", HEX),
    Column(("Power Events",), "power_events", HEX),
    Column(("System Fault",), "system_fault", HEX),
)

#: `info N`: `Key : value` lines.
INFO_KEYS = (
    Column(("Manufacturer",), "manufacturer", TEXT),
    Column(("Device name",), "model", TEXT),
    Column(("Board version",), "board_version", TEXT),
    Column(("Main Soft version",), "main_software_version", TEXT),
    Column(("Soft  version", "Soft version"), "software_version", TEXT),
    Column(("Boot  version", "Boot version"), "boot_version", TEXT),
    Column(("Comm version",), "comm_version", TEXT),
    Column(("Release Date",), "release_date", TEXT),
    Column(("Barcode",), "serial", TEXT),
    Column(("Specification",), "specification", TEXT),
    Column(("Cell Number",), "cell_count", INTEGER),
    Column(("Max Dischg Curr",), "discharge_current_limit", MILLI),
    Column(("Max Charge Curr",), "charge_current_limit", MILLI),
    Column(("Console Port rate",), "console_baud", INTEGER),
    Column(("EPONPort rate",), "epon_baud", INTEGER),
)

#: Units printed after a key's value: stripped before the value is read (`50749       mV`, `-90000mA`).
UNIT_SUFFIX = re.compile(r"\s*(?:mV|mA|mC|%|s)$")
KEY_VALUE = re.compile(r"^\s*(?P<key>[^:]*?)\s*:\s*(?P<value>.*?)\s*$")
ADDRESS = re.compile(r"^\s*(?:Power|Device address)\s+(\d+)\s*$")
CLOCK = re.compile(r"(?:(\S+)\s+)?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$")
STAT_NAMES = {"CYCLE Times": "cycles", "SOH": "soh", "SOH Percent": "soh"}  # `SOH Percent`: Force H2


def key_values(lines: Iterable[str]) -> dict[str, str]:
    """The `Key : value` lines, the key as printed (two spaces kept, `Soft  version`), the value trimmed."""
    found = {}
    for line in lines:
        match = KEY_VALUE.match(line)
        if match is not None and match["key"]:
            found[match["key"].strip()] = " ".join(match["value"].split())
    return found


def read_keys(values: dict[str, str], keys: Sequence[Column]) -> tuple[dict[str, Any], dict[str, str]]:
    """Fields from the keys described (the unit printed after a value dropped), the others by their label."""
    known = columns_by_header(keys)
    bare = {key: _without_unit(known[key], text) if key in known else text for key, text in values.items()}
    return read_fields(bare, known)


def _without_unit(column: Column, text: str) -> str:
    if column.kind is PERCENT:
        return text.replace(" ", "")  # `77          %`
    return text if column.kind in (AMOUNT, HEX, WORDS) else UNIT_SUFFIX.sub("", text)


def module_of(lines: Iterable[str], command: str) -> int | None:
    """The module a reply is about: its `Power  N`/`Device address N` line, else the N of `cmd N`."""
    for line in lines:
        match = ADDRESS.match(line)
        if match is not None:
            return int(match[1])
    words = command.split()
    return int(words[1]) if len(words) > 1 and words[1].isdigit() else None


def _table(lines: Sequence[str], start: int, columns: Sequence[Column]) -> Table:
    return read_table(lines[start:], columns)


def _rows(table: Table, cls: type[Any]) -> list[Any]:
    names = field_names(cls)
    return [cls(**{k: v for k, v in row.fields.items() if k in names}, extra=row.extra) for row in table.rows]


def _summary(table: Table, head: dict[str, Any], head_extra: dict[str, str]) -> StackSummary:
    modules = []
    for row in table.rows:
        if row.absent:
            modules.append(ModuleSummary(row.fields["module"], absent=True))
        else:
            modules.append(ModuleSummary(**row.fields, extra=row.extra))
    return StackSummary(tuple(modules), table.unreadable, **head, extra=head_extra)


def _system(table: Table, head: dict[str, Any], head_extra: dict[str, str]) -> SystemSummary:
    """The tower's row; a table of more than one row is not the tower's."""
    if len(table.rows) > 1:
        raise ConsoleFormatError(f"the tower's table has {len(table.rows)} rows, not one")
    if not table.rows:
        return SystemSummary(**head, extra=head_extra, unreadable=table.unreadable or ("the table has no row",))
    (row,) = table.rows
    return SystemSummary(**head, **row.fields, extra=head_extra | row.extra, unreadable=table.unreadable)


def _head(lines: Sequence[str], result: type[Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The `Key : value` lines before a table (Force H2): typed where HEAD_KEYS names a field of the `result`,
    the others by their label."""
    return read_keys(key_values(lines), [key for key in HEAD_KEYS if key.field in field_names(result)])


def decode(reply: Reply) -> ConsoleResult:
    """The typed result of a reply; UnknownCommandError or CommandFailedError when the console refused."""
    lines = reply.lines
    for line in lines:
        text = line.strip()
        if text.startswith(UNKNOWN):
            raise UnknownCommandError(f"the console answered: {text}")
        if text == INVALID:
            usage = " ".join(line.strip() for line in lines[lines.index(line) + 1 :])
            raise CommandFailedError(f"the console refused {reply.command or 'the command'!r}: {text} {usage}".strip())
    for index, line in enumerate(lines):
        words = line.split()
        if not words or ":" in line:
            continue  # a header has no colon; `Bat Volt  : 400916` (Force H2) is a key
        if len(words) < 2 or words[1].isdigit():
            continue  # `Power  1`: the heading of a `pwr N` or `soh N`
        if words[0] in ("Power", "Index"):
            return _summary(_table(lines, index, PWR_COLUMNS), *_head(lines[:index], StackSummary))
        if words[0] == "Battery" and words[1] == "Voltage":
            table = _table(lines, index, SOH_COLUMNS)
            return SohTable(module_of(lines, reply.command), tuple(_rows(table, SohCell)), table.unreadable)
        if words[0] in ("Battery", "Bat"):
            table = _table(lines, index, BAT_COLUMNS)
            _, head = _head(lines[:index], CellTable)
            return CellTable(module_of(lines, reply.command), tuple(_rows(table, Cell)), table.unreadable, head)
        if "Volt" in words:  # no index column: the tower's one row (Force H2 `pwr`)
            table = read_table(lines[index:], SYSTEM_COLUMNS, numbered=False)
            return _system(table, *_head(lines[:index], SystemSummary))
    return _key_value_reply(reply)


def _key_value_reply(reply: Reply) -> ConsoleResult:
    lines = reply.lines
    module = module_of(lines, reply.command)
    values = key_values(lines)
    if any(line.strip().startswith("Power ") for line in lines) and "Voltage" in values:
        found, extra = read_keys(values, PWR_N_KEYS)
        return ModuleDetail(module, **found, extra=extra)
    if any(ADDRESS.match(line) for line in lines):
        return _statistics(module, values)
    if "Device address" in values:
        found, extra = read_keys({k: v for k, v in values.items() if k != "Device address"}, INFO_KEYS)
        return DeviceInfo(int(values["Device address"]), **found, extra=extra)
    # `time` answers with the clock first: `Ds3231 2025-12-21 21:14:53`, `RTC …`, or the bare date.
    if lines and (match := CLOCK.search(lines[0].strip())) is not None:
        rest = {k: v for k, v in values.items() if not CLOCK.search(f"{k}:{v}")}
        return ClockTime(match[2], match[1] or "", rest)
    return ConsoleText(reply.command, lines)


def _statistics(module: int | None, values: dict[str, str]) -> Statistics:
    named: dict[str, Any] = {}
    counters: dict[str, int | str] = {}
    for label, text in values.items():
        value: int | str = int(text) if re.fullmatch(r"-?\d+", text) else text
        if label in STAT_NAMES:
            if not isinstance(value, int):
                raise ConsoleFormatError(f"{label!r} reads {text!r}, not a whole number")
            named[STAT_NAMES[label]] = value
        else:
            counters[label] = value
    soh = named.get("soh")
    return Statistics(module, named.get("cycles"), None if soh is None else float(soh), counters)


def read_session(text: str) -> list[tuple[str, ConsoleResult | ConsoleError]]:
    """Every reply of a captured session, as (command echoed, result); a reply the console refused or that
    cannot be read has its error in its place."""
    out: list[tuple[str, ConsoleResult | ConsoleError]] = []
    for reply in split_session(text):
        try:
            out.append((reply.command, decode(reply)))
        except ConsoleError as error:
            out.append((reply.command, error))
    return out
