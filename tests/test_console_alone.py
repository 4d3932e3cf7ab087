"""pylon2influx reading the console port alone (`--console-device` without `-d`, the RS485 port taken by the
inverter): each module's `pwr` row every cycle, cells, SOH and counters from `bat`/`soh`/`stat`, who it is from
`info`; in the line protocol, influxd, MQTT and /metrics, each value the simulator's model, and what a firmware's
tables do not carry absent. A console that stops answering is said once, and so is its return."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pylonbus.sim import Stack
from pylonbus.sim.console import balancing, state_of_health
from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, free_port, influx_query
from test_console_daemon import daemon, published, served

STACK = "US3000C,US2000C,US5000"
SEED = 11
MODEL = Stack.parse(STACK, seed=SEED, frozen=True)


def console(sim_process, firmware: str, *where: str) -> str:
    """The console of the simulated stack, as `firmware` prints it, on a pty (or `where`)."""
    where = where or ("--pty",)
    return sim_process(*where, "--console", "--console-firmware", firmware, "--stack", STACK, "--seed", str(SEED),
                       "--frozen").port  # fmt: skip


def fields_of(line: str) -> tuple[dict[str, str], dict[str, str]]:
    """The tags and fields of a line-protocol line."""
    series, fields, _ = line.split(" ")
    tags = dict(item.split("=", 1) for item in series.split(",")[1:])
    return tags, dict(item.split("=", 1) for item in fields.split(","))


def model(number: int, firmware: str) -> dict[str, float | int | None]:
    """What the console of module `number` proves, by the simulator's model; None where `firmware` has none."""
    module = MODEL.modules[number + 1]  # the model is keyed by address
    pack = module.pack()
    cells = pack.cell_voltages
    indexed = firmware == "us5000"  # header C prints Vlow.Id/Vhigh.Id
    mosfet = firmware in ("us2000c", "us5000") and len(pack.temperatures) > 5
    stat = firmware != "pytes"  # Pytes V5 refuses `stat N`
    return {
        "voltage": pack.voltage,
        "current": pack.current,
        "soc": float(round(module.soc * 100)),
        "cell_min": min(cells),
        "cell_max": max(cells),
        "cell_min_index": cells.index(min(cells)) + 1 if indexed else None,
        "cell_max_index": cells.index(max(cells)) + 1 if indexed else None,
        "temperature_bms": pack.temperatures[5] if mosfet else None,
        "cycles": module.cycles if stat else None,
        "lifetime_cycles": module.cycles if stat else None,
        "soh": float(state_of_health(module)) if firmware in ("us2000c", "us5000") else None,
        "balancing_count": sum(balancing(module)) if firmware in ("us2000c", "us5000") else None,
        **{f"cell_{n}": volts for n, volts in enumerate(cells, 1)},
    }


def from_line(fields: dict[str, str], key: str) -> float | int | None:
    if key not in fields:
        return None
    text = fields[key]
    return int(text[:-1]) if text.endswith("i") else float(text)


@pytest.mark.parametrize("firmware", ["us5000", "pytes", "us2000b"])
def test_once_writes_each_module_as_the_console_proves_it(sim_process, firmware: str, tmp_path: Path) -> None:
    port = console(sim_process, firmware)
    wake = ["--console-wake"] if firmware == "us2000b" else []  # the frame some US2000B need, harmless elsewhere
    done = daemon("--console-device", port, *wake, "--schema", "full", "--once", "--spool", str(tmp_path / "spool"))
    assert done.returncode == 0, done.stderr
    modules = [fields_of(line) for line in done.stdout.splitlines() if line.startswith("pylontech_module")]
    assert [int(tags["module"]) for tags, _ in modules] == [1, 2, 3]
    for tags, fields in modules:
        number = int(tags["module"])
        assert tags["serial"] == MODEL.modules[number + 1].serial
        expected = model(number, firmware)
        assert {key: from_line(fields, key) for key in expected} == expected, (firmware, number)
        # pwr prints no capacities: absent, never 0
        assert not {"remaining_capacity", "full_capacity", "cell_mean"} & set(fields)
        alarms = {key for key in fields if key.startswith("alarm_")}
        assert all(fields[key] == "false" for key in alarms)  # the simulator's states are all Normal
        assert ("alarm_system_alarm" in alarms) == (firmware == "us5000")  # SysAlarm.St: header C only
        assert {"alarm_voltage_low", "alarm_temperature_high", "alarm_system_error"} <= alarms
    stack = next(fields_of(line)[1] for line in done.stdout.splitlines() if line.startswith("pylontech_stack"))
    currents = [MODEL.modules[n + 1].pack().current for n in (1, 2, 3)]
    assert float(stack["current"]) == round(sum(currents), 1) and "soc" not in stack


