"""How long a reply may take: a module's latency plus the wire time of the longest reply a command can produce."""

from __future__ import annotations

from ..protocol.codes import Command

DEFAULT_LATENCY = 0.05  # s a module may take before its reply starts (seen: well under 20 ms)
BITS_PER_BYTE = 10

# Longest reply each command can produce, in bytes on the wire (16 cells, 6 temperatures, 3-byte capacities).
_PACK_ANALOG = 1 + 16 * 2 + 1 + 6 * 2 + 2 + 2 + 2 + 1 + 2 + 2 + 6
_PACK_ALARM = 1 + 16 + 1 + 6 + 3 + 5
_FRAME = 18
_REPLY_BYTES = {
    Command.PROTOCOL_VERSION: _FRAME,
    Command.ANALOG: _FRAME + 2 * (2 + _PACK_ANALOG),
    Command.ALARM: _FRAME + 2 * (3 + _PACK_ALARM),
    Command.SYSTEM_PARAMETERS: _FRAME + 50,
    Command.MANUFACTURER: _FRAME + 64,
    Command.SYSTEM_ANALOG: _FRAME + 98,
    Command.CHARGE_DISCHARGE: _FRAME + 20,
    Command.SERIAL_NUMBER: _FRAME + 34,
    Command.FIRMWARE: _FRAME + 12,
}
_LONGEST_REPLY = max(_REPLY_BYTES.values())


def reply_timeout(command: Command, baud: int, latency: float = DEFAULT_LATENCY, modules: int = 1) -> float:
    """Time to wait for a whole reply: the module's latency plus the wire time of the longest reply
    (for a fan-out, `modules` packs), with a 25 % margin on the wire time. Every single-module read waits as
    long as the longest one (0x42): a poll alternates 0x42 and 0x44, and each change of pyserial's timeout
    reconfigures the port (measured: a tcsetattr per request)."""
    size = _REPLY_BYTES[Command.PROTOCOL_VERSION] if command == Command.PROTOCOL_VERSION else _LONGEST_REPLY
    if modules > 1:
        pack = _PACK_ANALOG if command == Command.ANALOG else _PACK_ALARM
        size += 2 * pack * (modules - 1)
    return latency + 1.25 * size * BITS_PER_BYTE / baud
