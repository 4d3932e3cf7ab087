"""One daemon a spool: an exclusive flock on `<spool>.lock` beside it. The kernel releases it however the process
ends (kill -9 and power cut included), so there is never a stale lock to remove. A file beside the spool, not the
spool itself: the spool is renamed when found damaged, and SQLite's own locks are fcntl locks on the spool."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from .spool import NOT_A_SPOOL, SpoolError, file_problem, foreign, unusable

#: Lock file -> its descriptor: a process takes the lock once, however often it opens the file (SQLite keeps
#: its connections of one process apart by itself).
_HELD: dict[Path, int] = {}


class InUse(SpoolError):
    """Another process holds the lock of this file."""


def hold(path: Path, option: str) -> bool:
    """Lock `path` for this process until it ends; whether a pylon2influx had used it before (its lock file was
    there). Raises InUse naming the PID that holds it and `option`, the flag that gives this process another
    file."""
    if problem := file_problem(path):  # before a lock file is made beside a device
        raise unusable(path, problem, option)
    lock = path.with_name(f"{path.name}.lock")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = lock.resolve()
        if lock in _HELD:
            return True
        used = lock.exists()
        if not used and foreign(path):  # refused before a lock file is left beside someone's file
            raise unusable(path, NOT_A_SPOOL, option)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise unusable(path, f"cannot lock {lock}: {error.strerror or error}", option) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""  # the holder writes its PID just after it locked: it may not be there yet
        with contextlib.suppress(OSError, ValueError):
            holder = f" (PID {int(os.read(fd, 32))})"
        os.close(fd)
        message = f"{path} is in use by another pylon2influx{holder}; stop it, or give this one another {option}"
        raise InUse(message) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[lock] = fd  # never closed: the lock lasts as long as the process
    return used
