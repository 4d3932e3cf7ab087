"""A durable spool of line-protocol batches in SQLite (rollback journal, synchronous=FULL): committed before
sending, removed only once the server has accepted them, so a crash, kill -9 or power cut loses nothing that was
polled. A full disk drops the oldest batches, a damaged file is moved aside; neither stops the daemon. Its `state`
table keeps what the service carries across restarts (the energy counters), committed with the cycle's batch."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import PylonbusError
from . import unchecked

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY, created REAL NOT NULL, rejected REAL NOT NULL,
                                     status INTEGER NOT NULL, message TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
QUEUE_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL,
                                    lines INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS {table}_by_time ON {table} (created, id);
"""
#: The InfluxDB queue keeps the table name of the spools written before there were other queues.
DEFAULT_QUEUE = "batches"
GENERATION_SHIFT = 40  # bits of a batch id that are its row; the rest count the database replacements
# Batches leave in the order they were taken: by `created`, then id (the second half of a split batch is a newer
# row with its original `created`). `created` is the spool's own sequence, not the wall clock: the time of the
# insert, but never earlier than the batch before it, so a clock stepped back (or a Pi booting in 1970 on a spool
# of last year) keeps the order in which batches were taken.
IN_ORDER = "ORDER BY created, id"
NEXT_IN_ORDER = "MAX(?, COALESCE((SELECT MAX(created) FROM {table}), 0) + 1e-6)"  # the `created` of a new batch
JOURNAL_KEPT = 1024 * 1024  # bytes of a persistent journal kept after a large transaction (`alone`)
DISK_MARGIN = 64 * 1024  # bytes kept free for the journal and the b-tree pages of a transaction
DEFERRED_REMOVALS = 4000  # sent batches whose deletion may wait (see Spool.remove)
# What the `rejected` table keeps at most: a server that refuses every batch (a field-type conflict) would
# otherwise fill the disk the spool needs with batches that can never be sent.
REJECTED_ROWS = 1000
REJECTED_BYTES = 16_000_000
REJECTED_AGE = 30 * 86400.0  # s
F = TypeVar("F", bound=Callable[..., Any])
CLEAN_NOTE = "-closed"  # suffix of the note a clean close leaves beside the database: its size and time then
NOTE_TRIES = 20  # 5 ms apart: a note in a later clock tick than the close's last write


class SpoolError(PylonbusError):
    """The spool's database cannot be used: not a regular file, no permission, in use, disk full or failing."""


