"""EG4 LifePower4 and Qualtech BMSs (VER 0x20, CID1 0x4A), on the ASCII frame of the Pylontech wire.

Facts: nkinnan/esphome-pace-bms `pace_bms_protocol_v20.cpp` (EG4 variant, @ 2ba4bc65), gonzalop/wombatt
`internal/bms/lifepower4.go` and its tests from EG4_LifePower4_Communication_Protocol.pdf; frames in
tests/vectors/bms/frames.json. A request carries no INFO (`~20014A420000FDA2`): the ADR alone names the pack.
The 0x42 reply carries SOC and SOH in whole percent and cumulative charge and discharge counters."""

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
    centivolts,
    kelvin_tenths,
    millivolts,
    state,
)
from ..fields import AlarmState as State
from ..layout import Array, Int, Layout

CID1_EG4 = 0x4A
MAX_MODULE = 15
address, locate = numbered("EG4", 1, MAX_MODULE)


class Command(IntEnum):
    ANALOG = 0x42
    ALARM = 0x44
    SYSTEM_TIME = 0x4D
    PROTOCOL_VERSION = 0x4F


class BalanceEvent(IntFlag):
    """The 0x44 event bytes, as wombatt names their bits from EG4's protocol document."""

    BALANCE_MODULE = 0x01
    CELL_VOLTAGE_DIFFERENCE_ALARM = 0x10
    CHARGE_MOSFET_FAULT = 0x20
    DISCHARGE_MOSFET_FAULT = 0x40


class VoltageEvent(IntFlag):
    CELL_OVER_VOLTAGE_ALARM = 0x01
    CELL_OVER_VOLTAGE_PROTECTION = 0x02
    CELL_UNDER_VOLTAGE_ALARM = 0x04
    CELL_UNDER_VOLTAGE_PROTECTION = 0x08
    PACK_OVER_VOLTAGE_ALARM = 0x10
    PACK_OVER_VOLTAGE_PROTECTION = 0x20
    PACK_UNDER_VOLTAGE_ALARM = 0x40
    PACK_UNDER_VOLTAGE_PROTECTION = 0x80


class TemperatureEvent(IntFlag):
    CHARGE_HIGH_TEMPERATURE_ALARM = 0x0001
    CHARGE_HIGH_TEMPERATURE_PROTECTION = 0x0002
    CHARGE_LOW_TEMPERATURE_ALARM = 0x0004
    CHARGE_LOW_TEMPERATURE_PROTECTION = 0x0008
    DISCHARGE_HIGH_TEMPERATURE_ALARM = 0x0010
    DISCHARGE_HIGH_TEMPERATURE_PROTECTION = 0x0020
    DISCHARGE_LOW_TEMPERATURE_ALARM = 0x0040
    DISCHARGE_LOW_TEMPERATURE_PROTECTION = 0x0080
    ENVIRONMENT_HIGH_TEMPERATURE_ALARM = 0x0100
    ENVIRONMENT_HIGH_TEMPERATURE_PROTECTION = 0x0200
    ENVIRONMENT_LOW_TEMPERATURE_ALARM = 0x0400
    ENVIRONMENT_LOW_TEMPERATURE_PROTECTION = 0x0800
    MOSFET_HIGH_TEMPERATURE_PROTECTION = 0x1000
    FIRE_ALARM = 0x2000


class CurrentEvent(IntFlag):
    CHARGE_OVER_CURRENT_ALARM = 0x01
    CHARGE_OVER_CURRENT_PROTECTION = 0x02
    DISCHARGE_OVER_CURRENT_ALARM = 0x04
    DISCHARGE_OVER_CURRENT_PROTECTION = 0x08
    DISCHARGE_LEVEL_2_OVER_CURRENT_PROTECTION = 0x10
    OUTPUT_SHORT_CIRCUIT_PROTECTION = 0x20
    DISCHARGE_LEVEL_2_OVER_CURRENT_LOCKOUT = 0x40
    OUTPUT_SHORT_CIRCUIT_LOCKOUT = 0x80


