"""The exceptions pylonbus raises on purpose; each message says what arrived, where, and what to try."""

from __future__ import annotations


class PylonbusError(Exception):
    """Base of every error pylonbus raises on purpose."""


class ProtocolError(PylonbusError):
    """A frame or its INFO is not what the Pylontech protocol allows (raised by the sans-I/O core)."""


class FrameError(ProtocolError):
    """The frame itself is malformed: SOI, EOI, hex digits, LENGTH or total size."""


class LengthChecksumError(FrameError):
    """The LCHKSUM nibble of the LENGTH field does not match its LENID."""


class ChecksumError(FrameError):
    """The CHKSUM at the end of the frame does not match its contents."""


class DecodeError(ProtocolError):
    """The INFO of a valid frame is too short or inconsistent for the command's layout."""


class ImplausibleValue(ProtocolError):
    """A well-formed reply carries a value no battery can have (a cell at 0 V, 300 °C, no cells): it is
    refused rather than passed on. `pack` is the block of a fan-out reply (from 1); `where` names the
    module once the caller knows it."""

    def __init__(self, field: str, value: float | str, plausible: tuple[float, float] | None, unit: str = "") -> None:
        self.field = field
        self.value = value
        self.plausible = plausible
        self.unit = unit
        self.pack: int | None = None
        self.where = ""
        super().__init__(self.describe())

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        valid = f" (plausible: {self.plausible[0]:g}…{self.plausible[1]:g}{unit})" if self.plausible else ""
        pack = f" in pack {self.pack} of the fan-out reply" if self.pack else ""
        where = f" from {self.where}" if self.where else ""
        # A text is shown as a literal: what it holds (a newline, say) is the reason it was refused.
        value = repr(self.value) if isinstance(self.value, str) else f"{self.value:g}"
        return f"implausible {self.field} = {value}{unit}{pack}{where}{valid}"

    def locate(self, where: str) -> None:
        """Name the module (and port) the value came from in the message."""
        self.where = where
        self.args = (self.describe(),)


class ResponseError(ProtocolError):
    """The battery answered with a non-zero return code (RTN); `meaning` is what the protocol says of it."""

    def __init__(self, rtn: int, adr: int | None = None, meaning: str = "unknown return code") -> None:
        self.rtn = rtn
        self.adr = adr
        self.meaning = meaning
        where = f" from ADR 0x{adr:02X}" if adr is not None else ""
        super().__init__(f"battery answered RTN 0x{rtn:02X} ({self.meaning}){where}")


class LinkError(PylonbusError):
    """The serial link or gateway failed: the port cannot be used or a module does not answer."""


class PortError(LinkError):
    """The port cannot be opened or has gone away."""


class PortBusyError(PortError):
    """Another process holds the port."""


class NoReplyError(LinkError):
    """A module did not answer a request in time."""


class ConsoleError(ProtocolError):
    """The RS232 console answered something other than the reply asked for (raised by `pylonbus.console`)."""


class UnknownCommandError(ConsoleError):
    """The console does not know the command (`Unknown command 'x' - try 'help'`; also `pwrsys` in user mode)."""


class CommandFailedError(ConsoleError):
    """The console refused the command or its argument (`Invalid command or fail to excute.` and a usage text)."""


class ConsoleFormatError(ConsoleError):
    """A console reply is cut short or laid out so that its values cannot be told apart."""
