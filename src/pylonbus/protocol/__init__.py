"""Sans-I/O RS485 battery protocol: bytes in, typed results out, and back. No port, socket or clock.

What every BMS family shares is here (`frame`, the `layout` engine, `fields`, and `family`, which works out
requests and replies from a family's description); each family is a module of `families/`. The names below are
Pylontech's, the default family, as 0.2 exported them.

Names are imported from their modules on first use, so that a program that needs only the command codes
does not build every reply layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .families.pylontech.codes import Command, address
    from .families.pylontech.family import (
        ADDRESSED,
        WRITES,
        decode_reply,
        infer_command,
        request,
        set_charge_discharge_request,
    )
    from .families.pylontech.layouts import FANOUT_LAYOUTS, REPLY_LAYOUTS

    # Every result type, as in the layouts that build them: the names this package has always exported.
    from .families.pylontech.results import (
        Acknowledgement,
        AlarmInfo,
        AnalogData,
        ChargeDischargeInfo,
        ChargeDischargeSetting,
        ChargeStatus,
        FirmwareInfo,
        ManufacturerInfo,
        PackAlarm,
        PackAnalog,
        Result,
        SerialNumber,
        Status1,
        Status2,
        Status3,
        SystemAlarmInfo,
        SystemAnalog,
        SystemAnalogData,
        SystemParameters,
    )
    from .family import FANOUT, Family, ProtocolVersion
    from .fields import AlarmState
    from .frame import (
        CID1_BATTERY,
        Frame,
        FrameReader,
        Rtn,
        checksum,
        encode_frame,
        length_checksum,
        parse_frame,
        rtn_meaning,
        split_address,
    )

_SOURCE = {
    "Command": "families.pylontech.codes",
    "address": "families.pylontech.codes",
    "ADDRESSED": "families.pylontech.family",
    "WRITES": "families.pylontech.family",
    "decode_reply": "families.pylontech.family",
    "infer_command": "families.pylontech.family",
    "request": "families.pylontech.family",
    "set_charge_discharge_request": "families.pylontech.family",
    "FANOUT_LAYOUTS": "families.pylontech.layouts",
    "REPLY_LAYOUTS": "families.pylontech.layouts",
    "Acknowledgement": "families.pylontech.results",
    "AlarmInfo": "families.pylontech.results",
    "AnalogData": "families.pylontech.results",
    "ChargeDischargeInfo": "families.pylontech.results",
    "ChargeDischargeSetting": "families.pylontech.results",
    "ChargeStatus": "families.pylontech.results",
    "FirmwareInfo": "families.pylontech.results",
    "ManufacturerInfo": "families.pylontech.results",
    "PackAlarm": "families.pylontech.results",
    "PackAnalog": "families.pylontech.results",
    "Result": "families.pylontech.results",
    "SerialNumber": "families.pylontech.results",
    "Status1": "families.pylontech.results",
    "Status2": "families.pylontech.results",
    "Status3": "families.pylontech.results",
    "SystemAlarmInfo": "families.pylontech.results",
    "SystemAnalog": "families.pylontech.results",
    "SystemAnalogData": "families.pylontech.results",
    "SystemParameters": "families.pylontech.results",
    "FANOUT": "family",
    "Family": "family",
    "ProtocolVersion": "family",
    "AlarmState": "fields",
    "CID1_BATTERY": "frame",
    "Frame": "frame",
    "FrameReader": "frame",
    "Rtn": "frame",
    "checksum": "frame",
    "encode_frame": "frame",
    "length_checksum": "frame",
    "parse_frame": "frame",
    "rtn_meaning": "frame",
    "split_address": "frame",
}

__all__ = [
    "ADDRESSED",
    "CID1_BATTERY",
    "FANOUT",
    "FANOUT_LAYOUTS",
    "REPLY_LAYOUTS",
    "WRITES",
    "Acknowledgement",
    "AlarmInfo",
    "AlarmState",
    "AnalogData",
    "ChargeDischargeInfo",
    "ChargeDischargeSetting",
    "ChargeStatus",
    "Command",
    "Family",
    "FirmwareInfo",
    "Frame",
    "FrameReader",
    "ManufacturerInfo",
    "PackAlarm",
    "PackAnalog",
    "ProtocolVersion",
    "Result",
    "Rtn",
    "SerialNumber",
    "Status1",
    "Status2",
    "Status3",
    "SystemAlarmInfo",
    "SystemAnalog",
    "SystemAnalogData",
    "SystemParameters",
    "address",
    "checksum",
    "decode_reply",
    "encode_frame",
    "infer_command",
    "length_checksum",
    "parse_frame",
    "request",
    "rtn_meaning",
    "set_charge_discharge_request",
    "split_address",
]

__getattr__ = exports(__name__, {name: f".{module}" for name, module in _SOURCE.items()})
