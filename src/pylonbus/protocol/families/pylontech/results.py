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
    """Protection flags of an alarm reply (status 1)."""

    MODULE_OVER_VOLTAGE = 0x01
    CELL_UNDER_VOLTAGE = 0x02
    CHARGE_OVER_CURRENT = 0x04
    DISCHARGE_OVER_CURRENT = 0x10
    DISCHARGE_OVER_TEMPERATURE = 0x20
    CHARGE_OVER_TEMPERATURE = 0x40
    MODULE_UNDER_VOLTAGE = 0x80


class Status2(IntFlag):
    """MOSFET and power-source flags of an alarm reply (status 2)."""

    PRE_MOSFET = 0x01
    CHARGE_MOSFET = 0x02
    DISCHARGE_MOSFET = 0x04
    USING_BATTERY_POWER = 0x08


class Status3(IntFlag):
    """Buzzer, full charge, heater and effective-current flags of an alarm reply (status 3)."""

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
    """Voltage of each cell in V, cell 1 first."""
    temperatures: tuple[float, ...]
    """Temperatures in °C: the BMS board's first, then the cell groups' (and, on some models, the MOSFET's)."""
    current: float
    """Current in A, signed: positive while charging, negative while discharging."""
    voltage: float
    """Module voltage in V."""
    remaining_capacity: float
    """Remaining capacity in Ah."""
    user_defined_items: int
    """Count of user-defined items the module sends (2, or 4 when capacities take 3 bytes)."""
    total_capacity: float
    """Full-charge capacity in Ah."""
    cycles: int
    """Charge cycles counted by the module."""

    @property
    def bms_temperature(self) -> float | None:
        """Temperature of the BMS board in °C, None if the module sends no temperature."""
        return self.temperatures[0] if self.temperatures else None

    @property
    def cell_temperatures(self) -> tuple[float, ...]:
        """Temperatures in °C after the BMS board's: cells 1–4, 5–8, 9–12, 13–16 and, on some models, MOSFET."""
        return self.temperatures[1:]


@dataclass(slots=True)
class AnalogData(PackAnalog):
    """0x42 reply of one module."""

    info_flag: int = 0
    """INFOFLAG byte of the reply (protocol bookkeeping)."""
    command_value: int = 0
    """The address the module echoes (ADR, or ADR without the group nibble)."""


@dataclass(slots=True)
class SystemAnalogData:
    """0x42 fan-out reply (INFO 0xFF): every pack of the group in one frame."""

    info_flag: int
    """INFOFLAG byte of the reply."""
    modules: tuple[PackAnalog, ...]
    """The analog values of each pack, module 1 first."""


@dataclass(slots=True)
class PackAlarm(pack.PackAlarm):
    """Alarm states of one pack."""

    cell_states: tuple[AlarmState, ...]
    """State of each cell's voltage, cell 1 first (`AlarmState`: normal, below or above its limit, other)."""
    temperature_states: tuple[AlarmState, ...]
    """State of each temperature, in the order of `PackAnalog.temperatures`."""
    charge_current_state: AlarmState
    """State of the charge current."""
    module_voltage_state: AlarmState
    """State of the module voltage."""
    discharge_current_state: AlarmState
    """State of the discharge current."""
    status1: Status1
    """Protection flags (`Status1`: over/under voltage, over-current, over-temperature)."""
    status2: Status2
    """MOSFET and power-source flags (`Status2`)."""
    status3: Status3
    """Buzzer, full-charge, heater and effective-current flags (`Status3`)."""
    status4: int
    """Cell error bits, cells 1-8 (see `cell_errors`)."""
    status5: int
    """Cell error bits, cells 9-16 (see `cell_errors`)."""

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
    """DATAFLAG byte of the reply (protocol bookkeeping)."""
    command_value: int = 0
    """The address the module echoes."""
    extra: bytes = b""
    """Bytes after status 5: the one byte US2000C and US3000C firmware appends, else empty."""


@dataclass(slots=True)
class SystemAlarmInfo:
    """0x44 fan-out reply (INFO 0xFF)."""

    data_flag: int
    """DATAFLAG byte of the reply."""
    modules: tuple[PackAlarm, ...]
    """The alarm states of each pack, module 1 first."""


@dataclass(slots=True)
class SystemParameters:
    """0x47: the limits a module protects itself with."""

    info_flag: int
    """INFOFLAG byte of the reply."""
    cell_high_voltage_limit: float
    """Cell voltage above which the module raises an alarm, in V."""
    cell_low_voltage_limit: float
    """Cell voltage below which the module raises an alarm, in V."""
    cell_under_voltage_limit: float
    """Cell voltage at which the module protects itself, in V."""
    charge_high_temperature_limit: float
    """Highest temperature for charging, in °C."""
    charge_low_temperature_limit: float
    """Lowest temperature for charging, in °C."""
    charge_current_limit: float
    """Highest charge current, in A."""
    module_high_voltage_limit: float
    """Module voltage above which the module raises an alarm, in V."""
    module_low_voltage_limit: float
    """Module voltage below which the module raises an alarm, in V."""
    module_under_voltage_limit: float
    """Module voltage at which the module protects itself, in V."""
    discharge_high_temperature_limit: float
    """Highest temperature for discharging, in °C."""
    discharge_low_temperature_limit: float
    """Lowest temperature for discharging, in °C."""
    discharge_current_limit: float
    """Highest discharge current, in A (signed: negative)."""


