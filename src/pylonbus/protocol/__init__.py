"""Sans-I/O Pylontech RS485 protocol: bytes in, typed results out, and back. No port, socket or clock.

Names are imported from their modules on first use, so that a program that needs only the command codes
does not build every reply layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .codes import CID1_BATTERY, FANOUT, Command, Rtn, address, rtn_meaning, split_address
    from .commands import ADDRESSED, WRITES, decode_reply, infer_command, request, set_charge_discharge_request
    from .frame import Frame, FrameReader, checksum, encode_frame, length_checksum, parse_frame
    from .layouts import FANOUT_LAYOUTS, REPLY_LAYOUTS
    from .results import (
        Acknowledgement,
        AlarmInfo,
        AlarmState,
        AnalogData,
        ChargeDischargeInfo,
        ChargeDischargeSetting,
        ChargeStatus,
        FirmwareInfo,
        ManufacturerInfo,
        PackAlarm,
        PackAnalog,
        ProtocolVersion,
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

_SOURCE = {
    "CID1_BATTERY": "codes",
    "FANOUT": "codes",
    "Command": "codes",
    "Rtn": "codes",
    "address": "codes",
    "rtn_meaning": "codes",
    "split_address": "codes",
    "ADDRESSED": "commands",
    "WRITES": "commands",
    "decode_reply": "commands",
    "infer_command": "commands",
    "request": "commands",
    "set_charge_discharge_request": "commands",
    "Frame": "frame",
    "FrameReader": "frame",
    "checksum": "frame",
    "encode_frame": "frame",
    "length_checksum": "frame",
    "parse_frame": "frame",
    "FANOUT_LAYOUTS": "layouts",
    "REPLY_LAYOUTS": "layouts",
    "Acknowledgement": "results",
    "AlarmInfo": "results",
    "AlarmState": "results",
    "AnalogData": "results",
    "ChargeDischargeInfo": "results",
    "ChargeDischargeSetting": "results",
    "ChargeStatus": "results",
    "FirmwareInfo": "results",
    "ManufacturerInfo": "results",
    "PackAlarm": "results",
    "PackAnalog": "results",
    "ProtocolVersion": "results",
    "Result": "results",
    "SerialNumber": "results",
    "Status1": "results",
    "Status2": "results",
    "Status3": "results",
    "SystemAlarmInfo": "results",
    "SystemAnalog": "results",
    "SystemAnalogData": "results",
    "SystemParameters": "results",
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
