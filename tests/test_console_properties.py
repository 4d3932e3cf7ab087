"""Console tables of firmware not seen yet: columns reordered, added and missing; every value stays in its column."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pylonbus.console import read_session
from pylonbus.console.results import CellTable, StackSummary

MILLI = "milli"
# header: (field, kind) as CONSOLE.md describes the columns (the test's own table, not the reader's)
PWR = {
    "Volt": ("voltage", MILLI),
    "Curr": ("current", MILLI),
    "Tempr": ("temperature", MILLI),
    "Tlow": ("min_temperature", MILLI),
    "Tlow.Id": ("min_temperature_index", "int"),
    "Thigh": ("max_temperature", MILLI),
    "Vlow": ("min_cell_voltage", MILLI),
    "Vhigh.Id": ("max_cell_voltage_index", "int"),
    "Base.St": ("base_state", "state"),
    "Volt.St": ("voltage_state", "state"),
    "Coulomb": ("soc", "percent"),
    "Time": ("time", "time"),
    "B.T.St": ("battery_temperature_state", "state"),
    "MosTempr": ("mosfet_temperature", MILLI),
    "SysAlarm.St": ("system_alarm_state", "state"),
    "Barcode": ("serial", "text"),
}
BAT = {
    "Volt": ("voltage", MILLI),
    "Curr": ("current", MILLI),
    "Tempr": ("temperature", MILLI),
    "Base State": ("base_state", "state"),
    "Volt. State": ("voltage_state", "state"),
    "Temp. State": ("temperature_state", "state"),
    "CTemp. State": ("charge_temperature_state", "state"),
    "SOC": ("soc", "percent"),
    "Coulomb": ("remaining_capacity", "amount"),
    "BAL": ("balancing", "flag"),
}
STATES = st.sampled_from(["Normal", "Charge", "Dischg", "Idle", "Low", "Full", "SysError", "Alarm!"])
UNKNOWN_NAMES = st.from_regex(r"[A-Z][a-z]{1,6}\.(St|Id)|X[A-Z]{2,5}", fullmatch=True).filter(
    lambda name: name not in PWR and name not in BAT
)


def value_of(kind: str) -> st.SearchStrategy[tuple[str, Any]]:
    """(text as printed, value read) of a column kind."""
    if kind == MILLI:
        return st.integers(-120_000, 120_000).map(lambda n: (str(n), n / 1000))
    if kind == "int":
        return st.integers(0, 15).map(lambda n: (str(n), n))
    if kind == "percent":
        return st.integers(0, 107).map(lambda n: (f"{n}%", float(n)))
    if kind == "amount":
        return st.integers(0, 100_000).map(lambda n: (f"{n} mAH", n / 1000))
    if kind == "flag":
        return st.booleans().map(lambda b: ("Y" if b else "N", b))
    if kind == "time":
        return st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
            lambda t: (t.strftime("%Y-%m-%d %H:%M:%S"),) * 2
        )
    if kind == "text":
        texts = st.from_regex(r"[A-Z][A-Za-z0-9-]{3,15}", fullmatch=True).filter(lambda s: s != "Absent")
        return texts.map(lambda s: (s, s))
    return STATES.map(lambda s: (s, s))


@st.composite
def tables(
    draw: st.DrawFn, index: str, known: dict[str, tuple[str, str]], collapsed: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """A captured reply with a table of random columns, and what each row must read to. `collapsed`: the spaces
    of the capture were squeezed to one (a paste), so only the order of the values tells their columns."""
    names = draw(st.lists(st.sampled_from(sorted(known)), unique=True, min_size=1, max_size=len(known)))
    unknown = draw(st.lists(UNKNOWN_NAMES, unique=True, max_size=3))
    columns = draw(st.permutations(names + unknown))
    # An old `bat` prints SOC and Ah under `Coulomb` when it has no SOC column.
    soc_under_coulomb = known is BAT and "Coulomb" in columns and "SOC" not in columns and not collapsed
    count = draw(st.integers(1, 4))
    rows: list[dict[str, Any]] = []
    printed: list[list[str]] = []
    for number in range(count):
        expected: dict[str, Any] = {"index": number + 1, "extra": {}}
        texts = [str(number + 1)]
        for name in columns:
            if name in known:
                field, kind = known[name]
                text, value = draw(value_of(kind))
                expected[field] = value
                if name == "Coulomb" and soc_under_coulomb:
                    soc_text, expected["soc"] = draw(value_of("percent"))
                    text = f"{soc_text}      {text}"
            else:
                text = draw(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))
                expected["extra"][name] = text
            texts.append(text)
        rows.append(expected)
        printed.append(texts)
    header = [index, *columns]
    gaps = draw(st.lists(st.integers(1, 4), min_size=len(header), max_size=len(header)))
    widths = [
        max(len(h), *(len(r[i]) for r in printed)) + gap for i, (h, gap) in enumerate(zip(header, gaps, strict=True))
    ]
    end = draw(st.sampled_from(["\r\r\n", "\n", "\r\n\r", "\n\n"]))

    def line(cells: list[str]) -> str:
        if collapsed:
            return " ".join(cells)
        trailing = draw(st.sampled_from(["", "  "]))
        return "".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + trailing

    command = "pwr" if index == "Power" else "bat 3"
    body = end.join([line(header), *map(line, printed)])
    return f"{command}\n\r@\r\r\n{body}{end}Command completed successfully\r\n\r$$\r\n\rpylon>", rows


@settings(max_examples=150, deadline=None)
@given(st.one_of(tables("Power", PWR), tables("Power", PWR, collapsed=True)))
def test_pwr_columns_reordered_added_and_missing(case: tuple[str, list[dict[str, Any]]]) -> None:
    text, rows = case
    ((_, result),) = read_session(text)
    assert isinstance(result, StackSummary) and not result.unreadable
    assert len(result.modules) == len(rows)
    for module, expected in zip(result.modules, rows, strict=True):
        assert module.module == expected.pop("index")
        assert module.extra == expected.pop("extra")
        for field, value in expected.items():
            assert getattr(module, field) == value, field
        unnamed = {f for f, _ in PWR.values()} - set(expected)
        assert all(getattr(module, f) is None for f in unnamed)


@settings(max_examples=150, deadline=None)
@given(st.one_of(tables("Battery", BAT), tables("Battery", BAT, collapsed=True)))
def test_bat_columns_reordered_added_and_missing(case: tuple[str, list[dict[str, Any]]]) -> None:
    text, rows = case
    ((_, result),) = read_session(text)
    assert isinstance(result, CellTable) and not result.unreadable and result.module == 3
    assert len(result.cells) == len(rows)
    for cell, expected in zip(result.cells, rows, strict=True):
        assert cell.cell == expected.pop("index")
        assert cell.extra == expected.pop("extra")
        for field, value in expected.items():
            assert getattr(cell, field) == value, field
