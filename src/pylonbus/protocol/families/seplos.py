"""Seplos BMS v2 (VER 0x20, CID1 0x46, as Pylontech): DIY packs on Seplos boards, and the clones of its layout.

Facts: syssi/esphome-seplos-bms (decoder, test frames @ dedb6bb4), dbus-serialbattery `bms/seplos.py`; the frames
and values in tests/vectors/bms/frames.json. The request names the pack in INFO (`~20004642E00200FD37`, pack 0 at
ADR 0x00). The 0x42 reply carries its own SOC, SOH, rated capacity and port voltage, in 10 mA/10 mV/10 mAh."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

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
    per_mille,
    state,
)
from ..fields import AlarmState as State
from ..frame import CID1_BATTERY
from ..layout import Array, Int, Layout, Rest

MAX_MODULE = 16  # packs 0..15 on one bus, master first
address, locate = numbered("Seplos", 0, MAX_MODULE)


class Command(IntEnum):
    ANALOG = 0x42
    ALARM = 0x44
    SYSTEM_PARAMETERS = 0x47
    PROTOCOL_VERSION = 0x4F
    # What a master and its slave packs exchange on a multi-pack bus, seen passively: the frame carries 0x5A
    # where a reply has its RTN, so it is no reply to decode with `FAMILY`; read its INFO with `INTRA_PACK`.
    INTRA_PACK = 0x5A


# Temperatures are 0.1 K, not raw/100: syssi's decoder reads (raw - 2731) / 10 (its old README logged raw x 0.01,
# 29.82 °C, for the same word). The captures agree: 0x0BA6 is 25.1 °C beside a 16S pack at 52.8 V discharging,
# and the 0x5A summary of another pack gives 0x0B62 = 18.3 °C; raw/100 would make every sensor 29-31 °C.
_TEMPERATURE = kelvin_tenths("temperature", TEMPERATURE_RANGE)
_CELLS = Array("cell_voltages", millivolts("cell", CELL_VOLTAGE_RANGE), counts=CELL_COUNT_RANGE)


@dataclass(slots=True)
class Analog(pack.PackValues):
    """0x42 of one pack. Its sensors are the cells', then environment, then MOSFET (syssi's byte table)."""

    data_flag: int
    command_group: int
    custom_number: int  # 10: the words that follow, reserved ones included
    soc: float = field()  # a field of its own frame, where the base derives it
    rated_capacity: float = field(metadata=pack.quantity("Ah", "rated (design) capacity"))
    soh: float = field(metadata=pack.quantity("%", "state of health"))
    port_voltage: float = field(metadata=pack.quantity("V", "voltage at the pack's terminals"))
    reserved: tuple[int, ...]  # non-zero on some units (issue #47 of syssi's repository); no meaning known


@dataclass(slots=True)
class Alarm(pack.PackAlarm):
    """0x44 of one pack: the states of each cell and sensor, of the current and voltage, and 20 event bytes of
    which the sources name two: the switch state (0x03: charge and discharge switches on) and the system state
    (0x02: charging), at INFO bytes 34 and 37 of the 15S capture (syssi counts them as frame bytes 40 and 43, the
    6 header bytes included). The other event bytes are kept raw: no source gives their bits."""

    ALARM_FIELDS: ClassVar[tuple[str, ...]] = ("charge_current_state", "voltage_state")

    data_flag: int
    command_group: int
    cell_states: tuple[State, ...]
    temperature_states: tuple[State, ...]
    charge_current_state: State
    voltage_state: State
    events: tuple[int, ...]

    @property
    def switch_state(self) -> int:
        return self.events[6]

    @property
    def system_state(self) -> int:
        return self.events[9]


@dataclass(slots=True)
class IntraPack:
    """0x5A: the summary a master reads from each slave pack (syssi, branch decode-intra-pack-communication)."""

    data_flag: int
    command_group: int
    max_cell_voltage: float
    min_cell_voltage: float
    temperatures: tuple[float, ...]
    current: float
    voltage: float
    remaining_capacity: float
    total_capacity: float
    soc: float
    port_voltage: float
    unknown: tuple[int, ...]  # five words no source explains


@dataclass(slots=True)
class Parameters:
    """0x47, kept raw in `extra`: no source states its layout (the captured one ends with the model text
    "1101-ZH26")."""

    extra: bytes


Result = ProtocolVersion | Analog | Alarm | Parameters

ANALOG = Layout(
    Analog,
    Int("data_flag"),
    Int("command_group"),
    _CELLS,
    Array("temperatures", _TEMPERATURE, counts=(2, 16)),
    centiamps("current"),
    centivolts("voltage"),
    centiamp_hours("remaining_capacity"),
    Int("custom_number", plausible=(10, 10)),
    centiamp_hours("total_capacity"),
    per_mille("soc"),
    centiamp_hours("rated_capacity"),
    Int("cycles", 2),
    per_mille("soh"),
    centivolts("port_voltage"),
    Array("reserved", Int("word", 2), count=4),
)
ALARM = Layout(
    Alarm,
    Int("data_flag"),
    Int("command_group"),
    Array("cell_states", state("cell"), counts=CELL_COUNT_RANGE),
    Array("temperature_states", state("temperature")),
    state("charge_current_state"),
    state("voltage_state"),
    Array("events", Int("event"), counts=(20, 20)),
)
INTRA_PACK = Layout(
    IntraPack,
    Int("data_flag"),
    Int("command_group"),
    millivolts("max_cell_voltage", CELL_VOLTAGE_RANGE),
    millivolts("min_cell_voltage", CELL_VOLTAGE_RANGE),
    Array("temperatures", _TEMPERATURE, count=2),
    centiamps("current"),
    centivolts("voltage"),
    centiamp_hours("remaining_capacity"),
    centiamp_hours("total_capacity"),
    per_mille("soc"),
    centivolts("port_voltage"),
    Array("unknown", Int("word", 2), count=5),
)

_FRAME = 18
_LONGEST_ANALOG = 3 + 16 * 2 + 1 + 6 * 2 + 7 + 10 * 2  # 16 cells, 6 sensors
REPLY_LAYOUTS: dict[Command, Layout[Any]] = {
    Command.ANALOG: ANALOG,
    Command.ALARM: ALARM,
    Command.SYSTEM_PARAMETERS: Layout(Parameters, Rest("extra", at_most=None)),
}

FAMILY: Family[Command, Result] = Family(
    name="seplos",
    title="Seplos",
    ver=0x20,
    cid1=CID1_BATTERY,
    commands=Command,
    replies=REPLY_LAYOUTS,
    fanouts={},
    addressed=frozenset({Command.ANALOG, Command.ALARM}),
    writes=frozenset(),
    address=address,
    info_addresses=lambda adr: (adr,),
    max_module=MAX_MODULE,
    roles={
        roles.ANALOG: Command.ANALOG,
        roles.ALARM: Command.ALARM,
        roles.VERSION: Command.PROTOCOL_VERSION,
        roles.PARAMETERS: Command.SYSTEM_PARAMETERS,
    },
    reply_bytes={
        Command.PROTOCOL_VERSION: _FRAME,
        Command.ANALOG: _FRAME + 2 * _LONGEST_ANALOG,
        Command.ALARM: _FRAME + 2 * (3 + 16 + 1 + 6 + 2 + 21),
        Command.SYSTEM_PARAMETERS: _FRAME + 2 * 200,
    },
    pack_bytes={},
    locate=locate,
)