@dataclass(slots=True)
class ManufacturerInfo:
    """0x51: model name, software version and manufacturer."""

    model: str
    """Model name as the module sends it (a US2000B says US2KBPL)."""
    software_version: tuple[int, ...]
    """Software version, one number a part (see `software_version_text`)."""
    manufacturer: str
    """Manufacturer name."""

    @property
    def software_version_text(self) -> str:
        """The software version as text, e.g. "1.4"."""
        return ".".join(map(str, self.software_version))

    @property
    def identity(self) -> dict[str, str]:
        """What this reply says of who the module is, as `readings.Identity` fields."""
        return {"model": self.model, "manufacturer": self.manufacturer}


@dataclass(slots=True)
class ChargeDischargeInfo:
    """0x92 (read) and 0x94 (set): the limits the module asks the inverter to respect."""

    command_value: int
    """The address the module echoes."""
    charge_voltage_limit: float
    """Highest charge voltage the module asks for, in V."""
    discharge_voltage_limit: float
    """Lowest discharge voltage the module asks for, in V."""
    charge_current_limit: float
    """Highest charge current the module asks for, in A."""
    discharge_current_limit: float
    """Highest discharge current the module asks for, in A (signed: negative)."""
    status: ChargeStatus
    """Charge/discharge requests (`ChargeStatus`: charge and discharge enabled, charge immediately, full charge)."""

    @property
    def charge_enabled(self) -> bool:
        """Whether the module allows charging."""
        return ChargeStatus.CHARGE_ENABLE in self.status

    @property
    def discharge_enabled(self) -> bool:
        """Whether the module allows discharging."""
        return ChargeStatus.DISCHARGE_ENABLE in self.status


@dataclass(slots=True)
class ChargeDischargeSetting:
    """INFO of a 0x94 request: limits to impose (repeat within 10 s or the module reverts)."""

    command_value: int
    """The address of the module the setting is for (ADR without the group nibble)."""
    charge_voltage_limit: float
    """Highest charge voltage, in V."""
    discharge_voltage_limit: float
    """Lowest discharge voltage, in V."""
    charge_current_limit: float
    """Highest charge current, in A."""
    discharge_current_limit: float
    """Highest discharge current, in A (signed: negative)."""


@dataclass(slots=True)
class SerialNumber:
    """0x93: the module's serial number."""

    command_value: int
    """The address the module echoes."""
    serial: str
    """The serial number, 16 characters as sent."""

    @property
    def identity(self) -> dict[str, str]:
        """What this reply says of who the module is, as `readings.Identity` fields."""
        return {"serial": self.serial}


@dataclass(slots=True)
class FirmwareInfo:
    """0x96: manufacture version (2 bytes) and main-line version (3 bytes)."""

    command_value: int
    """The address the module echoes."""
    manufacture_version: tuple[int, ...]
    """Manufacture version, one number a part."""
    mainline_version: tuple[int, ...]
    """Main-line version, one number a part (see `mainline_version_text`)."""

    @property
    def manufacture_version_text(self) -> str:
        """The manufacture version as text, e.g. "1.0"."""
        return ".".join(map(str, self.manufacture_version))

    @property
    def mainline_version_text(self) -> str:
        """The main-line version as text, e.g. "2.0.1"."""
        return ".".join(map(str, self.mainline_version))

    @property
    def identity(self) -> dict[str, str]:
        """What this reply says of who the module is, as `readings.Identity` fields."""
        return {"firmware": self.mainline_version_text}


@dataclass(slots=True)
class SystemAnalog:
    """0x61 (protocol V3.5): totals and extremes of the whole system, with the module holding each extreme."""

    voltage: float
    """System voltage in V."""
    current: float
    """System current in A, positive while charging."""
    soc: int
    """System state of charge in %."""
    average_cycles: int
    """Mean charge cycles of the modules."""
    max_cycles: int
    """Most charge cycles of a module."""
    average_soh: int
    """Mean state of health of the modules, in %."""
    min_soh: int
    """Lowest state of health of a module, in %."""
    max_cell_voltage: float
    """Highest cell voltage, in V."""
    max_cell_voltage_module: int
    """The module holding the highest cell voltage."""
    min_cell_voltage: float
    """Lowest cell voltage, in V."""
    min_cell_voltage_module: int
    """The module holding the lowest cell voltage."""
    average_cell_temperature: float
    """Mean cell temperature, in °C."""
    max_cell_temperature: float
    """Highest cell temperature, in °C."""
    max_cell_temperature_module: int
    """The module holding the highest cell temperature."""
    min_cell_temperature: float
    """Lowest cell temperature, in °C."""
    min_cell_temperature_module: int
    """The module holding the lowest cell temperature."""
    average_mosfet_temperature: float
    """Mean MOSFET temperature, in °C."""
    max_mosfet_temperature: float
    """Highest MOSFET temperature, in °C."""
    max_mosfet_temperature_module: int
    """The module holding the highest MOSFET temperature."""
    min_mosfet_temperature: float
    """Lowest MOSFET temperature, in °C."""
    min_mosfet_temperature_module: int
    """The module holding the lowest MOSFET temperature."""
    average_bms_temperature: float
    """Mean BMS board temperature, in °C."""
    max_bms_temperature: float
    """Highest BMS board temperature, in °C."""
    max_bms_temperature_module: int
    """The module holding the highest BMS board temperature."""
    min_bms_temperature: float
    """Lowest BMS board temperature, in °C."""
    min_bms_temperature_module: int
    """The module holding the lowest BMS board temperature."""


@dataclass(slots=True)
class Acknowledgement:
    """Reply to a command that returns no data (0x94 set, 0x95 turn off)."""

    info: bytes = b""
    """INFO of the reply (normally empty)."""


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
