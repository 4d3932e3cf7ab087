"""pylon2influx survives the faults of its disk, its database and its own signals, and keeps secrets out of
its log: a full disk, a corrupt spool, a shipper error, a SIGHUP storm, SIGTERM with a backlog."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import IN_CI
from pylonbus.sinks.influx.shipper import Shipper
from pylonbus.store.backlog import Backlog
from pylonbus.store.spool import Spool, SpoolError
from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, influx_query
from test_daemon import SIM, ScriptedDatabase, daemon


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 256 KiB tmpfs: a disk that really fills up (needs root, as in CI)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        if IN_CI and os.geteuid() == 0:
            pytest.fail(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    # Lazily: a failed test's spool may still hold a file open there, and a mount left behind outlives the run
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


# `alone`: as the daemon opens it, keeping its locks and a journal that stays (PERSIST) on the full disk.
@pytest.mark.parametrize("alone", [False, True])
def test_a_full_disk_drops_the_oldest_batches_and_keeps_the_newest(tiny_disk: Path, caplog, alone: bool) -> None:
    spool = Spool(tiny_disk / "spool.sqlite", limit=100_000, alone=alone)
    body = os.urandom(3000).hex().encode()  # 6 kB that do not compress away
    for n in range(200):  # about five times what the disk holds
        newest = spool.add(body + b" %d" % n, 1)
    assert spool.counter("dropped") > 0
    assert 0 < spool.pending() < 200
    assert spool.oldest(100_000)[-1][0] == newest  # the newest batch is there
    assert caplog.text.count("disk nearly full; dropping the oldest batches") == 1
    spool.close()


@pytest.mark.parametrize("alone", [False, True])
def test_a_cycle_whose_commit_meets_a_full_disk_keeps_its_batches_in_memory_and_commits_them_later(
    tiny_disk: Path, alone: bool
) -> None:
    spool = Spool(tiny_disk / "spool.sqlite", limit=100, alone=alone)
    backlog = Backlog(spool)
    filler = tiny_disk / "filler"
    disk = os.statvfs(tiny_disk)
    kept = tiny_disk / "spool.sqlite-journal"  # (`alone`: it stays, and its blocks are the journal's already)
    held = kept.stat().st_blocks * 512 if kept.exists() else 0
    filler.write_bytes(b"\0" * (disk.f_bavail * disk.f_frsize - 40_000 + held))  # the journal fits, the batch not
    first = os.urandom(12_000).hex().encode()
    with pytest.raises(SpoolError, match="disk is full"), spool.transaction():  # a daemon's cycle (`_publish`)
        assert backlog.put(first, 1)
    assert list(backlog.unspooled) == [(first, 1)] and spool.pending() == 0
    filler.unlink()
    with spool.transaction():
        assert backlog.put(b"second 1", 1)
    assert not backlog.unspooled and [body for _, _, body in spool.oldest(10)] == [first, b"second 1"]
    spool.close()


def real_spool(path: Path) -> None:
    """A spool as a daemon leaves it during an outage: batches, and the energy counters in its state table."""
    spool = Spool(path, 1000)
    spool.stage_state("energy", '{"stack 0": {"charge_kwh": 1.5}}')
    for n in range(300):
        spool.add(b"Battery,Module=1 u=%d " % n + b"x" * 500, 1)
    spool.close()


def test_a_spool_damaged_in_its_batches_is_moved_aside_and_its_energy_counters_kept(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    real_spool(path)
    size = path.stat().st_size
    with path.open("r+b") as damaged:  # two pages of batches, far from the small tables at the start
        for offset in (size - 4 * 4096, size - 2 * 4096):
            damaged.seek(offset)
            damaged.write(os.urandom(4096))
    spool = Spool(path, 1000)
    spool.add(b"after", 1)
    assert list(tmp_path.glob("spool.sqlite.corrupt-*"))
    assert [body for _, _, body in spool.oldest(10)] == [b"after"]
    assert spool.load_state("energy") == '{"stack 0": {"charge_kwh": 1.5}}'


@pytest.mark.parametrize("how", ["transaction", "statement"])
def test_a_spool_that_keeps_its_locks_finds_its_file_changed_behind_it(tmp_path: Path, how: str) -> None:
    """The daemon's spool keeps SQLite's locks (`alone`), so SQLite no longer reads the file's header at each
    transaction: the spool does, before a transaction and before a statement outside one (a shipper's), and a
    file the card changed is moved aside with its bytes; the new file takes the batch."""
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, 100, alone=True)
    with spool.transaction():
        spool.add(b"first 1", 1)
    with path.open("r+b") as card:  # only "SQLite format 3" left
        card.seek(16)
        card.write(os.urandom(path.stat().st_size - 16))
    damaged = path.read_bytes()
    if how == "transaction":
        with spool.transaction():
            spool.add(b"second 1", 1)
    else:
        spool.add(b"second 1", 1)
    aside = list(tmp_path.glob("spool.sqlite.corrupt-*[0-9Z]"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    assert [body for _, _, body in spool.oldest(10)] == [b"second 1"]
    spool.close()
    assert Spool(path, 100).pending() == 1  # the new file, sound


def test_ids_read_before_the_spool_was_moved_aside_never_touch_the_new_one(tmp_path: Path) -> None:
    """The shipper holds the ids of a request in flight when the spool is found damaged; the new spool numbers
    its rows from 1 again, and the old ids must not delete, reject or split the new batches."""
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, 1000)
    for n in range(3):
        spool.add(f"old {n}".encode(), 1)
    in_flight = [batch_id for batch_id, _, _ in spool.oldest(10)]
    with path.open("r+b") as card:  # only "SQLite format 3" left, as in the test above
        card.seek(16)
        card.write(os.urandom(path.stat().st_size - 16))
    spool.add(b"new a\nnew b", 2)  # finds the damage: moved aside, a new spool holds this batch
    spool.add(b"new c", 1)
    assert moved_aside(tmp_path)
    spool.remove(in_flight)
    spool.reject(in_flight[0], 400, "bad")
    assert not spool.split(in_flight[1])
    assert [body for _, _, body in spool.oldest(10)] == [b"new a\nnew b", b"new c"] and spool.pending() == 2
    assert spool.counter("rejected") == 0


def damage(path: Path, kind: str) -> bytes:
    """What a power cut on an SD card leaves at the path of a spool a daemon used before (or a file put there since);
    its bytes."""
    Path(f"{path}.lock").write_text("4321\n")  # what every daemon that used the path leaves beside it
    if kind == "text":
        path.write_text("my notes\n" * 100)
    else:
        real_spool(path)
        data = path.read_bytes()
        keep = {"pages": 100, "header": 16}[kind]  # the whole 100-byte header, or only "SQLite format 3"
        path.write_bytes(data[:keep] + random.Random(kind).randbytes(len(data) - keep))
    return path.read_bytes()


def into_influx(db: str, spool: Path) -> subprocess.Popen[str]:
    """pylon2influx on the simulator, every second into the test influxd's `db`, through `spool`."""
    influx_query(f"CREATE DATABASE {db}")
    args = ["-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", db, "-u", INFLUX_USER, "--spool", str(spool)]
    return subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", "sim://?modules=3", "-q", "1", "--all", *args],
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"INFLUX_PASSWORD": INFLUX_PASSWORD},
    )


