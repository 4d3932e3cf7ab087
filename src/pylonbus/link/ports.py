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

    @property
    def is_open(self) -> bool: ...

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def reset_input_buffer(self) -> None: ...
