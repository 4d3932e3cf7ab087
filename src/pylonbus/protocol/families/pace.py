"""PACE BMS, protocol 2.5 (VER 0x25, CID1 0x46): Jakiper, SOK, Gobel, Easun, Tewaycell and other rack packs.

Facts: nkinnan/esphome-pace-bms `pace_bms_protocol_v25.*` and its unit test (values asserted, @ 2ba4bc65 and
077b1046), Tertiush/bmspace, dbus-serialbattery `bms/pace.py`; frames in tests/vectors/bms/frames.json. Requests
name the pack in INFO (`~25014642E00201FD30`); INFO 0xFF asks the master for every pack. Replies carry a pack
count, then per pack the cells in mV, sensors in 0.1 K from 2730, current in 10 mA, pack voltage in **mV**."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import ClassVar

from .. import family as roles
from .. import pack
from ..family import Family, ProtocolVersion, numbered
from ..fields import (
    CELL_COUNT_RANGE,
    CELL_VOLTAGE_RANGE,
    TEMPERATURE_RANGE,
    centiamp_hours,
    centiamps,
    kelvin_tenths,
    millivolts,
    state,
)
from ..fields import AlarmState as State
from ..frame import CID1_BATTERY
from ..layout import Array, Int, Layout, Repeat, Rest, Tail, Text

MAX_MODULE = 16  # bus ids 1..16 (DIP switches); a master answers INFO 0xFF for all of them
address, locate = numbered("PACE", 1, MAX_MODULE)


class Command(IntEnum):
    ANALOG = 0x42
    ALARM = 0x44
    PROTOCOL_VERSION = 0x4F
    HISTORY = 0xA1  # one record of the log; the request INFO names the pack and the record (caller's `info`)
    HARDWARE_VERSION = 0xC1
    SERIAL_NUMBER = 0xC2


class Protection1(IntFlag):
    """Protection status 1 (nkinnan's `StatusInformation_Protection1Flags`)."""

    CELL_OVER_VOLTAGE = 0x01
    CELL_UNDER_VOLTAGE = 0x02
    PACK_OVER_VOLTAGE = 0x04
    PACK_UNDER_VOLTAGE = 0x08
    CHARGE_OVER_CURRENT = 0x10
    DISCHARGE_OVER_CURRENT = 0x20
    SHORT_CIRCUIT = 0x40


class Protection2(IntFlag):
    CHARGE_OVER_TEMPERATURE = 0x01
    DISCHARGE_OVER_TEMPERATURE = 0x02
    CHARGE_UNDER_TEMPERATURE = 0x04
    DISCHARGE_UNDER_TEMPERATURE = 0x08
    MOSFET_OVER_TEMPERATURE = 0x10
    ENVIRONMENT_OVER_TEMPERATURE = 0x20
    ENVIRONMENT_UNDER_TEMPERATURE = 0x40
    FULLY_CHARGED = 0x80


class System(IntFlag):
    """System status: what the pack is doing, not alarms."""

    CHARGE_LIMITER_OFF = 0x01
    CHARGE_MOSFET = 0x02
    DISCHARGE_MOSFET = 0x04
    DISCHARGING = 0x08
    TERMINALS_REVERSED = 0x10
    CHARGING = 0x20
    HEARTBEAT = 0x80


class Configuration(IntFlag):
    BUZZER_ALARM = 0x01
    CHARGE_MOSFET_OFF = 0x02
    DISCHARGE_MOSFET_OFF = 0x04
    CHARGE_LIMITER_LOW_GEAR = 0x08
    CHARGE_LIMITER = 0x10
    LED_ALARM = 0x20


class Fault(IntFlag):
    CHARGE_MOSFET_FAULT = 0x01
    DISCHARGE_MOSFET_FAULT = 0x02
    NTC_FAULT = 0x04
    CELL_FAULT = 0x10
    SAMPLING_FAULT = 0x20


class Warning1(IntFlag):
    CELL_HIGH_VOLTAGE = 0x01
    CELL_LOW_VOLTAGE = 0x02
    PACK_HIGH_VOLTAGE = 0x04
    PACK_LOW_VOLTAGE = 0x08
    CHARGE_CURRENT_HIGH = 0x10
    DISCHARGE_CURRENT_HIGH = 0x20


class Warning2(IntFlag):
    CHARGE_TEMPERATURE_HIGH = 0x01
    DISCHARGE_TEMPERATURE_HIGH = 0x02
    CHARGE_TEMPERATURE_LOW = 0x04
    DISCHARGE_TEMPERATURE_LOW = 0x08
    ENVIRONMENT_TEMPERATURE_HIGH = 0x10
    ENVIRONMENT_TEMPERATURE_LOW = 0x20
    MOSFET_TEMPERATURE_HIGH = 0x40
    LOW_POWER = 0x80


@dataclass(slots=True)
class PackAnalog(pack.PackValues):
    """0x42 values of one pack. Sensors: the cells', then MOSFET, then environment (nkinnan's struct comment).

    What follows the design capacity depends on the user-defined count: nothing for 3 (nkinnan's pack), one byte
    for 2 (bmspace's Jakiper, equal to the SOC in %), 14 bytes for 9 (Gobel). No source states the meaning of
    the last, so `extra` keeps those bytes raw."""

    ENVIRONMENT: ClassVar[int] = -1
    MOSFET: ClassVar[int] = -2

    user_defined_items: int
    design_capacity: float = field(metadata=pack.quantity("Ah", "design capacity"))
    extra: bytes


@dataclass(slots=True)
class AnalogData(PackAnalog):
    """0x42 reply of one pack."""

    data_flag: int = 0
    pack_count: int = 1


@dataclass(slots=True)
class SystemAnalogData:
    """0x42 reply to INFO 0xFF: every pack of the bus."""

    data_flag: int
    modules: tuple[PackAnalog, ...]


@dataclass(slots=True)
class PackAlarm(pack.PackAlarm):
    """0x44 states of one pack (nkinnan's field list and flags)."""

    ALARM_FIELDS: ClassVar[tuple[str, ...]] = (
        "charge_current_state",
        "voltage_state",
        "discharge_current_state",
        "protection1",
        "protection2",
        "fault",
        "warning1",
        "warning2",
    )
    QUIET_FLAGS: ClassVar[frozenset[str]] = frozenset({"FULLY_CHARGED"})

    cell_states: tuple[State, ...]
    temperature_states: tuple[State, ...]
    charge_current_state: State
    voltage_state: State
    discharge_current_state: State
    protection1: Protection1
    protection2: Protection2
    system: System
    configuration: Configuration
    fault: Fault
    balancing_bits: int  # one bit a cell, cell 1 lowest
    warning1: Warning1
    warning2: Warning2

    @property
    def balancing(self) -> tuple[int, ...]:
        """Numbers (from 1) of the cells being balanced."""
        return tuple(cell + 1 for cell in range(len(self.cell_states)) if self.balancing_bits >> cell & 1)


@dataclass(slots=True)
class AlarmInfo(PackAlarm):
    """0x44 reply of one pack; `extra` holds the byte some (TDT/Gobel) firmwares add."""

    data_flag: int = 0
    pack_count: int = 1
    extra: bytes = b""


@dataclass(slots=True)
class SystemAlarmInfo:
    data_flag: int
    modules: tuple[PackAlarm, ...]


@dataclass(slots=True)
class HistoryRecord:
    """0xA1: one log record. The 12 bytes after the voltage and capacities are alarm, protection and fault types
    by nkinnan's list, in an order no source gives: kept raw."""

    timestamp: tuple[int, ...]  # year - 2000, month, day, hour, minute, second
    cell_voltages: tuple[float, ...]
    temperatures: tuple[float, ...]
    current: float
    voltage: float
    remaining_capacity: float
    total_capacity: float
    extra: bytes

    @property
    def timestamp_text(self) -> str:
        year, month, day, hour, minute, second = self.timestamp
        return f"{2000 + year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"


@dataclass(slots=True)
class HardwareVersion:
    """0xC1: the version text, e.g. "P16S100A-1812-1.00" (model, date, version)."""

    version: str

    @property
    def identity(self) -> dict[str, str]:
        return {"model": self.version}


@dataclass(slots=True)
class SerialNumber:
    serial: str

    @property
    def identity(self) -> dict[str, str]:
        return {"serial": self.serial}


Result = (
    ProtocolVersion
    | AnalogData
    | SystemAnalogData
    | AlarmInfo
    | SystemAlarmInfo
    | HistoryRecord
    | HardwareVersion
    | SerialNumber
)

_TEMPERATURE = kelvin_tenths("temperature", TEMPERATURE_RANGE, zero=2730)
_CELLS = Array("cell_voltages", millivolts("cell", CELL_VOLTAGE_RANGE), counts=CELL_COUNT_RANGE)
# Current is two's complement: 0xFF1F is -2.25 A, as PbmsTools shows for nkinnan's pack (his unit test). The
# `x - 65535` of dbus-serialbattery and bmspace makes every discharge 0.01 A too small.
_PACK_ANALOG = (
    _CELLS,
    Array("temperatures", _TEMPERATURE, counts=(3, 16)),
    centiamps("current"),
    millivolts("voltage"),
    centiamp_hours("remaining_capacity"),
    Int("user_defined_items"),
    centiamp_hours("total_capacity"),
    Int("cycles", 2),
    centiamp_hours("design_capacity"),
    Tail("extra", "user_defined_items", {2: 1, 3: 0, 9: 14}),
)
_PACK_ALARM = (
    Array("cell_states", state("cell"), counts=CELL_COUNT_RANGE),
    Array("temperature_states", state("temperature")),
    state("charge_current_state"),
    state("voltage_state"),
    state("discharge_current_state"),
    Int("protection1", convert=Protection1),
    Int("protection2", convert=Protection2),
    Int("system", convert=System),
    Int("configuration", convert=Configuration),
    Int("fault", convert=Fault),
    Int("balancing_bits", 2),
    Int("warning1", convert=Warning1),
    Int("warning2", convert=Warning2),
)
_ONE_PACK = Int("pack_count", plausible=(1, 1))  # a reply to one pack's bus id counts one pack

ANALOG = Layout(AnalogData, Int("data_flag"), _ONE_PACK, *_PACK_ANALOG)
SYSTEM_ANALOG_DATA = Layout(SystemAnalogData, Int("data_flag"), Repeat("modules", Layout(PackAnalog, *_PACK_ANALOG)))
ALARM = Layout(AlarmInfo, Int("data_flag"), _ONE_PACK, *_PACK_ALARM, Rest("extra", at_most=1))
SYSTEM_ALARM = Layout(SystemAlarmInfo, Int("data_flag"), Repeat("modules", Layout(PackAlarm, *_PACK_ALARM)))
HISTORY = Layout(
    HistoryRecord,
    Array("timestamp", Int("part"), count=6),
    _CELLS,
    Array("temperatures", _TEMPERATURE, counts=(3, 16)),
    centiamps("current"),
    millivolts("voltage"),
    centiamp_hours("remaining_capacity"),
    centiamp_hours("total_capacity"),
    Rest("extra", at_most=12),
)

_FRAME = 18
_PACK = 1 + 16 * 2 + 1 + 6 * 2 + 2 + 2 + 2 + 1 + 2 + 2 + 2 + 14  # 16 cells, 6 sensors, the longest tail
_PACK_STATES = 1 + 16 + 1 + 6 + 3 + 9

FAMILY: Family[Command, Result] = Family(
    name="pace",
    title="PACE",
    ver=0x25,
    cid1=CID1_BATTERY,
    commands=Command,
    replies={
        Command.ANALOG: ANALOG,
        Command.ALARM: ALARM,
        Command.HISTORY: HISTORY,
        Command.HARDWARE_VERSION: Layout(HardwareVersion, Text("version", None, pad=b" ")),
        Command.SERIAL_NUMBER: Layout(SerialNumber, Text("serial", None, pad=b" ")),
    },
    fanouts={Command.ANALOG: SYSTEM_ANALOG_DATA, Command.ALARM: SYSTEM_ALARM},
    addressed=frozenset({Command.ANALOG, Command.ALARM}),
    writes=frozenset(),
    address=address,
    info_addresses=lambda adr: (adr,),
    max_module=MAX_MODULE,
    roles={
        roles.ANALOG: Command.ANALOG,
        roles.ALARM: Command.ALARM,
        roles.VERSION: Command.PROTOCOL_VERSION,
        roles.IDENTITY: Command.HARDWARE_VERSION,
        roles.SERIAL: Command.SERIAL_NUMBER,
    },
    reply_bytes={
        Command.PROTOCOL_VERSION: _FRAME,
        Command.ANALOG: _FRAME + 2 * (2 + _PACK),
        Command.ALARM: _FRAME + 2 * (3 + _PACK_STATES),
        Command.HISTORY: _FRAME + 2 * (6 + 1 + 32 + 1 + 12 + 8 + 12),
        Command.HARDWARE_VERSION: _FRAME + 2 * 40,
        Command.SERIAL_NUMBER: _FRAME + 2 * 40,
    },
    pack_bytes={Command.ANALOG: 2 * _PACK, Command.ALARM: 2 * _PACK_STATES},
    locate=locate,
)
