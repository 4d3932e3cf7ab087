"""Console tables read by their header, never by position: each value goes to the column its header names.

One description per column (its header text, the result field, how its text reads) serves both ways: the
reader turns a row into fields, the simulator writes fields under a header as a firmware lays them out.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConsoleFormatError

# Header words that only name a column together with the word before them (`Base State`, `Err Code`).
CONTINUATIONS = frozenset({"State", "Code"})
# One value of a row: a date with its time, an amount with its unit, or one token.
VALUE = re.compile(r"\d{4}-\d\d-\d\d\s++\d\d:\d\d:\d\d|-?\d++\s++(?:[mu]?[AW]H|mAS)(?!\S)|\S+")
PLACEHOLDER = "-"
ABSENT = "Absent"
# A value may sit this many characters left of its header: captures whose spaces were collapsed by hand.
SLACK = 1


@dataclass(frozen=True, slots=True)
class Header:
    """The columns of a table, by name, and where each name starts on its line."""

    names: tuple[str, ...]
    starts: tuple[int, ...]

    def column_at(self, position: int) -> int:
        """The column a value starting at `position` belongs to: the last whose name starts at or before it."""
        return max(bisect.bisect_right(self.starts, position + SLACK) - 1, 0)


def read_header(line: str) -> Header:
    names: list[str] = []
    starts: list[int] = []
    for match in re.finditer(r"\S+", line):
        word = match.group()
        if not word.isascii() or "$" in word:
            continue  # bytes of a status Pytes V5 prints after its header (`M-H$`), not a column
        if names and word in CONTINUATIONS and match.start() - (starts[-1] + len(names[-1])) == 1:
            names[-1] += " " + word
            continue
        names.append(word)
        starts.append(match.start())
    return Header(tuple(names), tuple(starts))


def read_values(header: Header, line: str) -> list[dict[str, str]]:
    """The text of each column of a data row, in the readings worth trying: each value under the column above
    it (one column may hold several: `89%  42586 mAH` under `Coulomb`) and, when there are as many values as
    columns, one a column in order (a capture whose spaces were collapsed by hand), that one first when the
    first reading put two values under one column."""
    found = [(m.start(), " ".join(m.group().split())) for m in VALUE.finditer(line)]
    placed: dict[str, str] = {}
    for start, text in found:
        name = header.names[header.column_at(start)]
        placed[name] = f"{placed[name]} {text}" if name in placed else text
    if len(found) != len(header.names):
        return [placed]
    in_order = {name: text for name, (_, text) in zip(header.names, found, strict=True)}
    # As many values as columns, yet one column above two of them: the alignment, not the row, is off.
    return [in_order, placed] if len(placed) < len(header.names) else [placed, in_order]


# -- how a column's text reads and is written ------------------------------------------------------------
NUMBER = re.compile(r"-?\d+")
WORD = re.compile(r"[A-Za-z][\w.!+-]*")


def _integer(text: str) -> int:
    if not NUMBER.fullmatch(text):
        raise ValueError("not a whole number")
    return int(text)


def _milli(text: str) -> float:
    return _integer(text) / 1000


def _percent(text: str) -> float:
    return float(_integer(text.removesuffix("%"))) if text.endswith("%") else _fail("not a percentage")


def _scaled(scales: Mapping[str, int]) -> Callable[[str], float]:
    """The reading of `N unit` in the base unit, for the units in `scales` (how many make one)."""

    def parse(text: str) -> float:
        number, _, unit = text.partition(" ")
        scale = scales.get(unit)
        if scale is None:
            raise ValueError(f"unit {unit or 'missing'!r} is not {' or '.join(scales)}")
        return round(_integer(number) / scale, 6)

    return parse


def _state(text: str) -> str:
    return text if WORD.fullmatch(text) else _fail("not a state word")


def _flag(text: str) -> bool:
    if text not in ("Y", "N"):
        raise ValueError("not Y or N")
    return text == "Y"


def _time(text: str) -> str:
    return text if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text) else _fail("not a date and time")


def _fail(reason: str) -> Any:
    raise ValueError(reason)


@dataclass(frozen=True, slots=True)
class Kind:
    """How a column's text reads (`parse`, to a value in base units) and is written (`write`)."""

    parse: Callable[[str], Any]
    write: Callable[[Any], str]


INTEGER = Kind(_integer, str)
MILLI = Kind(_milli, lambda value: str(round(value * 1000)))
PERCENT = Kind(_percent, lambda value: f"{value:.0f}%")
#: Ah of `N mAH` (the console's unit; `mAS` on Pytes V5).
AMOUNT = Kind(_scaled({"mAH": 1000, "mAS": 3_600_000}), lambda value: f"{round(value * 1000)} mAH")
#: Wh of `N mWH` (Force H2 `CoulombWH`).
ENERGY = Kind(_scaled({"mWH": 1000}), lambda value: f"{round(value * 1000)} mWH")
STATE = Kind(_state, str)
FLAG = Kind(_flag, lambda value: "Y" if value else "N")
TIME = Kind(_time, str)
TEXT = Kind(str, str)


