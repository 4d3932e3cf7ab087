"""Pylontech's numbers: its CID2 commands and how a group and module number become an ADR."""

from __future__ import annotations

from enum import IntEnum

MAX_GROUP = 15
MAX_MODULE = 14


class Command(IntEnum):
    """CID2 of a request."""

    ANALOG = 0x42
    ALARM = 0x44
    SYSTEM_PARAMETERS = 0x47
    PROTOCOL_VERSION = 0x4F
    MANUFACTURER = 0x51
    SYSTEM_ANALOG = 0x61
    CHARGE_DISCHARGE = 0x92
    SERIAL_NUMBER = 0x93
    SET_CHARGE_DISCHARGE = 0x94
    TURN_OFF = 0x95
    FIRMWARE = 0x96


def address(group: int, module: int) -> int:
    """Wire ADR of module 1..14 in group 0..15: the first module of a group answers at 0x02 + 0x10·group."""
    if not 0 <= group <= MAX_GROUP:
        raise ValueError(f"group {group} is out of range 0..{MAX_GROUP}")
    if not 1 <= module <= MAX_MODULE:
        raise ValueError(f"module {module} is out of range 1..{MAX_MODULE}")
    return (group << 4) + module + 1


def info_addresses(adr: int) -> tuple[int, int]:
    """How INFO may name the module at `adr`: the full ADR (spec V3.3), or without the group nibble (as the C
    program asks; both occur in real frames)."""
    return adr, adr & 0x0F
