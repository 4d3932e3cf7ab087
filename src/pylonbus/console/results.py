"""Typed results of the console commands, in V, A, °C, Ah, % and counts; current signed, charge positive.

Names follow the RS485 results where the quantity is the same (`voltage`, `current`, `soc`,
`remaining_capacity`, `total_capacity`, `cycles`, `serial`, `model`). A field is None where the firmware has
no such column or prints `-`; columns and counters no firmware seen so far prints are kept in `extra` (or
`counters`) under their header text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

_TEMPERATURES = ("temperature", "min_temperature", "max_temperature", "mosfet_temperature")
_CELL_VOLTAGES = ("min_cell_voltage", "max_cell_voltage")


_SHARES = {"soc": "%", "remaining_capacity": "Ah", "state_of_energy": "%", "remaining_energy": "Wh"}


@dataclass(slots=True)
class ModuleSummary:
    """One row of `pwr` (a module of the stack, `absent` when its address is empty) or of Force H2 `unit` (a
    unit of the tower, numbered by its `Index`).

    Voltages in V (`min_cell_voltage`/`max_cell_voltage`: its lowest and highest cell, `*_index` the cell or
    sensor at that extreme, as the console numbers them), `current` in A (charge positive), temperatures in °C,
    `soc` and `state_of_energy` (the share of energy left, Force H2) in %, `remaining_capacity` in Ah,
    `remaining_energy` in Wh, `time` the module's clock (`YYYY-MM-DD HH:MM:SS`, no time zone), the `*_state`
    fields the state words as printed (`Normal`, `Charge`, `Dischg`, `Idle`, `Low`…), `serial` and `model` as
    Pytes V5 prints them. None: no such column, or `-`. `extra`: the other columns by header text."""

    UNITS: ClassVar[dict[str, str]] = (
        {"voltage": "V", "current": "A"}
        | _SHARES
        | dict.fromkeys(_TEMPERATURES, "°C")
        | dict.fromkeys(_CELL_VOLTAGES, "V")
    )

    module: int
    absent: bool = False
    voltage: float | None = None
    current: float | None = None
    temperature: float | None = None
    min_temperature: float | None = None
    min_temperature_index: int | None = None
    max_temperature: float | None = None
    max_temperature_index: int | None = None
    min_cell_voltage: float | None = None
    min_cell_voltage_index: int | None = None
    max_cell_voltage: float | None = None
    max_cell_voltage_index: int | None = None
    base_state: str | None = None
    voltage_state: str | None = None
    current_state: str | None = None
    temperature_state: str | None = None
    soc: float | None = None
    remaining_capacity: float | None = None
    state_of_energy: float | None = None
    remaining_energy: float | None = None
    time: str | None = None
    battery_voltage_state: str | None = None
    battery_temperature_state: str | None = None
    mosfet_temperature: float | None = None
    mosfet_temperature_state: str | None = None
    system_alarm_state: str | None = None
    serial: str | None = None
    model: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class StackSummary:
    """`pwr`: every address of the stack (Force H2 `unit`: every unit of the tower), and the rows that could
    not be read (with the reason). `average_temperature` (°C): the line Force H2 prints before its table;
    `extra`: any other such line, by its label."""

    UNITS: ClassVar[dict[str, str]] = {"average_temperature": "°C"}

    modules: tuple[ModuleSummary, ...]
    unreadable: tuple[str, ...] = ()
    average_temperature: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def present(self) -> tuple[int, ...]:
        return tuple(m.module for m in self.modules if not m.absent)


@dataclass(slots=True)
class SystemSummary:
    """Force H2 `pwr`: the whole tower (its units in series) as one row, and the lines before it.

    `voltage`, `dc_voltage`, `battery_voltage` in V (the tower's; `DC Volt` and `Bat Volt` as printed), `current`
    in A (charge positive), temperatures in °C (`min_temperature`/`max_temperature`: the coldest and warmest
    cell, `*_unit_temperature` the coldest and warmest unit), `min_cell_voltage`/`max_cell_voltage` and
    `*_unit_voltage` in V, `soc` and `state_of_energy` in %, `remaining_capacity` in Ah, `remaining_energy` in
    Wh, `error_code` the `Err Code` number, states as printed. None: no such column, or `-`; `extra`: the other
    columns and lines by their header text; `unreadable`: why the row could not be read, when it could not."""

    UNITS: ClassVar[dict[str, str]] = (
        dict.fromkeys(("voltage", "dc_voltage", "battery_voltage", "min_unit_voltage", "max_unit_voltage"), "V")
        | {"current": "A"}
        | _SHARES
        | dict.fromkeys((*_TEMPERATURES[:3], "average_temperature"), "°C")
        | dict.fromkeys(("min_unit_temperature", "max_unit_temperature"), "°C")
        | dict.fromkeys(_CELL_VOLTAGES, "V")
    )

    voltage: float | None = None
    dc_voltage: float | None = None
    battery_voltage: float | None = None
    current: float | None = None
    temperature: float | None = None
    average_temperature: float | None = None
    min_temperature: float | None = None
    max_temperature: float | None = None
    min_cell_voltage: float | None = None
    max_cell_voltage: float | None = None
    min_unit_temperature: float | None = None
    max_unit_temperature: float | None = None
    min_unit_voltage: float | None = None
    max_unit_voltage: float | None = None
    base_state: str | None = None
    voltage_state: str | None = None
    current_state: str | None = None
    temperature_state: str | None = None
    soc: float | None = None
    remaining_capacity: float | None = None
    state_of_energy: float | None = None
    remaining_energy: float | None = None
    time: str | None = None
    battery_voltage_state: str | None = None
    battery_temperature_state: str | None = None
    unit_voltage_state: str | None = None
    unit_temperature_state: str | None = None
    error_code: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()


@dataclass(slots=True)
class Cell:
    """One row of `bat N`: a cell."""

    UNITS: ClassVar[dict[str, str]] = {
        "voltage": "V",
        "current": "A",
        "temperature": "°C",
        "soc": "%",
        "remaining_capacity": "Ah",
    }

    cell: int
    voltage: float | None = None
    current: float | None = None
    temperature: float | None = None
    base_state: str | None = None
    voltage_state: str | None = None
    current_state: str | None = None
    temperature_state: str | None = None
    charge_temperature_state: str | None = None
    discharge_temperature_state: str | None = None
    soc: float | None = None
    remaining_capacity: float | None = None
    balancing: bool | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class CellTable:
    """`bat N`: the cells of module `module` (None: the module the console is attached to)."""

    module: int | None
    cells: tuple[Cell, ...]
    unreadable: tuple[str, ...] = ()

    @property
    def balancing_cells(self) -> tuple[int, ...]:
        """Cells (numbered as the console numbers them, from 0) being balanced."""
        return tuple(c.cell for c in self.cells if c.balancing)


@dataclass(slots=True)
class SohCell:
    """One row of `soh N`."""

    UNITS: ClassVar[dict[str, str]] = {"voltage": "V"}

    cell: int
    voltage: float | None = None
    soh_count: int | None = None
    soh_status: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SohTable:
    """`soh N`: the state-of-health check of each cell of module `module`."""

    module: int | None
    cells: tuple[SohCell, ...]
    unreadable: tuple[str, ...] = ()


@dataclass(slots=True)
class ModuleDetail:
    """`pwr N`: one module's key/value block."""

    UNITS: ClassVar[dict[str, str]] = {
        "voltage": "V",
        "terminal_voltage": "V",
        "current": "A",
        "temperature": "°C",
        "soc": "%",
        "total_capacity": "Ah",
        "real_capacity": "Ah",
        "max_voltage": "V",
        "charge_seconds": "s",
        "discharge_seconds": "s",
    }

    module: int | None
    voltage: float | None = None
    terminal_voltage: float | None = None
    current: float | None = None
    temperature: float | None = None
    soc: float | None = None
    total_capacity: float | None = None
    real_capacity: float | None = None
    max_voltage: float | None = None
    charge_times: int | None = None
    base_state: str | None = None
    charge_seconds: int | None = None
    discharge_seconds: int | None = None
    voltage_state: str | None = None
    current_state: str | None = None
    temperature_state: str | None = None
    coulomb_state: str | None = None
    soh_state: str | None = None
    heater_state: str | None = None
    protections: tuple[str, ...] = ()
    battery_events: int | None = None
    power_events: int | None = None
    system_fault: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Statistics:
    """`stat N`: lifetime counters. `cycles` is `CYCLE Times`, `soh` the `SOH` line newer firmware prints;
    every other counter is kept by its label."""

    UNITS: ClassVar[dict[str, str]] = {"soh": "%"}

    module: int | None
    cycles: int | None = None
    soh: float | None = None
    counters: dict[str, int | str] = field(default_factory=dict)


def counter_name(label: str) -> str:
    """A stable snake_case name of a `stat` label: `Bat OV Times` -> `bat_ov_times`, `HT@0.5C Cnt` ->
    `ht_0_5c_cnt`, `Soc 0~20% Secs` -> `soc_0_20_secs`."""
    return "_".join(re.findall(r"[a-z0-9]+", label.lower()))


@dataclass(slots=True)
class DeviceInfo:
    """`info N`: what the module says it is."""

    UNITS: ClassVar[dict[str, str]] = {"discharge_current_limit": "A", "charge_current_limit": "A"}

    module: int | None
    manufacturer: str | None = None
    model: str | None = None
    board_version: str | None = None
    main_software_version: str | None = None
    software_version: str | None = None
    boot_version: str | None = None
    comm_version: str | None = None
    release_date: str | None = None
    serial: str | None = None
    specification: str | None = None
    cell_count: int | None = None
    discharge_current_limit: float | None = None
    charge_current_limit: float | None = None
    console_baud: int | None = None
    epon_baud: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ClockTime:
    """`time`: the module's clock (`YYYY-MM-DD HH:MM:SS`, no time zone) and the clock chip it names."""

    time: str
    clock: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ConsoleText:
    """The answer of a command with no typed result (`help`, `log`, …): its lines as sent."""

    command: str
    lines: tuple[str, ...]


ConsoleResult = (
    StackSummary
    | SystemSummary
    | CellTable
    | SohTable
    | ModuleDetail
    | Statistics
    | DeviceInfo
    | ClockTime
    | ConsoleText
)