def influx_count(db: str) -> int:
    series = influx_query("SELECT COUNT(u) FROM Battery", db=db)["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def wait_for(condition, proc: subprocess.Popen[str], what: str, seconds: float = 60) -> None:
    """Until `condition()`; the deadline only bounds a failure."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, f"the daemon ended: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err
    return err


def moved_aside(folder: Path) -> list[Path]:
    return [path for path in folder.glob("spool.sqlite.corrupt-*") if not path.name.endswith("-journal")]


@pytest.mark.server
@pytest.mark.parametrize("kind", ["pages", "header", "text"])
def test_a_damaged_spool_is_moved_aside_with_its_bytes_and_the_daemon_keeps_writing(
    influxd, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "spool.sqlite"
    before = damage(path, kind)
    proc = into_influx(f"damaged_{kind}", path)
    wait_for(lambda: influx_count(f"damaged_{kind}") >= 9, proc, "three cycles of three modules written")
    err = stop(proc)
    aside = moved_aside(tmp_path)
    assert len(aside) == 1 and aside[0].read_bytes() == before  # nothing lost
    told = [line for line in err.splitlines() if "is damaged" in line]
    assert len(told) == 1 and f"moved aside to {aside[0]}, continuing with a new one" in told[0], err
    assert Spool(path, 10).pending() == 0  # a sound new spool, emptied into the database


@pytest.mark.server
def test_a_spool_damaged_while_the_daemon_runs_is_moved_aside_and_writing_goes_on(influxd, tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    proc = into_influx("damaged_running", path)
    try:
        wait_for(lambda: influx_count("damaged_running") >= 6, proc, "two cycles written")
        with path.open("r+b") as card:  # in place, as the card's controller would: only "SQLite format 3" left
            card.seek(16)
            card.write(os.urandom(path.stat().st_size - 16))
        wait_for(lambda: moved_aside(tmp_path), proc, "the damage found and moved aside")
        written = influx_count("damaged_running")
        wait_for(lambda: influx_count("damaged_running") >= written + 6, proc, "two more cycles written")
    finally:
        err = stop(proc)
    assert err.count("is damaged") == 1, err


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("directory", "it is a directory, not a file"),
        ("device", "it is a device, not a file"),
        ("someone's file", "it is not a spool (no SQLite header, and no pylon2influx used this path before)"),
    ],
)
def test_a_spool_path_that_is_no_file_or_someone_elses_is_refused_in_one_line_and_left_alone(
    tmp_path: Path, kind: str, reason: str
) -> None:
    """`--spool /etc/passwd` as root must not rename the system's users away."""
    path = {"directory": tmp_path / "spool.sqlite", "device": Path("/dev/null")}.get(kind, tmp_path / "passwd")
    if kind == "directory":
        path.mkdir()
    elif kind == "someone's file":
        path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    before = sorted(path.parent.iterdir())
    done = daemon("-d", SIM, "-s", "127.0.0.1", "-o", "1", "-n", "x", "--spool", str(path), "--once")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.endswith(f"cannot use {path}: {reason}; give a writable file with --spool")
    assert sorted(path.parent.iterdir()) == before  # nothing renamed, no lock file left beside it
    if kind == "someone's file":
        assert path.read_text() == "root:x:0:0:root:/root:/bin/bash\n"


def test_a_second_daemon_on_one_spool_names_the_first_and_exits_1_and_kill_9_frees_it(tmp_path: Path) -> None:
    db = ScriptedDatabase([])
    spool = tmp_path / "spool.sqlite"
    args = [*DAEMON, "-s", "127.0.0.1", "-o", str(db.server_address[1]), "-n", "x", "--spool", str(spool)]
    first = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: db.bodies, first, "the first daemon writes")
        second = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        [line] = second.stderr.splitlines()
        assert line.endswith(
            f"{spool} is in use by another pylon2influx (PID {first.pid}); stop it, or give this one another --spool"
        )
        written = len(db.bodies)
        wait_for(lambda: len(db.bodies) > written, first, "the first daemon goes on undisturbed")
    finally:
        first.kill()  # kill -9: the kernel releases the lock
        first.communicate()
    third = subprocess.run([*args, "--once"], capture_output=True, text=True, timeout=60)
    assert third.returncode == 0, third.stderr
    db.shutdown()