class CapacityAlarm(IntFlag):
    SOC_LOW = 0x01


class Fet(IntFlag):
    """FET status: switch states, not alarms."""

    DISCHARGE_MOSFET = 0x01
    CHARGE_MOSFET = 0x02
    CHARGE_CURRENT_LIMITER = 0x04
    HEATER = 0x08


class System(IntFlag):
    DISCHARGING = 0x01
    CHARGING = 0x02
    STANDBY = 0x08


_AH = "Ah"


@dataclass(slots=True)
class Analog(pack.PackValues):
    """0x42 of one pack.

    The temperature count says 4 and 6 values follow: the frames are consumed exactly only with 6 (LENID 0x0CA for
    16S), and the reply's own maximum and minimum cell temperatures (25.1 and 24.1 °C in nkinnan's capture) are
    those of the first four, so the last two are not cells. Their order is the protocol document's as wombatt
    reads it, environment then MOSFET; nkinnan's comment says the reverse, and no frame tells them apart.

    The cumulative counters: capacities in 10 mAh (nkinnan), energies in Wh — in the capture, charge energy over
    charge capacity is 382067 Wh / 7113.6 Ah = 53.7 V, the pack's voltage —, times in hours, counts as counts."""

    data_flag: int
    pack_group: int
    custom_number: int
    soc: float = field()  # a field of its own frame, where the base derives it
    soh: float = field(metadata=pack.quantity("%", "state of health"))
    max_cell_voltage: float = field(metadata=pack.quantity("V", "highest cell voltage, as the BMS reports it"))
    min_cell_voltage: float = field(metadata=pack.quantity("V", "lowest cell voltage, as the BMS reports it"))
    cell_voltage_difference: float = field(metadata=pack.quantity("V", "highest minus lowest cell voltage"))
    max_cell_temperature: float = field(metadata=pack.quantity("°C", "highest cell temperature"))
    min_cell_temperature: float = field(metadata=pack.quantity("°C", "lowest cell temperature"))
    charged_capacity: float = field(
        metadata=pack.quantity(_AH, "charge put in over the pack's life", pack.TOTAL_INCREASING)
    )
    discharged_capacity: float = field(
        metadata=pack.quantity(_AH, "charge taken out over the pack's life", pack.TOTAL_INCREASING)
    )
    charged_energy: int = field(
        metadata=pack.quantity("Wh", "energy put in over the pack's life", pack.TOTAL_INCREASING)
    )
    discharged_energy: int = field(
        metadata=pack.quantity("Wh", "energy taken out over the pack's life", pack.TOTAL_INCREASING)
    )
    charging_time: int = field(metadata=pack.quantity("h", "time spent charging", pack.TOTAL_INCREASING))
    discharging_time: int = field(metadata=pack.quantity("h", "time spent discharging", pack.TOTAL_INCREASING))
    charges: int = field(metadata=pack.quantity("", "number of charges", pack.TOTAL_INCREASING))
    discharges: int = field(metadata=pack.quantity("", "number of discharges", pack.TOTAL_INCREASING))


@dataclass(slots=True)
class Alarm(pack.PackAlarm):
    """0x44 of one pack (wombatt's field list): the states of each cell and sensor (6, as in 0x42), of current
    and voltage, then the event words."""

    ALARM_FIELDS: ClassVar[tuple[str, ...]] = (
        "current_state",
        "voltage_state",
        "balance_event",
        "voltage_event",
        "temperature_event",
        "current_event",
        "capacity_alarm",
    )

    data_flag: int
    pack_group: int
    cell_states: tuple[State, ...]
    temperature_states: tuple[State, ...]
    current_state: State
    voltage_state: State
    custom_number: int
    balance_event: BalanceEvent
    voltage_event: VoltageEvent
    temperature_event: TemperatureEvent
    current_event: CurrentEvent
    capacity_alarm: CapacityAlarm
    fet: Fet
    system: System
    balancing_bits: int  # one bit a cell, cell 1 lowest
    reserved: int

    @property
    def balancing(self) -> tuple[int, ...]:
        """Numbers (from 1) of the cells being balanced."""
        return tuple(cell + 1 for cell in range(len(self.cell_states)) if self.balancing_bits >> cell & 1)


