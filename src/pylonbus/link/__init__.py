"""The way to the batteries: a `Link` is one port (device, `socket://`, `rfc2217://`, `sim://`) with its
transactions, retries and reopen; a `Stack` is one group of modules on it, with the scan and a typed read per
command; `autoport` finds the port a battery answers on.

Names are imported on first use: `pylonbus.link.ports` (defaults for help texts) loads without pyserial."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .link import Link, RawReply
    from .stack import ScanProgress, Stack, connect, read_analog

_SOURCE = {
    "Link": ".link",
    "RawReply": ".link",
    "ScanProgress": ".stack",
    "Stack": ".stack",
    "connect": ".stack",
    "read_analog": ".stack",
}

__all__ = ["Link", "RawReply", "ScanProgress", "Stack", "connect", "read_analog"]

__getattr__ = exports(__name__, _SOURCE)
