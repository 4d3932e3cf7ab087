"""Signals as users' scripts send them: bursts of thousands of SIGHUP, SIGUSR1 and SIGUSR2, as fast as `kill` can,
while the daemon polls with its database down, drains a large spool, and scans at start; it keeps polling, and
stops within 2 s of SIGTERM in each state."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pylonbus.sinks.influx.lineproto import battery_line
from pylonbus.store.spool import Spool
from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, free_port, influx_query
from test_daemon import pack, wait_for

BURST = 3000
STOP_WITHIN = 2.0  # s from SIGTERM to exit, in every state


class Daemon:
    """pylon2influx with its HTTP endpoint, which tells whether it still polls (the time of its last reading)."""

    def __init__(self, tmp_path: Path, device: str, *args: str) -> None:
        self.base = f"http://127.0.0.1:{free_port()}"
        self.log = (tmp_path / "daemon.log").open("w+")
        command = [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", device, "-q", "1", "-v", "1"]
        self.proc = subprocess.Popen(
            [*command, "--http", self.base[7:], *args],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    def reading_time(self) -> int | None:
        try:
            with urllib.request.urlopen(self.base + "/api/state", timeout=2) as response:
                return json.loads(response.read()).get("time_ns")
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return None

    def polls(self, seconds: float = 20.0) -> bool:
        """A reading newer than the one served now (or the first one) arrives within `seconds`."""
        before = self.reading_time()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            now = self.reading_time()
            if now is not None and now != before:
                return True
            assert self.proc.poll() is None, self.output()
            time.sleep(0.1)
        return False

    def catches_signals(self, seconds: float = 10.0) -> None:
        """Wait until the process handles SIGHUP (its caught-signal mask in /proc): from then on, a signal
        that ended it would be the daemon's fault, not the interpreter's start-up."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
            caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
            if caught & (1 << (signal.SIGHUP - 1)):
                return
            time.sleep(0.01)
        raise AssertionError(f"no SIGHUP handler within {seconds} s:\n{self.output()}")

    def burst(self) -> None:
        """Thousands of each signal a user's scripts send, as fast as they can be sent."""
        for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            for _ in range(BURST):
                os.kill(self.proc.pid, signum)

    def stop_within(self, seconds: float = STOP_WITHIN) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {seconds} s after SIGTERM:\n{self.output()}") from None

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Daemon]]:
    daemons: list[Daemon] = []
    yield daemons
    for daemon in daemons:
        daemon.close()


def check_survives_bursts(daemon: Daemon) -> None:
    for _ in range(3):
        daemon.burst()
        assert daemon.proc.poll() is None, daemon.output()
    assert daemon.polls(), f"no new reading after the bursts:\n{daemon.output()}"
    assert daemon.stop_within() == 0, daemon.output()
    output = daemon.output()
    assert "Traceback" not in output and "RecursionError" not in output and "internal error" not in output
    assert "modules: group 0: [1, 2, 3]" in output  # SIGHUP's statistics, logged by the main loop


def test_bursts_while_polling_with_the_database_down(tmp_path: Path, started: list[Daemon]) -> None:
    closed = str(free_port())
    spool = str(tmp_path / "spool.sqlite")
    started.append(
        Daemon(tmp_path, "sim://?modules=3&frozen=1", "-s", "127.0.0.1", "-o", closed, "-n", "x", "--spool", spool)
    )
    daemon = started[-1]
    assert daemon.polls(), daemon.output()
    check_survives_bursts(daemon)


def test_sighup_answers_at_the_lowest_verbosity(tmp_path: Path, started: list[Daemon]) -> None:
    # SIGUSR1 lowers the log to errors only (a burst of it does that too); SIGHUP's statistics are still logged.
    started.append(Daemon(tmp_path, "sim://?modules=3&frozen=1", "--spool", str(tmp_path / "spool.sqlite")))
    daemon = started[-1]
    assert daemon.polls(), daemon.output()
    for _ in range(4):
        os.kill(daemon.proc.pid, signal.SIGUSR1)
        time.sleep(0.2)  # one at a time: each is acted on, never merged with the next
    os.kill(daemon.proc.pid, signal.SIGHUP)
    wait_for(lambda: "modules: group 0: [1, 2, 3]" in daemon.output(), "SIGHUP's statistics in the log", 10)
    assert daemon.stop_within() == 0, daemon.output()
    assert "terminated" not in daemon.output()  # the log is at errors only: the rest of it is not shown


def fill_spool(path: Path, batches: int, modules: int) -> None:
    """A spool left by a long outage, written in one transaction (a daemon commits each cycle: minutes here)."""
    Spool(path, batches).close()  # its schema
    start = time.time_ns() - batches * 5 * 10**9
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO batches (created, lines, body) VALUES (?, ?, ?)",
            (
                (
                    time.time(),
                    modules,
                    "\n".join(
                        battery_line(m, pack(cycles=n), start + n * 5 * 10**9) for m in range(1, modules + 1)
                    ).encode(),
                )
                for n in range(batches)
            ),
        )


def test_bursts_while_a_large_spool_drains(tmp_path: Path, started: list[Daemon], influxd) -> None:
    fill_spool(tmp_path / "spool.sqlite", batches=60_000, modules=10)
    influx_query("CREATE DATABASE signals")
    server = f"http://{INFLUX_USER}:{urllib.parse.quote(INFLUX_PASSWORD, safe='')}@127.0.0.1:{INFLUX_PORT}"
    path = str(tmp_path / "spool.sqlite")
    started.append(Daemon(tmp_path, "sim://?modules=3&frozen=1", "-s", server, "-n", "signals", "--spool", path))
    daemon = started[-1]
    assert daemon.polls(), daemon.output()
    check_survives_bursts(daemon)
    assert Spool(tmp_path / "spool.sqlite", 100_000).pending() > 0  # it stopped in the middle of the drain


def test_bursts_during_the_start_up_scan(tmp_path: Path, started: list[Daemon]) -> None:
    # Three modules at 1, 2 and 3 and eleven silent addresses: the scan takes a few seconds.
    started.append(Daemon(tmp_path, "sim://?modules=3&frozen=1"))
    daemon = started[-1]
    daemon.catches_signals()  # the scan of 14 addresses, 11 of them silent, takes about 1.5 s from here
    for _ in range(2):
        daemon.burst()
    assert daemon.polls(), daemon.output()
    check_survives_bursts(daemon)


def test_sigterm_during_the_start_up_scan_stops_within_2_s(tmp_path: Path, started: list[Daemon]) -> None:
    started.append(Daemon(tmp_path, "sim://?modules=3&frozen=1"))
    daemon = started[-1]
    daemon.catches_signals()
    time.sleep(0.5)
    daemon.burst()
    assert daemon.stop_within() == 0, daemon.output()
    assert "stopped during the start-up scan" in daemon.output()