def test_a_second_daemon_on_one_energy_state_file_exits_1(tmp_path: Path) -> None:
    args = [*DAEMON, "--energy-state", str(tmp_path / "energy.sqlite")]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().startswith("Battery,Module=1 ")
        second = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and second.stdout == ""
        assert f"(PID {first.pid}); stop it, or give this one another --energy-state" in second.stderr
        assert first.poll() is None
    finally:
        stop(first)


def test_the_spool_is_private_to_its_user(tmp_path: Path) -> None:
    Spool(tmp_path / "state" / "spool.sqlite", 10).add(b"a", 1)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state" / "spool.sqlite").stat().st_mode) == 0o600


def test_the_shipper_outlives_a_failing_spool(tmp_path: Path) -> None:
    db = ScriptedDatabase([])
    spool = Spool(tmp_path / "s.sqlite", 100)
    shipper = Shipper(spool, db.sink())
    stop = threading.Event()
    spool.close()  # every call now fails
    thread = threading.Thread(target=shipper.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()
    shipper.spool = Spool(tmp_path / "s.sqlite", 100)
    shipper.spool.add(b"a 1", 1)
    shipper.wake.set()
    deadline = time.monotonic() + 15
    while shipper.spool.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(5)
    assert shipper.spool.pending() == 0 and db.bodies == [b"a 1"]
    db.shutdown()


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "86400", "soon"])
def test_a_retry_after_that_is_not_a_sane_number_is_ignored(tmp_path: Path, value: str) -> None:
    db = ScriptedDatabase([(503, {"Retry-After": value})])
    spool = Spool(tmp_path / "s.sqlite", 100)
    spool.add(b"a 1", 1)
    shipper = Shipper(spool, db.sink())
    outcome = shipper.send_pending()
    assert outcome is not None and outcome.retry_after is None and shipper.delay_after(outcome) == 1.0
    db.shutdown()


