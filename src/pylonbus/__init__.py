"""pylonbus: Pylontech low-voltage batteries on their RS485 bus.

The library in five names:

- `connect(port, group=0)`: a context manager giving a `Stack` with its modules scanned;
  `read_analog(port)`: the analog values of every module in one call.
- `Link`: one port (a device path, `socket://`, `rfc2217://`, `sim://` URL, or an open serial object); thread-safe,
  with retries and reopen; `Link.request` sends any command, `RawReply` is what it returns.
- `Stack`: the modules of one group on a link, with one typed read per command (`analog`, `alarm`, `identify` …).
- `as_dict(result)`: any result as JSON-ready values.
- `pylonbus.aio`: the same reads under asyncio (`import pylonbus.aio`).

Values are in V, A (charge positive), °C, Ah, % and s. Errors derive from `PylonbusError`: `LinkError`
(`PortError`, `PortBusyError`, `NoReplyError`) when the port or a module fails, `ProtocolError` (`FrameError`,
`DecodeError`, `ImplausibleValue`, `ResponseError`) when a reply is not what the protocol allows.

The link and the results are imported on first use (`pylonbus.Link` loads pyserial then), so that programs
which only decode frames or print their version start fast; `dir(pylonbus)` and `help(pylonbus)` list them all."""

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
    "RawReply",
    "ResponseError",
    "Stack",
    "__version__",
    "as_dict",
    "connect",
    "read_analog",
]

if TYPE_CHECKING:
    from .link import Link, RawReply, Stack, connect, read_analog
    from .protocol.plain import as_dict

_LAZY = dict.fromkeys(("Link", "RawReply", "Stack", "connect", "read_analog"), ".link") | {"as_dict": ".protocol.plain"}

__getattr__ = exports(__name__, _LAZY)


def __dir__() -> list[str]:
    """The names a user may take, the lazy ones included (help() imports them to show them)."""
    return sorted(set(globals()) | set(_LAZY))
