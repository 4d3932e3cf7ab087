"""Energy counters (integrated from current and power, kept in the spool's database or their own state file,
committed every cycle) and the `full` InfluxDB schema that carries them, against a real influxd; they never go
back, also across kill -9."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pylonbus.readings.energy import EnergyMeter, split_area
from pylonbus.store.spool import Spool
from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, influx_query
from test_daemon import SIM, daemon

MOVING = "sim://?stack=US3000C*2&seed=5"  # a discharging stack: the counters grow every cycle
COUNTERS = ("charge_ah", "discharge_ah", "charge_kwh", "discharge_kwh")


def test_area_splits_where_the_current_changes_sign() -> None:
    assert split_area(2.0, 4.0, 10) == (30.0, 0.0)
    assert split_area(-2.0, -4.0, 10) == (0.0, 30.0)
    assert split_area(10.0, -10.0, 2) == (5.0, 5.0)  # crosses 0 after 1 s
    charge, discharge = split_area(-30.0, 10.0, 4)  # crosses 0 after 3 s
    assert charge == pytest.approx(5.0) and discharge == pytest.approx(45.0)


def test_an_hour_at_one_ampere_is_one_amp_hour_and_gaps_are_not_guessed() -> None:
    meter = EnergyMeter(interval=5)
    for second in range(0, 3601, 5):
        energy = meter.add("m", second, 1.0, 50.0)
    assert energy.charge_ah == pytest.approx(1.0) and energy.charge_kwh == pytest.approx(0.05)
    meter.add("m", 3600 + 16, 1.0, 50.0)  # 16 s after the last: more than 3 intervals, not integrated
    meter.add("m", 3600 + 21, None, None)  # offline: the next reading starts afresh
    meter.add("m", 3600 + 26, -2.0, -100.0)
    assert meter.counters["m"].charge_ah == pytest.approx(1.0) and meter.counters["m"].discharge_ah == 0


def test_counters_survive_a_restart_in_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", 10)
    meter = EnergyMeter(interval=1, store=spool)
    meter.add("PPT1", 0, -3600.0, -180000.0)
    meter.add("PPT1", 1, -3600.0, -180000.0)
    meter.stage()
    meter.commit()
    spool.close()
    again = EnergyMeter(interval=1, store=Spool(tmp_path / "spool.sqlite", 10))
    assert again.counters["PPT1"].discharge_ah == pytest.approx(1.0)
    assert again.counters["PPT1"].discharge_kwh == pytest.approx(0.05)


def test_the_counters_commit_with_the_cycles_batch_and_unchanged_ones_are_not_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", 10)
    spool.stage_state("energy", "1")
    spool.add(b"a 1", 1)  # one transaction: the batch and the counters
    assert Spool(tmp_path / "spool.sqlite", 10).load_state("energy") == "1"
    spool.stage_state("energy", "1")  # as committed: nothing left to write
    spool._db.execute("UPDATE state SET value = 'changed behind its back'")
    spool.commit_state()
    assert spool.load_state("energy") == "changed behind its back"


def test_counters_nothing_showed_commit_once_a_minute_and_shown_ones_at_once(tmp_path: Path) -> None:
    """After a cycle that spooled nothing, the counters are committed at most once a minute (a commit a second
    wore the SD card for values nobody saw); before they are shown, and at exit, at once."""
    spool = Spool(tmp_path / "spool.sqlite", 10)
    meter = EnergyMeter(interval=1, store=spool)

    def saved() -> str | None:
        return Spool(tmp_path / "spool.sqlite", 10).load_state("energy")

    def cycle(n: int, unseen: float | None) -> None:
        meter.add("PPT1", n, -3600.0, -180000.0)
        meter.stage()
        meter.commit(unseen)

    cycle(0, 1000.0)
    first = saved()
    assert first is not None
    cycle(1, 1001.0)
    cycle(2, 1059.0)
    assert saved() == first  # nothing showed them: a power cut takes back what nobody saw
    cycle(3, 1060.0)
    assert saved() != first
    minute = saved()
    cycle(4, None)  # before a sink shows them
    assert saved() != minute
    assert EnergyMeter(interval=1, store=Spool(tmp_path / "spool.sqlite", 10)).counters == meter.counters


def test_the_deletions_of_sent_batches_ride_on_a_commit_that_writes(tmp_path: Path) -> None:
    """Deleting sent batches costs no commit of its own a cycle: they wait for the next batch's commit (a crash
    sends them again), or for the count that calls for one, or for `settle` at exit."""
    import sqlite3

    spool = Spool(tmp_path / "spool.sqlite", 1000)
    for n in range(3):
        spool.add(f"m v={n}".encode(), 1)

    def rows() -> int:
        with sqlite3.connect(tmp_path / "spool.sqlite") as db:
            return sum(db.execute(f"SELECT count(*) FROM {spool._table}").fetchone())

    sent = [batch_id for batch_id, _, _ in spool.oldest(2)]
    spool.remove(sent, defer=True)
    with spool.transaction():
        pass  # a cycle that spooled nothing
    assert rows() == 3 and spool.pending() == 1
    with spool.transaction():
        spool.add(b"m v=3", 1)
    assert rows() == 2 and spool.pending() == 2
    spool.remove([batch_id for batch_id, _, _ in spool.oldest(1)], defer=True)
    spool.settle()
    assert rows() == 1


def test_a_damaged_saved_state_starts_the_counters_again(tmp_path: Path, caplog) -> None:
    spool = Spool(tmp_path / "spool.sqlite", 10)
    spool.stage_state("energy", "{not json")
    spool.commit_state()
    assert EnergyMeter(interval=1, store=spool).counters == {}
    assert "start again from 0" in caplog.text


@pytest.mark.server
def test_schema_both_writes_the_c_lines_and_the_full_measurements(influxd, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE full")
    done = daemon(
        *("-d", SIM, "-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", "full", "-u", INFLUX_USER),
        *("--schema", "both", "--spool", str(tmp_path / "spool.sqlite"), "--once"),
        env={"INFLUX_PASSWORD": INFLUX_PASSWORD},
    )
    assert done.returncode == 0, done.stderr
    results = influx_query(
        "SELECT * FROM Battery; SELECT * FROM pylontech_module; SELECT * FROM pylontech_stack", db="full"
    )["results"]
    battery, module, stack = (result["series"][0] for result in results)
    assert len(battery["values"]) == 3
    rows = [dict(zip(module["columns"], values, strict=True)) for values in module["values"]]
    assert sorted(row["module"] for row in rows) == ["1", "2", "3"]
    for row in rows:
        assert row["serial"] and row["online"] is True
        assert row["cell_1"] > 3 and row["cell_delta"] == pytest.approx(
            max(v for k, v in row.items() if k.startswith("cell_") and k[5:].isdigit() and v is not None)
            - min(v for k, v in row.items() if k.startswith("cell_") and k[5:].isdigit() and v is not None),
            abs=1e-3,
        )
        assert row["alarm_cell_voltage_high"] is False and isinstance(row["status2"], int)
        assert row["charge_ah"] == 0 and row["discharge_ah"] == 0  # one reading: nothing to integrate yet
    stack_row = dict(zip(stack["columns"], stack["values"][0], strict=True))
    assert stack_row["modules_online"] == 3 and stack_row["group"] == "0"


def counters_of(rows: list[dict]) -> dict[str, list[dict]]:
    """The rows of each series (module serial or stack group), in time order."""
    series: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda row: row["time"]):
        series.setdefault(row.get("serial") or row["group"], []).append(row)
    return series


def assert_never_back(series: dict[str, list[dict]]) -> None:
    for name, rows in series.items():
        for key in COUNTERS:
            values = [row[key] for row in rows]
            assert values == sorted(values), f"{name} {key} went back: {values}"
    assert any(rows[-1]["discharge_kwh"] > 0 for rows in series.values())


@pytest.mark.server
def test_kill_9_at_random_moments_never_sends_a_counter_lower_than_one_sent(influxd, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE energy")
    args = [*("-d", MOVING, "-q", "1", "--all", "--schema", "full", "--spool", str(tmp_path / "spool.sqlite"))]
    args += ["-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", "energy", "-u", INFLUX_USER]
    env = os.environ | {"INFLUX_PASSWORD": INFLUX_PASSWORD}
    chance = random.Random(5)

    def stack_rows() -> int:
        series = influx_query("SELECT COUNT(current) FROM pylontech_stack", db="energy")["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0

    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "pylonbus.cli.pylon2influx", *args], env=env)
        written, deadline = stack_rows(), time.monotonic() + 60
        while stack_rows() < written + 2 and time.monotonic() < deadline:  # two cycles integrated and sent
            time.sleep(0.1)
        time.sleep(chance.uniform(0, 2))  # then anywhere in a cycle: polling, committing, sending
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = daemon(*args, "--once", env=env)  # sends what the last one left spooled
    assert done.returncode == 0, done.stderr
    for measurement in ("pylontech_stack", "pylontech_module"):
        [result] = influx_query(f"SELECT * FROM {measurement}", db="energy")["results"]
        table = result["series"][0]
        rows = [dict(zip(table["columns"], values, strict=True)) for values in table["values"]]
        assert len(rows) >= 12
        assert_never_back(counters_of(rows))


def test_without_a_spool_the_counters_go_on_after_kill_9_from_the_last_line_printed(tmp_path: Path) -> None:
    """Standard output only: the counters live in energy.sqlite beside the default spool, and each line is
    printed only once its counters are committed."""
    chance = random.Random(7)
    printed: list[str] = []
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", MOVING, "-q", "1", "--all", "--schema", "full"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=os.environ | {"STATE_DIRECTORY": str(tmp_path)},
        )
        assert proc.stdout is not None
        stacks = 0
        while stacks < 2 + chance.randrange(3):  # a random number of cycles, at least one integrated
            line = proc.stdout.readline()
            assert line, "the daemon ended"
            printed.append(line)
            stacks += line.startswith("pylontech_stack,")
        time.sleep(chance.uniform(0, 1))
        proc.send_signal(signal.SIGKILL)
        printed += proc.stdout.read().splitlines()
        proc.wait()
    rows = [
        {"group": "0", "time": int(line.rsplit(" ", 1)[1])}
        | {key: float(value) for key, value in re.findall(r"(\w+_(?:ah|kwh))=([\d.e+-]+)", line)}
        for line in printed
        if line.startswith("pylontech_stack,")
    ]
    assert len(rows) >= 10
    assert_never_back(counters_of(rows))
    assert (tmp_path / "energy.sqlite").is_file() and (tmp_path / "energy.sqlite.lock").is_file()
