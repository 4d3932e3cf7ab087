"""Line protocol to standard output, one flushed batch per cycle (the input of Telegraf's `execd`)."""

from __future__ import annotations

import sys
from typing import TextIO

from . import Outcome


class StdoutSink:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, body: bytes) -> Outcome:
        try:
            self.stream.write(body.decode() + "\n")
            self.stream.flush()
        except (BrokenPipeError, OSError) as error:
            return Outcome(0, f"stdout: {error}")
        return Outcome(204)

    def close(self) -> None:
        pass
