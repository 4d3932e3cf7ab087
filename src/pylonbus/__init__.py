"""pylonbus: Pylontech low-voltage batteries on their RS485 bus.

The client (`Link`, `Stack`, `connect`, `read_analog`) is imported on first use, so that programs which only
decode frames or print their version do not load pyserial."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from .ports import DEFAULT_PORT

__version__ = "0.2.0"

_CLIENT = ("Link", "Stack", "connect", "read_analog")

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
    from .client import Link, Stack, connect, read_analog
    from .ports import DEFAULT_PORT


def __getattr__(name: str) -> Any:
    if name in _CLIENT:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'pylonbus' has no attribute {name!r}")
