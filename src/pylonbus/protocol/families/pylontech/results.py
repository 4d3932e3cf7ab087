"""Typed results of every Pylontech command, in V, A, °C, Ah, % and counts; current is signed, charge positive.

The result classes are slotted but not frozen: a frozen dataclass sets each field through
`object.__setattr__`, which made building a 0x42 result five times slower (1.0 µs against 0.2 µs).
Several results share runs of fields (limits, versions as tuples with a text form): each is the field list of
its command's reply, kept whole where it is read rather than inherited across commands that merely look alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from ... import pack
from ...family import ProtocolVersion
from ...fields import AlarmState, flag_names


class Status1(IntFlag):
    """Protection flags of an alarm reply."""

    MODULE_OVER_VOLTAGE = 0x01
    CELL_UNDER_VOLTAGE = 0x02
    CHARGE_OVER_CURRENT = 0x04
    DISCHARGE_OVER_CURRENT = 0x10
    DISCHARGE_OVER_TEMPERATURE = 0x20
    CHARGE_OVER_TEMPERATURE = 0x40
    MODULE_UNDER_VOLTAGE = 0x80


class Status2(IntFlag):
    PRE_MOSFET = 0x01
    CHARGE_MOSFET = 0x02
    DISCHARGE_MOSFET = 0x04
    USING_BATTERY_POWER = 0x08


class Status3(IntFlag):
    BUZZER = 0x01
    FULLY_CHARGED = 0x08
    HEATER = 0x20
    EFFECTIVE_DISCHARGE_CURRENT = 0x40
    EFFECTIVE_CHARGE_CURRENT = 0x80


class ChargeStatus(IntFlag):
    """Status byte of the charge/discharge management reply (0x92)."""

    FULL_CHARGE_REQUEST = 0x08
    CHARGE_IMMEDIATELY_2 = 0x10
    CHARGE_IMMEDIATELY_1 = 0x20
    DISCHARGE_ENABLE = 0x40
    CHARGE_ENABLE = 0x80


@dataclass(slots=True)
class PackAnalog(pack.PackAnalog):
    """Analog values of one pack (module)."""

    cell_voltages: tuple[float, ...]
    temperatures: tuple[float, ...]
    current: float
    voltage: float
    remaining_capacity: float
    user_defined_items: int
    total_capacity: float
    cycles: int

    @property
    def bms_temperature(self) -> float | None:
        return self.temperatures[0] if self.temperatures else None

    @property
    def cell_temperatures(self) -> tuple[float, ...]:
        """Temperatures after the BMS board's: cells 1–4, 5–8, 9–12, 13–16 and, on some models, MOSFET."""
        return self.temperatures[1:]


@dataclass(slots=True)
class AnalogData(PackAnalog):
    """0x42 reply of one module."""

    info_flag: int = 0
    command_value: int = 0


@dataclass(slots=True)
class SystemAnalogData:
    """0x42 fan-out reply (INFO 0xFF): every pack of the group in one frame."""

    info_flag: int
    modules: tuple[PackAnalog, ...]


@dataclass(slots=True)
class PackAlarm(pack.PackAlarm):
    """Alarm states of one pack."""

    cell_states: tuple[AlarmState, ...]
    temperature_states: tuple[AlarmState, ...]
    charge_current_state: AlarmState
    module_voltage_state: AlarmState
    discharge_current_state: AlarmState
    status1: Status1
    status2: Status2
    status3: Status3
    status4: int
    status5: int

    @property
    def cell_errors(self) -> tuple[int, ...]:
        """Numbers (from 1) of the cells flagged in status 4 and 5 (> 4.2 V or < 1 V)."""
        bits = self.status4 | self.status5 << 8
        return tuple(cell + 1 for cell in range(16) if bits >> cell & 1)

    @property
    def alarms(self) -> list[str]:
        """Every abnormal state and protection flag, worded for a person; empty when all is well."""
        found = [f"cell {n} {s.name}" for n, s in enumerate(self.cell_states, 1) if s]
        found += [f"temperature {n} {s.name}" for n, s in enumerate(self.temperature_states, 1) if s]
        for label in ("charge_current", "module_voltage", "discharge_current"):
            state = getattr(self, label + "_state")
            if state:
                found.append(f"{label.replace('_', ' ')} {state.name}")
        found += flag_names(self.status1)
        found += [f"cell {n} error" for n in self.cell_errors]
        return found