@dataclass(slots=True)
class SystemTime:
    """0x4D: the BMS's clock."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int

    @property
    def text(self) -> str:
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d} {self.hour:02d}:{self.minute:02d}:{self.second:02d}"


Result = ProtocolVersion | Analog | Alarm | SystemTime


def _kelvin(name: str) -> Int:
    return kelvin_tenths(name, TEMPERATURE_RANGE, zero=2730)


def _total(name: str, div: int = 1) -> Int:
    return Int(name, 4, div=div)


ANALOG = Layout(
    Analog,
    Int("data_flag"),
    Int("pack_group"),
    Array("cell_voltages", millivolts("cell", CELL_VOLTAGE_RANGE), counts=CELL_COUNT_RANGE),
    Array("temperatures", _kelvin("temperature"), counts=(3, 16), more=2),
    centiamps("current"),
    centivolts("voltage"),
    centiamp_hours("remaining_capacity"),
    centiamp_hours("total_capacity"),
    Int("cycles", 2),
    Int("custom_number"),
    Int("soc", 2, unit="%", plausible=(0, 100)),
    Int("soh", 2, unit="%", plausible=(0, 100)),
    millivolts("max_cell_voltage", CELL_VOLTAGE_RANGE),
    millivolts("min_cell_voltage", CELL_VOLTAGE_RANGE),
    millivolts("cell_voltage_difference"),
    _kelvin("max_cell_temperature"),
    _kelvin("min_cell_temperature"),
    _total("charged_capacity", 100),
    _total("discharged_capacity", 100),
    _total("charged_energy"),
    _total("discharged_energy"),
    _total("charging_time"),
    _total("discharging_time"),
    Int("charges", 2),
    Int("discharges", 2),
)
ALARM = Layout(
    Alarm,
    Int("data_flag"),
    Int("pack_group"),
    Array("cell_states", state("cell"), counts=CELL_COUNT_RANGE),
    Array("temperature_states", state("temperature"), more=2),
    state("current_state"),
    state("voltage_state"),
    Int("custom_number"),
    Int("balance_event", convert=BalanceEvent),
    Int("voltage_event", convert=VoltageEvent),
    Int("temperature_event", 2, convert=TemperatureEvent),
    Int("current_event", convert=CurrentEvent),
    Int("capacity_alarm", convert=CapacityAlarm),
    Int("fet", convert=Fet),
    Int("system", convert=System),
    Int("balancing_bits", 4),
    Int("reserved"),
)
SYSTEM_TIME = Layout(SystemTime, Int("year", 2), Int("month"), Int("day"), Int("hour"), Int("minute"), Int("second"))

_FRAME = 18

FAMILY: Family[Command, Result] = Family(
    name="eg4",
    title="EG4",
    ver=0x20,
    cid1=CID1_EG4,
    commands=Command,
    replies={Command.ANALOG: ANALOG, Command.ALARM: ALARM, Command.SYSTEM_TIME: SYSTEM_TIME},
    fanouts={},
    addressed=frozenset(),  # no request carries INFO
    writes=frozenset(),
    address=address,
    info_addresses=lambda adr: (adr,),
    max_module=MAX_MODULE,
    roles={roles.ANALOG: Command.ANALOG, roles.ALARM: Command.ALARM, roles.VERSION: Command.PROTOCOL_VERSION},
    reply_bytes={
        Command.PROTOCOL_VERSION: _FRAME,
        Command.ANALOG: _FRAME + 2 * (3 + 32 + 1 + 12 + 11 + 4 + 6 + 4 + 24 + 4),
        Command.ALARM: _FRAME + 2 * (3 + 16 + 1 + 6 + 2 + 1 + 13),
        Command.SYSTEM_TIME: _FRAME + 2 * 7,
    },
    pack_bytes={},
    locate=locate,
)
