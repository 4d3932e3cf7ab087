"""Requests and replies by command: which INFO a request carries, and how its reply is decoded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from ..errors import DecodeError, ImplausibleValue, ProtocolError, ResponseError
from .codes import CID1_BATTERY, FANOUT, Command, address, info_addresses, rtn_meaning
from .frame import Frame, encode_frame
from .layouts import CHARGE_DISCHARGE_SETTING, FANOUT_LAYOUTS, REPLY_LAYOUTS
from .results import ChargeDischargeSetting, ProtocolVersion, Result

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


def request(
    command: Command,
    group: int = 0,
    module: int = 1,
    *,
    fanout: bool = False,
    info: bytes | None = None,
    ver: int = DEFAULT_VER,
) -> bytes:
    """The request frame for `command` to a module. The INFO command byte is the full ADR (spec V3.3);
    `fanout` asks the group's master (module 1) for all packs with INFO 0xFF."""
    command = Command(command)
    if fanout and command not in FANOUT_LAYOUTS:
        raise ValueError(f"{command.name} has no fan-out form; only ANALOG and ALARM do")
    adr = address(group, 1 if fanout else module)
    if info is None:
        info = bytes([FANOUT if fanout else adr]) if command in ADDRESSED else b""
    return encode_frame(ver, adr, command, info)


def set_charge_discharge_request(setting: ChargeDischargeSetting, group: int = 0, module: int = 1) -> bytes:
    """0x94: impose charge/discharge limits. Changes the battery's behaviour; repeat within 10 s."""
    return request(Command.SET_CHARGE_DISCHARGE, group, module, info=CHARGE_DISCHARGE_SETTING.encode(setting))


def _where(frame: Frame) -> str:
    return f"module {frame.module} (ADR 0x{frame.adr:02X})"


def _read(command: Command, frame: Frame, fanout: bool) -> Result:
    layout = (FANOUT_LAYOUTS if fanout else REPLY_LAYOUTS).get(command)
    if layout is None:
        raise DecodeError(f"no {'fan-out ' if fanout else ''}reply layout for CID2 0x{command:02X}")
    try:
        result: Result = layout.decode(frame.info)
    except ImplausibleValue as error:
        error.locate(f"the master {_where(frame)}" if fanout else _where(frame))
        raise
    if not fanout and command in ADDRESSED:
        # A module echoes the address it was asked for; anything else is another module's reply or a misread frame.
        echo = getattr(result, "command_value", None)
        if echo is not None and echo not in info_addresses(frame.adr):
            raise DecodeError(
                f"{Command(command).name} reply from ADR 0x{frame.adr:02X} names address 0x{echo:02X} in its INFO: "
                "it answers another request"
            )
    return result


def decode_reply(command: Command, frame: Frame, *, fanout: bool | None = None) -> Result:
    """The typed result of a response frame to `command`, its INFO consumed exactly.

    `fanout` says whether the request asked for the whole group (INFO 0xFF); None chooses the reading that
    consumes the INFO exactly, the single-module one first. Raises `ResponseError` for a non-zero RTN,
    `ImplausibleValue` for values no battery has and `DecodeError` for everything else that does not fit."""
    if frame.cid1 != CID1_BATTERY:
        raise DecodeError(f"CID1 is 0x{frame.cid1:02X}: not a reply of a Pylontech battery (0x{CID1_BATTERY:02X})")
    if frame.rtn:
        raise ResponseError(frame.rtn, frame.adr, rtn_meaning(frame.rtn))
    if command == Command.PROTOCOL_VERSION:
        if frame.info:
            raise DecodeError(f"a PROTOCOL_VERSION reply carries no INFO, this one has {len(frame.info)} byte(s)")
        return ProtocolVersion(frame.ver)
    if fanout is not None or command not in FANOUT_LAYOUTS:
        return _read(command, frame, bool(fanout))
    try:
        return _read(command, frame, False)
    except ProtocolError as single:
        try:
            return _read(command, frame, True)
        except ProtocolError as group:
            if isinstance(single, ImplausibleValue) and isinstance(group, ImplausibleValue):
                raise single from None  # both readings reach the same impossible value
            raise DecodeError(
                f"{Command(command).name} reply of {len(frame.info)} INFO bytes fits neither the single-module reading "
                f"({single}) nor the fan-out one ({group})"
            ) from None


def _plausible(result: Any) -> bool:
    return all(value.isprintable() for f in fields(result) if isinstance(value := getattr(result, f.name), str))


def infer_command(frame: Frame) -> tuple[Command, bool] | None:
    """The (command, fanout) whose layout reads a response's INFO exactly, or None when that is not clear:
    printable text, then the shortest firmware tail; a tie between different commands is not guessed."""
    if frame.rtn or frame.cid1 != CID1_BATTERY:
        return None
    if not frame.info:
        return Command.PROTOCOL_VERSION, False  # the only read whose reply carries no INFO
    scored: list[tuple[int, Command, bool]] = []
    for fanout, table in ((False, REPLY_LAYOUTS), (True, FANOUT_LAYOUTS)):
        for command in table:
            if command in WRITES:
                continue
            try:
                result = _read(command, frame, fanout)
            except ProtocolError:
                continue
            if _plausible(result):
                extra = getattr(result, "extra", b"")
                scored.append((len(extra) if isinstance(extra, bytes) else 0, command, fanout))
    if not scored:
        return None
    best = min(score for score, _, _ in scored)
    winners = [(command, fanout) for score, command, fanout in scored if score == best]
    if len({command for command, _ in winners}) != 1:
        return None
    return winners[0]  # a single-module reading comes first: identical to a one-pack fan-out


def command_names(commands: Iterable[Command]) -> str:
    return ", ".join(f"0x{c:02X} {c.name}" for c in commands)
