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


@dataclass(slots=True)
class ModuleSummary:
    """One row of `pwr`: a module of the stack (`absent` when its address is empty)."""

    UNITS: ClassVar[dict[str, str]] = (
        {"voltage": "V", "current": "A", "soc": "%"}
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
    """`pwr`: every address of the stack, and the rows that could not be read (with the reason)."""

    modules: tuple[ModuleSummary, ...]
    unreadable: tuple[str, ...] = ()

    @property
    def present(self) -> tuple[int, ...]:
        return tuple(m.module for m in self.modules if not m.absent)


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


ConsoleResult = StackSummary | CellTable | SohTable | ModuleDetail | Statistics | DeviceInfo | ClockTime | ConsoleText