def test_a_config_file_with_console_device_and_no_device(sim_process, tmp_path: Path) -> None:
    config = tmp_path / "pylon2influx.toml"
    config.write_text(f'[battery]\nconsole_device = "{console(sim_process, "us2000c")}"\n[influx]\nschema = "full"\n')
    done = daemon("--config", str(config), "--once", "--spool", str(tmp_path / "spool"))
    assert done.returncode == 0, done.stderr
    modules = [fields_of(line) for line in done.stdout.splitlines() if line.startswith("pylontech_module")]
    assert [(int(tags["module"]), fields["voltage"]) for tags, fields in modules] == [
        (n, repr(MODEL.modules[n + 1].pack().voltage)) for n in (1, 2, 3)
    ]


def test_the_states_of_a_captured_pwr_are_the_modules_alarms() -> None:
    """A captured `pwr` (header B) with a module in `SysError` and `Low` voltage: those raised, the rest not, and
    no alarm of a column that table lacks (SysAlarm.St)."""
    from pylonbus.console import read_session
    from pylonbus.console.results import StackSummary
    from pylonbus.readings.documents import module_state
    from pylonbus.readings.reading import ModuleReading
    from pylonbus.readings.states import console_states

    captured = json.loads((Path(__file__).parent / "vectors" / "console" / "transcripts.json").read_text())
    summaries = [r for t in captured for _, r in read_session(t["text"]) if isinstance(r, StackSummary)]
    rows = [row for summary in summaries for row in summary.modules if row.base_state == "SysError"]
    assert len(rows) == 1
    row = rows[0]
    alarms = module_state(ModuleReading(0, row.module, None, console_states(row), summary=row), 0)["alarms"]
    raised = {name for name, on in alarms.items() if on}
    assert raised == {"system_error", "voltage_low", "battery_voltage_low"}
    assert "system_alarm" not in alarms and "cell_voltage_low" not in alarms  # neither printed by this table
    assert {"current_high", "temperature_low", "mosfet_temperature_high"} <= set(alarms)


def test_the_c_schema_is_refused_in_one_line(sim_process, tmp_path: Path) -> None:
    done = daemon("--console-device", str(tmp_path / "console"), "--once")
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "--schema full" in done.stderr and str(tmp_path / "console") in done.stderr


def test_a_console_that_does_not_open_is_one_line_naming_it(tmp_path: Path) -> None:
    port = str(tmp_path / "ttyUSB9")
    done = daemon("--console-device", port, "--schema", "full", "--once", "--spool", str(tmp_path / "spool"))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]  # then the closing statistics
    assert len(errors) == 1 and "Traceback" not in done.stderr and port in errors[0] and "RS232" in errors[0], errors


def test_a_console_where_nothing_answers_ends_once_with_exit_2(sim_process, tmp_path: Path) -> None:
    port = console(sim_process, "us2000c", "--pty", "--no-reply", "1")
    done = daemon("--console-device", port, "--schema", "full", "--once", "--spool", str(tmp_path / "spool"))
    assert done.returncode == 2 and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert port in errors[0] and "RS232, not RS485" in errors[0] and "--console-wake" in errors[0]


def test_a_force_h2_tower_console_alone_is_one_line_naming_rs485(sim_process, tmp_path: Path) -> None:
    port = console(sim_process, "forceh2", "--pty")
    done = daemon("--console-device", port, "--schema", "full", "--once", "--spool", str(tmp_path / "spool"))
    assert done.returncode == 2 and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert port in errors[0] and "Force H2 tower" in errors[0] and "-d PORT" in errors[0]


