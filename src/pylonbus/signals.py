"""Signals acted on outside their handlers. A Python handler runs between two bytecodes of the main thread, and
another signal can enter it again before it returns: a handler that takes a lock (`Event.set`, logging) or does
real work nests until it deadlocks or overflows the stack under a burst from a monitoring script. So the handlers
here do nothing; the interpreter's wakeup descriptor carries each signal's number through a pipe, and a thread of
our own reads them and acts (sets events, changes the log level), where locks are safe."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Mapping


def _ignore(signum: int, frame: object) -> None:
    """Installed so that the signal neither kills the process nor is discarded by the kernel; the wakeup
    descriptor has already carried it to the relay."""


class SignalRelay:
    """Runs `actions[signum]()` on the relay thread when a signal arrives: once for each signal among what has
    arrived since the last look (a burst of thousands is one action, not thousands queued in front of a SIGTERM),
    the signals of `first` before the others."""

    def __init__(self, actions: Mapping[int, Callable[[], None]], first: tuple[int, ...] = ()) -> None:
        self.actions = dict(actions)
        self.first = first
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # the interpreter writes from its C handler: it must never block
        self._thread = threading.Thread(target=self._relay, name="signals", daemon=True)

    def install(self) -> None:
        """From the main thread: route the signals here."""
        self._thread.start()
        for signum in self.actions:
            signal.signal(signum, _ignore)
        # A burst larger than the pipe loses bytes, not signals that matter: the same numbers are still in it.
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)

    def _relay(self) -> None:
        with contextlib.closing(os.fdopen(self._read, "rb", buffering=0)) as pipe:
            while data := pipe.read(65536):
                arrived = set(data)
                for signum in [*(s for s in self.first if s in arrived), *(s for s in arrived if s not in self.first)]:
                    action = self.actions.get(signum)
                    if action is not None:
                        action()
