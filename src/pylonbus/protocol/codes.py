"""Numbers of the protocol: CID1/CID2 command codes, return codes and addressing."""

from __future__ import annotations

from enum import IntEnum

CID1_BATTERY = 0x46
FANOUT = 0xFF  # INFO command value asking the master for every pack of its group
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


class Rtn(IntEnum):
    """Return code in the CID2 position of a response."""

    NORMAL = 0x00
    VER_ERROR = 0x01
    CHKSUM_ERROR = 0x02
    LCHKSUM_ERROR = 0x03
    CID2_INVALID = 0x04
    COMMAND_FORMAT_ERROR = 0x05
    INVALID_DATA = 0x06
    ADR_ERROR = 0x90
    COMMUNICATION_ERROR = 0x91


_RTN_TEXT = {
    Rtn.NORMAL: "normal",
    Rtn.VER_ERROR: "VER error",
    Rtn.CHKSUM_ERROR: "CHKSUM error",
    Rtn.LCHKSUM_ERROR: "LCHKSUM error",
    Rtn.CID2_INVALID: "CID2 invalid: the module does not know this command",
    Rtn.COMMAND_FORMAT_ERROR: "command format error",
    Rtn.INVALID_DATA: "invalid data in INFO",
    Rtn.ADR_ERROR: "ADR error: INFO names another address",
    Rtn.COMMUNICATION_ERROR: "internal communication error between master and slave packs",
}


def rtn_meaning(rtn: int) -> str:
    try:
        return _RTN_TEXT[Rtn(rtn)]
    except ValueError:
        return "unknown return code"


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


def split_address(adr: int) -> tuple[int, int]:
    """(group, module) of a wire ADR; module 0 or 15 is not a battery but is returned as is."""
    return adr >> 4, (adr & 0x0F) - 1
