"""The stack client: a port opened by pyserial URL, replies read and validated, retries and reopen, and a
group of modules with one method per command."""

from __future__ import annotations

import errno
import logging
import termios
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import serial
import serial.rfc2217
from serial import Serial

from .errors import ImplausibleValue, LinkError, NoReplyError, PortBusyError, PortError, ProtocolError, ResponseError
from .logs import FRAME
from .ports import BAUD_RANGE, DEFAULT_BAUD, DEFAULT_PORT
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
    parse_frame,
    request,
)
from .protocol.codes import MAX_MODULE
from .protocol.layouts import CHARGE_DISCHARGE_SETTING

log = logging.getLogger(__name__)
# pyserial imports `pylonbus.sim.urlhandler.protocol_sim` on the first sim:// URL: the simulator is loaded
# only by the programs that use it.
SIM_URL_HANDLERS = "pylonbus.sim.urlhandler"
NETWORK_SCHEMES = {"socket": "socket://HOST:PORT", "rfc2217": "rfc2217://HOST:PORT"}
R = TypeVar("R")

DEFAULT_LATENCY = 0.05  # s a module may take before its reply starts (seen: well under 20 ms)
TRIES = 3
REMOTE_READ_SLICE = 0.01  # s, the fixed read timeout on an RFC 2217 port
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
_LONGEST_REPLY = max(_REPLY_BYTES.values())


def register_url_handler() -> None:
    """Make `serial.serial_for_url("sim://…")` open an in-process simulator."""
    if SIM_URL_HANDLERS not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(SIM_URL_HANDLERS)


def reply_timeout(command: Command, baud: int, latency: float = DEFAULT_LATENCY, modules: int = 1) -> float:
    """Time to wait for a whole reply: the module's latency plus the wire time of the longest reply
    (for a fan-out, `modules` packs), with a 25 % margin on the wire time. Every single-module read waits as
    long as the longest one (0x42): a poll alternates 0x42 and 0x44, and each change of pyserial's timeout
    reconfigures the port (measured: a tcsetattr per request)."""
    size = _REPLY_BYTES[Command.PROTOCOL_VERSION] if command == Command.PROTOCOL_VERSION else _LONGEST_REPLY
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
        self._serial: Serial | None = None
        self._reader = FrameReader()
        self._settings: list[Any] | None = None  # termios of a local device, as opened
        self._remote = False  # the port's settings live on an RFC 2217 server
        self.errors = 0  # failed attempts since creation

    # -- port ---------------------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._serial is not None and self._serial.is_open

    @property
    def serial(self) -> Serial:
        """The pyserial object (opened on first use)."""
        return self.open()

    def open(self) -> Serial:
        """Open the port; after `close` the same pyserial object is reopened, as after a USB reset."""
        port = self._serial
        if port is not None and port.is_open:
            return port
        try:
            if port is None:
                port = serial.serial_for_url(self.port, **_open_settings(self.port, self.baud))
            else:
                port.open()
        except (OSError, ValueError) as error:
            raise _port_error(self.port, error) from None
        self._serial = port
        self._reader.clear()
        self._settings = termios.tcgetattr(port.fileno()) if isinstance(port, Serial) else None
        # On RFC 2217 a new timeout renegotiates every line setting with the server and an input purge waits
        # for its answer: 100 and 50 ms a request (measured). There the timeout stays a short fixed slice,
        # the read loop keeps the deadline, and only what has already arrived is discarded.
        self._remote = isinstance(port, serial.rfc2217.Serial)
        if self._remote:
            port.timeout = REMOTE_READ_SLICE
        log.debug("opened %s at %d Bd", self.port, self.baud)
        return port

    def _restore_settings(self, port: Serial) -> None:
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
            if self._remote:
                port.read(port.in_waiting)
            else:
                port.reset_input_buffer()
            self._reader.clear()
            log.log(FRAME, "TX %s", frame.decode("ascii").strip())
            port.write(frame)
            return self._read_reply(port, adr, timeout)
        except (serial.SerialException, OSError, termios.error) as error:
            self.close()  # the adapter went away: the next attempt reopens it
            raise PortError(f"{self.port} failed: {error}; is the adapter still connected?") from None

    def _read_reply(self, port: Serial, adr: int, timeout: float) -> Frame:
        reader = self._reader
        broken: ProtocolError | None = None
        # Setting pyserial's timeout reconfigures the port (tcsetattr), so it is set once per timeout, not per
        # read; a reply cut short may then be waited for up to one timeout past the deadline.
        if port.timeout != timeout and not self._remote:
            port.timeout = timeout
        deadline = time.monotonic() + timeout
        byte_time = BITS_PER_BYTE / self.baud
        while True:
            now = time.monotonic()
            if now >= deadline:
                if broken is not None:
                    raise broken
                raise NoReplyError("no reply")
            missing, waiting = reader.missing(), port.in_waiting
            if waiting and missing > waiting:
                # The reply is coming in: sleep for the wire time of the rest and take it in one read, instead
                # of waking for every chunk the driver passes on (about ten a reply).
                time.sleep(min((missing - waiting) * byte_time, deadline - now))
            data = port.read(max(missing, waiting))
            if not data:
                continue
            reader.feed(data)
            while (raw := reader.next_raw()) is not None:
                log.log(FRAME, "RX %s", raw.decode("latin-1").strip())
                try:
                    reply = parse_frame(raw)
                except ProtocolError as error:
                    log.debug("discarding broken frame: %s", error)
                    broken = error
                    continue
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
        reopen: bool = True,
    ) -> Result:
        """Send `command` to a module and decode its reply, retrying like the C program: up to three tries,
        the port closed and reopened after the second failure (unless `reopen` is false: a probe of an
        address that may be empty). Commands that change the battery (0x94, 0x95) are refused unless
        `allow_write` is true."""
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
                if attempt == 2 and tries > 2 and reopen:
                    self.close()
                    time.sleep(0.5)
        if isinstance(last, NoReplyError):
            raise NoReplyError(
                f"no reply from {where} to {command.name} after {tries} tr{'ies' if tries > 1 else 'y'} — "
                "check the group DIP switches, the baud rate and the A/B wiring"
            )
        assert last is not None
        if isinstance(last, ImplausibleValue):
            last.locate(where)
        elif isinstance(last, ProtocolError):
            last.args = (f"{where}: {last}",)  # the same error, with the module and port it came from
        raise last


