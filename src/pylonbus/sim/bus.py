"""What every simulator front-end shares: cutting received bytes into requests and timing the replies."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..logs import FRAME
from ..protocol.frame import FrameReader
from .responder import Responder

log = logging.getLogger(__name__)

BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit


class Bus:
    """The battery end of one connection: requests in, replies with the time they start on the wire. With
    `echo`, the line also sends every byte it receives straight back, as many USB-RS485 adapters do."""

    def __init__(self, responder: Responder, baud: int = 115200, pace: bool = True, echo: bool = False) -> None:
        self.responder = responder
        self.baud = baud
        self.pace = pace
        self.echo = echo
        self._reader = FrameReader()
        self._first_byte = 0.0  # when the first byte of the request being received arrived

    @property
    def byte_time(self) -> float:
        return BITS_PER_BYTE / self.baud if self.pace else 0.0

    def receive(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        """Feed received bytes; returns (start time, reply bytes) for each complete request.

        A pty or socket delivers a request at once, but on RS485 its last byte arrives len × byte time after
        its first: replies start no earlier than that, so a client's timings include the request's wire time.
        An echo is every byte as received, noise included, back on the wire at once: before any reply."""
        if not self._reader.pending:
            self._first_byte = now
        self._reader.feed(data)
        replies = [(now, data)] if self.echo else []
        while (raw := self._reader.next_raw()) is not None:
            self._first_byte = arrived = max(now, self._first_byte + len(raw) * self.byte_time)
            log.log(FRAME, "RX %s", raw.decode("latin-1").strip())
            reply = self.responder.handle(raw, now)
            log.log(FRAME, "TX %s", "(silent)" if reply is None else reply.decode("latin-1").strip())
            if reply is not None:
                replies.append((arrived + self.responder.faults.delay, reply))
        return replies


def write_paced(
    write: Callable[[bytes], object], reply: bytes, start: float, byte_time: float, chunk: int = 16
) -> None:
    """Write `reply` so that byte n leaves no earlier than start + n·byte_time, as a UART at that baud."""
    for offset in range(0, len(reply), chunk):
        due = start + offset * byte_time
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        write(reply[offset : offset + chunk])
    tail = start + len(reply) * byte_time - time.monotonic()
    if tail > 0:
        time.sleep(tail)
