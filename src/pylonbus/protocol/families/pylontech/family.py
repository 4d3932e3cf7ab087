"""Pylontech as a `Family`, and its requests and replies as functions: the names `pylonbus.protocol` has always
exported, now the family's methods bound to it (a bound method costs a call no more than the function did)."""

from __future__ import annotations

from ... import family as roles
from ...family import Family
from ...frame import CID1_BATTERY
from .codes import MAX_GROUP, MAX_MODULE, Command, address, info_addresses
from .layouts import CHARGE_DISCHARGE_SETTING, FANOUT_LAYOUTS, REPLY_LAYOUTS
from .results import ChargeDischargeSetting, Result

DEFAULT_VER = 0x20

#: Commands whose request INFO is one byte naming the module (its ADR, or 0xFF for the whole group).
ADDRESSED = frozenset(
    {
        Command.ANALOG,
        Command.ALARM,
        Command.CHARGE_DISCHARGE,
        Command.SERIAL_NUMBER,
        Command.FIRMWARE,
        Command.TURN_OFF,
    }
)
#: Commands that change the battery: never sent unless the caller asks by name.
WRITES = frozenset({Command.SET_CHARGE_DISCHARGE, Command.TURN_OFF})

# Longest reply each command can produce, in bytes on the wire (16 cells, 6 temperatures, 3-byte capacities).
_PACK_ANALOG = 1 + 16 * 2 + 1 + 6 * 2 + 2 + 2 + 2 + 1 + 2 + 2 + 6
_PACK_ALARM = 1 + 16 + 1 + 6 + 3 + 5
_FRAME = 18
_REPLY_BYTES = {
    Command.PROTOCOL_VERSION: _FRAME,
    Command.ANALOG: _FRAME + 2 * (2 + _PACK_ANALOG),
    Command.ALARM: _FRAME + 2 * (3 + _PACK_ALARM),
    Command.SYSTEM_PARAMETERS: _FRAME + 50,
    Command.MANUFACTURER: _FRAME + 64,
    Command.SYSTEM_ANALOG: _FRAME + 98,
    Command.CHARGE_DISCHARGE: _FRAME + 20,
    Command.SERIAL_NUMBER: _FRAME + 34,
    Command.FIRMWARE: _FRAME + 12,
}

FAMILY: Family[Command, Result] = Family(
    name="pylontech",
    title="Pylontech",
    ver=DEFAULT_VER,
    cid1=CID1_BATTERY,
    commands=Command,
    replies=REPLY_LAYOUTS,
    fanouts=FANOUT_LAYOUTS,
    addressed=ADDRESSED,
    writes=WRITES,
    address=address,
    info_addresses=info_addresses,
    max_module=MAX_MODULE,
    roles={
        roles.ANALOG: Command.ANALOG,
        roles.ALARM: Command.ALARM,
        roles.VERSION: Command.PROTOCOL_VERSION,
        roles.IDENTITY: Command.MANUFACTURER,
        roles.SERIAL: Command.SERIAL_NUMBER,
        roles.FIRMWARE: Command.FIRMWARE,
        roles.PARAMETERS: Command.SYSTEM_PARAMETERS,
    },
    max_group=MAX_GROUP,
    reply_bytes=_REPLY_BYTES,
    pack_bytes={Command.ANALOG: 2 * _PACK_ANALOG, Command.ALARM: 2 * _PACK_ALARM},
)

request = FAMILY.request
decode_reply = FAMILY.decode
infer_command = FAMILY.infer_command


def set_charge_discharge_request(setting: ChargeDischargeSetting, group: int = 0, module: int = 1) -> bytes:
    """0x94: impose charge/discharge limits. Changes the battery's behaviour; repeat within 10 s."""
    return request(Command.SET_CHARGE_DISCHARGE, group, module, info=CHARGE_DISCHARGE_SETTING.encode(setting))
