"""The stack client: a port opened by pyserial URL, replies read and validated, retries and reopen, and a
group of modules with one method per command."""

from __future__ import annotations

import logging
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import serial

from .errors import LinkError, NoReplyError, PortBusyError, PortError, ProtocolError, ResponseError
from .protocol import (
    WRITES,
    AlarmInfo,
    AnalogData,
    ChargeDischargeInfo,
    ChargeDischargeSetting,
    Command,
    FirmwareInfo,
    Frame,
    FrameReader,
    ManufacturerInfo,
    ProtocolVersion,
    Result,
    SerialNumber,
    SystemAlarmInfo,
    SystemAnalog,
    SystemAnalogData,
    SystemParameters,
    address,
    decode_reply,
    request,
)
from .protocol.codes import MAX_MODULE
from .protocol.layouts import CHARGE_DISCHARGE_SETTING
from .sim import register_url_handler

log = logging.getLogger(__name__)
R = TypeVar("R")

DEFAULT_PORT = "/dev/ttyUSB_pylontech"
DEFAULT_BAUD = 115200
BAUD_RANGE = (1200, 500000)
DEFAULT_LATENCY = 0.05  # s a module may take before its reply starts (seen: well under 20 ms)
TRIES = 3
BITS_PER_BYTE = 10

# Longest reply each command can produce, in bytes on the wire (16 cells, 6 temperatures, 3-byte capacities).
_PACK_ANALOG = 1 + 16 * 2 + 1 + 6 * 2 + 2 + 2 + 2 + 1 + 2 + 2 + 6
_PACK_ALARM = 1 + 16 + 1 + 6 + 3 + 5
_FRAME = 18
_REPLY_BYTES = {
    Command.PROTOCOL_VERSION: _FRAME,
    Command.ANALOG: _FRAME + 2 * (2 + _PACK_ANALOG),
    Command.ALARM: _FRAME + 2 * (3 + _PACK_ALARM),
    Command.SYSTEM_PARAMETERS: _FRAME + 50,
    Command.MANUFACTURER: _FRAME + 64,
    Command.SYSTEM_ANALOG: _FRAME + 98,
    Command.CHARGE_DISCHARGE: _FRAME + 20,
    Command.SERIAL_NUMBER: _FRAME + 34,
    Command.FIRMWARE: _FRAME + 12,
}


def reply_timeout(command: Command, baud: int, latency: float = DEFAULT_LATENCY, modules: int = 1) -> float:
    """Time to wait for a whole reply: the module's latency plus the wire time of the longest reply
    (for a fan-out, `modules` packs), with a 25 % margin on the wire time."""
    size = _REPLY_BYTES.get(command, _FRAME + 64)
    if modules > 1:
        pack = _PACK_ANALOG if command == Command.ANALOG else _PACK_ALARM
        size += 2 * pack * (modules - 1)
    return latency + 1.25 * size * BITS_PER_BYTE / baud


def describe(port: str, baud: int, group: int, module: int) -> str:
    return f"module {module} (ADR 0x{address(group, module):02X}) on {port} at {baud} Bd"