DAEMON = [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", SIM, "-q", "1", "--all"]


class NotifySocket:
    """What systemd listens on for sd_notify datagrams."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = str(tmp_path / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(30)

    def next(self) -> str:
        return self.sock.recv(4096).decode()


def test_sigterm_sends_the_backlog_within_seconds_and_systemd_hears_of_every_cycle(tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path)
    db = ScriptedDatabase([(503, {"Retry-After": "3600"})])
    spool_path = tmp_path / "spool.sqlite"
    proc = subprocess.Popen(
        [*DAEMON, "-s", "127.0.0.1", "-o", str(db.server_address[1]), "-n", "x", "--spool", str(spool_path)],
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"NOTIFY_SOCKET": notify.path},
    )
    try:
        assert notify.next().startswith("READY=1")
        assert notify.next() == "WATCHDOG=1"
        assert notify.next() == "WATCHDOG=1"  # the first post got 503 with an hour's Retry-After
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = proc.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10
    assert notify.next() == "STOPPING=1"
    assert Spool(spool_path, 100).pending() == 0  # sent on exit
    assert len(b"\n".join(db.bodies).split(b"\n")) >= 9  # three cycles of three modules
    db.shutdown()


def test_a_sighup_storm_logs_the_statistics_and_does_not_stop_the_daemon(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*DAEMON, "-s", "127.0.0.1", "-o", "1", "-n", "x", "--spool", str(tmp_path / "s.sqlite")],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)  # past the start-up scan
        for _ in range(300):
            proc.send_signal(signal.SIGHUP)
            time.sleep(0.003)
        time.sleep(2)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err and "RecursionError" not in err
    assert err.count("modules: group 0: [1, 2, 3], sent: 0 batches") >= 2  # SIGHUP's statistics, then the last


def test_credentials_in_an_api_path_or_a_server_url_never_reach_the_log(tmp_path: Path) -> None:
    db = ScriptedDatabase([])
    port = db.server_address[1]
    for args in (
        ["-s", "127.0.0.1", "-o", str(port), "-A", "write?db=x&u=admin&p=hunter2"],
        ["-s", f"http://admin:hunter2@127.0.0.1:{port}", "-n", "x"],
    ):
        done = daemon("-d", SIM, "--once", *args, "--spool", str(tmp_path / "s.sqlite"), "-vvv")
        assert done.returncode == 0, done.stderr
        assert "hunter2" not in done.stderr
    assert "p=***" in done.stderr or "POST /write?db=x" in done.stderr
    assert len(db.bodies) == 2
    db.shutdown()


@pytest.mark.parametrize("sink", [["-s", "https://x", "-n", "x"], ["--mqtt", "mqtts://127.0.0.1:1"]])
def test_a_missing_ca_file_is_named_before_the_scan(tmp_path: Path, sink: list[str]) -> None:
    done = daemon("-d", SIM, *sink, "--spool", str(tmp_path / "s.sqlite"), "--ca-file", str(tmp_path / "ca.pem"))
    assert done.returncode == 1 and "--ca-file" in done.stderr and "no such file" in done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def test_a_drain_defers_deleting_sent_batches_and_a_crash_sends_them_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", 100)
    for n in range(5):
        spool.add(b"line %d" % n, 1)
    first = spool.oldest(2)
    spool.remove([batch_id for batch_id, _, _ in first], defer=True)  # sent; three still to go
    assert spool.pending() == 3
    assert [body for _, _, body in spool.oldest(100)] == [b"line 2", b"line 3", b"line 4"]
    assert Spool(tmp_path / "s.sqlite", 100).pending() == 5  # not deleted yet: after a crash, sent again
    spool.settle()
    assert Spool(tmp_path / "s.sqlite", 100).pending() == 3
    rest = spool.oldest(100)
    spool.remove([batch_id for batch_id, _, _ in rest], defer=True)  # the backlog is empty: no commit of its own
    assert Spool(tmp_path / "s.sqlite", 100).pending() == 3
    spool.add(b"line 5", 1)  # the next batch's commit carries the deletions
    assert Spool(tmp_path / "s.sqlite", 100).pending() == 1
    spool.remove([spool.oldest(1)[0][0]], defer=True)
    spool.close()  # and a clean close
    assert Spool(tmp_path / "s.sqlite", 100).pending() == 0


def test_a_full_spool_drops_unsent_batches_not_sent_ones(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", 3)
    for n in range(3):
        spool.add(b"line %d" % n, 1)
    spool.remove([spool.oldest(1)[0][0]], defer=True)
    for n in range(3, 5):
        spool.add(b"line %d" % n, 1)
    assert [body for _, _, body in spool.oldest(100)] == [b"line 2", b"line 3", b"line 4"]
    assert spool.counter("dropped") == 1  # line 1; line 0 was sent, not dropped


def test_a_spool_closed_cleanly_opens_without_reading_it_through_and_damage_after_is_still_found(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.sqlite"
    real_spool(path)
    note = Path(f"{path}-closed")
    assert note.exists()  # the clean close's note, which the next open takes away
    Spool(path, 1000).close()
    assert note.exists()
    size = path.stat().st_size
    with path.open("r+b") as damaged:  # after the clean close: the note no longer matches the file
        damaged.seek(size - 4 * 4096)
        damaged.write(os.urandom(4096))
    spool = Spool(path, 1000)
    assert not note.exists()
    spool.add(b"after", 1)
    assert [body for _, _, body in spool.oldest(10)] == [b"after"] and moved_aside(tmp_path)
