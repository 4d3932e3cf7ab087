"""Requests and replies by command: which INFO a request carries, and how its reply is decoded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from ..errors import DecodeError, ProtocolError, ResponseError
from .codes import FANOUT, Command, address
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


def decode_reply(command: Command, frame: Frame, *, fanout: bool = False, exact: bool = False) -> Result:
    """The typed result of a response frame to `command`; a non-zero RTN raises `ResponseError`."""
    if frame.rtn:
        raise ResponseError(frame.rtn, frame.adr)
    if command == Command.PROTOCOL_VERSION:
        return ProtocolVersion(frame.ver)
    layout = (FANOUT_LAYOUTS if fanout else REPLY_LAYOUTS).get(command)
    if layout is None:
        raise DecodeError(f"no reply layout for CID2 0x{command:02X}{' fan-out' if fanout else ''}")
    return layout.decode(frame.info, exact=exact)


def _leftover(result: Any, info: bytes, end: int) -> int:
    extra = getattr(result, "extra", b"")
    return len(info) - end + (len(extra) if isinstance(extra, bytes) else 0)


def _plausible(result: Any) -> bool:
    return all(value.isprintable() for f in fields(result) if isinstance(value := getattr(result, f.name), str))


def infer_command(frame: Frame) -> tuple[Command, bool] | None:
    """The (command, fanout) whose layout reads a response's INFO best, or None when that is not clear:
    printable text, then fewest bytes left over; a tie between different commands is not guessed."""
    if not frame.info:
        return Command.PROTOCOL_VERSION, False  # the only read whose reply carries no INFO
    scored: list[tuple[int, Command, bool]] = []
    for fanout, table in ((False, REPLY_LAYOUTS), (True, FANOUT_LAYOUTS)):
        for command, layout in table.items():
            if command in WRITES:
                continue
            try:
                result, end = layout.read(frame.info)
            except ProtocolError:
                continue
            if _plausible(result):
                scored.append((_leftover(result, frame.info, end), command, fanout))
    if not scored:
        return None
    best = min(score for score, _, _ in scored)
    winners = [(command, fanout) for score, command, fanout in scored if score == best]
    if len({command for command, _ in winners}) != 1:
        return None
    return winners[0]  # a single-module reading comes first: identical to a one-pack fan-out


def command_names(commands: Iterable[Command]) -> str:
    return ", ".join(f"0x{c:02X} {c.name}" for c in commands)