@pytest.mark.server
def test_influxd_gets_the_console_readings_over_tcp(influxd, sim_process, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE console_alone")
    password = tmp_path / "password"
    password.write_text(INFLUX_PASSWORD)
    port = console(sim_process, "us2000c", "--tcp", "127.0.0.1:0")
    assert port.startswith("socket://")
    done = daemon(
        *("--console-device", port, "--schema", "full", "--once", "-s", "127.0.0.1", "-o", str(INFLUX_PORT)),
        *("-n", "console_alone", "-u", INFLUX_USER, "--password-file", str(password)),
        *("--spool", str(tmp_path / "spool.sqlite")),
    )
    assert done.returncode == 0, done.stderr
    keys = ("voltage", "current", "soc", "cell_min", "cell_max", "soh", "lifetime_cycles", "balancing_count")
    result = influx_query(f"SELECT {', '.join(keys)} FROM pylontech_module GROUP BY module, serial", db="console_alone")
    series = result["results"][0]["series"]
    assert len(series) == 3
    for entry in series:
        number = int(entry["tags"]["module"])
        assert entry["tags"]["serial"] == MODEL.modules[number + 1].serial
        expected = model(number, "us2000c")
        assert dict(zip(keys, entry["values"][0][1:], strict=True)) == {key: expected[key] for key in keys}
    fields = influx_query("SHOW FIELD KEYS FROM pylontech_module", db="console_alone")["results"][0]["series"][0]
    assert not {"remaining_capacity", "full_capacity"} & {name for name, _ in fields["values"]}


@pytest.mark.server
def test_mqtt_state_and_home_assistant_devices_from_the_pytes_console(mosquitto, sim_process, tmp_path: Path) -> None:
    latest = published(tmp_path, "alone", "--console-device", console(sim_process, "pytes"))
    for number in (1, 2, 3):
        state = json.loads(latest[f"alone/0/{number}/state"])
        expected = model(number, "pytes")
        cells = [expected.pop(f"cell_{n}") for n in range(1, len(state["cells"]) + 1)]
        assert state["cells"] == cells and state["online"] is True
        assert {key: state.get(key) for key in expected} == expected, number
        assert "remaining_capacity" not in state and "soh" not in state
        serial = MODEL.modules[number + 1].serial
        assert state["serial"] == serial and state["manufacturer"] == "PYTES"
        config = json.loads(latest[f"homeassistant/sensor/pylontech_{serial}/voltage/config"])
        assert config["state_topic"] == f"alone/0/{number}/state" and config["device"]["serial_number"] == serial
        alarm = json.loads(latest[f"homeassistant/binary_sensor/pylontech_{serial}/alarms_voltage_low/config"])
        assert alarm["state_topic"] == config["state_topic"] and state["alarms"]["voltage_low"] is False
        # No entity for what pwr never prints (it would only ever show "unknown")
        assert f"homeassistant/sensor/pylontech_{serial}/remaining_capacity/config" not in latest
        assert f"homeassistant/sensor/pylontech_{serial}/full_capacity/config" not in latest
        assert f"homeassistant/sensor/pylontech_{serial}/soc/config" in latest


def test_metrics_and_the_live_pages_state(sim_process) -> None:
    metrics, state = served("pylontech_module_voltage_volts", "--console-device", console(sim_process, "us5000"))
    module = MODEL.modules[4]  # module 3, the US5000
    expected = model(3, "us5000")
    samples = {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in metrics.splitlines()
        if f'serial="{module.serial}"' in line
    }

    def sample(name: str, label: str = "") -> float:
        return next(value for key, value in samples.items() if key.startswith(name + "{") and label in key)

    assert sample("pylontech_module_voltage_volts") == expected["voltage"]
    assert sample("pylontech_module_current_amperes") == expected["current"]
    assert sample("pylontech_state_of_charge_ratio") == expected["soc"] / 100
    assert sample("pylontech_temperature_celsius", 'sensor="bms"') == expected["temperature_bms"]
    assert sample("pylontech_cell_voltage_volts", 'cell="1"') == expected["cell_1"]
    assert not any(key.startswith("pylontech_remaining_capacity") for key in samples)
    doc = state["stacks"][0]["modules"][2]
    assert doc["voltage"] == expected["voltage"] and doc["balancing"] == list(balancing(module))


def test_a_console_that_goes_and_comes_back_is_said_once_each(sim_process) -> None:
    address = f"127.0.0.1:{free_port()}"
    sim = sim_process("--tcp", address, "--console", "--stack", STACK, "--seed", str(SEED), "--frozen")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "--console-device", sim.port, "-q", "1",
         "--console-every", "2", "--schema", "full"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    out: list[str] = []
    err: list[str] = []
    readers = [
        threading.Thread(target=lambda s=stream, to=kept: to.extend(iter(s.readline, "")), daemon=True)
        for stream, kept in ((proc.stdout, out), (proc.stderr, err))
    ]
    for reader in readers:
        reader.start()

    def wait_for(check) -> int:
        deadline = time.monotonic() + 60
        while not check() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert check(), "".join(err)
        return len(out)

    def online(since: int) -> bool:
        return any("module=3" in line and "online=true" in line for line in out[since:])

    try:
        wait_for(lambda: online(0))
        sim.stop()
        wait_for(lambda: any("gives no data" in line for line in err))
        silent = len(out)
        wait_for(lambda: any("module=3" in line and "online=false" in line for line in out[silent:]))
        sim_process("--tcp", address, "--console", "--stack", STACK, "--seed", str(SEED), "--frozen")
        wait_for(lambda: any("answers again" in line for line in err))
        back = len(out)
        wait_for(lambda: online(back))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        for reader in readers:
            reader.join(timeout=10)
    log = "".join(err)
    assert proc.returncode == 0, log
    assert log.count("gives no data") == 1 and "no readings are published" in log, log
    assert log.count("answers again") == 1 and "readings resume" in log, log
    assert "Traceback" not in log and "poll errors: 0;" not in log  # the silent cycles are counted
    line = next(line for line in out[back:] if "module=3" in line and "online=true" in line)
    _, fields = fields_of(line)
    assert float(fields["voltage"]) == model(3, "us2000c")["voltage"]
    assert float(fields["current"]) == model(3, "us2000c")["current"]
