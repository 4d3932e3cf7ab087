"""One port to the RS485 bus: requests sent, replies read and validated, retries and reopen."""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import select
import sys
import termios
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Concatenate, ParamSpec, TypeVar

import serial
from serial import Serial

from ..errors import ImplausibleValue, LinkError, NoReplyError, PortError, ProtocolError, ResponseError
from ..logs import FRAME
from ..protocol import families
from ..protocol.families.pylontech.results import Result
from ..protocol.family import GET_VERSION, Family
from ..protocol.frame import Frame, FrameReader, encode_frame, parse_frame
from .ports import BAUD_RANGE, DEFAULT_BAUD, DEFAULT_PORT, SerialLike
from .timing import BITS_PER_BYTE, DEFAULT_LATENCY, reply_timeout
from .urls import open_settings, port_error, register_url_handler

log = logging.getLogger(__name__)

#: Set in a thread whose caller no longer waits for its exchanges (`pylonbus.aio`, a cancelled read): a request
#: that failed is not tried again. Per thread: the same link may serve other threads meanwhile.
abandoned: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("abandoned", default=None)

TRIES = 3
REMOTE_READ_SLICE = 0.01  # s, the fixed read timeout on an RFC 2217 port
# A lost port is reopened at once (a USB glitch, a gateway that dropped an idle connection), then after a
# back-off doubling up to RECONNECT_MAX: a rebooting gateway is not hammered, and is used again within 2 s.
RECONNECT_FIRST = 0.25  # s
RECONNECT_MAX = 2.0  # s
TIDY_EVERY = 0.5  # s between two input flushes while replies arrive
READ_SIZE = 65536  # bytes a read of a local device may take: more than any reply
# s a sleep for the rest of a reply lasts beyond its wire time: a sender a little behind its baud rate (a
# scheduler's delay, the start of the reply seen late) would otherwise leave its last bytes to another
# select and read, a third wake-up for most replies.
SLEEP_MARGIN = 0.002


P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawReply:
    """What `Link.request` returns: the reply frame as received, and its decoded result where the family has a
    layout for the command (None otherwise)."""

    frame: Frame
    """The reply: `frame.rtn` its return code, `frame.adr` who sent it, `frame.info` its INFO bytes."""
    result: Result | None
    """The typed result (an `AnalogData` for 0x42, …), or None where the family has no layout for the command."""


@functools.cache
def module_addresses(family: Family[Any, Any]) -> frozenset[int]:
    """Every ADR at which a module of `family` may answer (any group, any module)."""
    found = set()
    for group in range(16):
        for module in range(1, family.max_module + 1):
            with suppress(ValueError):
                found.add(family.address(group, module))
    return frozenset(found)


def describe(port: str, baud: int, adr: int, module: int) -> str:
    return f"module {module} (ADR 0x{adr:02X}) on {port} at {baud} Bd"


