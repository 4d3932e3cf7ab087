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
    unit of the tower, numbered by its `Index`). A field is None where the firmware prints no such column, or
    `-` in it."""

    UNITS: ClassVar[dict[str, str]] = (
        {"voltage": "V", "current": "A"}
        | _SHARES
        | dict.fromkeys(_TEMPERATURES, "°C")
        | dict.fromkeys(_CELL_VOLTAGES, "V")
    )

    module: int
    """The module (address) the row or reply is about, as the console numbers it."""
    absent: bool = False
    """True where `pwr` prints `Absent`: no module at this address (every other field None)."""
    voltage: float | None = None
    """Module (Force H2: unit) voltage in V."""
    current: float | None = None
    """Current in A, signed: positive while charging."""
    temperature: float | None = None
    """Temperature in °C."""
    min_temperature: float | None = None
    """Lowest cell temperature in °C (`Tlow`, Force H2 `BTlow`)."""
    min_temperature_index: int | None = None
    """The sensor at the lowest temperature (`Tlow.Id`), as the console numbers it."""
    max_temperature: float | None = None
    """Highest cell temperature in °C (`Thigh`, Force H2 `BThigh`)."""
    max_temperature_index: int | None = None
    """The sensor at the highest temperature (`Thigh.Id`)."""
    min_cell_voltage: float | None = None
    """Lowest cell voltage in V (`Vlow`, Force H2 `BVlow`)."""
    min_cell_voltage_index: int | None = None
    """The cell at the lowest voltage (`Vlow.Id`), as the console numbers it."""
    max_cell_voltage: float | None = None
    """Highest cell voltage in V (`Vhigh`, Force H2 `BVhigh`)."""
    max_cell_voltage_index: int | None = None
    """The cell at the highest voltage (`Vhigh.Id`)."""
    base_state: str | None = None
    """`Charge`, `Dischg`, `Idle`, `Balance`, `SysError`… as printed (`Base.St`, `Base State`, `Basic Status`)."""
    voltage_state: str | None = None
    """Voltage state as printed (`Normal`, `Low`…)."""
    current_state: str | None = None
    """Current state as printed."""
    temperature_state: str | None = None
    """Temperature state as printed."""
    soc: float | None = None
    """State of charge in % (may exceed 100 on some US3000A)."""
    remaining_capacity: float | None = None
    """Remaining capacity in Ah."""
    state_of_energy: float | None = None
    """Share of the energy left in % (the percentage before Force H2's `CoulombWH` value)."""
    remaining_energy: float | None = None
    """Remaining energy in Wh (Force H2 `CoulombWH`)."""
    time: str | None = None
    """The module's clock, `YYYY-MM-DD HH:MM:SS` (no time zone)."""
    battery_voltage_state: str | None = None
    """Battery voltage state as printed (`B.V.St`)."""
    battery_temperature_state: str | None = None
    """Battery temperature state as printed (`B.T.St`)."""
    mosfet_temperature: float | None = None
    """MOSFET temperature in °C (`MosTempr`); None where the module has no such sensor."""
    mosfet_temperature_state: str | None = None
    """MOSFET temperature state as printed (`M.T.St`)."""
    system_alarm_state: str | None = None
    """System alarm state as printed (`SysAlarm.St`)."""
    serial: str | None = None
    """The module's serial (barcode) as printed."""
    model: str | None = None
    """The model as printed (`DevType`, `Device name`)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Columns (or lines) no description names, by their header text, as printed."""


@dataclass(slots=True)
class StackSummary:
    """`pwr`: every address of the stack (Force H2 `unit`: every unit of the tower), and the rows that could
    not be read (with the reason). `average_temperature` (°C): the line Force H2 prints before its table;
    `extra`: any other such line, by its label."""

    UNITS: ClassVar[dict[str, str]] = {"average_temperature": "°C"}

    modules: tuple[ModuleSummary, ...]
    """Every row, in the order printed."""
    unreadable: tuple[str, ...] = ()
    """Each row that could not be read, with the reason."""
    average_temperature: float | None = None
    """Average temperature in °C (Force H2 `AverageTempr`)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Lines before the table (Force H2) that no description names, by their label."""

    @property
    def present(self) -> tuple[int, ...]:
        """The modules (addresses) that are not `Absent`."""
        return tuple(m.module for m in self.modules if not m.absent)


@dataclass(slots=True)
class SystemSummary:
    """Force H2 `pwr`: the whole tower (its units in series) as one row, with the lines printed before it. A
    field is None where the firmware prints no such column, or `-` in it."""

    UNITS: ClassVar[dict[str, str]] = (
        dict.fromkeys(("voltage", "dc_voltage", "battery_voltage", "min_unit_voltage", "max_unit_voltage"), "V")
        | {"current": "A"}
        | _SHARES
        | dict.fromkeys((*_TEMPERATURES[:3], "average_temperature"), "°C")
        | dict.fromkeys(("min_unit_temperature", "max_unit_temperature"), "°C")
        | dict.fromkeys(_CELL_VOLTAGES, "V")
    )

    voltage: float | None = None
    """The tower's voltage in V."""
    dc_voltage: float | None = None
    """Voltage in V of the tower's `DC Volt` line."""
    battery_voltage: float | None = None
    """Voltage in V of the tower's `Bat Volt` line."""
    current: float | None = None
    """The tower's current in A, signed: positive while charging."""
    temperature: float | None = None
    """The tower's temperature in °C."""
    average_temperature: float | None = None
    """Average temperature in °C (Force H2 `AverageTempr`)."""
    min_temperature: float | None = None
    """Lowest cell temperature in °C (`Tlow`, Force H2 `BTlow`)."""
    max_temperature: float | None = None
    """Highest cell temperature in °C (`Thigh`, Force H2 `BThigh`)."""
    min_cell_voltage: float | None = None
    """Lowest cell voltage in V (`Vlow`, Force H2 `BVlow`)."""
    max_cell_voltage: float | None = None
    """Highest cell voltage in V (`Vhigh`, Force H2 `BVhigh`)."""
    min_unit_temperature: float | None = None
    """Lowest unit temperature in °C (`UTlow`)."""
    max_unit_temperature: float | None = None
    """Highest unit temperature in °C (`UThigh`)."""
    min_unit_voltage: float | None = None
    """Lowest unit voltage in V (`UVlow`)."""
    max_unit_voltage: float | None = None
    """Highest unit voltage in V (`UVhigh`)."""
    base_state: str | None = None
    """`Charge`, `Dischg`, `Idle`, `Balance`, `SysError`… as printed (`Base.St`, `Base State`, `Basic Status`)."""
    voltage_state: str | None = None
    """Voltage state as printed (`Normal`, `Low`…)."""
    current_state: str | None = None
    """Current state as printed."""
    temperature_state: str | None = None
    """Temperature state as printed."""
    soc: float | None = None
    """State of charge in % (may exceed 100 on some US3000A)."""
    remaining_capacity: float | None = None
    """Remaining capacity in Ah."""
    state_of_energy: float | None = None
    """Share of the energy left in % (the percentage before Force H2's `CoulombWH` value)."""
    remaining_energy: float | None = None
    """Remaining energy in Wh (Force H2 `CoulombWH`)."""
    time: str | None = None
    """The module's clock, `YYYY-MM-DD HH:MM:SS` (no time zone)."""
    battery_voltage_state: str | None = None
    """Battery voltage state as printed (`B.V.St`)."""
    battery_temperature_state: str | None = None
    """Battery temperature state as printed (`B.T.St`)."""
    unit_voltage_state: str | None = None
    """Unit voltage state as printed (`U.V.St`)."""
    unit_temperature_state: str | None = None
    """Unit temperature state as printed (`U.T.St`)."""
    error_code: int | None = None
    """The `Err Code` number (printed in hex)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Columns and lines before the table that no description names, by their header text."""
    unreadable: tuple[str, ...] = ()
    """Each row that could not be read, with the reason (a value its column cannot hold)."""


@dataclass(slots=True)
class Cell:
    """One row of `bat N`: a cell."""

    UNITS: ClassVar[dict[str, str]] = {"voltage": "V", "current": "A", "temperature": "°C"} | _SHARES

    cell: int
    """The cell, numbered from 0 as the console numbers it."""
    voltage: float | None = None
    """Cell voltage in V."""
    current: float | None = None
    """Current in A, signed: positive while charging (US2KBPL prints the module's for every cell)."""
    temperature: float | None = None
    """Temperature in °C of the cell's sensor (one sensor serves several cells)."""
    base_state: str | None = None
    """`Charge`, `Dischg`, `Idle`, `Balance`, `SysError`… as printed (`Base.St`, `Base State`, `Basic Status`)."""
    voltage_state: str | None = None
    """Voltage state as printed (`Normal`, `Low`…)."""
    current_state: str | None = None
    """Current state as printed."""
    temperature_state: str | None = None
    """Temperature state as printed."""
    charge_temperature_state: str | None = None
    """Charge temperature state as printed (`CTemp. State`, US3000D)."""
    discharge_temperature_state: str | None = None
    """Discharge temperature state as printed (`DTemp. State`, US3000D)."""
    soc: float | None = None
    """State of charge in % (may exceed 100 on some US3000A)."""
    remaining_capacity: float | None = None
    """Remaining capacity in Ah."""
    state_of_energy: float | None = None
    """Share of the energy left in % (the percentage before Force H2's `WH(mWH)` value)."""
    remaining_energy: float | None = None
    """Remaining energy in Wh (Force H2 `WH(mWH)`)."""
    balancing: bool | None = None
    """True while the BMS balances (bleeds) this cell (`BAL` Y); None where no BAL column is printed."""
    extra: dict[str, str] = field(default_factory=dict)
    """Columns (or lines) no description names, by their header text, as printed."""


@dataclass(slots=True)
class CellTable:
    """`bat N`: the cells of module `module` (None: the module the console is attached to)."""

    module: int | None
    """The module of `bat N`; None for `bat` alone (the module the console is attached to)."""
    cells: tuple[Cell, ...]
    """Every cell row, in the order printed."""
    unreadable: tuple[str, ...] = ()
    """Each row that could not be read, with the reason (a value its column cannot hold)."""
    extra: dict[str, str] = field(default_factory=dict)
    """The `Key : value` lines before the table, by their label, as printed (Force H2: `Time`, `A.Tempr`,
    `C.Curr`, `D.Curr`, `B.State`, `BalVolt`)."""

    @property
    def balancing_cells(self) -> tuple[int, ...]:
        """Cells (numbered as the console numbers them, from 0) being balanced."""
        return tuple(c.cell for c in self.cells if c.balancing)


@dataclass(slots=True)
class SohCell:
    """One row of `soh N`."""

    UNITS: ClassVar[dict[str, str]] = {"voltage": "V"}

    cell: int
    """The cell, numbered from 0 as the console numbers it."""
    voltage: float | None = None
    """Cell voltage in V."""
    soh_count: int | None = None
    """The SOH check's event count of the cell."""
    soh_status: str | None = None
    """The SOH check's status as printed (`Normal`, Pytes V5: 8 hex digits)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Columns (or lines) no description names, by their header text, as printed."""


@dataclass(slots=True)
class SohTable:
    """`soh N`: the state-of-health check of each cell of module `module`."""

    module: int | None
    """The module of `soh N` (its `Power  N` line); None when the reply names none."""
    cells: tuple[SohCell, ...]
    """Every cell row, in the order printed."""
    unreadable: tuple[str, ...] = ()
    """Each row that could not be read, with the reason (a value its column cannot hold)."""


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
    """The module of the `Power  N` heading."""
    voltage: float | None = None
    """Module voltage in V."""
    terminal_voltage: float | None = None
    """Voltage at the terminals in V (`B+B-.Volt`, US3000D)."""
    current: float | None = None
    """Current in A, signed: positive while charging."""
    temperature: float | None = None
    """Temperature in °C."""
    soc: float | None = None
    """State of charge in % (may exceed 100 on some US3000A)."""
    total_capacity: float | None = None
    """Design capacity in Ah (`Total Coulomb`; Pytes V5 prints mAs)."""
    real_capacity: float | None = None
    """Capacity the BMS measured in Ah (`Real Coulomb`, Pytes)."""
    max_voltage: float | None = None
    """Highest voltage seen in V (`Max Voltage`)."""
    charge_times: int | None = None
    """Count of charges (`Charge Times`)."""
    base_state: str | None = None
    """`Charge`, `Dischg`, `Idle`, `Balance`, `SysError`… as printed (`Base.St`, `Base State`, `Basic Status`)."""
    charge_seconds: int | None = None
    """Seconds in the present charge in s (`Charge Sec.`)."""
    discharge_seconds: int | None = None
    """Seconds in the present discharge in s (`Discharge Sec.`)."""
    voltage_state: str | None = None
    """Voltage state as printed (`Normal`, `Low`…)."""
    current_state: str | None = None
    """Current state as printed."""
    temperature_state: str | None = None
    """Temperature state as printed."""
    coulomb_state: str | None = None
    """Coulomb counter state as printed (`Full`…)."""
    soh_state: str | None = None
    """SOH state as printed."""
    heater_state: str | None = None
    """Heater state as printed (`ON`/`OFF`)."""
    protections: tuple[str, ...] = ()
    """The protections enabled (`Protect ENA`), as printed."""
    battery_events: int | None = None
    """`Bat Events` bits."""
    power_events: int | None = None
    """`Power Events` bits."""
    system_fault: int | None = None
    """`System Fault` bits."""
    extra: dict[str, str] = field(default_factory=dict)
    """Every other key by its label, as printed."""


@dataclass(slots=True)
class Statistics:
    """`stat N`: lifetime counters. `cycles` is `CYCLE Times`, `soh` the `SOH` line newer firmware prints;
    every other counter is kept by its label."""

    UNITS: ClassVar[dict[str, str]] = {"soh": "%"}

    module: int | None
    """The module of the `Device address  N` line."""
    cycles: int | None = None
    """Charge cycles (`CYCLE Times`)."""
    soh: float | None = None
    """State of health in % (`SOH` on newer firmware, `SOH Percent` on Force H2)."""
    counters: dict[str, int | str] = field(default_factory=dict)
    """Every other counter by its label, a whole number where it prints one (`counter_name` gives a snake_case name)."""


def counter_name(label: str) -> str:
    """A stable snake_case name of a `stat` label: `Bat OV Times` -> `bat_ov_times`, `HT@0.5C Cnt` ->
    `ht_0_5c_cnt`, `Soc 0~20% Secs` -> `soc_0_20_secs`."""
    return "_".join(re.findall(r"[a-z0-9]+", label.lower()))


@dataclass(slots=True)
class DeviceInfo:
    """`info N`: what the module says it is."""

    UNITS: ClassVar[dict[str, str]] = {"discharge_current_limit": "A", "charge_current_limit": "A"}

    module: int | None
    """The module of the `Device address` line."""
    manufacturer: str | None = None
    """`Pylon`, `PYTES`."""
    model: str | None = None
    """The model as printed (`DevType`, `Device name`)."""
    board_version: str | None = None
    """Board version as printed."""
    main_software_version: str | None = None
    """Main firmware version as printed (`B67.5.0`)."""
    software_version: str | None = None
    """Software version as printed (`V1.7`)."""
    boot_version: str | None = None
    """Boot loader version as printed."""
    comm_version: str | None = None
    """Communication protocol version as printed."""
    release_date: str | None = None
    """Firmware release date as printed (YY-MM-DD)."""
    serial: str | None = None
    """The module's serial (barcode) as printed."""
    specification: str | None = None
    """Rated voltage and capacity as printed (`48V/50AH`)."""
    cell_count: int | None = None
    """Count of cells."""
    discharge_current_limit: float | None = None
    """Largest discharge current in A (negative)."""
    charge_current_limit: float | None = None
    """Largest charge current in A."""
    console_baud: int | None = None
    """The console's rate in Bd."""
    epon_baud: int | None = None
    """The RS485 (EPON) port's rate in Bd."""
    extra: dict[str, str] = field(default_factory=dict)
    """Every other key by its label, as printed."""


@dataclass(slots=True)
class ClockTime:
    """`time`: the module's clock (`YYYY-MM-DD HH:MM:SS`, no time zone) and the clock chip it names."""

    time: str
    """The module's clock, `YYYY-MM-DD HH:MM:SS` (no time zone)."""
    clock: str = ""
    """The clock chip it names (`Ds3231`, `RTC`); empty when none is printed."""
    extra: dict[str, str] = field(default_factory=dict)
    """Other lines by their label (`Test result`)."""


@dataclass(slots=True)
class ConsoleText:
    """The answer of a command with no typed result (`help`, `log`, …): its lines as sent."""

    command: str
    """The command echoed."""
    lines: tuple[str, ...]
    """The lines of the answer, as sent (right-stripped)."""


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
