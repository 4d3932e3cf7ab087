"""A wake-up another thread can give a thread that waits in `select`: a pipe, so that one `select` waits for
its sockets and for this (a stop, new work) without a timeout to poll."""

from __future__ import annotations

import contextlib
import os


class Wakeup:
    """A pipe whose read end is in the waiting thread's `select`; `set` from any thread."""

    def __init__(self) -> None:
        self.fd, self._write = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: the thread has that many wake-ups to read already
            os.write(self._write, b"\0")

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 4096):
                pass

    def close(self) -> None:
        os.close(self.fd)
        os.close(self._write)
