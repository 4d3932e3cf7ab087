"""A spool left by a crash is checked while polling goes on, and a kill -9 at any moment (during that check,
while MQTT publishes, while the checked spool takes the new batches) loses nothing committed: against a real
Mosquitto, every message that was in a spool file when the daemon died reaches a subscriber."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pylonbus.store.spool import Spool
from pylonbus.store.unchecked import CHECK_AT_ONCE
from servers import MQTT_PORT
from test_daemon import SIM, ScriptedDatabase, daemon
from test_mqtt import Listener

PAD = b"Battery,Module=1 Voltage=51.234,Current=-2.5,SOC=87,Temp=23.1 " * 4  # a module's line protocol
BUILD = """
import json, os, sys
from pylonbus.store.spool import Spool
spool = Spool(sys.argv[1], 10**7)
queue = spool.queue("mqtt", 10**7)
spool.stage_state("test", "kept")
with spool.transaction():
    for n in range(int(sys.argv[2])):
        spool.add(b"pad %d " % n + bytes.fromhex(sys.argv[4]), 1)
    for n in range(int(sys.argv[3])):
        queue.add(json.dumps([[f"{sys.argv[5]}/0/1/state", json.dumps({"n": n})]]).encode(), 1)
os._exit(0)  # no clean close: as after a crash
"""


def build(path: Path, batches: int, messages: int = 0, prefix: str = "check") -> None:
    """A spool left by a crash: `batches` line-protocol batches, `messages` MQTT messages, an energy state."""
    subprocess.run([sys.executable, "-c", BUILD, str(path), str(batches), str(messages), PAD.hex(), prefix], check=True)


def wait_checked(spool: Spool) -> None:
    deadline = time.monotonic() + 60  # bounds a failure only
    while spool._database.check is not None:
        assert time.monotonic() < deadline, "the check never ended"
        time.sleep(0.05)


def test_a_large_spool_left_by_a_crash_opens_at_once_and_takes_the_new_batches_after_its_own(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    build(path, 20_000)
    assert path.stat().st_size > CHECK_AT_ONCE
    spool = Spool(path, 10**7)
    assert spool.load_state("test") == "kept"  # the counters go on at once
    spool.add(b"new", 1)
    wait_checked(spool)
    assert spool.pending() == 20_001
    bodies = [body for _, _, body in spool.oldest(10**6)]  # 10,000 at most a call
    assert bodies[0].startswith(b"pad 0 ") and bodies[-1].startswith(b"pad 9999 ")
    for _ in range(2):
        spool.remove([batch_id for batch_id, _, _ in spool.oldest(10**6)])
    assert [body for _, _, body in spool.oldest(10)] == [b"new"]  # after every older batch
    assert sorted(p.name for p in tmp_path.iterdir() if "journal" not in p.name) == ["spool.sqlite"]
    spool.close()


def test_a_large_spool_damaged_by_a_crash_is_moved_aside_while_polling_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    build(path, 20_000)
    size = path.stat().st_size
    with path.open("r+b") as card:
        for offset in (size // 2, size - 4 * 4096):
            card.seek(offset)
            card.write(os.urandom(4096))
    before = path.read_bytes()
    spool = Spool(path, 10**7)
    spool.add(b"after", 1)
    wait_checked(spool)
    [aside] = [p for p in tmp_path.glob("spool.sqlite.corrupt-*") if not p.name.endswith("-journal")]
    assert aside.read_bytes() == before  # its bytes kept
    assert [body for _, _, body in spool.oldest(10)] == [b"after"]
    assert spool.load_state("test") == "kept"


def evict(path: Path) -> None:
    for name in (path, Path(f"{path}-unchecked")):
        if name.exists():
            fd = os.open(name, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def test_once_checks_a_large_spool_left_by_a_crash_before_it_flushes(tmp_path: Path) -> None:
    """--once ends within seconds: a check in the background would never get to send the old batches."""
    path = tmp_path / "spool.sqlite"
    build(path, 20_000)
    db = ScriptedDatabase([])
    port = str(db.server_address[1])
    done = daemon("-d", SIM, "-s", "127.0.0.1", "-o", port, "-n", "x", "--spool", str(path), "--once")
    db.shutdown()
    assert "Traceback" not in done.stderr, done.stderr
    assert db.bodies and db.bodies[0].startswith(b"pad 0 "), done.stderr  # the old batches first
    assert not Path(f"{path}-unchecked").exists()


def committed(folder: Path) -> set[tuple[str, bytes]]:
    """The MQTT messages in every spool file in `folder` (the spool, and one set aside for its check), read
    as the next start reads them (a crash's journal rolled back)."""
    from pylonbus.sinks.mqtt.sink import unbatch

    found = set()
    for path in folder.glob("spool.sqlite*"):
        if path.name.endswith(("-journal", "-closed", ".lock")):
            continue
        db = sqlite3.connect(path)
        try:
            for (body,) in db.execute("SELECT body FROM queue_mqtt"):
                found |= {(topic, payload.encode()) for topic, payload in unbatch(body)}
        except sqlite3.OperationalError:  # no such table: a new spool the daemon had not written yet
            pass
        finally:
            db.close()
    return found


def start(spool: Path, prefix: str) -> subprocess.Popen[str]:
    args = ["-d", "sim://?stack=US3000C*2", "-q", "1", "--mqtt", f"mqtt://127.0.0.1:{MQTT_PORT}"]
    return subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", *args, "--mqtt-prefix", prefix, "--spool", str(spool)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.server
@pytest.mark.parametrize(("case", "batches", "messages"), [("check", 100_000, 500), ("publishing", 0, 3000)])
def test_kill_9_at_random_moments_loses_no_committed_message(
    mosquitto, tmp_path: Path, case: str, batches: int, messages: int
) -> None:
    """`check`: a large spool left by a crash, killed again and again during its check; `publishing`: a backlog
    of messages, killed again and again while it is published and acknowledged."""
    prefix = f"kill9{case}"
    path = tmp_path / "spool.sqlite"
    build(path, batches, messages, prefix)
    wanted = committed(tmp_path)
    assert len(wanted) == messages
    listener = Listener(f"{prefix}/#", client_id=f"{prefix}-listener")
    draw = random.Random(case)
    try:
        for _ in range(5):
            evict(path)  # as after a reboot: the check reads from the disk
            proc = start(path, prefix)
            time.sleep(draw.uniform(0.2, 3.0))
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate()
            assert "Traceback" not in err, err
            wanted |= committed(tmp_path)  # what each kill left committed
        online = listener.messages.count((f"{prefix}/status", b"online", False))
        proc = start(path, prefix)
        listener.wait(lambda got: wanted <= {message[:2] for message in got}, seconds=120)
        listener.wait(lambda got: got.count((f"{prefix}/status", b"online", False)) > online)  # its handlers are set
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "Traceback" not in err, err
    finally:
        listener.close()
    assert not list(tmp_path.glob("spool.sqlite.corrupt-*")), err
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM batches").fetchone()[0] == batches  # no InfluxDB: all kept
    assert db.execute("SELECT value FROM state WHERE name = 'test'").fetchone() == ("kept",)
