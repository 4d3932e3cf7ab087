"""Where a battery is reached: the default device and the line speeds a Pylontech stack can use. Kept apart
from the client so that programs can show them in their help without loading pyserial."""

from __future__ import annotations

DEFAULT_PORT = "/dev/ttyUSB_pylontech"  # the name contrib/99-pylontech.rules gives the adapter
DEFAULT_BAUD = 115200
BAUD_RANGE = (1200, 500000)
#: What `-d auto` probes, colon-separated globs: stable names first, each device once.
AUTO_PORTS = "/dev/serial/by-id/*:/dev/ttyUSB*:/dev/ttyACM*"
