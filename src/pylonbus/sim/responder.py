"""The simulator's bus side, without I/O: a request frame in, the reply bytes (or silence) out.

What every family's responder shares is here: the frame checks and return codes, the addressing of a request,
the faults and the statistics, all read from the family's description. What a family answers to each of its
commands is its own subclass in `responders/`."""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any, ClassVar

from ..errors import ChecksumError, FrameError, LengthChecksumError, ProtocolError
from ..protocol.family import FANOUT, GET_VERSION, Family
from ..protocol.frame import MIN_FRAME, Rtn, encode_frame, parse_frame
from .model import Module, Preset, Stack


@dataclass
class Faults:
    """Misbehaviour to inject, each a probability per reply (delay in seconds)."""

    no_reply: float = 0.0
    corrupt: float = 0.0
    noise: float = 0.0
    truncate: float = 0.0
    delay: float = 0.0

    def __post_init__(self) -> None:
        for name in self.names():
            value = getattr(self, name)
            if name == "delay":
                if not 0 <= value <= 60:
                    raise ValueError(f"delay {value} is out of range 0-60 seconds")
            elif not 0 <= value <= 1:
                raise ValueError(f"{name} {value} is out of range 0-1 (a probability per reply)")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class Stats:
    requests: int = 0
    replies: int = 0
    silent: int = 0


class Responder(ABC):
    """Answers requests like the modules of a stack of one family would, with optional faults."""

    family: ClassVar[Family[Any, Any]]
    presets: ClassVar[Mapping[str, Preset]]  # the models of the family the simulator can play
    default_model: ClassVar[str]

    @classmethod
    def parse_stack(cls, spec: str, **kwargs: float) -> Stack:
        """`Stack.parse` with this family's models and addresses."""
        return Stack.parse(spec, presets=cls.presets, family=cls.family, **kwargs)

    def __init__(self, stack: Stack, faults: Faults | None = None, seed: int = 0) -> None:
        self.stack = stack
        self.faults = faults or Faults()
        self._rng = random.Random(seed ^ 0x5EED)
        self.stats = Stats()
        self._lock = threading.Lock()  # TCP clients share one stack, each on its own thread

    def handle(self, raw: bytes, now: float) -> bytes | None:
        """Reply bytes for one request frame (`~` … CR) received at wall time `now`, or None for silence."""
        with self._lock:
            return self._handle(raw, now)

    def _handle(self, raw: bytes, now: float) -> bytes | None:
        self.stats.requests += 1
        self.stack.advance(now)
        reply = self._answer(raw)
        if reply is not None:
            reply = self._inject(reply)
        if reply is None:
            self.stats.silent += 1
        else:
            self.stats.replies += 1
        return reply

    def _answer(self, raw: bytes) -> bytes | None:
        try:
            frame = parse_frame(raw)
        except (ChecksumError, LengthChecksumError) as error:
            rtn = Rtn.CHKSUM_ERROR if isinstance(error, ChecksumError) else Rtn.LCHKSUM_ERROR
            adr = _header_address(raw)
            return self._reply(adr, rtn) if adr is not None and adr in self.stack.modules else None
        except FrameError:
            return None
        module = self.stack.modules.get(frame.adr)
        if module is None or module.off:
            return None
        family = self.family
        if frame.cid1 != family.cid1:
            return self._reply(frame.adr, Rtn.CID2_INVALID)
        try:
            command: IntEnum = family.commands(frame.cid2)
        except ValueError:
            return self._reply(frame.adr, Rtn.CID2_INVALID)
        if command == GET_VERSION and command not in family.replies:
            return self._reply(frame.adr, Rtn.NORMAL)
        fanout = False
        if command in family.addressed:
            if len(frame.info) < 1:
                return self._reply(frame.adr, Rtn.COMMAND_FORMAT_ERROR)
            target = frame.info[0]
            fanout = target == FANOUT and command in family.fanouts and module.number == 1
            if not fanout and target not in family.info_addresses(frame.adr):
                return self._reply(frame.adr, Rtn.ADR_ERROR)
            if frame.info[1:] != family.request_tails.get(command, frame.info[1:]):
                return self._reply(frame.adr, Rtn.INVALID_DATA)  # an operation or module not simulated
        try:
            info = self._info(command, module, frame.info, fanout)
        except (ProtocolError, ValueError):
            return self._reply(frame.adr, Rtn.INVALID_DATA)
        if info is None:
            return self._reply(frame.adr, Rtn.CID2_INVALID)
        return self._reply(frame.adr, Rtn.NORMAL, info)

    @abstractmethod
    def _info(self, command: Any, module: Module, request_info: bytes, fanout: bool) -> bytes | None:
        """The reply INFO of `module` (the master's of its group for a fan-out) to `command`; None for a
        command it does not answer."""

    def _reply(self, adr: int | None, rtn: Rtn, info: bytes = b"") -> bytes:
        return encode_frame(self.family.ver, adr or 0, rtn, info, self.family.cid1)

    def _inject(self, reply: bytes) -> bytes | None:
        faults, rng = self.faults, self._rng
        if faults.no_reply and rng.random() < faults.no_reply:
            return None
        if faults.corrupt and rng.random() < faults.corrupt:
            pos = rng.randrange(1, len(reply) - 1)
            flipped = b"0" if reply[pos] != ord("0") else b"1"
            reply = reply[:pos] + flipped + reply[pos + 1 :]
        if faults.truncate and rng.random() < faults.truncate:
            reply = reply[: rng.randrange(1, len(reply) - 1)]
        if faults.noise and rng.random() < faults.noise:
            reply = bytes(rng.choice(b"\x00\xff\r~AZ09") for _ in range(rng.randrange(1, 8))) + reply
        return reply


def _header_address(raw: bytes) -> int | None:
    if len(raw) < MIN_FRAME:
        return None
    try:
        return int(raw[3:5], 16)
    except ValueError:
        return None
