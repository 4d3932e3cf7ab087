"""`pylontech --decode`: decode frames pasted from logs, one by one, naming the command of each."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from ..errors import ProtocolError
from ..protocol import Command, decode_reply, infer_command, parse_frame
from ..protocol.codes import FANOUT
from ..protocol.commands import command_names
from ..protocol.layouts import REPLY_LAYOUTS
from ..render import as_dict, render_text


def frames_from(arguments: list[str]) -> Iterable[str]:
    for argument in arguments:
        if argument == "-":
            yield from (line.strip() for line in sys.stdin if line.strip())
        else:
            yield argument.strip()


def _command_of(cid2: int) -> Command | None:
    try:
        return Command(cid2)
    except ValueError:
        return None


def decode_frames(arguments: list[str], command: int | None, as_json: bool) -> int:
    """Decode every frame; a bad one prints its error and makes the exit status 1, the rest go on."""
    status = 0
    previous: tuple[Command, bool] | None = None  # the request just before, for the reply that follows
    for text in frames_from(arguments):
        raw = text.encode("latin-1", "replace")
        if not raw.endswith(b"\r"):
            raw += b"\r"
        header: dict[str, Any] = {"frame": text}
        try:
            frame = parse_frame(raw)
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
                header |= {"direction": "request", "command": requested.name, "fanout": fanout}
                previous = (requested, fanout)
                result = None
            else:
                header["direction"] = "response"
                header["rtn"] = frame.rtn
                if command is not None:
                    chosen: tuple[Command, bool] | None = (Command(command), False)
                else:
                    chosen = previous or infer_command(frame)
                previous = None
                if chosen is None:
                    raise ProtocolError(
                        "cannot tell which command this reply answers; give --command with one of "
                        + command_names(REPLY_LAYOUTS)
                    )
                header |= {"command": chosen[0].name, "fanout": chosen[1]}
                result = decode_reply(chosen[0], frame, fanout=chosen[1])
        except (ProtocolError, ValueError) as error:
            status = 1
            header["error"] = f"{type(error).__name__}: {error}"
            result = None
        _print(header, result, as_json)
    return status


def _print(header: dict[str, Any], result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(header | ({"result": as_dict(result)} if result is not None else {}), ensure_ascii=False))
        return
    print(header["frame"])
    if "error" in header:
        print(f"  error: {header['error']}")
        return
    what = header["command"] + (" fan-out" if header.get("fanout") else "")
    print(
        f"  {header['direction']} {what}, ADR 0x{header['adr']:02X} (group {header['group']}, "
        f"module {header['module']}), VER 0x{header['ver']:02X}"
    )
    if result is not None:
        print("\n".join(render_text(result, "    ")))
