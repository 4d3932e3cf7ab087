"""A spool left by a crash, checked while polling goes on: at start it is renamed aside (`-unchecked`) and the
daemon spools into a new file at the spool's path; a thread reads the old one through (`quick_check`, a minute
for a million batches from an SD card) and, when it proves sound, the new file's batches are moved into it in one
transaction and it takes the spool's path again. Until then nothing is shipped, so that batches leave in the
order they were taken. A crash or a stop at any point leaves both files for the next start to go on with."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

SUFFIX = "-unchecked"
JOURNALS = ("", "-journal", "-wal", "-shm")  # what goes with a database file when it is renamed
CHECK_AT_ONCE = 4_000_000  # bytes: a spool this small is checked before the first poll (under 1 s from an SD card)


def aside_of(path: Path) -> Path:
    return Path(f"{path}{SUFFIX}")


def rename(source: Path, target: Path) -> None:
    """Move a database and its journal (a crash's hot journal must stay beside its file), durably."""
    for suffix in JOURNALS:
        if Path(f"{source}{suffix}").exists():
            os.replace(f"{source}{suffix}", f"{target}{suffix}")
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename survives a power cut
    finally:
        os.close(folder)


def verdict(path: Path, opened: Callable[[sqlite3.Connection], None] | None = None) -> str | None:
    """What reading the spool at `path` through finds: "ok", what is wrong, or None when it could not be read for
    another reason (an I/O error; interrupted). `opened` is told the connection, which can interrupt it."""
    db = None
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        if opened is not None:
            opened(db)
        return str(db.execute("PRAGMA quick_check(1)").fetchone()[0])
    except sqlite3.Error as error:
        corrupt = getattr(error, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
        return str(error) if corrupt else None
    finally:
        if db is not None:
            db.close()


class Check:
    """The thread that reads an unchecked spool through, then hands the `verdict` to `done`. `stop` interrupts
    it: a SIGTERM must not wait for a minute of reading."""

    def __init__(self, path: Path, done: Callable[[str | None], None]) -> None:
        self.path = path
        self._done = done
        self._db: sqlite3.Connection | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-check", daemon=True)
        self._thread.start()

    def _opened(self, db: sqlite3.Connection) -> None:
        self._db = db
        if self._stopped.is_set():
            db.interrupt()

    def _run(self) -> None:
        found = verdict(self.path, self._opened)
        if not self._stopped.is_set():
            self._done(found)

    def stop(self) -> None:
        self._stopped.set()
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.interrupt()
        self._thread.join(1.0)


def adopt_state(db: sqlite3.Connection, aside: Path) -> None:
    """Copy the state rows (the energy counters) of the unchecked spool that the new one lacks: they must not
    start from 0 while the old file is read through."""
    db.execute("ATTACH DATABASE ? AS aside", (str(aside),))
    try:
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR IGNORE INTO main.state (name, value) SELECT name, value FROM aside.state")
    finally:
        db.execute("DETACH DATABASE aside")


def merge(db: sqlite3.Connection, aside: Path, tables: list[str], schema: str) -> None:
    """Move everything of the spool `db` into the sound `aside`, in one transaction over both files: the batches
    of its queue `tables` after the old ones (in their order), its state over the old state, its counters added,
    its rejected batches. `schema`: the script that creates a spool's tables, `{table}` for each queue's."""
    db.execute("ATTACH DATABASE ? AS aside", (str(aside),))
    try:
        db.executescript("".join(schema.format(table=table) for table in tables).replace("EXISTS ", "EXISTS aside."))
        with db:
            db.execute("BEGIN IMMEDIATE")
            for table in tables:
                # Shifted as a whole past the old batches: their order within stays, and they leave after them.
                shift = (
                    f"MAX(0, COALESCE((SELECT MAX(created) FROM aside.{table}), 0) "
                    f"- COALESCE((SELECT MIN(created) FROM main.{table}), 0) + 1e-6)"
                )
                db.execute(
                    f"INSERT INTO aside.{table} (created, lines, body) "
                    f"SELECT created + {shift}, lines, body FROM main.{table} ORDER BY created, id"
                )
                db.execute(f"DELETE FROM main.{table}")
            db.execute("INSERT OR REPLACE INTO aside.state (name, value) SELECT name, value FROM main.state")
            db.execute(
                "INSERT INTO aside.counters (name, value) SELECT name, value FROM main.counters WHERE true "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value"
            )
            db.execute("DELETE FROM main.counters")
            db.execute(
                "INSERT INTO aside.rejected (created, rejected, status, message, body) "
                "SELECT created, rejected, status, message, body FROM main.rejected"
            )
            db.execute("DELETE FROM main.rejected")
    finally:
        db.execute("DETACH DATABASE aside")
