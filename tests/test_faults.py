"""pylon2influx survives the faults of its disk, its database and its own signals, and keeps secrets out of
its log: a full disk, a corrupt spool, a shipper error, a SIGHUP storm, SIGTERM with a backlog."""

from __future__ import annotations

import contextlib
import os
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
from pylonbus.store.spool import Spool
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
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_drops_the_oldest_batches_and_keeps_the_newest(tiny_disk: Path, caplog) -> None:
    spool = Spool(tiny_disk / "spool.sqlite", limit=100_000)
    body = os.urandom(3000).hex().encode()  # 6 kB that do not compress away
    for n in range(200):  # about five times what the disk holds
        newest = spool.add(body + b" %d" % n, 1)
    assert spool.counter("dropped") > 0
    assert 0 < spool.pending() < 200
    assert spool.oldest(100_000)[-1][0] == newest  # the newest batch is there
    assert caplog.text.count("disk nearly full; dropping the oldest batches") == 1
    spool.close()


def test_a_corrupt_spool_is_moved_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, 1000)
    for n in range(300):
        spool.add(b"line %d " % n + b"x" * 500, 1)
    spool.close()
    with path.open("r+b") as damaged:  # two pages of the batches table overwritten
        for page in (3, 5):
            damaged.seek(page * 4096)
            damaged.write(os.urandom(4096))
    spool = Spool(path, 1000)
    spool.add(b"after", 1)
    spool.oldest(10)
    assert list(tmp_path.glob("spool.sqlite.corrupt-*"))
    assert [body for _, _, body in spool.oldest(10)][-1] == b"after"


def test_a_file_that_is_no_database_is_refused_not_moved(tmp_path: Path) -> None:
    from pylonbus.store.spool import SpoolError

    path = tmp_path / "notes.txt"
    path.write_text("my notes\n" * 100)
    with pytest.raises(SpoolError, match="file is not a database; give a writable file with --spool"):
        Spool(path, 10)
    assert path.read_text().startswith("my notes")


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
    spool.remove([batch_id for batch_id, _, _ in rest], defer=True)  # the backlog is empty: deleted at once
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