def serialised(method: Callable[Concatenate[Link, P], T]) -> Callable[Concatenate[Link, P], T]:
    """Run `method` holding the link's lock: one exchange on the wire at a time, and the lock released however
    the call ends. Waiting for the lock is not counted in a transaction's timeout."""

    def locked(self: Link, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    functools.update_wrapper(locked, method)  # its name, docstring and signature, for help() and the reference
    return locked


def original_settings(device: str) -> list[Any] | None:
    """The line settings of a local device before pyserial configures it (None if it cannot be read): what
    `Link.close` puts back, as the C library does."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return termios.tcgetattr(fd)
    except termios.error:
        return None
    finally:
        os.close(fd)


def is_rfc2217(port: object) -> bool:
    """Whether `port` is pyserial's RFC 2217 client. Its module is loaded by whatever made one (`serial_for_url`
    on an rfc2217:// URL), and not for a local port or socket:// (it imports 26 modules)."""
    module = sys.modules.get("serial.rfc2217")
    return module is not None and isinstance(port, module.Serial)


def _plain(port: Serial) -> bool:
    """True for pyserial's own local port, whose descriptor may be used directly: not a subclass that reads or
    writes in its own way (`spy://` logs the traffic)."""
    kind = type(port)
    return kind.read is Serial.read and kind.write is Serial.write


class Link:
    """One port to the RS485 bus, to batteries of one `family` (Pylontech unless said otherwise).

    `port` is a device path, `socket://`, `rfc2217://` or `sim://` URL, which the link opens and closes; or an
    open serial-like object (a pyserial `Serial`, or anything with its `read`, `write`, `in_waiting`,
    `reset_input_buffer`, `timeout` and `is_open`), which the link uses but never closes.

    Thread-safe: one `Link` may be shared by any number of threads. Its requests are serialised (one on the wire,
    the others wait their turn); each request's timeout starts when its turn comes, not while it waits; and a
    call that fails releases the port for the next one. `close` puts back the line settings the port had
    before the link configured it (also after a failure).

    Attributes:
        port: The port's name in messages: the URL, or the `port` attribute of an object given.
        baud: Line speed in Bd (1200-500000; a Pylontech stack uses 115200 or 9600).
        latency: Seconds a module may take before its reply starts (default 0.05 s).
        timeout: A fixed reply timeout in s replacing the computed one (latency plus the reply's wire time);
            None to compute it.
        tries: Attempts of a request before it fails (default 3, as the C program).
        family: The BMS family whose frames the link sends and decodes (Pylontech by default).
        errors: Failed attempts since the link was made."""

    def __init__(
        self,
        port: str | SerialLike = DEFAULT_PORT,
        baud: int = DEFAULT_BAUD,
        *,
        latency: float = DEFAULT_LATENCY,
        timeout: float | None = None,
        tries: int = TRIES,
        family: Family[Any, Any] | None = None,
    ) -> None:
        if not BAUD_RANGE[0] <= baud <= BAUD_RANGE[1]:
            raise ValueError(f"baud rate {baud} is out of range {BAUD_RANGE[0]}-{BAUD_RANGE[1]}")
        register_url_handler()
        self._given = None if isinstance(port, str) else port  # an object of the caller's: never closed
        self.port = port if isinstance(port, str) else str(getattr(port, "port", None) or type(port).__name__)
        self.baud = baud
        self.latency = latency
        self.timeout = timeout  # fixed reply timeout, replacing the computed one
        self.tries = tries
        self.family = family or families.family()
        self._lock = threading.RLock()  # one exchange at a time; reentrant: query → transact → open
        self._serial: Serial | None = None
        self._reader = FrameReader()
        self._settings: list[Any] | None = None  # termios of a local device, as opened
        self._original: list[Any] | None = None  # termios of a local device before the link configured it
        self._given_timeout: float | None = None  # the timeout of an object given, put back on close
        self._remote = False  # the port's settings live on an RFC 2217 server
        self.errors = 0  # failed attempts since creation
        self._lost: PortError | None = None  # why the port failed, until a reply arrives again
        self._backoff = 0.0  # s, the last wait between two reopens of a lost port
        self._retry_at = 0.0  # monotonic time from which a lost port may be reopened
        self._echoes = False  # a request of ours came back: the adapter echoes what it sends
        self._tidy_at = 0.0  # monotonic time of the next input flush
        self._broken: ProtocolError | None = None  # the last broken frame of the current attempt

    # -- port ---------------------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        """True while the port is open (it opens on the first request and after a loss, on the next)."""
        return self._serial is not None and self._serial.is_open

    @property
    def serial(self) -> Serial:
        """The pyserial object (opened on first use)."""
        return self.open()

    @property
    def echoes(self) -> bool:
        """True once a request came back as sent: the adapter echoes (its echoes are skipped, never replies)."""
        return self._echoes

    @property
    def lost(self) -> PortError | None:
        """Why the port failed, from the failure until a reply arrives again; None while it works."""
        return self._lost

    @serialised
    def open(self) -> Serial:
        """Open the port; after `close` the same pyserial object is reopened, as after a USB reset. An object
        given to the link is used as it is: a closed one raises `PortError` (the link never opens it)."""
        port = self._serial
        if port is not None and port.is_open:
            return port
        if self._given is not None:
            port = self._adopt(self._given)
        else:
            try:
                if port is None:
                    port = serial.serial_for_url(self.port, do_not_open=True, **open_settings(self.port, self.baud))
                if isinstance(port, Serial):
                    self._original = original_settings(self.port)
                port.open()
            except (OSError, ValueError) as error:
                raise self._lose(port_error(self.port, error)) from None
        self._serial = port
        self._reader.clear()
        self._settings = termios.tcgetattr(port.fileno()) if isinstance(port, Serial) else None
        # On RFC 2217 a new timeout renegotiates every line setting with the server and an input purge waits
        # for its answer: 100 and 50 ms a request (measured). There the timeout stays a short fixed slice,
        # the read loop keeps the deadline, and only what has already arrived is discarded.
        self._remote = is_rfc2217(port)
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

    def _adopt(self, given: SerialLike) -> Serial:
        """Take up an object the caller opened, noting what `close` puts back: its timeout and line settings."""
        if not given.is_open:
            raise PortError(f"{self.port}: the port object given to the link is closed; open it first")
        port: Serial = given  # type: ignore[assignment]  # used through the part of pyserial's API it has
        if self._given_timeout is None:
            self._given_timeout = port.timeout
            if isinstance(port, Serial):
                self._original = termios.tcgetattr(port.fileno())
        return port

    @serialised
    def close(self) -> None:
        """Put the port's original line settings back and close it; an object given to the link is left open
        (with its timeout and line settings as it was given)."""
        port = self._serial
        if port is None:
            return
        with suppress(OSError, serial.SerialException, termios.error, ValueError):
            if self._given is not None and self._given_timeout is not None:
                port.timeout = self._given_timeout
            if self._original is not None and port.is_open:
                termios.tcsetattr(port.fileno(), termios.TCSANOW, self._original)
        if self._given is None:
            with suppress(OSError, serial.SerialException, termios.error):
                port.close()

    def _lose(self, error: PortError) -> PortError:
        """Close the port and schedule its next reopen: at once after it worked, then backing off."""
        self.close()
        self._backoff = 0.0 if self._lost is None else min(max(2 * self._backoff, RECONNECT_FIRST), RECONNECT_MAX)
        self._retry_at = time.monotonic() + self._backoff
        self._lost = error
        return error

    @property
    def retry_in(self) -> float | None:
        """Seconds until a lost port may be reopened; None when it is not lost or is open again."""
        if self._lost is None or self.is_open:
            return None
        return max(self._retry_at - time.monotonic(), 0.0)

    @serialised
    def reconnect(self) -> bool:
        """Reopen a lost port if its back-off allows; True when it opened (a request tells whether it works)."""
        if self.retry_in != 0.0:
            return False
        with suppress(PortError):
            self.open()
            return True
        return False

    def __enter__(self) -> Link:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------------------------
    @serialised
    def transact(self, frame: bytes, adr: int, timeout: float) -> Frame:
        """Send one request and return the first valid reply from `adr` within `timeout` seconds.
        One attempt: raises NoReplyError, a ProtocolError (the last broken frame seen) or PortError."""
        port = self.open()
        self._reader.clear()
        self._broken = None
        try:
            self._tidy(port)
            log.log(FRAME, "TX %s", frame.decode("ascii").strip())
            if self._settings is not None and _plain(port):
                reply = self._exchange_local(port, frame, adr, timeout)
            else:
                port.write(frame)
                reply = self._read_reply(port, frame, adr, timeout)
        except (serial.SerialException, OSError, termios.error) as error:
            self._tidy_at = 0.0
            # The adapter went away or the gateway closed the connection: the next attempt reopens it.
            raise self._lose(PortError(f"{self.port} failed: {error}; is the adapter still connected?")) from None
        except (NoReplyError, ProtocolError):
            self._tidy_at = 0.0  # what went wrong may have left a late reply: flushed before the next attempt
            raise
        self._lost = None
        return reply

    def _tidy(self, port: Serial) -> None:
        """Before a request: put back altered line settings (each time: an echo turned on by another program
        would send every reply back onto the bus) and drop what arrived unasked. Within a burst of requests
        that are answered, bytes that came in before the flush would come a moment later just as well, so the
        flush is done once a TIDY_EVERY (at the start of a poll, after the pause) and before the attempt
        that follows a failed one (a late reply)."""
        self._restore_settings(port)
        now = time.monotonic()
        if now < self._tidy_at:
            return
        self._tidy_at = now + TIDY_EVERY
        if self._remote:
            port.read(port.in_waiting)
        else:
            port.reset_input_buffer()

    def _exchange_local(self, port: Serial, frame: bytes, adr: int, timeout: float) -> Frame:
        """The request and its reply on a local device, on its descriptor: a write, a wait for the first
        bytes, and a sleep for the wire time of the rest, so that a reply costs about five system calls.
        Through pyserial the same took fourteen (a select after each write, a select and a byte count
        before each read, and a reconfiguration of the port whenever the timeout changes)."""
        fd = port.fileno()
        sent = os.write(fd, frame)
        if sent < len(frame):  # the driver's buffer was full: wait for room for the rest
            port.write(frame[sent:])
        deadline = time.monotonic() + timeout
        byte_time = BITS_PER_BYTE / self.baud
        reader, sleep = self._reader, False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return self._no_reply()
            if sleep:  # a frame is coming in: its rest arrives in its wire time
                time.sleep(min(reader.missing() * byte_time + SLEEP_MARGIN, left))
            elif not select.select([fd], [], [], left)[0]:
                continue
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                data = b""
            else:
                if not data and not sleep:  # readable without data: the other end hung up
                    raise serial.SerialException("readable without data: the other end hung up")
            if data and (reply := self._take(data, frame, adr)) is not None:
                return reply
            # One sleep per wake-up: what a sleep did not bring (the tail an adapter holds back until its
            # latency timer, a sender that stalled) is waited for with select, never with short sleeps in a row.
            sleep = not sleep and bool(data) and reader.pending > 0

    def _read_reply(self, port: Serial, sent: bytes, adr: int, timeout: float) -> Frame:
        """The reply through pyserial's calls, for a port that has no local descriptor (a TCP or RFC 2217
        gateway, the simulator in the process)."""
        reader = self._reader
        # Setting pyserial's timeout reconfigures the port (tcsetattr), so it is set once per timeout, not per
        # read; a reply cut short may then be waited for up to one timeout past the deadline.
        if port.timeout != timeout and not self._remote:
            port.timeout = timeout
        deadline = time.monotonic() + timeout
        byte_time = BITS_PER_BYTE / self.baud
        while True:
            now = time.monotonic()
            if now >= deadline:
                return self._no_reply()
            missing, waiting = reader.missing(), port.in_waiting
            if waiting and missing > waiting:
                # The reply is coming in: sleep for the wire time of the rest and take it in one read, instead
                # of waking for every chunk the driver passes on (about ten a reply).
                time.sleep(min((missing - waiting) * byte_time, deadline - now))
            data = port.read(max(missing, waiting))
            if data and (reply := self._take(data, sent, adr)) is not None:
                return reply

    def _no_reply(self) -> Frame:
        if self._broken is not None:
            raise self._broken
        raise NoReplyError("no reply")

    def _take(self, data: bytes, sent: bytes, adr: int) -> Frame | None:
        """Feed received bytes; the reply from `adr` once it is complete. A broken frame is kept in
        `_broken`, raised if no valid reply follows before the deadline."""
        reader = self._reader
        reader.feed(data)
        while (raw := reader.next_raw()) is not None:
            log.log(FRAME, "RX %s", raw.decode("latin-1").strip())
            try:
                reply = parse_frame(raw)
            except ProtocolError as error:
                log.debug("discarding broken frame: %s", error)
                self._broken = error
                continue
            # A reply has its RTN (0x00-0x06, 0x90, 0x91) where a request has its CID2, so a frame with the
            # CID2 just sent is a request: ours read back by an echoing adapter, or another master's. Checked
            # on the frame already parsed, it costs a line that does not echo no read and no copy.
            if reply.cid2 == int(sent[7:9], 16):
                self._skip_request(raw == sent)
                continue
            if reply.adr == adr:
                return reply
            log.debug("ignoring a frame from ADR 0x%02X while waiting for 0x%02X", reply.adr, adr)
        return None

    def _skip_request(self, ours: bool) -> None:
        if not ours:
            log.debug("ignoring a request read back on %s: not a reply", self.port)
        elif not self._echoes:
            self._echoes = True
            log.info("the adapter on %s echoes what it sends; the requests read back are skipped", self.port)

    @serialised
    def query(
        self,
        command: IntEnum,
        group: int = 0,
        module: int = 1,
        *,
        fanout: bool = False,
        info: bytes | None = None,
        tries: int | None = None,
        latency: float | None = None,
        allow_write: bool = False,
        modules: int | None = None,
        reopen: bool = True,
        family: Family[Any, Any] | None = None,
    ) -> Result:  # the default family's results; issue 21 widens it to every family's
        """Send `command` to a module and decode its reply, retrying like the C program: up to three tries,
        the port closed and reopened after the second failure (unless `reopen` is false: a probe of an
        address that may be empty). Commands that change the battery (0x94, 0x95) are refused unless
        `allow_write` is true. A fan-out waits for `modules` packs, by default as many as a group holds.
        `family` is that of the stack asking (the link's own by default)."""
        family = family or self.family
        command = family.commands(command)
        if command in family.writes and not allow_write:
            raise PermissionError(f"{command.name} (0x{command:02X}) changes the battery; pass allow_write=True")
        frame = family.request(command, group, module, fanout=fanout, info=info)
        adr = family.address(group, 1 if fanout else module)
        packs = (family.max_module if modules is None else modules) if fanout else 1
        timeout = self.timeout or reply_timeout(
            family, command, self.baud, self.latency if latency is None else latency, packs
        )
        where = describe(self.port, self.baud, adr, 1 if fanout else module)
        return self._retried(
            frame,
            adr,
            timeout,
            tries,
            reopen,
            where,
            command.name,
            functools.partial(family.decode, command, fanout=fanout),
        )

    @serialised
    def request(
        self,
        cid2: int,
        info: bytes = b"",
        *,
        group: int = 0,
        module: int = 1,
        adr: int | None = None,
        reserved: bool = False,
        ver: int | None = None,
        tries: int | None = None,
        timeout: float | None = None,
        allow_write: bool = False,
    ) -> RawReply:
        """Send any CID2 with any INFO (sent as given: no module address is added) and return the reply frame,
        with the link's retries. The request goes to `module` of `group`, or to the raw byte `adr`; an ADR at
        which no module can answer (0x00, 0x01, 0x10, 0x11 …) is refused unless `reserved` is true. `ver` replaces
        the family's VER (0x4F is asked with VER 0x00 by the C program). Where the family has a layout for the
        command, `RawReply.result` is the decoded reply, proved like `query`'s; else None. `timeout` (s)
        replaces the one computed from the longest reply the family knows. Raises `ResponseError` for a
        non-zero RTN, `NoReplyError`, `PortError` or `ProtocolError` like `query`; 0x94 and 0x95 are refused
        unless `allow_write` is true."""
        family = self.family
        if not 0 <= cid2 <= 0xFF:
            raise ValueError(f"CID2 {cid2} is not a byte")
        known = next((c for c in family.commands if c == cid2), None)
        if known is not None and known in family.writes and not allow_write:
            raise PermissionError(f"{known.name} (0x{cid2:02X}) changes the battery; pass allow_write=True")
        if adr is None:
            adr = family.address(group, module)
        elif not 0 <= adr <= 0xFF:
            raise ValueError(f"ADR {adr} is not a byte")
        elif adr not in module_addresses(family) and not reserved:
            raise ValueError(f"no module answers at ADR 0x{adr:02X}; pass reserved=True to send to it anyway")
        frame = encode_frame(family.ver if ver is None else ver, adr, cid2, info, family.cid1)
        layout = known is not None and (known in family.replies or known in family.fanouts or cid2 == GET_VERSION)
        name = known.name if known is not None else f"CID2 0x{cid2:02X}"

        def read(reply: Frame) -> RawReply:
            if layout:
                return RawReply(reply, family.decode(known, reply))
            if reply.rtn:
                raise ResponseError(reply.rtn, reply.adr, family.rtn_meaning(reply.rtn))
            return RawReply(reply, None)

        wait = timeout or self.timeout or reply_timeout(family, cid2, self.baud, self.latency)
        where = f"ADR 0x{adr:02X} on {self.port} at {self.baud} Bd"
        return self._retried(frame, adr, wait, tries, True, where, name, read)

    def _retried(
        self,
        frame: bytes,
        adr: int,
        timeout: float,
        tries: int | None,
        reopen: bool,
        where: str,
        name: str,
        read: Callable[[Frame], T],
    ) -> T:
        """Send `frame` until `read` accepts a reply, like the C program: up to `tries` (default the link's), the
        port closed and reopened after the second failure unless `reopen` is false."""
        tries = self.tries if tries is None else tries
        last: Exception | None = None
        for attempt in range(1, tries + 1):
            try:
                reply = self.transact(frame, adr, timeout)
                return read(reply)
            except ResponseError:
                raise  # the module answered: retrying won't help
            except (LinkError, ProtocolError) as error:
                last = error
                self.errors += 1
                log.debug("%s: attempt %d/%d failed: %s", where, attempt, tries, error)
                if self._lost is not None and time.monotonic() < self._retry_at:
                    break  # the port is gone: its reopening is paced by the back-off, not by the tries
                gone = abandoned.get()
                if gone is not None and gone.is_set():
                    break  # nobody waits for the answer: the next request need not wait for more tries
                if attempt == 2 and tries > 2 and reopen:
                    self.close()
                    time.sleep(0.5)
        if isinstance(last, NoReplyError):
            raise NoReplyError(
                f"no reply from {where} to {name} after {tries} tr{'ies' if tries > 1 else 'y'} — "
                "check the group DIP switches, the baud rate and the A/B wiring"
            )
        assert last is not None
        if isinstance(last, ImplausibleValue):
            last.locate(where)
        elif isinstance(last, ProtocolError):
            last.args = (f"{where}: {last}",)  # the same error, with the module and port it came from
        raise last
