"""Boqiang BMS (VER 0x26, CID1 0x46), e.g. BMS007-LD43-16S: the Seplos 0x42 layout cut short after the cycles.

Facts: syssi/esphome-seplos-bms, protocol_version 0x26 and its Boqiang emulator (`esp8266-boqiang-emulator.yaml` @
dedb6bb4); the frame is in tests/vectors/bms/frames.json. The request goes to the pack's ADR, from 0 as on Seplos,
and names it from 1 in its INFO (`~26004642E00201FD30`, syssi's `override_pack: 1`). No 0x44 or identity frame is
known, so it is read for its analog values alone.

The one frame known comes from an emulator: its 16 cells are 0 mV and four sensors read -60 °C (raw 2131, a
sensor absent). Those are not values a battery reports, and it is refused as implausible like any such frame."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

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
)
from ..frame import CID1_BATTERY
from ..layout import Array, Int, Layout

MAX_MODULE = 16
address, locate = numbered("Boqiang", 0, MAX_MODULE)


class Command(IntEnum):
    ANALOG = 0x42
    PROTOCOL_VERSION = 0x4F


@dataclass(slots=True)
class Analog(pack.PackValues):
    """0x42 of one pack: the Seplos fields up to the cycles (the custom number is 2: capacity and cycles follow).
    The sensors are the cells', then environment, then MOSFET, as syssi's Boqiang example names them."""

    data_flag: int
    command_group: int
    custom_number: int


Result = ProtocolVersion | Analog

ANALOG = Layout(
    Analog,
    Int("data_flag"),
    Int("command_group"),
    Array("cell_voltages", millivolts("cell", CELL_VOLTAGE_RANGE), counts=CELL_COUNT_RANGE),
    Array("temperatures", kelvin_tenths("temperature", TEMPERATURE_RANGE), counts=(3, 16)),
    centiamps("current"),
    centivolts("voltage"),
    centiamp_hours("remaining_capacity"),
    Int("custom_number", plausible=(2, 2)),
    centiamp_hours("total_capacity"),
    Int("cycles", 2),
)

FAMILY: Family[Command, Result] = Family(
    name="boqiang",
    title="Boqiang",
    ver=0x26,
    cid1=CID1_BATTERY,
    commands=Command,
    replies={Command.ANALOG: ANALOG},
    fanouts={},
    addressed=frozenset({Command.ANALOG}),
    writes=frozenset(),
    address=address,
    request_info=lambda adr, fanout: bytes([adr + 1]),
    info_addresses=lambda adr: (adr + 1,),
    max_module=MAX_MODULE,
    roles={roles.ANALOG: Command.ANALOG, roles.VERSION: Command.PROTOCOL_VERSION},
    reply_bytes={Command.PROTOCOL_VERSION: 18, Command.ANALOG: 18 + 2 * (3 + 32 + 1 + 12 + 11)},
    pack_bytes={},
    locate=locate,
)
