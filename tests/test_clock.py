"""A clock that lies (issue 20): the daemon started on a Raspberry Pi that booted in 1970, NTP setting the clock a
few seconds later, then the clock stepped back by an hour while the broker is down. The process's clock is moved
by tests/clockshift/sitecustomize.py; InfluxDB and Mosquitto are real and keep the real time."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, Broker, free_port, influx_query
from test_mqtt import Listener

CLOCKSHIFT = Path(__file__).parent / "clockshift"
SIM = "sim://?stack=US3000C*2"
PREFIX = "clocktest"
EARLIEST = datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp()


def set_clock(file: Path, offset: float) -> None:
    """Move the daemon's wall clock to `offset` seconds from the real one (replacing the file: one read sees all)."""
    new = file.with_suffix(".new")
    new.write_text(repr(offset))
    new.replace(file)


def wait_for(what: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.2)


def stack_times(messages: list[tuple[str, bytes, bool]]) -> list[float]:
    """The time of each stack state the broker passed on, in the order it passed them."""
    docs = [json.loads(p) for t, p, _ in messages if t == f"{PREFIX}/0/stack/state" and p]
    return [datetime.fromisoformat(doc["time"].replace("Z", "+00:00")).timestamp() for doc in docs]


def stack_energy(messages: list[tuple[str, bytes, bool]]) -> list[float]:
    docs = [json.loads(p) for t, p, _ in messages if t == f"{PREFIX}/0/stack/state" and p]
    return [doc["charge_ah"] + doc["discharge_ah"] for doc in docs]


@pytest.mark.server
def test_a_pi_booting_in_1970_and_a_clock_stepped_back(influxd, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE clock")
    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    port = free_port()
    broker = Broker(
        broker_dir,
        f"persistence true\npersistence_location {broker_dir}/\nlistener {port} 127.0.0.1\nallow_anonymous true\n",
        (port,),
    )
    listener = Listener(f"{PREFIX}/#", client_id="clock-test", port=port)
    clock = tmp_path / "clock"
    set_clock(clock, 300 - time.time())  # five minutes past the epoch
    password = tmp_path / "password"
    password.write_text(INFLUX_PASSWORD + "\n")
    command = [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", SIM, "-q", "1", "--schema", "full"]
    command += ["-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", "clock", "-u", INFLUX_USER]
    command += ["--password-file", str(password), "--spool", str(tmp_path / "spool.sqlite")]
    command += ["--mqtt", f"mqtt://127.0.0.1:{port}", "--mqtt-prefix", PREFIX, "--no-ha-discovery"]
    environ = os.environ | {"PYLONBUS_TEST_CLOCK": str(clock)}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CLOCKSHIFT), os.environ.get("PYTHONPATH")]))
    started = time.time()
    daemon = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environ)
    try:
        time.sleep(5.5)  # a few cycles in 1970 (after the scan)
        assert not stack_times(listener.messages)
        assert not influx_query("SELECT count(voltage) FROM pylontech_stack", db="clock")["results"][0].get("series")
        set_clock(clock, 0.0)  # NTP sets the clock
        set_at = time.time()
        wait_for(lambda: len(stack_times(listener.messages)) >= 7)
        broker.stop()  # the backlog of the step goes through the MQTT queue
        time.sleep(2.5)
        set_clock(clock, -3600.0)
        stepped_at = time.time()
        time.sleep(2.5)
        broker.start()
        wait_for(lambda: any(t < stepped_at - 3000 for t in stack_times(listener.messages)))
        time.sleep(1.5)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=30)
        listener.close()
        broker.stop()
    assert daemon.returncode == 0, log
    assert log.count("the system clock reads 1970-01-01 00:0") == 1, log
    assert log.count("the system clock is set") == 1, log
    assert log.count("the system clock stepped back by 1 h") == 1, log
    assert "stepped forward" not in log, log  # the clock being set is not a step: nothing was stamped before

    times = stack_times(listener.messages)
    assert min(times) >= EARLIEST
    # The readings held until the clock was set carry the time they were taken: from the start of the daemon.
    held = list(itertools.takewhile(lambda t: t < set_at - 0.5, times))
    assert len(held) >= 3 and min(held) >= started - 1, (started, set_at, times)
    # In the order they were taken: one step back (the clock's), and forward everywhere else.
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert [round(s / 60) for s in steps if s < 0] == [-60], steps
    assert all(0 < s < 10 for s in steps if s > -3000), steps  # a late cycle (a loaded machine) is no step
    # Energy is integrated across the step as everywhere (the monotonic clock), and never goes back.
    energy = stack_energy(listener.messages)
    assert energy == sorted(energy) and energy[-1] > energy[len(held)], energy

    rows = influx_query("SELECT voltage FROM pylontech_stack", db="clock", epoch="s")["results"][0]["series"][0]
    stamps = [row[0] for row in rows["values"]]
    assert min(stamps) >= EARLIEST and len(stamps) >= len(times) - 1
    assert len([s for s in stamps if started - 1 <= s < set_at - 0.5]) >= 3
