"""A durable spool of line-protocol batches in SQLite (WAL): committed before sending, removed only once the
server has accepted them, so a crash, kill -9 or power cut loses nothing that was polled."""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .errors import PylonbusError

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL,
                                    lines INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY, created REAL NOT NULL, rejected REAL NOT NULL,
                                     status INTEGER NOT NULL, message TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS batches_by_time ON batches (created, id);
"""
# Batches leave in the order they were taken: by time, then id (the second half of a split batch is a newer
# row with its original time).
IN_ORDER = "ORDER BY created, id"
F = TypeVar("F", bound=Callable[..., Any])


class SpoolError(PylonbusError):
    """The spool's database cannot be used: a directory, not a database, no permission, disk full or failing."""


def default_path() -> Path:
    """$STATE_DIRECTORY (systemd), else /var/lib/pylon2influx as root, else ~/.local/state/pylon2influx."""
    if state := os.environ.get("STATE_DIRECTORY"):
        base = Path(state.split(":")[0])
    elif os.geteuid() == 0:
        base = Path("/var/lib/pylon2influx")
    else:
        base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "pylon2influx"
    return base / "spool.sqlite"


def _locked(method: F) -> F:
    """One caller at a time on the shared connection; a database failure becomes a SpoolError naming the file."""

    @functools.wraps(method)
    def run(self: Spool, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as error:
                raise SpoolError(f"spool {self.path}: {error}") from None

    return run  # type: ignore[return-value]


class Spool:
    """Bounded FIFO of batches; when full the oldest are dropped, counted and logged."""

    def __init__(self, path: Path | str, limit: int) -> None:
        self.path = Path(path)
        self.limit = limit
        try:
            if self.path.is_dir():
                raise SpoolError(f"{self.path} is a directory")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut, not just a crash
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error, SpoolError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise SpoolError(f"cannot use the spool {self.path}: {reason}; give a writable file with --spool") from None
        self._lock = threading.Lock()  # the poller adds while the shipper sends, on one connection

    def close(self) -> None:
        self._db.close()

    @_locked
    def add(self, body: bytes, lines: int) -> int:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute(
                "INSERT INTO batches (created, lines, body) VALUES (?, ?, ?)", (time.time(), lines, body)
            )
            excess = self._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0] - self.limit
            if excess > 0:
                self._db.execute(
                    f"DELETE FROM batches WHERE id IN (SELECT id FROM batches {IN_ORDER} LIMIT ?)", (excess,)
                )
                self._bump("dropped", excess)
                log.warning(
                    "spool full (%d batches): dropped the %d oldest; raise --cache to keep more", self.limit, excess
                )
        return int(cursor.lastrowid or 0)

    def _bump(self, name: str, amount: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )

    @_locked
    def oldest(self, max_lines: int) -> list[tuple[int, int, bytes]]:
        """The oldest batches, (id, lines, body), up to about `max_lines` lines (at least one batch)."""
        rows = self._db.execute(f"SELECT id, lines, body FROM batches {IN_ORDER} LIMIT 10000")
        out: list[tuple[int, int, bytes]] = []
        total = 0
        for row in rows:
            if out and total + row[1] > max_lines:
                break
            out.append((row[0], row[1], bytes(row[2])))
            total += row[1]
        return out

    @_locked
    def remove(self, ids: list[int]) -> None:
        with self._db:
            self._db.executemany("DELETE FROM batches WHERE id = ?", [(i,) for i in ids])

    @_locked
    def reject(self, batch_id: int, status: int, message: str) -> None:
        """Move a batch the server refused as malformed aside, with the server's reason; it is never retried."""
        with self._db:
            self._db.execute(
                "INSERT INTO rejected (id, created, rejected, status, message, body) "
                "SELECT id, created, ?, ?, ?, body FROM batches WHERE id = ?",
                (time.time(), status, message, batch_id),
            )
            self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            self._bump("rejected", 1)

    @_locked
    def split(self, batch_id: int) -> bool:
        """Cut a batch into two halves by lines, for a server whose size limit refuses it whole; the second
        half is queued as a new batch. False if the batch is a single line (or gone)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT created, body FROM batches WHERE id = ?", (batch_id,)).fetchone()
            lines = bytes(row[1]).split(b"\n") if row else []
            if len(lines) < 2:
                return False
            middle = len(lines) // 2
            self._db.execute(
                "UPDATE batches SET lines = ?, body = ? WHERE id = ?", (middle, b"\n".join(lines[:middle]), batch_id)
            )
            self._db.execute(
                "INSERT INTO batches (created, lines, body) VALUES (?, ?, ?)",
                (row[0], len(lines) - middle, b"\n".join(lines[middle:])),
            )
        return True

    @_locked
    def pending(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0])

    @_locked
    def counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0