class Link:
    """One port to the RS485 bus: device path, `socket://`, `rfc2217://` or `sim://`."""

    def __init__(
        self,
        port: str = DEFAULT_PORT,
        baud: int = DEFAULT_BAUD,
        *,
        latency: float = DEFAULT_LATENCY,
        timeout: float | None = None,
        tries: int = TRIES,
    ) -> None:
        if not BAUD_RANGE[0] <= baud <= BAUD_RANGE[1]:
            raise ValueError(f"baud rate {baud} is out of range {BAUD_RANGE[0]}-{BAUD_RANGE[1]}")
        register_url_handler()
        self.port = port
        self.baud = baud
        self.latency = latency
        self.timeout = timeout  # fixed reply timeout, replacing the computed one
        self.tries = tries
        self._serial: serial.SerialBase | None = None
        self._reader = FrameReader()
        self._settings: list[Any] | None = None  # termios of a local device, as opened
        self.errors = 0  # failed attempts since creation

    # -- port ---------------------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._serial is not None and self._serial.is_open

    @property
    def serial(self) -> serial.SerialBase:
        """The pyserial object (opened on first use)."""
        return self.open()

    def open(self) -> serial.SerialBase:
        """Open the port; after `close` the same pyserial object is reopened, as after a USB reset."""
        port = self._serial
        if port is not None and port.is_open:
            return port
        try:
            if port is None:
                kwargs: dict[str, Any] = {"baudrate": self.baud, "timeout": 0.1, "write_timeout": 2.0}
                if "://" not in self.port:
                    kwargs["exclusive"] = True
                port = serial.serial_for_url(self.port, **kwargs)
            else:
                port.open()
        except serial.SerialException as error:
            raise _port_error(self.port, error) from None
        except (OSError, ValueError) as error:
            raise PortError(f"cannot open {self.port}: {error}") from None
        self._serial = port
        self._reader.clear()
        self._settings = termios.tcgetattr(port.fileno()) if isinstance(port, serial.Serial) else None
        log.debug("opened %s at %d Bd", self.port, self.baud)
        return port

    def _restore_settings(self, port: serial.SerialBase) -> None:
        """Put back the line settings if another program changed them (seen on Victron GX devices, whose
        services probe serial ports): a changed baud rate or line discipline would garble every reply."""
        if self._settings is None:
            return
        if termios.tcgetattr(port.fileno()) != self._settings:
            log.warning(
                "settings of %s were altered externally (is another program using it?); restoring them", self.port
            )
            termios.tcsetattr(port.fileno(), termios.TCSANOW, self._settings)

    def close(self) -> None:
        if self._serial is not None:
            with suppress(OSError, serial.SerialException, termios.error):
                self._serial.close()

    def __enter__(self) -> Link:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------------------------
    def transact(self, frame: bytes, adr: int, timeout: float) -> Frame:
        """Send one request and return the first valid reply from `adr` within `timeout` seconds.
        One attempt: raises NoReplyError, a ProtocolError (the last broken frame seen) or PortError."""
        port = self.open()
        try:
            self._restore_settings(port)
            port.reset_input_buffer()
            self._reader.clear()
            log.log(5, "TX %s", frame)
            port.write(frame)
            return self._read_reply(port, adr, timeout)
        except (serial.SerialException, OSError, termios.error) as error:
            self.close()  # the adapter went away: the next attempt reopens it
            raise PortError(f"{self.port} failed: {error}; is the adapter still connected?") from None

    def _read_reply(self, port: serial.SerialBase, adr: int, timeout: float) -> Frame:
        reader = self._reader
        broken: ProtocolError | None = None
        # Setting pyserial's timeout reconfigures the port (tcsetattr), so it is set once per timeout, not per
        # read; a reply cut short may then be waited for up to one timeout past the deadline.
        if port.timeout != timeout:
            port.timeout = timeout
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() >= deadline:
                if broken is not None:
                    raise broken
                raise NoReplyError("no reply")
            data = port.read(max(reader.missing(), port.in_waiting))
            if not data:
                continue
            reader.feed(data)
            while True:
                try:
                    reply = reader.next_frame()
                except ProtocolError as error:
                    log.debug("discarding broken frame: %s", error)
                    broken = error
                    continue
                if reply is None:
                    break
                log.log(5, "RX ADR 0x%02X RTN 0x%02X INFO %s", reply.adr, reply.cid2, reply.info.hex().upper())
                if reply.adr == adr:
                    return reply
                log.debug("ignoring a frame from ADR 0x%02X while waiting for 0x%02X", reply.adr, adr)

    def query(
        self,
        command: Command,
        group: int = 0,
        module: int = 1,
        *,
        fanout: bool = False,
        info: bytes | None = None,
        tries: int | None = None,
        latency: float | None = None,
        allow_write: bool = False,
        modules: int = MAX_MODULE,
    ) -> Result:
        """Send `command` to a module and decode its reply, retrying like the C program: up to three tries,
        the port closed and reopened after the second failure. Commands that change the battery (0x94,
        0x95) are refused unless `allow_write` is true."""
        command = Command(command)
        if command in WRITES and not allow_write:
            raise PermissionError(f"{command.name} (0x{command:02X}) changes the battery; pass allow_write=True")
        frame = request(command, group, module, fanout=fanout, info=info)
        adr = address(group, 1 if fanout else module)
        timeout = self.timeout or reply_timeout(
            command, self.baud, self.latency if latency is None else latency, modules if fanout else 1
        )
        tries = self.tries if tries is None else tries
        where = describe(self.port, self.baud, group, 1 if fanout else module)
        last: Exception | None = None
        for attempt in range(1, tries + 1):
            try:
                reply = self.transact(frame, adr, timeout)
                return decode_reply(command, reply, fanout=fanout)
            except ResponseError:
                raise  # the module answered: retrying won't help
            except (LinkError, ProtocolError) as error:
                last = error
                self.errors += 1
                log.debug("%s: attempt %d/%d failed: %s", where, attempt, tries, error)
                if attempt == 2 and tries > 2:
                    self.close()
                    time.sleep(0.5)
        if isinstance(last, NoReplyError):
            raise NoReplyError(
                f"no reply from {where} to {command.name} after {tries} tr{'ies' if tries > 1 else 'y'} — "
                "check the group DIP switches, the baud rate and the A/B wiring"
            )
        if isinstance(last, ProtocolError):
            raise type(last)(f"{where}: {last}")
        assert last is not None
        raise last


def _port_error(port: str, error: serial.SerialException) -> PortError:
    text = str(error)
    if "exclusively lock" in text or "Resource temporarily unavailable" in text or "Device or resource busy" in text:
        return PortBusyError(
            f"{port} is in use by another process (find it with: fuser -v {port}); stop it or use another adapter"
        )
    if "No such file" in text or "could not open port" in text:
        return PortError(f"cannot open {port}: {text}. Is the USB-RS485 adapter plugged in? Check `ls /dev/tty*`")
    if "Permission denied" in text:
        return PortError(f"cannot open {port}: permission denied; add your user to the 'dialout' group")
    return PortError(f"cannot open {port}: {text}")


