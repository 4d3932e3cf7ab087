"""The client of pylonbus 0.2, now `pylonbus.link`: this module keeps `from pylonbus.client import …` working."""

from .link.link import Link
from .link.stack import ScanProgress, Stack, connect, read_analog

__all__ = ["Link", "ScanProgress", "Stack", "connect", "read_analog"]
