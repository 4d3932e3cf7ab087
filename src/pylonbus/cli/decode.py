"""`pylontech --decode`: decode frames pasted from logs, one by one, naming the command of each."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import ProtocolError
from ..protocol import Command, decode_reply, infer_command, parse_frame
from ..protocol.families.pylontech.family import WRITES
from ..protocol.family import FANOUT, command_names
from .render import as_dict, render_text

# A frame anywhere in a line of a log: `2024-05-01 10:00:00 TX ~20024642E00202FD33`.
FRAME_IN_TEXT = re.compile(r"~[0-9A-Fa-f]+")
READS = [c for c in Command if c not in WRITES]


def parse_command(text: str) -> Command:
    """A read command from its hex code (`42`, `0x42`) or name (`ANALOG`)."""
    known = f"known: {command_names(READS)}"
    name = text.strip().upper()
    if name in Command.__members__ and Command[name] not in WRITES:
        return Command[name]
    try:
        code = int(name.removeprefix("0X"), 16)
    except ValueError:
        raise ValueError(f"unknown command {text!r}; {known}") from None
    if code not in {int(c) for c in READS}:
        raise ValueError(f"unknown command 0x{code:02X}; {known}")
    return Command(code)


class Frames:
    """The frames of the arguments and of standard input ('-'), and how many lines held none."""

    def __init__(self, arguments: list[str]) -> None:
        self.arguments = arguments
        self.skipped = 0

    def __iter__(self) -> Iterator[str]:
        for argument in self.arguments:
            yield from self._found(sys.stdin if argument == "-" else [argument])

    def _found(self, lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            match = FRAME_IN_TEXT.search(line)
            if match:
                yield match.group()
            elif line.strip():
                self.skipped += 1


def _command_of(cid2: int) -> Command | None:
    try:
        return Command(cid2)
    except ValueError:
        return None


def decode_one(text: str, reply_to: Command | None, previous: tuple[Command, bool] | None) -> dict[str, Any]:
    """What one frame says: its header, direction, command and, for a reply, the decoded result."""
    header: dict[str, Any] = {"frame": text}
    try:
        frame = parse_frame(text.encode("ascii") + b"\r")
        header |= {
            "ver": frame.ver,
            "adr": frame.adr,
            "group": frame.group,
            "module": frame.module,
            "cid1": frame.cid1,
            "cid2": frame.cid2,
            "info": frame.info.hex().upper(),
        }
        requested = _command_of(frame.cid2)
        if requested is not None:  # command codes and return codes do not overlap
            fanout = frame.info[:1] == bytes([FANOUT])
            return header | {"direction": "request", "command": requested.name, "fanout": fanout}
        header |= {"direction": "response", "rtn": frame.rtn}
        # With --command, single-module or fan-out is whichever reading consumes the INFO exactly.
        chosen: tuple[Command, bool | None] | None = (reply_to, None) if reply_to else previous or infer_command(frame)
        if chosen is None:
            raise ProtocolError(
                f"cannot tell which command this reply answers; give --command with one of {command_names(READS)}"
            )
        result = decode_reply(chosen[0], frame, fanout=chosen[1])
        fanout = hasattr(result, "modules")
        return header | {"command": chosen[0].name, "fanout": fanout, "result": result}
    except (ProtocolError, ValueError) as error:
        return header | {"error": f"{type(error).__name__}: {error}"}


def decode_frames(arguments: list[str], reply_to: Command | None, as_json: str = "", verbose: bool = False) -> int:
    """Decode every frame; a bad one prints its error and makes the exit status 1, the rest go on.
    `as_json` is "" for text, "array" for one JSON document, "lines" for one per frame."""
    status = 0
    previous: tuple[Command, bool] | None = None  # the request just before, for the reply that follows
    documents = []
    frames = Frames(arguments)
    for text in frames:
        decoded = decode_one(text, reply_to, previous)
        previous = (Command[decoded["command"]], decoded["fanout"]) if decoded.get("direction") == "request" else None
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
    lines = [decoded["frame"]]
    if "error" in decoded:
        return [*lines, f"  error: {decoded['error']}"]
    what = decoded["command"] + (" fan-out" if decoded.get("fanout") else "")
    lines.append(
        f"  {decoded['direction']} {what}, ADR 0x{decoded['adr']:02X} (group {decoded['group']}, "
        f"module {decoded['module']}), VER 0x{decoded['ver']:02X}"
    )
    if "result" in decoded:
        lines += render_text(decoded["result"], "    ", verbose)
    return lines
