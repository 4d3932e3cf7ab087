"""Where a battery is reached: the default device and the line speeds a Pylontech stack can use. Kept apart
from the client so that programs can show them in their help without loading pyserial."""

from __future__ import annotations

from typing import Protocol

DEFAULT_PORT = "/dev/ttyUSB_pylontech"  # the name contrib/99-pylontech.rules gives the adapter
DEFAULT_BAUD = 115200
BAUD_RANGE = (1200, 500000)
#: What `-d auto` probes, colon-separated globs: stable names first, each device once.
AUTO_PORTS = "/dev/serial/by-id/*:/dev/ttyUSB*:/dev/ttyACM*"


class SerialLike(Protocol):
    """What `Link` uses of a port object it is given: the part of pyserial's `Serial` API a request needs."""

    timeout: float | None
    """Seconds a `read` waits for its bytes (the link sets it per request and puts the original back)."""

    @property
    def is_open(self) -> bool:
        """True while the port is open."""

    @property
    def in_waiting(self) -> int:
        """Bytes received and not yet read."""

    def read(self, size: int = 1) -> bytes:
        """Up to `size` bytes, fewer if `timeout` passes first."""

    def write(self, data: bytes, /) -> int | None:
        """Send `data`."""

    def reset_input_buffer(self) -> None:
        """Discard what was received and not read."""
