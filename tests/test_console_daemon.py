"""pylon2influx reading RS485 and the console of one simulated stack: SOH, balancing, cell temperatures and
lifetime counters merged into each module, in the line protocol, influxd, MQTT and /metrics; a console that
stops answering is said once and RS485 goes on."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pylonbus.sim import Stack
from pylonbus.sim.console import balancing, state_of_health
from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, MQTT_PORT, influx_query

STACK = "US3000C,US2000C,US5000"
SEED = 3
MODEL = Stack.parse(STACK, seed=SEED, frozen=True)


def both(sim_process, *faults: str) -> tuple[str, str]:
    """RS485 on a pty and the console of the same stack on another, from one simulator."""
    sim = sim_process("--pty", "--stack", STACK, "--seed", str(SEED), "--frozen", "--console-on", "pty", *faults)
    return sim.port, sim.proc.stdout.readline().strip()


def daemon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", *args], capture_output=True, text=True, timeout=90
    )


def published(tmp_path: Path, prefix: str, *args: str) -> dict[str, bytes]:
    """The latest message of each topic a `--once` run with `args` leaves under `prefix` and Home Assistant's,
    once module 3's state came."""
    from test_mqtt import Listener

    listener = Listener(f"{prefix}/#", "homeassistant/#")
    try:
        done = daemon(
            *(*args, "--once", "--mqtt", f"mqtt://127.0.0.1:{MQTT_PORT}", "--mqtt-prefix", prefix),
            *("--spool", str(tmp_path / "spool.sqlite")),
        )
        assert done.returncode == 0, done.stderr
        listener.wait(lambda got: any(t == f"{prefix}/0/3/state" for t, _, _ in got))
        return listener.latest()
    finally:
        listener.close()


def fields_of(line: str) -> dict[str, str]:
    _, fields, _ = line.split(" ")
    return dict(item.split("=", 1) for item in fields.split(","))


def expected(number: int) -> dict[str, str]:
    module = MODEL.modules[number + 1]
    cells = balancing(module)
    out = {f"balancing_{n}": "true" if on else "false" for n, on in enumerate(cells, 1)}
    return out | {
        "balancing_count": f"{sum(cells)}i",
        "lifetime_cycles": f"{module.cycles}i",
        "soh": repr(float(state_of_health(module))),
        "cell_1_temperature": repr(module.pack().temperatures[1]),
    }


def test_every_module_gets_its_console_quantities_in_the_line_protocol(sim_process) -> None:
    rs485, console = both(sim_process)
    done = daemon("-d", rs485, "--console-device", console, "--schema", "full", "--once")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("pylontech_module")]
    assert len(lines) == 3
    for line in lines:
        fields = fields_of(line)
        number = int(line.split(",")[2].split("=")[1])
        assert {key: fields[key] for key in expected(number)} == expected(number), number


def test_a_silent_console_is_said_once_and_rs485_goes_on(sim_process) -> None:
    rs485 = sim_process("--pty", "--stack", STACK, "--seed", str(SEED), "--frozen").port
    console = sim_process("--pty", "--stack", STACK, "--seed", str(SEED), "--console", "--no-reply", "1").port
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", rs485, "--console-device", console, "-q", "1",
         "--console-every", "2", "--schema", "full"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    time.sleep(12)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err.count("gives no data") == 1, err
    modules = [line for line in out.splitlines() if line.startswith("pylontech_module")]
    assert len(modules) >= 3 * 3 and all("soh=" not in line for line in modules)
    assert all("voltage=" in line for line in modules)


@pytest.mark.server
def test_influxd_receives_soh_and_balancing(influxd, sim_process, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE console")
    password = tmp_path / "password"
    password.write_text(INFLUX_PASSWORD)
    rs485, console = both(sim_process)
    done = daemon(
        *("-d", rs485, "--console-device", console, "--schema", "full", "--once", "-s", "127.0.0.1"),
        *("-o", str(INFLUX_PORT), "-n", "console", "-u", INFLUX_USER, "--password-file", str(password)),
        *("--spool", str(tmp_path / "spool.sqlite")),
    )
    assert done.returncode == 0, done.stderr
    series = influx_query("SELECT soh, balancing_count, lifetime_cycles FROM pylontech_module GROUP BY module",
                          db="console")["results"][0]["series"]  # fmt: skip
    assert len(series) == 3
    for entry in series:
        number = int(entry["tags"]["module"])
        module = MODEL.modules[number + 1]
        _, soh, count, cycles = entry["values"][0]
        assert (soh, count, cycles) == (state_of_health(module), sum(balancing(module)), module.cycles)


@pytest.mark.server
def test_mqtt_state_and_home_assistant_entities(mosquitto, sim_process, tmp_path: Path) -> None:
    rs485, console = both(sim_process)
    latest = published(tmp_path, "pylontech", "-d", rs485, "--console-device", console)
    state = json.loads(latest["pylontech/0/1/state"])
    module = MODEL.modules[2]
    assert state["soh"] == state_of_health(module) and state["balancing"] == list(balancing(module))
    assert state["lifetime_cycles"] == module.cycles and state["cell_1_temperature"] == module.pack().temperatures[1]
    configs = {topic: json.loads(payload) for topic, payload in latest.items() if topic.startswith("homeassistant/")}
    node = f"pylontech_{module.serial}"
    soh = configs[f"homeassistant/sensor/{node}/soh/config"]
    assert soh["unit_of_measurement"] == "%"
    cell = configs[f"homeassistant/binary_sensor/{node}/balancing_0/config"]
    assert cell["enabled_by_default"] is False
    cycles = configs[f"homeassistant/sensor/{node}/lifetime_cycles/config"]
    assert cycles["entity_category"] == "diagnostic"


def served(wanted: str, *args: str) -> tuple[str, dict]:
    """pylon2influx with `args` and --http: /metrics once it names `wanted` (the first cycles take a while), and
    /api/state then."""
    import urllib.request

    from servers import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", *args, "-q", "1", "--http", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        metrics = ""
        while wanted not in metrics and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    metrics = response.read().decode()
            except OSError:
                continue
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=5) as response:
            return metrics, json.loads(response.read())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_metrics_and_the_live_pages_state_carry_the_console(sim_process) -> None:
    rs485, console = both(sim_process)
    metrics, state = served("pylontech_soh_ratio", "-d", rs485, "--console-device", console)
    module = MODEL.modules[2]
    lines = {
        line.rpartition(" ")[0]: line.rpartition(" ")[2]
        for line in metrics.splitlines()
        if f'"{module.serial}"' in line
    }
    soh = next(value for name, value in lines.items() if name.startswith("pylontech_soh_ratio{"))
    assert float(soh) == state_of_health(module) / 100
    count = next(value for name, value in lines.items() if name.startswith("pylontech_balancing_count{"))
    assert int(count) == sum(balancing(module))
    cycles = next(value for name, value in lines.items() if name.startswith("pylontech_lifetime_cycles_total{"))
    assert int(cycles) == module.cycles
    cell = next(value for name, value in lines.items() if name.startswith("pylontech_temperature_celsius{") and
                'sensor="cell_1"' in name)  # fmt: skip
    assert float(cell) == module.pack().temperatures[1]
    doc = state["stacks"][0]["modules"][0]
    assert doc["balancing"] == list(balancing(module)) and doc["soh"] == state_of_health(module)
