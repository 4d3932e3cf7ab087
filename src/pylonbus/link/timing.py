"""How long a reply may take: a module's latency plus the wire time of the longest reply a command can produce
(which each family's description gives)."""

from __future__ import annotations

from typing import Any

from ..protocol.family import GET_VERSION, Family

DEFAULT_LATENCY = 0.05  # s a module may take before its reply starts (seen: well under 20 ms)
BITS_PER_BYTE = 10


def reply_timeout(
    family: Family[Any, Any], command: int, baud: int, latency: float = DEFAULT_LATENCY, modules: int = 1
) -> float:
    """Time to wait for a whole reply: the module's latency plus the wire time of the longest reply
    (for a fan-out, `modules` packs), with a 25 % margin on the wire time. Every single-module read waits as
    long as the longest one (0x42): a poll alternates 0x42 and 0x44, and each change of pyserial's timeout
    reconfigures the port (measured: a tcsetattr per request)."""
    size = family.reply_bytes[command] if command == GET_VERSION else family.longest_reply
    if modules > 1:
        size += family.pack_bytes[command] * (modules - 1)
    return latency + 1.25 * size * BITS_PER_BYTE / baud
