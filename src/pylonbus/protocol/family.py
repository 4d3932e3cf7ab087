"""A BMS family as one description, and the requests and replies of any family worked out from it: which INFO a
request carries, and how a reply is decoded and proved (INFO consumed exactly, CID1, RTN, the echoed address).

The BMSs of this wire share the frame but not its contents: each has its VER and CID1, its commands, its way of
naming a module in a request (the ADR, a pack number, nothing for EG4) and its reply layouts. Everything that
differs is data in a `Family`; the logic here is written once, so a new family is one module in `families/`.

The contract a caller (link, poller, sinks, simulator) relies on, the same for every family:

- `families.names()`, `families.family(name)`: the families, found by listing `families/` (each module or
  package there exports `FAMILY`); `families.recognise(frame)`: the one family a reply frame proves, or None.
- `family.roles`: the command of each role, so that callers never name a family's CID2. Keys: `ANALOG` always;
  `ALARM`, `VERSION` (0x4F), `IDENTITY` (model/manufacturer), `SERIAL`, `FIRMWARE`, `PARAMETERS` where the
  family has them (`IDENTITY_ROLES` lists the ones an identity is read from, in order; Boqiang has no ALARM).
  ALARM may be the same command as ANALOG (Daren: one reply carries both; its result is then a PackAnalog and
  a PackAlarm, so a poller may read it once). `family.request(command, group, module)` builds any request,
  the INFO a family's request carries included (`request_info`, `request_tails`).
- `family.decode(family.roles[ANALOG], frame)` is a `pack.PackAnalog` (one pack); with `fanout=True` (only for
  commands in `family.fanouts`) a result whose `modules` are `pack.PackAnalog`s. The same for ALARM with
  `pack.PackAlarm` (its `alarms` lists the active alarm names).
- The result of each identity role has `identity`: a dict with some of the keys "model", "manufacturer",
  "serial", "firmware".
- `pack.extras(result)`: what a result reports beyond `PackAnalog`, with unit, description and state class.
- `family.address(group, module)` is the ADR of a module (modules 1..`max_module`, groups 0..`max_group`; 0
  where the family has no groups) and `family.locate(adr)` its inverse (`Frame.module` is Pylontech's numbering).
- The simulator: `sim.responders.responder_class(name)` plays the family; its `presets` are its models,
  `default_model` the one a bare `--bms` plays, `parse_stack(spec, ...)` builds a `sim.Stack` of them;
  `pylontech-sim --bms NAME` and `sim://?bms=NAME` choose it.

The tables a decode uses are attributes of the family, read once a call like the module globals they replace,
so a family costs the hot path no extra call (benchmarks/decode.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import IntEnum
from functools import partial
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from ..errors import DecodeError, ImplausibleValue, ProtocolError, ResponseError
from .frame import RTN_TEXT, UNKNOWN_RTN, Frame, encode_frame, split_address
from .layout import Layout

C = TypeVar("C", bound=IntEnum)
R = TypeVar("R")

FANOUT = 0xFF  # INFO command value asking the master for every pack of its group
GET_VERSION = 0x4F  # CID2 whose reply carries the protocol version in VER (and no INFO, unless a layout says)

# The roles of `Family.roles`.
ANALOG = "analog"
ALARM = "alarm"
VERSION = "version"
IDENTITY = "identity"
SERIAL = "serial"
FIRMWARE = "firmware"
PARAMETERS = "parameters"
#: The roles whose results make a module's identity (`identity` of each), read in this order.
IDENTITY_ROLES = (IDENTITY, SERIAL, FIRMWARE)


@dataclass(slots=True)
class ProtocolVersion:
    """0x4F: the protocol version a module speaks, carried in the VER byte (0x20 → "2.0")."""

    version: int
    """The VER byte of the reply: 0x20 for protocol 2.0 (see `version_text`)."""

    @property
    def version_text(self) -> str:
        """The protocol version as text: "2.0", "3.5" …"""
        return f"{self.version >> 4}.{self.version & 0xF}"


def numbered(
    title: str, first: int, max_module: int
) -> tuple[Callable[[int, int], int], Callable[[int], tuple[int, int]]]:
    """`address` and `locate` of a family without groups, whose packs 1..max_module answer from ADR `first` on
    (their DIP address, set on each pack)."""

    def address(group: int, module: int) -> int:
        if group:
            raise ValueError(f"group {group}: {title} packs have no groups, only addresses")
        if not 1 <= module <= max_module:
            raise ValueError(f"module {module} is out of range 1..{max_module}")
        return module - 1 + first

    def locate(adr: int) -> tuple[int, int]:
        return 0, adr + 1 - first

    return address, locate


def address_byte(adr: int, fanout: bool) -> bytes:
    """The INFO of an addressed request that names the module by its ADR, or asks for its group (0xFF)."""
    return bytes([FANOUT if fanout else adr])


@dataclass(frozen=True, slots=True, eq=False)
class Family(Generic[C, R]):
    """What one BMS family sends and answers. `R` is the union of its result types."""

    name: str  # as `--bms` and the registry know it: the module's name in `families/`
    title: str  # as a person knows it, in messages
    ver: int  # VER of the requests it is sent
    cid1: int
    commands: type[C]  # its CID2 codes
    #: Reply layout of each command addressed to one module.
    replies: Mapping[C, Layout[Any]]
    #: Reply layout of the commands the master answers for its whole group (request INFO 0xFF).
    fanouts: Mapping[C, Layout[Any]]
    #: Commands whose request INFO names the module (`request_info`); their replies echo it as `command_value`.
    addressed: frozenset[C]
    #: Commands that change the battery: never sent unless the caller asks by name.
    writes: frozenset[C]
    address: Callable[[int, int], int]  # the ADR of (group, module)
    info_addresses: Callable[[int], tuple[int, ...]]  # the ways a request's INFO may name the module at an ADR
    max_module: int  # modules a group holds at most: the end of a scan, the worst case of a fan-out
    #: The command of each role (`ANALOG`, `ALARM`, … above): what callers ask for instead of a CID2.
    roles: Mapping[str, C]
    #: Longest reply of each command to one module, in bytes on the wire (for reply timeouts).
    reply_bytes: Mapping[C, int]
    #: What each further pack adds to a fan-out reply, in bytes on the wire.
    pack_bytes: Mapping[C, int]
    request_info: Callable[[int, bool], bytes] = address_byte  # INFO of an addressed request: (ADR, fan-out)
    #: What an addressed request of these commands carries after the address (Daren's operation and module).
    request_tails: Mapping[C, bytes] = field(default_factory=dict)
    rtn_texts: Mapping[int, str] = field(default_factory=partial(MappingProxyType, RTN_TEXT))
    max_group: int = 0  # groups 0..max_group share the bus; 0 where the family has no groups
    locate: Callable[[int], tuple[int, int]] = split_address  # (group, module) of an ADR: `address` reversed
    longest_reply: int = field(init=False)
    #: `info_addresses` of every ADR, so that a decode looks them up rather than calls for them.
    echoes: tuple[tuple[int, ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "longest_reply", max(self.reply_bytes.values()))
        object.__setattr__(self, "echoes", tuple(self.info_addresses(adr) for adr in range(256)))

    def rtn_meaning(self, rtn: int) -> str:
        return self.rtn_texts.get(rtn, UNKNOWN_RTN)

    # The request's parameters are Link.query's: the link passes them on to the family that builds the frame.
    def request(
        self,
        command: C,
        group: int = 0,
        module: int = 1,
        *,
        fanout: bool = False,
        info: bytes | None = None,
        ver: int | None = None,
    ) -> bytes:
        """The request frame for `command` to a module. An addressed command names the module in its INFO
        (`request_info`); `fanout` asks the group's master (module 1) for all packs with INFO 0xFF."""
        command = self.commands(command)
        if fanout and command not in self.fanouts:
            names = " and ".join(c.name for c in self.fanouts)
            raise ValueError(f"{command.name} has no fan-out form; only {names} do")
        adr = self.address(group, 1 if fanout else module)
        if info is None:
            info = (
                self.request_info(adr, fanout) + self.request_tails.get(command, b"")
                if command in self.addressed
                else b""
            )
        return encode_frame(self.ver if ver is None else ver, adr, command, info, self.cid1)

    def _read(self, command: C, frame: Frame, fanout: bool) -> R:
        layout = (self.fanouts if fanout else self.replies).get(command)
        if layout is None:
            raise DecodeError(f"no {'fan-out ' if fanout else ''}reply layout for CID2 0x{command:02X}")
        try:
            result: R
            result, end = layout.read(frame.info, 0)
            if end != len(frame.info):
                layout.decode(frame.info)  # raises the error of the bytes left over
        except ImplausibleValue as error:
            error.locate(f"the master {self._where(frame)}" if fanout else self._where(frame))
            raise
        if not fanout and command in self.addressed:
            # A module echoes the address it was asked for; anything else is another module's reply or a
            # misread frame.
            echo, adr = getattr(result, "command_value", None), frame.adr
            if echo is not None and echo not in (self.echoes[adr] if 0 <= adr <= 0xFF else self.info_addresses(adr)):
                raise DecodeError(
                    f"{self.commands(command).name} reply from ADR 0x{frame.adr:02X} names address 0x{echo:02X} "
                    "in its INFO: it answers another request"
                )
        return result

    def decode(self, command: C, frame: Frame, *, fanout: bool | None = None) -> R | ProtocolVersion:
        """The typed result of a response frame to `command`, its INFO consumed exactly.

        `fanout` says whether the request asked for the whole group (INFO 0xFF); None chooses the reading that
        consumes the INFO exactly, the single-module one first. Raises `ResponseError` for a non-zero RTN,
        `ImplausibleValue` for values no battery has and `DecodeError` for everything else that does not fit."""
        if frame.cid1 != self.cid1:
            raise DecodeError(f"CID1 is 0x{frame.cid1:02X}: not a reply of a {self.title} battery (0x{self.cid1:02X})")
        if frame.cid2:  # the RTN of a reply
            raise ResponseError(frame.cid2, frame.adr, self.rtn_meaning(frame.cid2))
        if command == GET_VERSION and command not in self.replies:
            if frame.info:
                raise DecodeError(f"a PROTOCOL_VERSION reply carries no INFO, this one has {len(frame.info)} byte(s)")
            return ProtocolVersion(frame.ver)
        if fanout is not None or command not in self.fanouts:
            return self._read(command, frame, bool(fanout))
        try:
            return self._read(command, frame, False)
        except ProtocolError as single:
            try:
                return self._read(command, frame, True)
            except ProtocolError as group:
                if isinstance(single, ImplausibleValue) and isinstance(group, ImplausibleValue):
                    raise single from None  # both readings reach the same impossible value
                raise DecodeError(
                    f"{self.commands(command).name} reply of {len(frame.info)} INFO bytes fits neither the "
                    f"single-module reading ({single}) nor the fan-out one ({group})"
                ) from None

    def _where(self, frame: Frame) -> str:
        return f"module {self.locate(frame.adr)[1]} (ADR 0x{frame.adr:02X})"

    def infer_command(self, frame: Frame) -> tuple[C, bool] | None:
        """The (command, fanout) whose layout reads a response's INFO exactly, or None when that is not clear:
        printable text, then the shortest firmware tail; a tie between different commands is not guessed."""
        if frame.rtn or frame.cid1 != self.cid1:
            return None
        if not frame.info and GET_VERSION not in self.replies:
            return self.commands(GET_VERSION), False  # the only read whose reply carries no INFO
        scored: list[tuple[int, C, bool]] = []
        for fanout, table in ((False, self.replies), (True, self.fanouts)):
            for command in table:
                if command in self.writes:
                    continue
                try:
                    result = self._read(command, frame, fanout)
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


def _plausible(result: Any) -> bool:
    return all(value.isprintable() for f in fields(result) if isinstance(value := getattr(result, f.name), str))


def command_names(commands: Iterable[IntEnum]) -> str:
    return ", ".join(f"0x{c:02X} {c.name}" for c in commands)
