"""Console tables of firmware not seen yet: columns reordered, added and missing; every value stays in its column."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pylonbus.console import read_session
from pylonbus.console.results import CellTable, StackSummary, SystemSummary

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
# Force H2: `unit` (a row a unit, numbered by `Index`) and `pwr` (the tower, one row, no index column).
# `CoulombAH` prints a percentage before its amount (SOC, Ah), `CoulombWH` too (share of energy, Wh).
UNIT = {
    "Volt": ("voltage", MILLI),
    "Curr": ("current", MILLI),
    "Tempr": ("temperature", MILLI),
    "BTlow": ("min_temperature", MILLI),
    "BThigh": ("max_temperature", MILLI),
    "BVlow": ("min_cell_voltage", MILLI),
    "BVhigh": ("max_cell_voltage", MILLI),
    "Base.St": ("base_state", "state"),
    "Volt.St": ("voltage_state", "state"),
    "Temp.St": ("temperature_state", "state"),
    "CoulombAH": (("soc", "remaining_capacity"), "share mAH"),
    "CoulombWH": (("state_of_energy", "remaining_energy"), "share mWH"),
    "Time": ("time", "time"),
}
TOWER = UNIT | {
    "Curr.St": ("current_state", "state"),
    "UTlow": ("min_unit_temperature", MILLI),
    "UVhigh": ("max_unit_voltage", MILLI),
    "B.V.St": ("battery_voltage_state", "state"),
    "U.T.St": ("unit_temperature_state", "state"),
    "Err Code": ("error_code", "hex"),
}
# Force H2 `bat`: every cell of the tower; `AH(mAH)` and `WH(mWH)` name their unit in the header and print
# a percentage and a bare number (`64%    23583`).
TOWER_BAT = {
    "Volt": ("voltage", MILLI),
    "Curr": ("current", MILLI),
    "Tempr": ("temperature", MILLI),
    "V.State": ("voltage_state", "state"),
    "T.State": ("temperature_state", "state"),
    "AH(mAH)": (("soc", "remaining_capacity"), "share"),
    "WH(mWH)": (("state_of_energy", "remaining_energy"), "share"),
    "Bal": ("balancing", "flag"),
}
STATES = st.sampled_from(["Normal", "Charge", "Dischg", "Idle", "Low", "Full", "SysError", "Alarm!"])
UNKNOWN_NAMES = st.from_regex(r"[A-Z][a-z]{1,6}\.(St|Id)|X[A-Z]{2,5}", fullmatch=True).filter(
    lambda name: name not in PWR and name not in BAT and name not in TOWER and name not in TOWER_BAT
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
    if kind.startswith("share"):
        unit = kind.removeprefix("share")  # "": the header names it
        shares = st.tuples(st.integers(0, 107), st.integers(0, 20_000_000))
        return shares.map(lambda pn: (f"{pn[0]}%          {pn[1]}{unit}", (float(pn[0]), pn[1] / 1000)))
    if kind == "hex":
        return st.integers(0, 0xFFFF).map(lambda n: (f"0x{n:X}", n))
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
    draw: st.DrawFn, index: str, known: dict[str, tuple[Any, str]], collapsed: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """A captured reply with a table of random columns, and what each row must read to. `collapsed`: the spaces
    of the capture were squeezed to one (a paste), so only the order of the values tells their columns.
    `index` "": the tower of Force H2, one row and no index column (so `Volt`, which tells its header, is in)."""
    # The tower's header has two columns at least: one word alone is no header.
    names = draw(st.lists(st.sampled_from(sorted(known)), unique=True, min_size=1 if index else 2, max_size=len(known)))
    if not index and "Volt" not in names:
        names.append("Volt")
    unknown = draw(st.lists(UNKNOWN_NAMES, unique=True, max_size=3))
    columns = draw(st.permutations(names + unknown))
    # An old `bat` prints SOC and Ah under `Coulomb` when it has no SOC column.
    soc_under_coulomb = known is BAT and "Coulomb" in columns and "SOC" not in columns and not collapsed
    count = draw(st.integers(1, 4)) if index else 1
    rows: list[dict[str, Any]] = []
    printed: list[list[str]] = []
    for number in range(count):
        expected: dict[str, Any] = {"index": number + 1, "extra": {}} if index else {"extra": {}}
        texts = [str(number + 1)] if index else []
        for name in columns:
            if name in known:
                field, kind = known[name]
                text, value = draw(value_of(kind))
                expected.update(zip(field, value, strict=True) if isinstance(field, tuple) else [(field, value)])
                if name == "Coulomb" and soc_under_coulomb:
                    soc_text, expected["soc"] = draw(value_of("percent"))
                    text = f"{soc_text}      {text}"
            else:
                text = draw(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))
                expected["extra"][name] = text
            texts.append(text)
        rows.append(expected)
        printed.append(texts)
    header = [index, *columns] if index else columns
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

    command = {"Power": "pwr", "Index": "unit", "": "pwr", "Bat": "bat"}.get(index, "bat 3")
    tower = index in ("Index", "", "Bat")
    head = draw(heads()) if tower else []
    body = end.join([*(f"{k}: {v}" for k, v, _ in head), line(header), *map(line, printed)])
    for row in rows if tower else []:
        row["head"] = {k: (text, value) for k, text, value in head}
    return f"{command}\n\r@\r\r\n{body}{end}Command completed successfully\r\n\r$$\r\n\rpylon>", rows


@st.composite
def heads(draw: st.DrawFn) -> list[tuple[str, str, Any]]:
    """The `Key : value` lines Force H2 prints before its table: (key, text, value read), an unknown key
    kept as its text."""
    keys = {"AverageTempr": "average_temperature", "DC Volt": "dc_voltage", "Bat Volt": "battery_voltage"}
    named = draw(st.lists(st.sampled_from(sorted(keys)), unique=True))
    lines = [(k, *draw(value_of(MILLI))) for k in named]
    unknown = draw(st.lists(st.from_regex(r"X[a-z]{2,6}( [A-Z][a-z]{1,4})?", fullmatch=True), unique=True, max_size=2))
    lines += [(k, text, text) for k in unknown for text in [draw(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))]]
    return draw(st.permutations(lines))


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
@given(tables("Index", UNIT))
def test_force_h2_unit_columns_reordered_added_and_missing(case: tuple[str, list[dict[str, Any]]]) -> None:
    text, rows = case
    ((_, result),) = read_session(text)
    assert isinstance(result, StackSummary) and not result.unreadable
    assert len(result.modules) == len(rows)
    head = rows[0]["head"]
    assert result.average_temperature == head.get("AverageTempr", (None, None))[1]
    assert result.extra == {k: text for k, (text, _) in head.items() if k != "AverageTempr"}
    for module, expected in zip(result.modules, rows, strict=True):
        del expected["head"]
        assert module.module == expected.pop("index")
        assert module.extra == expected.pop("extra")
        for field, value in expected.items():
            assert getattr(module, field) == value, field


HEAD_FIELDS = {"AverageTempr": "average_temperature", "DC Volt": "dc_voltage", "Bat Volt": "battery_voltage"}


@settings(max_examples=150, deadline=None)
@given(tables("", TOWER))
def test_force_h2_tower_columns_reordered_added_and_missing(case: tuple[str, list[dict[str, Any]]]) -> None:
    text, (expected,) = case
    ((_, result),) = read_session(text)
    assert isinstance(result, SystemSummary) and not result.unreadable
    head = expected.pop("head")
    for key, field in HEAD_FIELDS.items():
        assert getattr(result, field) == head.get(key, (None, None))[1], field
    unknown_head = {k: text for k, (text, _) in head.items() if k not in HEAD_FIELDS}
    assert result.extra == unknown_head | expected.pop("extra")
    for field, value in expected.items():
        assert getattr(result, field) == value, field


@settings(max_examples=150, deadline=None)
@given(tables("Bat", TOWER_BAT))
def test_force_h2_bat_columns_reordered_added_and_missing(case: tuple[str, list[dict[str, Any]]]) -> None:
    text, rows = case
    ((_, result),) = read_session(text)
    assert isinstance(result, CellTable) and not result.unreadable and result.module is None
    assert result.extra == {k: text for k, (text, _) in rows[0]["head"].items()}  # kept by label, as printed
    assert len(result.cells) == len(rows)
    for cell, expected in zip(result.cells, rows, strict=True):
        del expected["head"]
        assert cell.cell == expected.pop("index")
        assert cell.extra == expected.pop("extra")
        for field, value in expected.items():
            assert getattr(cell, field) == value, field


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