def file_problem(path: Path) -> str | None:
    """Why `path` cannot hold a database, if it cannot: a directory or a device is the user's mistake in naming
    it, never ours to rename aside."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as error:  # a file where a folder of the path should be, no permission
        return error.strerror or str(error)
    if stat.S_ISREG(mode):
        return None
    return f"it is {'a directory' if stat.S_ISDIR(mode) else 'a device'}, not a file"


def unusable(path: Path, reason: str, option: str) -> SpoolError:
    """The one line that says what is wrong with a database file and which option gives another."""
    return SpoolError(f"cannot use {path}: {reason}; give a writable file with {option}")


NOT_A_SPOOL = "it is not a spool (no SQLite header, and no pylon2influx used this path before)"


def foreign(path: Path) -> bool:
    """Whether a file is at `path` with content but no SQLite header: if it was never our spool, it may be anyone's
    file named by mistake (--spool /etc/passwd), which must stay where it is."""
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except FileNotFoundError:
        return False
    return bool(head) and head != b"SQLite format 3\x00"


def _corrupt(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def _locked(method: F) -> F:
    """One caller at a time on the shared connection. A database found corrupt is moved aside and the call
    runs again on a new one; any other failure becomes a SpoolError naming the file."""

    @functools.wraps(method)
    def run(self: Store, *args: Any, **kwargs: Any) -> Any:
        database = self._database
        with database.lock:
            database.verify()
            try:
                self._follow()
                return method(self, *args, **kwargs)
            except sqlite3.Error as error:
                if not _corrupt(error):
                    raise SpoolError(f"spool {self.path}: {error}") from None
                database.replace(error)
            try:
                self._follow()
                return method(self, *args, **kwargs)
            except sqlite3.Error as error:
                raise SpoolError(f"spool {self.path}: {error}") from None

    return run  # type: ignore[return-value]


class _Database:
    """The SQLite file every queue of a spool shares: one connection, one lock, and its replacement when
    it turns out corrupt (`generation` counts the replacements, so that each queue counts its rows again)."""

    def __init__(self, path: Path, ours: bool, later: bool = True, alone: bool = False) -> None:
        self.path = path
        self.alone = alone
        self.header_fd: int | None = None  # the file, to read its header (`alone`)
        # The poller adds while the shippers send, on one connection; re-entrant, as a transaction holds it
        # around the calls it gathers (`transaction`).
        self.lock = threading.RLock()
        self.depth = 0  # of the transactions open (the outermost BEGINs and COMMITs, the others are savepoints)
        self.queues: list[Spool] = []  # whose deletions of sent batches any commit carries
        self.undo: list[Callable[[], None]] = []  # puts back in memory what the open transaction did (`on_rollback`)
        self.after: list[Callable[[], None]] = []  # called once the open transaction commits (`on_commit`)
        self.changes = 0  # rows the connection had changed when the open transaction began
        self.fold_wanted = False  # the open transaction is to delete the sent batches even if it writes nothing
        self.generation = 0
        self.staged: dict[str, str] = {}  # state values to write with the next commit
        self.saved: dict[str, str] = {}  # state values as last committed (an unchanged value is not staged)
        if problem := file_problem(self.path):
            raise SpoolError(problem)
        self.aside = unchecked.aside_of(path)
        self.check: unchecked.Check | None = None  # of the spool set aside after a crash, while it runs
        self.checked = threading.Event()  # set while no check runs
        self.checked.set()
        try:
            clean = self._closed_cleanly()  # read before our open touches the file
            if later and not clean and not self.aside.exists() and self._large():
                # After a crash, a large spool is read through while polling goes on (`unchecked`).
                unchecked.rename(self.path, self.aside)
                clean = True
            self.open()
            if not clean:
                # After a crash or power cut, every page of a small spool is read at start: damage found now is
                # moved aside before it fails a write. After a clean close, when nothing has written the file
                # since, the check is left out; damage found later is moved aside all the same (`_locked`).
                problem = self.db.execute("PRAGMA quick_check(1)").fetchone()[0]
                if problem != "ok":
                    self.quarantine(problem)
        except sqlite3.DatabaseError as error:
            # A power cut on an SD card can leave garbage pages behind an intact header, or no header at all;
            # either way the file is renamed aside with its bytes, never deleted, and polling goes on.
            if not _corrupt(error):
                raise
            if not ours and foreign(self.path):
                raise SpoolError(NOT_A_SPOOL) from None
            self.quarantine(error)
        if self.aside.exists():
            self._check_aside(later)

    def _large(self) -> bool:
        """A spool whose check would hold up the first poll: a database of ours (never someone's file) that big."""
        try:
            return self.path.stat().st_size > unchecked.CHECK_AT_ONCE and not foreign(self.path)
        except OSError:
            return False

    def _check_aside(self, later: bool) -> None:
        """Carry the state of the spool set aside over, and read it through: in a thread, or now."""
        try:
            unchecked.adopt_state(self.db, self.aside)
        except sqlite3.DatabaseError as error:
            if not _corrupt(error):
                raise
            self._checked(str(error))
            return
        if not later:
            self._checked(unchecked.verdict(self.aside))
            return
        log.warning(
            "%s was not closed cleanly and is large: set aside as %s and checked while polling goes on; its "
            "batches are sent once it proves sound",
            self.path,
            self.aside,
        )
        with self.lock:  # before the verdict, however soon it comes
            self.checked.clear()
            self.check = unchecked.Check(self.aside, self._checked)

    def _checked(self, verdict: str | None) -> None:
        """The verdict on the spool set aside: sound, it takes the new spool's batches and its place; damaged, it
        is moved aside as `.corrupt-<UTC>`; unreadable for another reason, it waits for the next start."""
        with self.lock:
            self.check = None
            self.checked.set()
            if verdict is None:
                log.error("%s could not be read through; it is checked again at the next start", self.aside)
                return
            if verdict != "ok":
                self._move_aside(self.aside, verdict)
                return
            for queue in self.queues:
                queue.fold_sent()  # sent while it was checked: not to be moved into the old file
            tables = [
                str(row[0])
                for row in self.db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND (name = ? OR name LIKE 'queue_%')",
                    (DEFAULT_QUEUE,),
                )
            ]
            try:
                unchecked.merge(self.db, self.aside, tables, QUEUE_SCHEMA)
                self.db.close()
                unchecked.rename(self.aside, self.path)
            except (OSError, sqlite3.Error) as error:
                log.error(
                    "%s cannot take the batches taken meanwhile (%s): both files wait for the next start",
                    self.aside,
                    error,
                )
                return
            finally:
                self.open()
            log.warning("%s proved sound and is the spool again, with the batches taken meanwhile", self.path)

    def _closed_cleanly(self) -> bool:
        """Whether the last close was clean and nothing wrote the file since: its size, time and inode as the
        close noted them, and the note newer than the file (a write in the clock tick of the note keeps the
        file's time). The note is removed, so that a crash from now on is seen at the next start."""
        note = Path(f"{self.path}{CLEAN_NOTE}")
        try:
            said, written = note.read_text(), note.stat().st_mtime_ns
            note.unlink()
            return said == self._stamp() and written > self.path.stat().st_mtime_ns
        except OSError:
            return False

    def _stamp(self) -> str:
        info = self.path.stat()
        return f"{info.st_size} {info.st_mtime_ns} {info.st_ino}\n"

    def close(self) -> None:
        """Close the connection and leave the note that spares the next start its integrity check: written
        in a later clock tick than the file's last write (file times advance by ticks of a few ms)."""
        if self.check is not None:
            self.check.stop()  # the file set aside stays, for the next start to check
            self.checked.set()  # no shipper waits for it any more
        with self.lock:
            # The deferred deletions; if they fail, those batches are sent again next time.
            with contextlib.suppress(sqlite3.Error), self.transaction(deletions=True):
                pass
            self.db.close()
            self._close_header()
            note = Path(f"{self.path}{CLEAN_NOTE}")
            with contextlib.suppress(OSError):
                for _ in range(NOTE_TRIES):
                    note.write_text(self._stamp())
                    if note.stat().st_mtime_ns > self.path.stat().st_mtime_ns:
                        return
                    time.sleep(0.005)
                note.unlink()  # a file system with coarse times: the next start checks

    def open(self) -> None:
        """Open (or create, private to this user) the database."""
        if not self.path.parent.exists():
            self.path.parent.mkdir(mode=0o700, parents=True)
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))  # before SQLite makes it 0644
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        # A rollback journal, not WAL: it only needs room for the pages one transaction changes, where a WAL
        # holds every change until a checkpoint, which on a full disk can never run.
        if self.alone:
            # No other process opens it (`lock.hold`): SQLite's file locks are taken once, not at each commit,
            # and the journal stays, its header zeroed at each commit (`PERSIST`, as safe as truncating it): a
            # commit no longer opens, chowns, truncates and closes the journal nor syncs the folder (4 fdatasyncs,
            # not 5: 5-8 % of the daemon's CPU at 14 modules every second, measured). SQLite then trusts its cache
            # and no longer reads the file's header at each transaction: `verify` does.
            # Open as long as the connection: closing a descriptor of the file drops the process's locks on it.
            self.header_fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self.db.execute("PRAGMA journal_mode=PERSIST")
            self.db.execute(f"PRAGMA journal_size_limit={JOURNAL_KEPT}")
        else:
            self.db.execute("PRAGMA journal_mode=TRUNCATE")
        self.db.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut, not just a crash
        self.page_size = int(self.db.execute("PRAGMA page_size").fetchone()[0])
        self.db.executescript(SCHEMA)
        self.generation += 1

    def quarantine(self, error: object) -> None:
        """Move a damaged database (and its journal) aside and start an empty one: polling goes on. The state
        rows it can still read are carried over (the energy counters must not start again from 0)."""
        kept: list[tuple[str, str]] = []
        with contextlib.suppress(sqlite3.Error, AttributeError):
            kept = self.db.execute("SELECT name, value FROM state").fetchall()
        with contextlib.suppress(sqlite3.Error, AttributeError):
            self.db.close()
        self._close_header()
        self._move_aside(self.path, error)
        self.open()
        self.saved = {}
        if kept:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("INSERT OR REPLACE INTO state (name, value) VALUES (?, ?)", kept)
            self.saved = dict(kept)

    @contextlib.contextmanager
    def transaction(self, tolerant: bool = False, deletions: bool = False) -> Iterator[None]:
        """One commit for all that runs inside, however nested: every sink's batch of a cycle, the energy
        counters and the deletions of the batches sent since the last commit (a commit costs five fdatasyncs
        with the rollback journal, four `alone`). The deletions ride on a commit that writes something else, or on one
        made for them (`deletions`): alone, they wait (a crash sends those batches again) rather than cost a
        commit a cycle of their own. The lock is held throughout, so that no other thread's statement falls
        into it; a nested one is a savepoint, undone alone when it fails. `tolerant`: when the transaction
        cannot begin, what runs inside commits on its own (and meets the fault itself)."""
        committed: list[Callable[[], None]] = []  # `on_commit` calls, made once the lock is released
        with self.lock:
            if self.verify():  # a new file: each queue makes its table there before the transaction begins
                for queue in self.queues:
                    queue._follow()
            db = self.db
            savepoint = f"nested{self.depth + 1}"
            mark = len(self.undo)
            try:
                db.execute("BEGIN IMMEDIATE" if not self.depth else f"SAVEPOINT {savepoint}")
            except sqlite3.Error:
                if not tolerant:
                    raise
                yield
                return
            if not self.depth:
                self.changes, self.fold_wanted = db.total_changes, False
            self.fold_wanted |= deletions
            self.depth += 1
            try:
                yield
                # Else moved aside meanwhile: what ran inside committed on the new database (`quarantine`).
                if db is self.db:
                    if self.depth > 1:
                        db.execute(f"RELEASE {savepoint}")
                    else:
                        if self.fold_wanted or db.total_changes != self.changes:
                            for queue in self.queues:
                                queue.fold_sent()
                        db.execute("COMMIT")
                if self.depth == 1:
                    self.undo.clear()
                    committed, self.after = self.after, []
            except BaseException:
                if db is self.db and db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute(f"ROLLBACK TO {savepoint}" if self.depth > 1 else "ROLLBACK")
                        if self.depth > 1:
                            db.execute(f"RELEASE {savepoint}")
                # What the rolled back statements did in memory goes too: a batch counted or taken off a
                # backlog while its COMMIT then failed would be lost.
                for undo in reversed(self.undo[mark:]):
                    undo()
                del self.undo[mark:]
                if self.depth == 1:
                    self.after.clear()
                raise
            finally:
                self.depth -= 1
        for call in committed:
            call()

    def replace(self, error: object) -> None:
        """`quarantine`; SpoolError when the damaged file cannot be replaced either."""
        try:
            self.quarantine(error)
        except (OSError, sqlite3.Error) as failure:
            reason = failure.strerror if isinstance(failure, OSError) else failure
            raise SpoolError(f"{self.path} is damaged ({error}) and cannot be replaced: {reason}") from None

    def verify(self) -> bool:
        """Before a transaction, or a statement outside one: a file changed behind a connection that keeps its
        locks (`alone`) is moved aside, as SQLite would have found it. True when it was."""
        if self.header_fd is not None and not self.depth and (problem := self._header_problem(self.header_fd)):
            self.replace(problem)
            return True
        return False

    def _close_header(self) -> None:
        if self.header_fd is not None:
            os.close(self.header_fd)
            self.header_fd = None

    def _header_problem(self, fd: int) -> str | None:
        """What is wrong with the file's header on the disk, which SQLite reads itself only when another process
        may have written the file: the card changed it (`alone`). Its magic, its page size and its change
        counter, which each commit writes twice (at 24 and 92)."""
        try:
            header = os.pread(fd, 100, 0)
        except OSError as error:
            return f"its header cannot be read: {error.strerror or error}"
        if not header:
            return None  # nothing committed yet
        if header[:16] != b"SQLite format 3\0" or len(header) < 100:
            return "file is not a database"
        size = int.from_bytes(header[16:18], "big")
        if (size if size != 1 else 65536) != self.page_size or header[24:28] != header[92:96]:
            return "database disk image is malformed (its header changed on the disk)"
        return None

    def on_commit(self, call: Callable[[], None]) -> None:
        """`call` once what was just written is committed: at the end of the open transaction, after its lock is
        released (a shipper woken inside it would only wait for the lock: a dozen futex calls a batch), or now."""
        if self.depth:
            self.after.append(call)
        else:
            call()

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Inside a transaction: `undo` puts back what its statements changed in memory if it does not commit
        (called then, in reverse order)."""
        if self.depth:
            self.undo.append(undo)

    def _move_aside(self, source: Path, error: object) -> None:
        """Rename a damaged database (and its journal) to `<spool>.corrupt-<UTC>`, with its bytes."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        unchecked.rename(source, aside)
        log.error("%s is damaged (%s): moved aside to %s, continuing with a new one", self.path, error, aside)

    def write_staged(self) -> None:
        """Inside a transaction: the staged state values, which commit with it (`committed` after)."""
        self.db.executemany("INSERT OR REPLACE INTO state (name, value) VALUES (?, ?)", self.staged.items())

    def committed(self) -> None:
        done, before = dict(self.staged), {name: self.saved.get(name) for name in self.staged}
        self.saved |= done
        self.staged.clear()

        def undo() -> None:
            for name, value in before.items():
                if value is None:
                    self.saved.pop(name, None)
                else:
                    self.saved[name] = value
            self.staged = done | self.staged

        self.on_rollback(undo)


