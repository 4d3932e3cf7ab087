"""`pylontech --decode`: decode frames pasted from logs, one by one, naming the command of each, and its BMS family
where that is not Pylontech: the one the frame proves (`families.recognise`), else the one `--bms` names."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from enum import IntEnum
from typing import Any

from ..errors import ProtocolError, PylonbusError
from ..protocol import families, parse_frame
from ..protocol.family import FANOUT, Family, command_names
from ..protocol.plain import as_dict
from .render import render_text

# A frame anywhere in a line of a log: `2024-05-01 10:00:00 TX ~20024642E00202FD33`.
FRAME_IN_TEXT = re.compile(r"~[0-9A-Fa-f]+")
# A line of pyserial's spy:// hex dump: `000000.043 TX   0010  44 33 33 0D   …   D33.` (time, direction, offset,
# 16 bytes in hex, the same as text), maybe after the colour code of `?color`. The text column shows CR as '.',
# so the bytes are read from the hex column: at most 16 pairs, each followed by one or two spaces.
SPY_DATA = re.compile(r"(?:\x1b\[\d+m)?\d+\.\d{3} (TX|RX)   [0-9A-F]{4}  ((?:[0-9A-F]{2}  ?){1,16})")
SPY_OTHER = re.compile(r"(?:\x1b\[\d+m)?\d+\.\d{3} \S")  # control lines: `Q-RX reset_input_buffer`, `RTS  active`
Family_ = Family[Any, Any]


def reads(family: Family_) -> list[IntEnum]:
    return [c for c in family.commands if c not in family.writes]


def parse_command(text: str, family: Family_ | None = None) -> IntEnum:
    """A read command of `family` (Pylontech's by default) from its hex code (`42`, `0x42`) or name (`ANALOG`)."""
    family = family or families.family()
    commands: type[IntEnum] = family.commands
    known = f"known: {command_names(reads(family))}"
    name = text.strip().upper()
    if name in commands.__members__ and commands[name] not in family.writes:
        return commands[name]
    try:
        code = int(name.removeprefix("0X"), 16)
    except ValueError:
        raise ValueError(f"unknown command {text!r}; {known}") from None
    if code not in {int(c) for c in reads(family)}:
        raise ValueError(f"unknown command 0x{code:02X}; {known}")
    return commands(code)


class Frames:
    """The frames of the arguments, of files named as arguments (a spy:// trace as pyserial wrote it) and of
    standard input ('-'), each with the side that carried it in a spy:// trace ("TX", "RX"; None elsewhere), and
    how many lines held none."""

    def __init__(self, arguments: list[str]) -> None:
        self.arguments = arguments
        self.skipped = 0

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        for argument in self.arguments:
            if argument == "-":
                yield from self._found(sys.stdin)
            elif not FRAME_IN_TEXT.search(argument) and os.path.isfile(argument):
                try:
                    with open(argument, encoding="utf-8", errors="replace") as file:
                        yield from self._found(file)
                except OSError as error:
                    raise PylonbusError(f"cannot read {argument}: {error.strerror}; give a readable file") from None
            else:
                yield from self._found([argument])

    def _found(self, lines: Iterable[str]) -> Iterator[tuple[str, str | None]]:
        # pyserial writes what each read() or write() moved: a frame comes in pieces, and the pieces of the two
        # directions interleave. Each side's bytes are joined until its CR ends a frame.
        pending: dict[str, bytearray] = {"TX": bytearray(), "RX": bytearray()}
        for line in lines:
            spy = SPY_DATA.match(line)
            if spy:
                side, data = spy.group(1), bytes.fromhex(spy.group(2))
                yield from self._joined(side, pending[side], data)
                continue
            match = FRAME_IN_TEXT.search(line)
            if match:
                yield match.group(), None
            elif line.strip() and not SPY_OTHER.match(line):
                self.skipped += 1
        for side, rest in pending.items():  # a trace cut off inside a frame: shown, and refused as short
            if rest:
                yield rest.decode("ascii", "replace"), side

    @staticmethod
    def _joined(side: str, frame: bytearray, data: bytes) -> Iterator[tuple[str, str]]:
        for byte in data:
            if byte == ord("~") and frame:  # a new frame before the last one ended: the last one was cut short
                yield frame.decode("ascii", "replace"), side
                frame.clear()
            if byte == ord("\r"):
                if frame:
                    yield frame.decode("ascii", "replace"), side
                frame.clear()
            elif frame or byte == ord("~"):  # bytes before a SOI (line noise) belong to no frame
                frame.append(byte)


def _command_of(family: Family_, cid2: int) -> IntEnum | None:
    try:
        command: IntEnum = family.commands(cid2)
    except ValueError:
        return None
    return command


Previous = tuple[IntEnum, bool, Family_]  # a request's command, fan-out, family: what the reply that follows answers


def decode_one(text: str, reply_to: IntEnum | None, previous: Previous | None, bms: str | None) -> dict[str, Any]:
    """What one frame says: its header, direction, command and, for a reply, the decoded result. The family is
    the one the frame proves, else the request's before it, else `bms` (None: it must be proven)."""
    header: dict[str, Any] = {"frame": text}
    try:
        frame = parse_frame(text.encode("ascii") + b"\r")
        family = families.recognise(frame) or (previous[2] if previous else None)
        if family is None:
            if bms is None:
                raise ProtocolError(
                    f"the frame does not prove its BMS family (VER 0x{frame.ver:02X}, CID1 0x{frame.cid1:02X}); "
                    f"give --bms with one of {', '.join(families.names())}"
                )
            family = families.family(bms)
        if family.name != families.DEFAULT:
            header["bms"] = family.name
        group, module = family.locate(frame.adr)
        header |= {
            "ver": frame.ver,
            "adr": frame.adr,
            "group": group,
            "module": module,
            "cid1": frame.cid1,
            "cid2": frame.cid2,
            "info": frame.info.hex().upper(),
        }
        requested = _command_of(family, frame.cid2)
        if requested is not None:  # command codes and return codes do not overlap
            fanout = frame.info[:1] == bytes([FANOUT])
            return header | {"direction": "request", "command": requested.name, "fanout": fanout}
        header |= {"direction": "response", "rtn": frame.rtn}
        # With --command, single-module or fan-out is whichever reading consumes the INFO exactly.
        asked = previous[:2] if previous else None
        chosen: tuple[IntEnum, bool | None] | None = (
            (reply_to, None) if reply_to else asked or family.infer_command(frame)
        )
        if chosen is None:
            raise ProtocolError(
                "cannot tell which command this reply answers; give --command with one of "
                + command_names(reads(family))
            )
        result = family.decode(chosen[0], frame, fanout=chosen[1])
        fanout = hasattr(result, "modules")
        return header | {"command": chosen[0].name, "fanout": fanout, "result": result}
    except (ProtocolError, ValueError) as error:
        return header | {"error": f"{type(error).__name__}: {error}"}


def decode_frames(
    arguments: list[str],
    reply_to: IntEnum | None,
    as_json: str = "",
    verbose: bool = False,
    bms: str | None = families.DEFAULT,
) -> int:
    """Decode every frame; a bad one prints its error and makes the exit status 1, the rest go on.
    `as_json` is "" for text, "array" for one JSON document, "lines" for one per frame. `bms` is the family of
    the frames that do not prove theirs (None: each must)."""
    status = 0
    previous: Previous | None = None  # the request just before, for the reply that follows
    documents = []
    frames = Frames(arguments)
    for text, side in frames:
        decoded = ({"spy": side} if side else {}) | decode_one(text, reply_to, previous, bms)
        previous = None
        if decoded.get("direction") == "request":
            family = families.family(decoded.get("bms", families.DEFAULT))
            previous = (family.commands[decoded["command"]], decoded["fanout"], family)
        if "error" in decoded:
            status = 1
        if as_json:
            document = decoded | ({"result": as_dict(decoded["result"])} if "result" in decoded else {})
            if as_json == "lines":
                print(json.dumps(document, ensure_ascii=False), flush=True)
            else:
                documents.append(document)
        else:
            print("\n".join(_text(decoded, verbose)), flush=True)
    if as_json == "array":
        print(json.dumps(documents, ensure_ascii=False, indent=2))
    if frames.skipped:
        print(f"pylontech: {frames.skipped} line(s) without a frame skipped", file=sys.stderr)
    return status


def _text(decoded: dict[str, Any], verbose: bool) -> list[str]:
    lines = [f"{decoded['spy']} {decoded['frame']}" if "spy" in decoded else decoded["frame"]]
    if "error" in decoded:
        return [*lines, f"  error: {decoded['error']}"]
    what = decoded["command"] + (" fan-out" if decoded.get("fanout") else "")
    if "bms" in decoded:
        what = f"{families.family(decoded['bms']).title} {what}"
    lines.append(
        f"  {decoded['direction']} {what}, ADR 0x{decoded['adr']:02X} (group {decoded['group']}, "
        f"module {decoded['module']}), VER 0x{decoded['ver']:02X}"
    )
    if "result" in decoded:
        lines += render_text(decoded["result"], "    ", verbose)
    return lines