@dataclass(slots=True)
class AlarmInfo(PackAlarm):
    """0x44 reply of one module. `extra` holds bytes after status 5 (US2000C/US3000C send one)."""

    data_flag: int = 0
    command_value: int = 0
    extra: bytes = b""


@dataclass(slots=True)
class SystemAlarmInfo:
    """0x44 fan-out reply (INFO 0xFF)."""

    data_flag: int
    modules: tuple[PackAlarm, ...]


@dataclass(slots=True)
class SystemParameters:
    """0x47: the limits a module protects itself with."""

    info_flag: int
    cell_high_voltage_limit: float
    cell_low_voltage_limit: float
    cell_under_voltage_limit: float
    charge_high_temperature_limit: float
    charge_low_temperature_limit: float
    charge_current_limit: float
    module_high_voltage_limit: float
    module_low_voltage_limit: float
    module_under_voltage_limit: float
    discharge_high_temperature_limit: float
    discharge_low_temperature_limit: float
    discharge_current_limit: float


@dataclass(slots=True)
class ManufacturerInfo:
    """0x51: model name, software version and manufacturer."""

    model: str
    software_version: tuple[int, ...]
    manufacturer: str

    @property
    def software_version_text(self) -> str:
        return ".".join(map(str, self.software_version))

    @property
    def identity(self) -> dict[str, str]:
        return {"model": self.model, "manufacturer": self.manufacturer}


@dataclass(slots=True)
class ChargeDischargeInfo:
    """0x92 (read) and 0x94 (set): the limits the module asks the inverter to respect."""

    command_value: int
    charge_voltage_limit: float
    discharge_voltage_limit: float
    charge_current_limit: float
    discharge_current_limit: float
    status: ChargeStatus

    @property
    def charge_enabled(self) -> bool:
        return ChargeStatus.CHARGE_ENABLE in self.status

    @property
    def discharge_enabled(self) -> bool:
        return ChargeStatus.DISCHARGE_ENABLE in self.status


@dataclass(slots=True)
class ChargeDischargeSetting:
    """INFO of a 0x94 request: limits to impose (repeat within 10 s or the module reverts)."""

    command_value: int
    charge_voltage_limit: float
    discharge_voltage_limit: float
    charge_current_limit: float
    discharge_current_limit: float


@dataclass(slots=True)
class SerialNumber:
    """0x93: the module's serial number."""

    command_value: int
    serial: str

    @property
    def identity(self) -> dict[str, str]:
        return {"serial": self.serial}


@dataclass(slots=True)
class FirmwareInfo:
    """0x96: manufacture version (2 bytes) and main-line version (3 bytes)."""

    command_value: int
    manufacture_version: tuple[int, ...]
    mainline_version: tuple[int, ...]

    @property
    def manufacture_version_text(self) -> str:
        return ".".join(map(str, self.manufacture_version))

    @property
    def mainline_version_text(self) -> str:
        return ".".join(map(str, self.mainline_version))

    @property
    def identity(self) -> dict[str, str]:
        return {"firmware": self.mainline_version_text}


@dataclass(slots=True)
class SystemAnalog:
    """0x61 (protocol V3.5): totals and extremes of the whole system, with the module holding each extreme."""

    voltage: float
    current: float
    soc: int
    average_cycles: int
    max_cycles: int
    average_soh: int
    min_soh: int
    max_cell_voltage: float
    max_cell_voltage_module: int
    min_cell_voltage: float
    min_cell_voltage_module: int
    average_cell_temperature: float
    max_cell_temperature: float
    max_cell_temperature_module: int
    min_cell_temperature: float
    min_cell_temperature_module: int
    average_mosfet_temperature: float
    max_mosfet_temperature: float
    max_mosfet_temperature_module: int
    min_mosfet_temperature: float
    min_mosfet_temperature_module: int
    average_bms_temperature: float
    max_bms_temperature: float
    max_bms_temperature_module: int
    min_bms_temperature: float
    min_bms_temperature_module: int


@dataclass(slots=True)
class Acknowledgement:
    """Reply to a command that returns no data (0x94 set, 0x95 turn off)."""

    info: bytes = b""


Result = (
    ProtocolVersion
    | AnalogData
    | SystemAnalogData
    | AlarmInfo
    | SystemAlarmInfo
    | SystemParameters
    | ManufacturerInfo
    | ChargeDischargeInfo
    | SerialNumber
    | FirmwareInfo
    | SystemAnalog
    | Acknowledgement
)
