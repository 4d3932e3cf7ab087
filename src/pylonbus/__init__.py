"""pylonbus: Pylontech low-voltage batteries on their RS485 bus.

The link (`Link`, `Stack`, `connect`, `read_analog`, from `pylonbus.link`) is imported on first use, so that
programs which only decode frames or print their version do not load pyserial."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    ChecksumError,
    DecodeError,
    FrameError,
    ImplausibleValue,
    LengthChecksumError,
    LinkError,
    NoReplyError,
    PortBusyError,
    PortError,
    ProtocolError,
    PylonbusError,
    ResponseError,
)
from .lazy import exports
from .link.ports import DEFAULT_PORT

__version__ = "0.2.0"

__all__ = [
    "DEFAULT_PORT",
    "ChecksumError",
    "DecodeError",
    "FrameError",
    "ImplausibleValue",
    "LengthChecksumError",
    "Link",
    "LinkError",
    "NoReplyError",
    "PortBusyError",
    "PortError",
    "ProtocolError",
    "PylonbusError",
    "ResponseError",
    "Stack",
    "__version__",
    "connect",
    "read_analog",
]

if TYPE_CHECKING:
    from .link import Link, Stack, connect, read_analog

__getattr__ = exports(__name__, dict.fromkeys(("Link", "Stack", "connect", "read_analog"), ".link"))
