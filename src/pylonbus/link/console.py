"""One port to a module's RS232 console: read-only commands sent, replies read to the prompt, pages turned,
retries and reopen like the RS485 link."""

from __future__ import annotations

import logging
import time
from contextlib import suppress

import serial
from serial import Serial

from ..console import ConsoleReader, Page, Reply, decode
from ..console.framing import CONSOLE_BAUD
from ..console.results import CellTable, ConsoleResult, SohTable, StackSummary, SystemSummary
from ..errors import CommandFailedError, ConsoleFormatError, LinkError, NoReplyError, PortError, UnknownCommandError
from ..logs import FRAME
from .link import TRIES
from .urls import open_settings, port_error, register_url_handler

log = logging.getLogger(__name__)
TABLES = (StackSummary, SystemSummary, CellTable, SohTable)  # results whose unreadable rows are asked again

WAKE_BAUD = 1200
# The frame some US2000B need at 1200 Bd before their console answers at 115200 (CONSOLE.md: harmless where
# it is not needed, so it is sent only when asked for).
WAKE_FRAME = b"~20014682C0048520FCC3\r"
IDLE_TIMEOUT = 1.5  # s without a byte before a reply is given up: the console pauses between table rows
MAX_REPLY_TIME = 30.0  # s, a `help` or `log` of many pages
#: What `pylontech --console` may send: commands that only read. Each takes at most one argument: a module
#: number (or, for help, a command name). `time` with arguments sets the clock, so it is sent bare.
READ_ONLY = {
    "pwr": "module",
    "bat": "module",
    "soh": "module",
    "stat": "module",
    "info": "module",
    "time": "",
    "help": "word",
}


def check_command(command: str, allow: frozenset[str] = frozenset()) -> str:
    """The command as it will be sent, or PermissionError when it is not a read-only one (nor in `allow`)."""
    words = command.split()
    if not words:
        raise ValueError("empty console command")
    name, arguments = words[0], words[1:]
    if name in allow:
        return " ".join(words)
    takes = READ_ONLY.get(name)
    if takes is None:
        raise PermissionError(
            f"console command {name!r} is not one that only reads ({', '.join(READ_ONLY)}); "
            f"name it with --console-allow {name} to send it anyway"
        )
    fits = not arguments or (
        len(arguments) == 1 and (takes == "word" or (takes == "module" and arguments[0].isdigit()))
    )
    if not fits:
        raise PermissionError(
            f"console command {command!r}: {name} takes {'no argument' if not takes else 'one ' + takes} "
            "here (with more it may change the battery)"
        )
    return " ".join(words)


class ConsoleLink:
    """The console of the module a cable is plugged into (device path, `socket://`, `rfc2217://`); it answers
    for the whole stack (`pwr`, `bat N` of any module).

    Attributes:
        port: The port: a device path, `socket://HOST:PORT` or `rfc2217://HOST:PORT`.
        baud: Line speed in Bd (115200, the console's rate).
        timeout: Seconds without a byte before a reply is given up (the console pauses between rows).
        tries: Attempts of each command before it fails (default 3, as the RS485 link).
        wake: Whether opening sends the 1200 Bd wake-up frame some US2000B need first.
        allow: Command names sent although they are not read-only (see `check_command`).
        errors: Failed attempts since the link was made."""

    def __init__(
        self,
        port: str,
        baud: int = CONSOLE_BAUD,
        *,
        timeout: float = IDLE_TIMEOUT,
        tries: int = TRIES,
        wake: bool = False,
        allow: frozenset[str] = frozenset(),
    ) -> None:
        register_url_handler()
        self.port = port
        self.baud = baud
        self.timeout = timeout
        self.tries = tries
        self.wake = wake
        self.allow = allow
        self.errors = 0
        self._serial: Serial | None = None
        self._reader = ConsoleReader()

    def open(self) -> Serial:
        """Open the port (and send the wake-up frame first when `wake`); PortError when it cannot be."""
        if self._serial is not None and self._serial.is_open:
            return self._serial
        try:
            port = serial.serial_for_url(self.port, **open_settings(self.port, self.baud))
            if self.wake:
                self._wake(port)
        except (OSError, ValueError, serial.SerialException) as error:
            raise port_error(self.port, error, adapter="USB-RS232") from None
        self._serial = port
        log.debug("opened console %s at %d Bd", self.port, self.baud)
        return port

    def _wake(self, port: Serial) -> None:
        """Send the wake-up frame at 1200 Bd, then return to the console's rate."""
        port.baudrate = WAKE_BAUD
        port.write(WAKE_FRAME)
        port.flush()
        time.sleep(len(WAKE_FRAME) * 10 / WAKE_BAUD)
        port.baudrate = self.baud
        port.write(b"\r\n")
        port.flush()
        time.sleep(0.2)
        port.reset_input_buffer()

    def close(self) -> None:
        """Close the port; the next command opens it again."""
        if self._serial is not None:
            with suppress(OSError, serial.SerialException):
                self._serial.close()
            self._serial = None

    def __enter__(self) -> ConsoleLink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transact(self, command: str) -> Reply:
        """Send one command and read its reply to the prompt, turning its pages. One attempt."""
        port = self.open()
        reader = self._reader
        reader.clear(command)
        try:
            port.reset_input_buffer()
            log.log(FRAME, "TX %r", command)
            port.write(command.encode("ascii") + b"\r")
            started = last = time.monotonic()
            while True:
                data = port.read(max(1, port.in_waiting))
                now = time.monotonic()
                if data:
                    last = now
                    reader.feed(data)
                    while (event := reader.next_event()) is not None:
                        if isinstance(event, Reply):
                            log.log(FRAME, "RX %d lines, prompt %s>", len(event.lines), event.prompt)
                            return event
                        if isinstance(event, Page):
                            port.write(b"\r")
                elif now - last > self.timeout or now - started > MAX_REPLY_TIME:
                    if reader.pending.strip() not in ("", command):  # more than the echo came
                        raise ConsoleFormatError(f"the reply to {command!r} stopped before its prompt")
                    raise NoReplyError(f"no reply to {command!r}")
        except (serial.SerialException, OSError) as error:
            self.close()
            raise PortError(f"{self.port} failed: {error}; is the console cable still connected?") from None

    def query(self, command: str) -> ConsoleResult:
        """Send a read-only command and decode its reply, retrying like the RS485 link: up to three tries, the
        port reopened after the second failure. A table with a row that cannot be read is asked for again
        (a garbled read) and returned as read on the last try; a refusal by the console is not retried."""
        command = check_command(command, self.allow)
        where = f"the console on {self.port} at {self.baud} Bd"
        last: Exception | None = None
        for attempt in range(1, self.tries + 1):
            try:
                result = decode(self.transact(command))
            except (UnknownCommandError, CommandFailedError):
                raise
            except (LinkError, ConsoleFormatError) as error:
                last = error
                self.errors += 1
                log.debug("%s: attempt %d/%d of %r failed: %s", where, attempt, self.tries, command, error)
                if attempt == 2:
                    self.close()
                continue
            if isinstance(result, TABLES) and result.unreadable and attempt < self.tries:
                log.debug("%s: %r had unreadable rows, asking again: %s", where, command, result.unreadable[0])
                continue
            return result
        if isinstance(last, NoReplyError):
            raise NoReplyError(
                f"no reply from {where} to {command!r} after {self.tries} tries — check the RJ45/RJ11 console "
                "cable (RS232, not RS485), the baud rate (115200) and try --console-wake"
            )
        assert last is not None
        last.args = (f"{where}: {last}",)
        raise last