class Store:
    """A database of `state` values only: the energy counters' file where no sink spools (`option` is the flag
    that names the file, for messages). A Spool is a Store with queues. `ours`: the path was used by a
    pylon2influx before (`lock.hold`), so whatever is there now is ours to move aside if it is no database.
    `check_later`: a large file left by a crash is checked in a thread while polling goes on (`unchecked`); else
    (--once, which ends before a long check would) at once, as a small one is. `alone`: this process holds the
    file's lock (`lock.hold`): its connection keeps SQLite's locks from its first statement to its close."""

    def __init__(
        self,
        path: Path | str,
        *,
        option: str = "--spool",
        ours: bool = False,
        database: _Database | None = None,
        check_later: bool = True,
        alone: bool = False,
    ) -> None:
        self.path = Path(path)
        try:
            self._database = database or _Database(self.path, ours, check_later, alone)
            with self._database.lock:
                self._follow()
        except (OSError, sqlite3.Error, SpoolError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise unusable(self.path, reason, option) from None

    @property
    def _db(self) -> sqlite3.Connection:
        return self._database.db

    def _follow(self) -> None:
        """What a store keeps besides its state follows a new database (a Spool's queue table)."""

    def close(self) -> None:
        self._database.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Gather what runs inside into one commit (`_Database.transaction`); a spool that cannot begin one
        leaves each call to commit, or fail, on its own."""
        try:
            with self._database.transaction(tolerant=True):
                yield
        except sqlite3.Error as error:
            raise SpoolError(f"spool {self.path}: {error}") from None

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Inside `transaction`: call `undo` if it is rolled back (its COMMIT failing included)."""
        self._database.on_rollback(undo)

    def on_commit(self, call: Callable[[], None]) -> None:
        """`call` once the open transaction has committed and released the database (now, outside one)."""
        self._database.on_commit(call)

    @_locked
    def load_state(self, name: str) -> str | None:
        """A value a part of the service keeps across restarts (the energy counters), as last committed."""
        row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    @_locked
    def stage_state(self, name: str, value: str) -> None:
        """Keep `value` for the next commit: a Spool's next batch, else `commit_state` (one fsync a cycle)."""
        if self._database.saved.get(name) == value:
            self._database.staged.pop(name, None)  # as committed: no write
        else:
            self._database.staged[name] = value

    @_locked
    def commit_state(self) -> None:
        """Commit the staged values, unless a batch has carried them already."""
        if self._database.staged:
            with self._database.transaction():
                self._database.write_staged()
            self._database.committed()


class Spool(Store):
    """A bounded FIFO of batches in the spool's database; when full (by count or by disk) the oldest are
    dropped, counted and logged. Each sink that ships has its own queue (`queue()`) in the same file."""

    def __init__(
        self,
        path: Path | str,
        limit: int,
        *,
        name: str = DEFAULT_QUEUE,
        ours: bool = False,
        database: _Database | None = None,
        check_later: bool = True,
        alone: bool = False,
    ):
        self.limit = limit
        self.name = name
        self._table = name if name == DEFAULT_QUEUE else f"queue_{name}"
        self._prefix = "" if name == DEFAULT_QUEUE else f"{name}."  # of its counters
        self._generation = 0  # of the database its row count was taken from
        self._count = 0  # batches not yet sent
        self._sent: list[int] = []  # batches sent whose deletion waits (remove with defer)
        self._dropping = 0  # batches dropped for lack of disk space in the current episode
        self.rejected_bounds = (REJECTED_ROWS, REJECTED_BYTES, REJECTED_AGE)  # rows, bytes of bodies, seconds
        self._rejected_full = False  # said once
        super().__init__(path, ours=ours, database=database, check_later=check_later, alone=alone)
        self._database.queues.append(self)

    def queue(self, name: str, limit: int) -> Spool:
        """Another queue in the same database (its own batches, limit and counters)."""
        if not name.isidentifier():
            raise ValueError(f"queue name {name!r}")
        return Spool(self.path, limit, name=name, database=self._database)

    def _follow(self) -> None:
        """Create this queue's table in a new database, and count its batches once (kept up to date after:
        a COUNT(*) on every add slowed the spool as the backlog grew)."""
        if self._generation != self._database.generation:
            self._sent.clear()  # rows of the database that was moved aside
            self._db.executescript(QUEUE_SCHEMA.format(table=self._table))
            self._count = int(self._db.execute(f"SELECT COUNT(*) FROM {self._table}").fetchone()[0])
            self._generation = self._database.generation

    @_locked
    def add(self, body: bytes, lines: int) -> int:
        """Commit a batch. Over the limit the oldest are dropped; when the disk is nearly full too, as many as
        it takes (logged once when that starts and once when there is room again). Dropping must happen
        before the disk is full: on a full disk SQLite cannot even journal a DELETE."""
        need = 2 * len(body) + DISK_MARGIN
        dropped = 0
        while self._count and self._room() < need:
            if self._sent and self._generation == self._database.generation:
                self.fold_sent()  # the room of batches already sent comes back before an unsent one is dropped
                continue
            if not self._dropping and not dropped:
                log.warning("spool %s: disk nearly full; dropping the oldest batches to keep the newest", self.path)
            count = max(1, self._count // 10)
            with self._database.transaction():
                self._delete_oldest(count)
            self._counted(-count)
            dropped += count
        batch_id = self._insert(body, lines)
        if dropped:
            self._dropping += dropped
        elif self._dropping and self._room() >= 2 * need:
            log.warning("spool %s has room again; %d batches were dropped for lack of disk", self.path, self._dropping)
            self._dropping = 0
        return self._tag(batch_id)

    # A batch id names its row and the database it is in: a database found damaged is replaced by one that
    # numbers its rows from 1 again, and a shipper still holding ids from the old one must not delete, reject
    # or split the new rows that happen to carry the same numbers.
    def _tag(self, row: int) -> int:
        return self._generation << GENERATION_SHIFT | row

    def _rows(self, ids: list[int]) -> list[int]:
        """The rows of this database among `ids`."""
        mask = (1 << GENERATION_SHIFT) - 1
        return [batch_id & mask for batch_id in ids if batch_id >> GENERATION_SHIFT == self._generation]

    def _room(self) -> int:
        """Bytes a new batch can use: free pages inside the database, and free space on its disk."""
        disk = os.statvfs(self.path.parent)
        free_pages = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(free_pages * self._database.page_size + disk.f_bavail * disk.f_frsize)

    def _insert(self, body: bytes, lines: int) -> int:
        with self._database.transaction():
            created = NEXT_IN_ORDER.format(table=self._table)
            cursor = self._db.execute(
                f"INSERT INTO {self._table} (created, lines, body) VALUES ({created}, ?, ?)", (time.time(), lines, body)
            )
            self._database.write_staged()  # the cycle's energy counters, in the commit the batch needs anyway
            excess = self._count + 1 - self.limit
            if excess > 0:
                self._delete_oldest(excess)
                log.warning(
                    "spool full (%d batches): dropped the %d oldest; raise --cache to keep more", self.limit, excess
                )
        self._database.committed()
        self._counted(1 - max(excess, 0))
        return int(cursor.lastrowid or 0)

    def _counted(self, change: int) -> None:
        """The batch count after a write, taken back if the transaction it is part of is rolled back."""
        self._count += change
        self._database.on_rollback(lambda: setattr(self, "_count", self._count - change))

    def _unsent(self) -> str:
        """The WHERE clause that leaves out the batches sent whose deletion was deferred."""
        return f"WHERE id NOT IN ({','.join(map(str, self._sent))})"  # integers of our own: nothing to quote

    def _delete_oldest(self, count: int) -> None:
        oldest = f"SELECT id FROM {self._table} {self._unsent()} {IN_ORDER} LIMIT ?"
        self._db.execute(f"DELETE FROM {self._table} WHERE id IN ({oldest})", (count,))
        self._bump(f"{self._prefix}dropped", count)

    def _bump(self, name: str, amount: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )

    def oldest(self, max_lines: int) -> list[tuple[int, int, bytes]]:
        """The oldest batches, (id, lines, body), up to about `max_lines` lines (at least one batch); none while
        an older spool set aside after a crash is checked (its batches leave first), after waiting up to a
        second for the check to end, so that a shipper with batches pending does not spin meanwhile."""
        self._database.checked.wait(1.0)
        return self._oldest(max_lines)

    @_locked
    def _oldest(self, max_lines: int) -> list[tuple[int, int, bytes]]:
        if self._database.check is not None:
            return []
        rows = self._db.execute(f"SELECT id, lines, body FROM {self._table} {self._unsent()} {IN_ORDER} LIMIT 10000")
        out: list[tuple[int, int, bytes]] = []
        total = 0
        for row in rows:
            if out and total + row[1] > max_lines:
                break
            out.append((self._tag(row[0]), row[1], bytes(row[2])))
            total += row[1]
        return out

    @_locked
    def remove(self, ids: list[int], defer: bool = False) -> None:
        """Delete sent batches in one transaction, a statement per 500 (one per row cost a quarter of a drain).
        With `defer` the deletion rides on the next commit of the spool (the next cycle's batches), or waits
        until DEFERRED_REMOVALS batches were sent or `settle()` is called: no fsync'd transaction of its own
        for each request. A crash before then sends those batches again, which a line-protocol database takes
        as the same points and an MQTT subscriber as a QoS 1 duplicate."""
        rows = self._rows(ids)
        self._sent += rows
        self._count -= len(rows)
        if not defer or len(self._sent) >= DEFERRED_REMOVALS:
            self._delete_sent()

    @property
    def deferred(self) -> bool:
        """Whether sent batches wait for their deletion (`remove` with defer)."""
        return bool(self._sent)

    @_locked
    def settle(self) -> None:
        """Delete the sent batches whose deletion was deferred (on exit)."""
        if self._sent:
            self._delete_sent()

    def _delete_sent(self) -> None:
        with self._database.transaction(deletions=True):
            pass  # the commit carries the deletions (`fold_sent`)

    def fold_sent(self) -> None:
        """Inside the commit of a transaction: delete the batches sent since the last one (none of a database
        since moved aside: `_follow` forgets them)."""
        if not self._sent or self._generation != self._database.generation:
            return
        ids, removed = self._sent, 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            removed += self._db.execute(f"DELETE FROM {self._table} WHERE id IN ({marks})", chunk).rowcount
        self._counted(len(ids) - removed)  # rows that were gone already had been counted out
        self._sent = []

        def undo() -> None:  # the commit failed: the batches are still there, to be deleted by a later one
            self._sent = ids + self._sent

        self._database.on_rollback(undo)

    @_locked
    def reject(self, batch_id: int, status: int, message: str) -> None:
        """Move a batch the server refused as malformed aside, with the server's reason; it is never retried."""
        rows = self._rows([batch_id])
        if not rows:
            return  # in a database since moved aside
        with self._database.transaction():
            self._db.execute(
                "INSERT INTO rejected (id, created, rejected, status, message, body) "
                f"SELECT id, created, ?, ?, ?, body FROM {self._table} WHERE id = ?",
                (time.time(), status, message, rows[0]),
            )
            removed = self._db.execute(f"DELETE FROM {self._table} WHERE id = ?", rows).rowcount
            self._bump(f"{self._prefix}rejected", 1)
            self._bound_rejected()
        self._count -= removed

    def _bound_rejected(self) -> None:
        """Drop the oldest rejected batches beyond the bounds (the newest one always stays), counted."""
        rows, size, age = self.rejected_bounds
        order = "OVER (ORDER BY rejected DESC, id DESC)"
        newest = f"SELECT id, rejected, SUM(LENGTH(body)) {order} AS above, ROW_NUMBER() {order} AS n FROM rejected"
        dropped = self._db.execute(
            f"DELETE FROM rejected WHERE id IN (SELECT id FROM ({newest}) WHERE n > 1 AND (n > ? OR above > ? "
            "OR rejected < ?))",
            (rows, size, time.time() - age),
        ).rowcount
        if dropped:
            self._bump(f"{self._prefix}rejected_dropped", dropped)
            if not self._rejected_full:
                log.warning(
                    "spool %s: the 'rejected' table is full (%d batches, %d MB, %.0f days at most); dropping its "
                    "oldest, counted in the statistics",
                    self.path,
                    rows,
                    size // 1_000_000,
                    age / 86400,
                )
                self._rejected_full = True

    @_locked
    def split(self, batch_id: int) -> bool:
        """Cut a batch into two halves by lines, for a server whose size limit refuses it whole; the second
        half is queued as a new batch. False if the batch is a single line (or gone)."""
        rows = self._rows([batch_id])
        if not rows:
            return False
        (batch_id,) = rows
        with self._database.transaction():
            row = self._db.execute(f"SELECT created, body FROM {self._table} WHERE id = ?", (batch_id,)).fetchone()
            lines = bytes(row[1]).split(b"\n") if row else []
            if len(lines) < 2:
                return False
            middle = len(lines) // 2
            self._db.execute(
                f"UPDATE {self._table} SET lines = ?, body = ? WHERE id = ?",
                (middle, b"\n".join(lines[:middle]), batch_id),
            )
            self._db.execute(
                f"INSERT INTO {self._table} (created, lines, body) VALUES (?, ?, ?)",
                (row[0], len(lines) - middle, b"\n".join(lines[middle:])),
            )
        self._count += 1
        return True

    @_locked
    def pending(self) -> int:
        return self._count

    @_locked
    def counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (self._prefix + name,)).fetchone()
        return int(row[0]) if row else 0