@dataclass(frozen=True, slots=True)
class Column:
    """A column a table may have: the header texts firmware prints for it, and the field it fills.
    `percent` names the field of a percentage printed before the value: the `Coulomb` of old `bat` tables
    holds `89%  42586 mAH` (SOC and Ah at once), Force H2's `CoulombWH` `84%  11903117 mWH`."""

    headers: tuple[str, ...]
    field: str
    kind: Kind
    percent: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its fields in base units, the columns no description names (by header), and whether the
    module is `Absent` (its other columns are placeholders)."""

    fields: dict[str, Any]
    extra: dict[str, str]
    absent: bool = False


def columns_by_header(columns: Iterable[Column]) -> dict[str, Column]:
    return {header: column for column in columns for header in column.headers}


def read_row(header: Header, line: str, known: Mapping[str, Column]) -> Row:
    """The fields of a data row; ConsoleFormatError when a column holds what it cannot (values misplaced)."""
    readings = read_values(header, line)
    if ABSENT in readings[0].values():
        first = header.names[0]
        column, number = known.get(first), readings[0].get(first, "")
        if column is None or not NUMBER.fullmatch(number):
            raise ConsoleFormatError(f"the row {line.strip()!r} of an absent module names no {first!r}")
        return Row({column.field: int(number)}, {}, absent=True)
    errors = []
    for values in readings:  # the first that every column can hold
        if header.names[-1] not in values:
            # A row ends in its last column: one that stops before it lost its end on the wire.
            errors.append(f"the row stops before column {header.names[-1]!r}")
            continue
        try:
            return Row(*read_fields(values, known))
        except ConsoleFormatError as error:
            errors.append(str(error))
    raise ConsoleFormatError(f"{errors[0]} in the row {line.strip()!r}")


def read_fields(values: Mapping[str, str], known: Mapping[str, Column]) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields of the columns (or keys) described, and the text of the others by their header."""
    fields: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for name, text in values.items():
        column = known.get(name)
        if column is None:
            extra[name] = text
        elif text == PLACEHOLDER:
            fields[column.field] = None
        else:
            try:
                fields.update(_parse(column, text))
            except ValueError as error:
                raise ConsoleFormatError(f"{name!r} holds {text!r} ({error})") from None
    return fields, extra


def _parse(column: Column, text: str) -> dict[str, Any]:
    if not column.percent:
        return {column.field: column.kind.parse(text)}
    share, _, amount = text.partition("% ") if "% " in text else ("", "", text)
    if not share and text.endswith("%"):
        return {column.percent: _percent(text)}
    fields = {column.field: column.kind.parse(amount)}
    return {column.percent: _percent(share + "%")} | fields if share else fields


@dataclass(frozen=True, slots=True)
class Table:
    """A table's rows as read: the rows, and each line that could not be read with the reason."""

    header: Header
    rows: tuple[Row, ...]
    unreadable: tuple[str, ...]


def read_table(lines: Sequence[str], columns: Iterable[Column], numbered: bool = True) -> Table:
    """The first line is the header; every following line that starts with a number is a row (`numbered`: the
    rows of a table with an index column), every following line is one otherwise (the tower of Force H2)."""
    header = read_header(lines[0])
    known = columns_by_header(columns)
    rows: list[Row] = []
    unreadable: list[str] = []
    for line in lines[1:]:
        if numbered and not NUMBER.fullmatch(line.split(maxsplit=1)[0]):
            continue
        try:
            rows.append(read_row(header, line, known))
        except ConsoleFormatError as error:
            unreadable.append(str(error))
    return Table(header, tuple(rows), tuple(unreadable))


def write_row(header_line: str, fields: Mapping[str, Any], columns: Iterable[Column]) -> str:
    """A data row under `header_line` as firmware writes it: each value at its column's start (or one space
    after the previous value when that is wider), `-` where a field is None or no column names it."""
    header = read_header(header_line)
    known = columns_by_header(columns)
    # A percentage goes with the amount (an old `Coulomb`'s SOC) only when no column of its own shows it.
    alone = {known[n].field for n in header.names if n in known}
    line = ""
    for name, start in zip(header.names, header.starts, strict=True):
        column = known.get(name)
        text = PLACEHOLDER if column is None else _write(column, fields, with_percent=column.percent not in alone)
        line = line.ljust(start) if len(line) < start else line + " " if line else line
        line += text
    return line


def _write(column: Column, fields: Mapping[str, Any], with_percent: bool) -> str:
    value = fields.get(column.field)
    if value is None:
        return PLACEHOLDER
    text = column.kind.write(value)
    if column.percent and with_percent and fields.get(column.percent) is not None:
        text = f"{PERCENT.write(fields[column.percent])}      {text}"
    return text