def _open_settings(port: str, baud: int) -> dict[str, Any]:
    """pyserial settings for `port`. A network URL must name host and port (pyserial's own message for a
    missing port is a TypeError's); a local device is opened exclusively, with a write timeout, which
    pyserial's RFC 2217 class refuses."""
    scheme, sep, _ = port.partition("://")
    if not sep:
        return {"baudrate": baud, "timeout": 0.1, "write_timeout": 2.0, "exclusive": True}
    if scheme in NETWORK_SCHEMES:
        parts = urllib.parse.urlsplit(port)
        try:
            number = parts.port
        except ValueError:
            number = None
        if not parts.hostname or not number:
            raise ValueError(f"the URL names no host and port; expected {NETWORK_SCHEMES[scheme]}")
    return {"baudrate": baud, "timeout": 0.1}


def _port_error(port: str, error: Exception) -> PortError:
    """A PortError whose message says what to do about `error`."""
    text = str(error)
    code = getattr(error, "errno", None)
    if code == errno.EACCES or "Permission denied" in text:
        return PortError(
            f"cannot open {port}: permission denied — add your user to the 'dialout' group "
            "(sudo usermod -aG dialout $USER, then log in again) or install contrib/99-pylontech.rules"
        )
    if "exclusively lock" in text or "Resource temporarily unavailable" in text or code == errno.EBUSY:
        return PortBusyError(
            f"{port} is in use by another process (find it with: fuser -v {port}); stop it or use another adapter"
        )
    if code == errno.ENOENT or "No such file" in text:
        return PortError(f"cannot open {port}: no such device. Is the USB-RS485 adapter plugged in? (ls /dev/tty*)")
    if "Inappropriate ioctl" in text or code == errno.ENOTTY:
        return PortError(f"cannot open {port}: not a serial port; give the adapter's device, e.g. /dev/ttyUSB0")
    if "Connection refused" in text:
        return PortError(f"cannot open {port}: connection refused — is the gateway on and is this its TCP port?")
    if "Name or service not known" in text or "name resolution" in text:
        return PortError(f"cannot open {port}: {text.rpartition(': ')[2]}; check the host name of the URL")
    if isinstance(error, ValueError):
        return PortError(
            f"cannot open {port}: {text}; a port is a device path, socket://HOST:PORT, rfc2217://HOST:PORT "
            "or sim://?stack=US3000C*3"
        )
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

    def scan(
        self,
        progress: Callable[[ScanProgress], None] | None = None,
        probe_latency: float = 0.04,
        stop: threading.Event | None = None,
    ) -> list[int]:
        """Find the modules 1–14 that answer, gaps included. Every address gets the tries of a read, so a
        reply lost on a noisy line does not hide a module; a silent address costs only its timeouts.
        `stop` ends the scan early (a signal during start-up)."""
        found: list[int] = []
        for module in range(1, MAX_MODULE + 1):
            if stop is not None and stop.is_set():
                break
            present = self.probe(module, probe_latency)
            if present:
                found.append(module)
            if progress:
                progress(ScanProgress(module, present))
        self.modules = found
        return self.modules

    def probe(self, module: int, latency: float = 0.04) -> bool:
        """True if `module` answers 0x4F (with any return code) within the link's tries."""
        try:
            self.link.query(Command.PROTOCOL_VERSION, self.group, module, latency=latency, reopen=False)
        except ResponseError:
            return True  # it answered, even if with an error code
        except (NoReplyError, ProtocolError):
            return False
        return True

    def _one(self, command: Command, module: int, cls: type[R], **query: Any) -> R:
        result = self.link.query(command, self.group, module, **query)
        if not isinstance(result, cls):  # the layout tables and this class disagree: a bug, said plainly
            raise TypeError(f"{command.name} decoded to {type(result).__name__}, expected {cls.__name__}")
        return result

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
        return self._one(Command.ANALOG, 1, SystemAnalogData, fanout=True, modules=count)

    def alarm_all(self) -> SystemAlarmInfo:
        count = len(self.modules) or MAX_MODULE
        return self._one(Command.ALARM, 1, SystemAlarmInfo, fanout=True, modules=count)

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