@dataclass(frozen=True)
class ScanProgress:
    module: int
    found: bool


class Stack:
    """The modules of one group on a link, with one method per read command."""

    def __init__(self, link: Link, group: int = 0) -> None:
        address(group, 1)  # validates the group
        self.link = link
        self.group = group
        self.modules: list[int] = []

    def scan(self, progress: Callable[[ScanProgress], None] | None = None, probe_latency: float = 0.04) -> list[int]:
        """Find the modules 1–14 that answer, gaps included. Each address is probed once; addresses in a gap
        below the last module found get a second chance, so one lost reply does not hide a module."""
        found: list[int] = []
        for module in range(1, MAX_MODULE + 1):
            present = self._probe(module, probe_latency)
            if present:
                found.append(module)
            if progress:
                progress(ScanProgress(module, present))
        if found:
            gaps = [m for m in range(1, found[-1]) if m not in found]
            found += [m for m in gaps if self._probe(m, probe_latency * 2)]
        self.modules = sorted(found)
        return self.modules

    def _probe(self, module: int, latency: float) -> bool:
        try:
            self.link.query(Command.PROTOCOL_VERSION, self.group, module, tries=1, latency=latency)
        except ResponseError:
            return True  # it answered, even if with an error code
        except (NoReplyError, ProtocolError):
            return False
        return True

    def _one(self, command: Command, module: int, cls: type[R]) -> R:
        return cast(R, self.link.query(command, self.group, module))

    def protocol_version(self, module: int = 1) -> ProtocolVersion:
        return self._one(Command.PROTOCOL_VERSION, module, ProtocolVersion)

    def analog(self, module: int = 1) -> AnalogData:
        return self._one(Command.ANALOG, module, AnalogData)

    def alarm(self, module: int = 1) -> AlarmInfo:
        return self._one(Command.ALARM, module, AlarmInfo)

    def system_parameters(self, module: int = 1) -> SystemParameters:
        return self._one(Command.SYSTEM_PARAMETERS, module, SystemParameters)

    def manufacturer(self, module: int = 1) -> ManufacturerInfo:
        return self._one(Command.MANUFACTURER, module, ManufacturerInfo)

    def charge_discharge(self, module: int = 1) -> ChargeDischargeInfo:
        return self._one(Command.CHARGE_DISCHARGE, module, ChargeDischargeInfo)

    def serial_number(self, module: int = 1) -> SerialNumber:
        return self._one(Command.SERIAL_NUMBER, module, SerialNumber)

    def firmware(self, module: int = 1) -> FirmwareInfo:
        return self._one(Command.FIRMWARE, module, FirmwareInfo)

    def system_analog(self) -> SystemAnalog:
        """0x61, protocol V3.5 masters only: totals for the whole system."""
        return self._one(Command.SYSTEM_ANALOG, 1, SystemAnalog)

    def analog_all(self) -> SystemAnalogData:
        """0x42 fan-out: every pack of the group in one reply from the master (not all firmwares have it)."""
        count = len(self.modules) or MAX_MODULE
        return cast(SystemAnalogData, self.link.query(Command.ANALOG, self.group, fanout=True, modules=count))

    def alarm_all(self) -> SystemAlarmInfo:
        count = len(self.modules) or MAX_MODULE
        return cast(SystemAlarmInfo, self.link.query(Command.ALARM, self.group, fanout=True, modules=count))

    def set_charge_discharge(self, module: int, setting: ChargeDischargeSetting, *, allow_write: bool = False) -> None:
        """0x94: impose limits (the module reverts unless repeated within 10 s). Changes the battery."""
        info = CHARGE_DISCHARGE_SETTING.encode(setting)
        self.link.query(Command.SET_CHARGE_DISCHARGE, self.group, module, info=info, allow_write=allow_write)

    def turn_off(self, module: int, *, allow_write: bool = False) -> None:
        """0x95: switch a module off. Changes the battery."""
        self.link.query(Command.TURN_OFF, self.group, module, allow_write=allow_write)


@contextmanager
def connect(
    port: str = DEFAULT_PORT, group: int = 0, baud: int = DEFAULT_BAUD, *, scan: bool = True, **link: Any
) -> Iterator[Stack]:
    """`with connect("/dev/ttyUSB0") as stack:` — opens the port, scans the group, closes on exit."""
    with Link(port, baud, **link) as opened:
        stack = Stack(opened, group)
        if scan:
            stack.scan()
        yield stack


def read_analog(port: str = DEFAULT_PORT, group: int = 0, baud: int = DEFAULT_BAUD) -> dict[int, AnalogData]:
    """One-shot: the analog values of every module of a group, by module number."""
    with connect(port, group, baud) as stack:
        return {module: stack.analog(module) for module in stack.modules}
