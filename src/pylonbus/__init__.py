"""pylonbus: Pylontech low-voltage batteries on their RS485 bus."""

from .errors import (
    ChecksumError,
    DecodeError,
    FrameError,
    LengthChecksumError,
    LinkError,
    NoReplyError,
    PortBusyError,
    PortError,
    ProtocolError,
    PylonbusError,
    ResponseError,
)

__version__ = "0.1.0"

__all__ = [
    "ChecksumError",
    "DecodeError",
    "FrameError",
    "LengthChecksumError",
    "LinkError",
    "NoReplyError",
    "PortBusyError",
    "PortError",
    "ProtocolError",
    "PylonbusError",
    "ResponseError",
    "__version__",
]

from .client import DEFAULT_PORT, Link, Stack, connect, read_analog

__all__ += ["DEFAULT_PORT", "Link", "Stack", "connect", "read_analog"]
