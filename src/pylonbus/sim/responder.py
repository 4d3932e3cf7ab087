"""The simulator's bus side, without I/O: a request frame in, the reply bytes (or silence) out."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields

from ..errors import ChecksumError, FrameError, LengthChecksumError, ProtocolError
from ..protocol.families.pylontech.codes import Command, info_addresses
from ..protocol.families.pylontech.family import ADDRESSED, DEFAULT_VER
from ..protocol.families.pylontech.layouts import CHARGE_DISCHARGE_SETTING, FANOUT_LAYOUTS, REPLY_LAYOUTS
from ..protocol.families.pylontech.results import ChargeDischargeInfo, SystemAlarmInfo, SystemAnalogData
from ..protocol.family import FANOUT
from ..protocol.frame import CID1_BATTERY, MIN_FRAME, Rtn, encode_frame, parse_frame
from .model import Module, Stack, field_values


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


class Responder:
    """Answers requests like the modules of a stack would, with optional faults."""

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
            return self._rtn(adr, rtn) if adr is not None and adr in self.stack.modules else None
        except FrameError:
            return None
        module = self.stack.modules.get(frame.adr)
        if module is None or module.off:
            return None
        if frame.cid1 != CID1_BATTERY:
            return self._rtn(frame.adr, Rtn.CID2_INVALID)
        try:
            command = Command(frame.cid2)
        except ValueError:
            return self._rtn(frame.adr, Rtn.CID2_INVALID)
        if command == Command.PROTOCOL_VERSION:
            return encode_frame(DEFAULT_VER, frame.adr, Rtn.NORMAL)
        fanout = False
        if command in ADDRESSED:
            if len(frame.info) < 1:
                return self._rtn(frame.adr, Rtn.COMMAND_FORMAT_ERROR)
            target = frame.info[0]
            fanout = target == FANOUT and command in FANOUT_LAYOUTS and module.number == 1
            if not fanout and target not in info_addresses(frame.adr):
                return self._rtn(frame.adr, Rtn.ADR_ERROR)
        try:
            info = self._info(command, module, frame.info, fanout)
        except (ProtocolError, ValueError):
            return self._rtn(frame.adr, Rtn.INVALID_DATA)
        if info is None:
            return self._rtn(frame.adr, Rtn.CID2_INVALID)
        return encode_frame(DEFAULT_VER, frame.adr, Rtn.NORMAL, info)

    def _info(self, command: Command, module: Module, request_info: bytes, fanout: bool) -> bytes | None:
        if fanout:
            group = [m for m in self.stack.group_modules(module.group) if not m.off]  # a module turned off is gone
            result: object
            if command == Command.ANALOG:
                result = SystemAnalogData(0x11, tuple(m.pack() for m in group))
            else:
                result = SystemAlarmInfo(0, tuple(m.pack_alarm() for m in group))
            return FANOUT_LAYOUTS[command].encode(result)
        if command == Command.SET_CHARGE_DISCHARGE:
            setting = CHARGE_DISCHARGE_SETTING.decode(request_info)
            module.limits = ChargeDischargeInfo(**field_values(setting), status=module.charge_discharge().status)
            return b""
        if command == Command.TURN_OFF:
            module.off = True
            return b""
        readers: dict[Command, Callable[[], object]] = {
            Command.ANALOG: module.analog,
            Command.ALARM: module.alarm,
            Command.SYSTEM_PARAMETERS: module.parameters,
            Command.MANUFACTURER: module.manufacturer,
            Command.CHARGE_DISCHARGE: module.charge_discharge,
            Command.SERIAL_NUMBER: module.serial_number,
            Command.FIRMWARE: module.firmware,
        }
        source = readers.get(command)
        return None if source is None else REPLY_LAYOUTS[command].encode(source())

    @staticmethod
    def _rtn(adr: int | None, rtn: Rtn) -> bytes:
        return encode_frame(DEFAULT_VER, adr or 0, rtn)

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
