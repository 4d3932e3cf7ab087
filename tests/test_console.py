"""Every captured console exchange reads to the values its tables hold; the framing of a live session."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from pylonbus.console import ConsoleReader, Page, Reply, decode, read_session, split_session
from pylonbus.console.results import (
    Cell,
    CellTable,
    ClockTime,
    ConsoleText,
    DeviceInfo,
    ModuleDetail,
    ModuleSummary,
    SohTable,
    StackSummary,
    Statistics,
    SystemSummary,
)
from pylonbus.errors import CommandFailedError, ConsoleFormatError, UnknownCommandError

TRANSCRIPTS = json.loads((Path(__file__).parent / "vectors" / "console" / "transcripts.json").read_text())


def transcript(command: str, firmware: str = "", model: str = "") -> str:
    (found,) = [
        t["text"] for t in TRANSCRIPTS if t["command"] == command and firmware in t["firmware"] and model in t["model"]
    ]
    return found


def only(text: str) -> Any:
    ((_, result),) = read_session(text)
    return result


# -- each number of each table ----------------------------------------------------------------------------
# The raw text a field was read from: mV, mA, m°C and mAh print as whole thousandths.
MILLI_FIELDS = {
    "voltage",
    "current",
    "temperature",
    "min_temperature",
    "max_temperature",
    "min_cell_voltage",
    "max_cell_voltage",
    "mosfet_temperature",
    "remaining_capacity",
    "remaining_energy",
    "average_temperature",
    "dc_voltage",
    "battery_voltage",
    "min_unit_temperature",
    "max_unit_temperature",
    "min_unit_voltage",
    "max_unit_voltage",
}
HEX_FIELDS = {"error_code"}
NUMBER = re.compile(r"\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d|0x[0-9A-Fa-f]+|-?\d+")


def raw_numbers(row: Any) -> Counter[str]:
    """The numbers a row of a result was read from, as the console printed them."""
    found: Counter[str] = Counter()
    for f in fields(row):
        value = getattr(row, f.name)
        if value is None or isinstance(value, bool):
            continue
        if f.name == "extra":
            found.update(n for text in value.values() for n in NUMBER.findall(text))
        elif f.name in MILLI_FIELDS:
            found[str(round(value * 1000))] += 1
        elif f.name in HEX_FIELDS:
            found[hex(value)] += 1
        elif isinstance(value, float | int):
            found[str(round(value))] += 1
        elif isinstance(value, str):
            found.update(NUMBER.findall(value))
    return found


HEADER = re.compile(r"(Power|Battery|Bat|Index|Volt) ")


def table_lines(text: str) -> list[str]:
    """The data rows of the table in a capture: after its header, each line that starts with a number."""
    lines = [line for line in re.split(r"[\r\n]+", text) if line.strip()]
    start = next(i for i, line in enumerate(lines) if HEADER.match(line) and ":" not in line)
    return [line for line in lines[start + 1 :] if re.match(r"\d+\s", line)]


def head_numbers(text: str) -> Counter[str]:
    """The numbers of the `Key : value` lines before the table (Force H2's `AverageTempr`, `DC Volt`…)."""
    lines = [line for line in re.split(r"[\r\n]+", text) if line.strip()]
    end = next(i for i, line in enumerate(lines) if HEADER.match(line) and ":" not in line)
    return Counter(n for line in lines[:end] if ":" in line for n in NUMBER.findall(line.split(":", 1)[1]))


# The tables of pwr, bat, soh and Force H2's unit (its `pwr`: the tower as one row, no index column).
TABLES = [
    (t["command"], t["firmware"], t["text"])
    for t in TRANSCRIPTS
    if t["command"].split()[0] in ("pwr", "bat", "soh", "unit")
    and not re.fullmatch(r"pwr \d+", t["command"])
    and not t["text"].startswith("age")
]


@pytest.mark.parametrize(("command", "firmware", "text"), TABLES, ids=[f"{c}|{f[:24]}" for c, f, _ in TABLES])
def test_every_number_of_every_table_row_is_read(command: str, firmware: str, text: str) -> None:
    result = only(text)
    if isinstance(result, SystemSummary):  # the tower: its one row and the lines before it, in one result
        (line,) = table_lines(text)
        assert not result.unreadable
        assert raw_numbers(result) == head_numbers(text) + Counter(NUMBER.findall(line))
        return
    if isinstance(result, StackSummary):  # the rows are checked below; what it holds besides them here
        assert raw_numbers(result) == head_numbers(text)
    if isinstance(result, CellTable):  # the lines before the table (Force H2), kept by label
        assert Counter(n for value in result.extra.values() for n in NUMBER.findall(value)) == head_numbers(text)
    rows = result.modules if isinstance(result, StackSummary) else result.cells
    lines = table_lines(text)
    readable = [line for line in lines if not any(line.strip() in reason for reason in result.unreadable)]
    assert len(readable) == len(rows)
    for line, row in zip(readable, rows, strict=True):
        expected = Counter(NUMBER.findall(line))
        if getattr(row, "absent", False):
            assert expected == Counter([str(row.module)])
        else:
            assert raw_numbers(row) == expected, line


KEY_VALUE_REPLIES = [
    t for t in TRANSCRIPTS if t["command"].split()[0] in ("stat", "info") or re.fullmatch(r"pwr \d+", t["command"])
]
# The number of each key, and how many of its units make one of the field's (the test's own reading of
# CONSOLE.md, independent of the reader's tables).
KEY_FIELDS = {
    "Voltage": ("voltage", 1000),
    "B+B-.Volt": ("terminal_voltage", 1000),
    "Current": ("current", 1000),
    "Temperature": ("temperature", 1000),
    "Coulomb": ("soc", 1),
    "Total Coulomb": ("total_capacity", 1000),
    "Real Coulomb": ("real_capacity", 1000),
    "Max Voltage": ("max_voltage", 1000),
    "Charge Times": ("charge_times", 1),
    "Charge Sec.": ("charge_seconds", 1),
    "Discharge Sec.": ("discharge_seconds", 1),
    "Cell Number": ("cell_count", 1),
    "Max Dischg Curr": ("discharge_current_limit", 1000),
    "Max Charge Curr": ("charge_current_limit", 1000),
    "Console Port rate": ("console_baud", 1),
    "EPONPort rate": ("epon_baud", 1),
    "Device address": ("module", 1),
    "CYCLE Times": ("cycles", 1),
    "SOH": ("soh", 1),
    "SOH Percent": ("soh", 1),
}


@pytest.mark.parametrize(
    "entry", KEY_VALUE_REPLIES, ids=[f"{t['command']}|{t['firmware'][:24]}" for t in KEY_VALUE_REPLIES]
)
def test_every_number_of_every_key_value_reply_is_read(entry: dict[str, Any]) -> None:
    result = only(entry["text"])
    kept = result.counters if isinstance(result, Statistics) else result.extra
    checked = 0
    for line in re.split(r"[\r\n]+", entry["text"]):
        match = re.match(r"\s*([^:]+?)\s*: *(-?\d+)(?:\s|mA|$)", line)
        if match is None:
            continue
        key, number = match[1], int(match[2])
        if key in KEY_FIELDS and hasattr(result, KEY_FIELDS[key][0]):
            name, scale = KEY_FIELDS[key]
            assert round(getattr(result, name) * scale) == number, line
        else:
            assert str(kept[key]).split()[0] == str(number), line
        checked += 1
    assert checked >= 4


# -- whole rows, field by field, one of each column set ---------------------------------------------------
def test_pwr_classic_us2kbpl() -> None:
    result = only(transcript("pwr", "B66.6"))
    assert result.present == (1, 2)
    assert result.modules[0] == ModuleSummary(
        module=1,
        voltage=50.691,
        current=3.806,
        temperature=17.0,
        min_temperature=13.0,
        max_temperature=14.0,
        min_cell_voltage=3.378,
        max_cell_voltage=3.381,
        base_state="Charge",
        voltage_state="Normal",
        current_state="Normal",
        temperature_state="Normal",
        soc=89.0,
        time="2025-12-21 20:53:06",
        battery_voltage_state="Normal",
        battery_temperature_state="Normal",
    )
    assert [m.module for m in result.modules] == list(range(1, 9))
    assert all(m.absent and m.voltage is None for m in result.modules[2:])


def test_pwr_with_mosfet_mixed_stack_prints_dashes_for_modules_without_the_sensor() -> None:
    result = only(transcript("pwr", "B67.5.0"))
    first, third, fifth = result.modules[0], result.modules[2], result.modules[4]
    assert (first.mosfet_temperature, first.mosfet_temperature_state) == (27.1, "Normal")
    assert (third.mosfet_temperature, third.mosfet_temperature_state) == (None, None)
    assert (third.voltage, third.current, third.soc) == (49.767, -2.348, 96.0)
    assert (fifth.voltage, fifth.current, fifth.mosfet_temperature, fifth.soc) == (49.679, -3.598, 24.6, 95.0)
    assert result.present == (1, 2, 3, 4, 5)
    assert len(result.modules) == 16


def test_pwr_with_cell_indices_and_system_alarm_us5000() -> None:
    result = only(transcript("pwr (test fixture)"))
    module = result.modules[0]
    assert (module.min_temperature, module.min_temperature_index) == (29.4, 12)
    assert (module.max_temperature, module.max_temperature_index) == (31.3, 0)
    assert (module.min_cell_voltage, module.min_cell_voltage_index) == (3.429, 2)
    assert (module.max_cell_voltage, module.max_cell_voltage_index) == (3.438, 1)
    assert (module.soc, module.time, module.mosfet_temperature) == (100.0, "2026-06-18 22:49:12", 32.4)
    assert module.system_alarm_state == "Normal"
    assert result.modules[1] == ModuleSummary(4, absent=True)


def test_pwr_pytes_v5_has_barcode_and_device_type() -> None:
    module = only(transcript("pwr", "V1.10")).modules[0]
    assert (module.serial, module.model, module.voltage, module.current) == (
        "Exxxxxxxxxxxxx43",
        "E-BOX-48100V-D",
        53.07,
        -5.962,
    )


def test_pwr_row_with_collapsed_spacing_reads_by_count() -> None:
    first, second = only(transcript("pwr (row examples)")).modules
    assert (first.battery_voltage_state, first.battery_temperature_state, first.mosfet_temperature) == (
        "Normal",
        "Normal",
        22.7,
    )
    assert (second.base_state, second.voltage_state, second.soc, second.battery_voltage_state) == (
        "SysError",
        "Low",
        4.0,
        "Low",
    )


def test_force_h2_pwr_is_the_tower_in_one_row() -> None:
    assert only(transcript("pwr", "B52.26")) == SystemSummary(
        voltage=401.758,
        dc_voltage=400.437,
        battery_voltage=400.916,
        current=0.521,
        temperature=33.0,
        average_temperature=22.483,
        min_temperature=22.0,
        max_temperature=24.0,
        min_cell_voltage=3.346,
        max_cell_voltage=3.349,
        min_unit_temperature=22.0,
        max_unit_temperature=23.466,
        min_unit_voltage=100.428,
        max_unit_voltage=100.451,
        base_state="Charge",
        voltage_state="Normal",
        current_state="Normal",
        temperature_state="Normal",
        soc=78.0,
        remaining_capacity=28.903,
        state_of_energy=84.0,
        remaining_energy=11903.117,
        time="2023-10-05 16:14:35",
        battery_voltage_state="Normal",
        battery_temperature_state="Normal",
        unit_voltage_state="Normal",
        unit_temperature_state="Normal",
        error_code=0,
    )


def test_force_h2_unit_is_a_row_a_unit_of_the_tower() -> None:
    result = only(transcript("unit", "B52.26"))
    assert (result.average_temperature, result.extra, result.present) == (21.75, {}, (1, 2, 3, 4))
    assert result.modules[2] == ModuleSummary(
        module=3,
        voltage=100.051,
        current=2.058,
        temperature=21.466,
        min_temperature=21.0,
        max_temperature=22.0,
        min_cell_voltage=3.333,
        max_cell_voltage=3.337,
        base_state="Charge",
        voltage_state="Normal",
        temperature_state="Normal",
        soc=62.0,
        remaining_capacity=22.825,
        state_of_energy=67.0,
        remaining_energy=2369.322,
        time="2023-10-05 14:30:44",
    )
    assert [m.voltage for m in result.modules] == [100.05, 99.967, 100.051, 100.081]
    assert [(m.soc, m.state_of_energy) for m in result.modules] == [
        (63.0, 66.0),
        (64.0, 66.0),
        (62.0, 67.0),
        (65.0, 67.0),
    ]


def test_bat_classic_holds_soc_and_ah_under_coulomb() -> None:
    result = only(transcript("bat", "B66.6"))
    assert result.module is None  # `bat` alone: the module the console is attached to
    assert result.cells[4] == Cell(
        cell=4,
        voltage=3.381,
        current=4.076,
        temperature=14.0,
        base_state="Charge",
        voltage_state="Normal",
        current_state="Normal",
        temperature_state="Normal",
        soc=89.0,
        remaining_capacity=42.586,
    )
    assert [c.voltage for c in result.cells] == [
        3.379, 3.379, 3.379, 3.379, 3.381, 3.378, 3.378, 3.378, 3.380, 3.379, 3.380, 3.380, 3.378, 3.380, 3.380
    ]  # fmt: skip
    assert [c.temperature for c in result.cells] == [14.0] * 10 + [13.0] * 5


def test_bat_with_soc_and_balancing() -> None:
    result = only(transcript("bat 1", "B67.5.0"))
    assert result.module == 1
    assert result.cells[3] == Cell(
        cell=3,
        voltage=3.316,
        current=-2.964,
        temperature=26.4,
        base_state="Dischg",
        voltage_state="Normal",
        current_state="Normal",
        temperature_state="Normal",
        soc=96.0,
        remaining_capacity=44.632,
        balancing=False,
    )
    assert result.balancing_cells == ()
    assert len(result.cells) == 15


def test_bat_pytes_v5_without_current() -> None:
    result = only(transcript("bat 1", "V1.10"))
    assert len(result.cells) == 16
    assert all(cell.current is None for cell in result.cells)
    assert (result.cells[13].voltage, result.cells[13].soc, result.cells[13].remaining_capacity) == (
        3.306,
        36.0,
        36.863,
    )


def test_bat_pytes_row_with_misplaced_values_is_unreadable_not_guessed() -> None:
    result = only(transcript("bat 2", "V1.3"))
    assert [c.cell for c in result.cells] == [0, 1, *range(3, 15)]
    (reason,) = result.unreadable
    assert "'Temp. State'" in reason and "80%" in reason


def test_bat_variant_header_and_force_h2_watt_hours() -> None:
    result = only(transcript("bat (variant header)"))
    assert (result.cells[0].voltage, result.cells[0].current, result.cells[0].soc) == (3.301, -0.144, 68.0)
    assert (result.cells[0].remaining_capacity, result.cells[0].balancing) == (33.819, False)
    assert result.cells[0].base_state is None
    force = only(transcript("bat", "B52.26"))
    assert force.cells[0].extra == {}
    assert (force.cells[0].soc, force.cells[0].remaining_capacity) == (64.0, 23.583)
    assert (force.cells[0].state_of_energy, force.cells[0].remaining_energy) == (66.0, 77.675)
    assert len(force.cells) == 120 and force.balancing_cells == ()
    assert force.extra == {
        "Time": "2023-10-05 14:31:12",
        "A.Tempr": "21750",
        "C.Curr": "18500 mA",
        "D.Curr": "-18500 mA",
        "B.State": "Charge",
        "BalVolt": "3360",
    }


def test_soh_reads_per_cell_and_pytes_v5_hex_status() -> None:
    result = only(transcript("soh 2", "B68.2"))
    assert result.module == 2
    assert [(c.cell, c.voltage, c.soh_count, c.soh_status) for c in result.cells[:2]] == [
        (0, 3.329, 0, "Normal"),
        (1, 3.328, 0, "Normal"),
    ]
    pytes = only(transcript("soh", "V1.10"))
    assert pytes.module == 1
    assert [c.soh_status for c in pytes.cells] == ["00000000"] * 16
    assert pytes.cells[15].voltage == 3.319


PROTECTIONS = (
    *("BOV", "BHV", "BLV", "BUV", "POV", "PHV", "PLV", "PUV", "CBOT", "CBHT", "CBLT", "CBUT", "DBOT", "DBHT"),
    *("DBLT", "DBUT", "POT", "PHT", "COC", "COC2", "COCA", "DOCA", "DOC", "DOC2", "SC", "LCOUL"),
)


def test_pwr_n_key_values() -> None:
    result = only(TRANSCRIPTS[13]["text"])  # the first of two captures of `pwr 2`
    assert result == ModuleDetail(
        module=2,
        voltage=52.437,
        current=0.08,
        temperature=30.6,
        soc=100.0,
        total_capacity=50.0,
        max_voltage=54.0,
        charge_times=0,
        base_state="Charge",
        charge_seconds=0,
        voltage_state="Normal",
        current_state="Normal",
        temperature_state="Normal",
        coulomb_state="Full",
        soh_state="Normal",
        heater_state="OFF",
        protections=PROTECTIONS,
        battery_events=0,
        power_events=0x2000,
        system_fault=0,
    )


def test_pwr_n_pytes_real_coulomb_and_us3000d_terminal_voltage() -> None:
    pytes = only(transcript("pwr 1", "V1.3"))
    assert (pytes.total_capacity, pytes.real_capacity, pytes.charge_seconds) == (50.0, 49.7, None)
    us3000d = only(transcript("pwr 1", model="US3000D"))
    assert (us3000d.voltage, us3000d.terminal_voltage, us3000d.current, us3000d.discharge_seconds) == (
        49.726,
        49.715,
        -3.361,
        0,
    )
    assert us3000d.extra["Bat Volt Status"] == "0x4 BVNOR"


def test_stat_names_cycles_and_soh_and_keeps_every_other_counter_by_label() -> None:
    result = only(transcript("stat", "B67.5.0"))
    assert (result.module, result.cycles, result.soh) == (1, 666, 93.0)
    assert result.counters["Pwr Coulomb"] == 158824440
    assert result.counters["HT@0.5C Cnt"] == 0
    assert len(result.counters) == 50 - 2
    old = only(transcript("stat", "B66.6"))
    assert (old.cycles, old.soh, old.counters["MiscData Items"]) == (430, None, 6230)
    force = only(transcript("stat", "B52.26"))
    assert force.counters["ChgCurr 0~0.2C Secs"] == 6496484
    assert force.counters["Soc 0~20% Secs"] == 3898542
    assert (force.cycles, force.soh, force.counters["SOH Times"]) == (142, 100.0, 132)


def test_info_reads_model_serial_and_limits() -> None:
    result = only(transcript("info 2", "B67.5.0"))
    assert result == DeviceInfo(
        module=2,
        manufacturer="Pylon",
        model="US2000C",
        board_version="V10R04",
        main_software_version="B67.5.0",
        software_version="V1.7",
        boot_version="V2.0",
        comm_version="V2.0",
        release_date="20-12-11",
        serial="HPTCR03170C09377",
        specification="48V/50AH",
        cell_count=15,
        discharge_current_limit=-90.0,
        charge_current_limit=90.0,
        console_baud=115200,
        epon_baud=1200,
    )
    pytes = only(transcript("info 1", "V1.10"))
    assert (pytes.manufacturer, pytes.model, pytes.cell_count, pytes.epon_baud) == ("PYTES", "E-BOX-48100V-D", 16, None)
    assert pytes.extra["Iterate version"] == "SPBMS16SRP2304V1.10.7.1C.T5"


def test_time_of_each_clock() -> None:
    assert only(transcript("time", "B66.6")) == ClockTime("2025-12-21 21:14:53", "Ds3231")
    assert only(transcript("time", "B67.5.0")) == ClockTime("2026-07-17 01:40:48", "RTC", {"Test result": "pass"})
    assert only(transcript("time", "B52.26")) == ClockTime("2023-10-05 14:30:18")


# -- framing ----------------------------------------------------------------------------------------------
def test_errors_are_typed() -> None:
    ((command, error),) = read_session(transcript("totalcoul (unknown command)"))
    assert command == "totalcoul"
    assert isinstance(error, UnknownCommandError)
    reply = Reply("stat 1", ("Invalid command or fail to excute.", "Usage:", "stat"), "PYTES")
    with pytest.raises(CommandFailedError, match="stat 1"):
        decode(reply)


def test_a_session_of_several_exchanges_splits_at_each_prompt() -> None:
    text = transcript("pwr", "B66.6") + "\n\r" + transcript("time", "B66.6") + transcript("stat", "B66.6")[:200]
    replies = split_session(text)
    assert [r.command for r in replies] == ["pwr", "time", "stat"]
    assert [r.completed for r in replies] == [True, True, False]
    assert replies[0].prompt == "pylon"


def test_help_stops_at_a_page() -> None:
    (reply,) = split_session(transcript("help", "B66.6"))
    assert reply.pages == 1 and not reply.completed
    assert reply.lines[-1] == "Remote command:"
    assert isinstance(decode(reply), ConsoleText)


def test_reader_takes_chunks_split_anywhere_and_stops_at_pages() -> None:
    text = transcript("pwr", "B67.5.0").replace("\n", "\r\r\n").encode("latin-1")
    paged = b"help\n\r@\r\r\nfirst\r\n\rPress [Enter] to be continued,other key to exit\r\r" + b" " * 50
    paged += b"\r\r\r\nsecond\r\n\r$$\r\n\rpylon>"
    for data, expected in ((text, StackSummary), (paged, ConsoleText)):
        reader = ConsoleReader()
        events: list[Any] = []
        for i in range(0, len(data), 7):
            reader.feed(data[i : i + 7])
            while (event := reader.next_event()) is not None:
                events.append(event)
        *pages, reply = events
        assert isinstance(reply, Reply) and isinstance(decode(reply), expected)
        assert all(isinstance(p, Page) for p in pages)
    assert len(pages) == 1 and reply.lines == ("first", "second") and reply.pages == 1


def test_reader_waits_for_the_whole_prompt() -> None:
    reader = ConsoleReader("time")
    reader.feed(b"time\n\r@\r\n\rDs3231 2025-12-21 21:14:53\r\n\rCommand completed successfully\r\n\r$$\r\n\rpyl")
    assert reader.next_event() is None
    reader.feed(b"on>")
    reply = reader.next_event()
    assert isinstance(reply, Reply) and reply.completed and reply.command == "time"


def test_a_column_holding_a_value_it_cannot_is_an_error() -> None:
    text = "Battery  Volt     Curr\n0        3379     high\nCommand completed successfully\n$$\npylon>"
    result = only(text)
    assert isinstance(result, CellTable) and result.cells == ()
    assert "'Curr' holds 'high'" in result.unreadable[0]
    with pytest.raises(ConsoleFormatError):
        decode(Reply("stat", ("Device address    1", "CYCLE Times : many")))


def test_every_transcript_reads_without_an_unexpected_error() -> None:
    kinds = Counter(type(r).__name__ for t in TRANSCRIPTS for _, r in read_session(t["text"]))
    assert kinds["UnknownCommandError"] == 1
    assert not {"ConsoleFormatError", "CommandFailedError"} & set(kinds)
    assert kinds["StackSummary"] >= 9 and kinds["CellTable"] >= 12 and kinds["SohTable"] >= 5
    assert isinstance(only(transcript("soh", "B52.26")), SohTable)
    assert kinds["SystemSummary"] == 1
    assert isinstance(only(transcript("stat 2", "B68.2")), Statistics)
