"""The line protocol on standard output, one flushed batch per cycle (the input of Telegraf's `execd`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from .lineproto import LineProtocol

if TYPE_CHECKING:
    from ...readings.reading import Reading


class StdoutSink:
    spooling = False

    def __init__(
        self, every: bool = False, stream: TextIO | None = None, schema: str = "c", site: str | None = None
    ) -> None:
        self.lines = LineProtocol(every, schema, site=site)
        self.stream = stream or sys.stdout

    def start(self) -> None:
        pass

    def publish(self, reading: Reading) -> None:
        """Raises BrokenPipeError when the reader of our output has gone."""
        lines = self.lines.lines(reading)
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def statistics(self) -> str:
        return "writing to standard output"

    def close(self, seconds: float) -> int:
        return 0
