"""Energy counters (integrated from current and power, kept in the spool's database) and the `full` InfluxDB
schema that carries them, against a real influxd."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylonbus.readings.energy import EnergyMeter, split_area
from pylonbus.store.spool import Spool
from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, influx_query
from test_daemon import SIM, daemon


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
    meter.save(1, force=True)
    spool.close()
    again = EnergyMeter(interval=1, store=Spool(tmp_path / "spool.sqlite", 10))
    assert again.counters["PPT1"].discharge_ah == pytest.approx(1.0)
    assert again.counters["PPT1"].discharge_kwh == pytest.approx(0.05)


def test_a_damaged_saved_state_starts_the_counters_again(tmp_path: Path, caplog) -> None:
    spool = Spool(tmp_path / "spool.sqlite", 10)
    spool.save_state("energy", "{not json")
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
