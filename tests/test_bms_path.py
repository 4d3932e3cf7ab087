"""Every BMS family through the whole data path (issue 21): `--bms auto` on the simulator over a pty, one daemon
polling a port of each family into a real influxd (`--schema full`) and Mosquitto (Home Assistant discovery),
its Prometheus metrics through promtool, and the config file's `[[battery]]` tables."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pylonbus.protocol.families import DEFAULT, names
from pylonbus.service.config import load
from pylonbus.service.settings import ConfigError
from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, free_port, influx_query, need
from test_config import write
from test_mqtt import Listener, check_configs, render, start, stop

FAMILIES = names()
OTHERS = [name for name in FAMILIES if name != DEFAULT]


def sim(name: str) -> str:
    """A frozen stack of the family, a seed of its own (serials differ, as on a real bus)."""
    return f"sim://?bms={name}&frozen=1&pace=0&seed={FAMILIES.index(name) + 1}"


def every_port() -> list[str]:
    """`-d` and `--bms` for one port of each family."""
    return [arg for name in FAMILIES for arg in ("-d", sim(name), "--bms", name)]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylontech", *args], capture_output=True, text=True, timeout=120
    )


def analog(name: str, module: int) -> dict[str, Any]:
    """What `pylontech --bms NAME --json` reads of a module: what every sink must agree with."""
    done = cli("-d", sim(name), "--bms", name, "-a", str(module), "-P", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["result"]


@pytest.mark.parametrize("name", FAMILIES)
def test_bms_auto_names_the_family_that_answers_on_a_pty(sim_process, name: str) -> None:
    port = sim_process("--pty", "--bms", name, "--frozen").port
    done = cli("-d", port, "-t", "--bms", "auto")
    assert done.returncode == 0, done.stderr
    assert f"(--bms {name})" in done.stdout and "answers on" in done.stdout, done.stdout


def test_bms_auto_on_a_line_without_a_battery_is_one_line_and_status_2(sim_process) -> None:
    port = sim_process("--pty", "--stack", "-").port
    done = cli("-d", port, "-t", "--bms", "auto", "--timeout", "0.05")
    assert done.returncode == 2 and "no BMS family" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("name", OTHERS)
def test_another_family_with_the_c_schema_is_refused_in_one_line(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", sim(name), "--bms", name, "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "--schema full" in done.stderr and len(done.stderr.splitlines()) == 1


def test_several_ports_of_several_families_in_one_daemon_on_standard_output() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", *every_port(), "--once", "--schema", "both"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("Battery,Module=") for line in lines) == 3  # the C lines are Pylontech's alone
    for name in OTHERS:
        assert sum(line.startswith(f"pylontech_module,bms={name},group=0,module=") for line in lines) == 3
        assert sum(line.startswith(f"pylontech_stack,bms={name},group=0 ") for line in lines) == 1
    assert sum(line.startswith("pylontech_module,group=0,module=") for line in lines) == 3  # Pylontech as before


def rows(measurement: str) -> list[dict[str, Any]]:
    series = influx_query(f"SELECT * FROM {measurement}", db="families")["results"][0].get("series", [])
    return [dict(zip(s["columns"], values, strict=True)) for s in series for values in s["values"]]


@pytest.mark.server
def test_the_daemon_writes_every_family_into_influxdb_with_its_tag_and_extra_fields(influxd, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE families")
    args = ["-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", "families", "-u", INFLUX_USER, "-p", INFLUX_PASSWORD]
    args += ["--spool", str(tmp_path / "spool.sqlite")]
    done = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", *every_port(), "--once", "--schema", "full", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    modules = rows("pylontech_module")
    assert modules, done.stderr
    by_family = {name: [r for r in modules if (r["bms"] or DEFAULT) == name] for name in FAMILIES}
    assert {name: len(found) for name, found in by_family.items()} == dict.fromkeys(FAMILIES, 3)
    for name, found in by_family.items():
        row = next(r for r in found if r["module"] == "1")
        read = analog(name, 1)
        assert (row["voltage"], row["current"], row["cycles"]) == (read["voltage"], read["current"], read["cycles"])
        assert row["cell_1"] == read["cell_voltages"][0] and row["online"] is True
    seplos = next(r for r in by_family["seplos"] if r["module"] == "1")
    assert seplos["soh"] == analog("seplos", 1)["soh"] and seplos["port_voltage"] > 40
    assert {"soh", "charged_energy", "charges", "mosfet_temperature"} <= {
        k for k, v in by_family["eg4"][0].items() if v
    }
    assert sorted(r["bms"] or DEFAULT for r in rows("pylontech_stack")) == sorted(FAMILIES)


@pytest.mark.server
def test_every_family_reaches_mosquitto_with_discovery_that_passes_the_same_checks(mosquitto, tmp_path: Path) -> None:
    listener = Listener("homeassistant/#", "fam/#")
    daemon = start(tmp_path, *every_port(), "-q", "1", "--schema", "full", prefix="fam")
    expected = {f"fam/{name}/0/{module}/state" for name in OTHERS for module in (1, 2, 3)}
    expected |= {f"fam/0/{module}/state" for module in (1, 2, 3)} | {f"fam/{name}/0/stack/state" for name in OTHERS}
    try:
        listener.wait(lambda got: expected <= {t for t, _, _ in got}, seconds=60)
        time.sleep(2)  # the discovery of every device
    finally:
        err = stop(daemon)
    latest = listener.latest()
    configs = {t: json.loads(p) for t, p in latest.items() if t.startswith("homeassistant/") and p}
    check_configs(configs, latest, "fam")
    for name in OTHERS:
        mine = [c for c in configs.values() if c["state_topic"] == f"fam/{name}/0/1/state"]
        assert mine, (name, err)
        by_name = {c["name"]: c for c in mine}
        state = latest[f"fam/{name}/0/1/state"]
        read = analog(name, 1)
        assert render(by_name["Voltage"]["value_template"], state) == str(read["voltage"])
        assert by_name["Voltage"]["device"]["via_device"] == f"fam_stack_{name}_0"
        for quantity, value in read.items():  # each extra the family reports is an entity of its own
            described = json.loads(state).get(quantity)
            if quantity in {"soh", "port_voltage", "mosfet_temperature", "charged_energy"} and described is not None:
                entity = next(c for c in mine if c["unique_id"].endswith(f"_{quantity}"))
                assert float(render(entity["value_template"], state)) == value, quantity
    eg4 = {c["name"]: c for c in configs.values() if c["state_topic"] == "fam/eg4/0/1/state"}
    counters = [c for c in eg4.values() if c.get("state_class") == "total_increasing"]
    assert {"Energy put in over the pack's life", "Number of charges"} <= {c["name"] for c in counters}
    pace = next(c for c in configs.values() if c["state_topic"] == "fam/pace/0/1/state")
    assert pace["device"]["model"] == json.loads(latest["fam/pace/0/1/state"])["model"] and pace["device"]["model"]


def test_metrics_of_every_family_pass_promtool_with_a_bms_label(tmp_path: Path) -> None:
    port = free_port()
    http = ["--http", f"127.0.0.1:{port}", "--energy-state", str(tmp_path / "energy.sqlite")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", *every_port(), "-q", "1", "--schema", "full", *http],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, body = time.monotonic() + 60, b""
        while time.monotonic() < deadline and b'bms="seplos"' not in body:
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    body = response.read()
            except OSError:
                continue
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=5) as response:
            state = json.loads(response.read())
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    stacks = {stack.get("bms", DEFAULT): stack for stack in state["stacks"]}  # what the live page draws
    assert set(stacks) == set(FAMILIES) and "port_voltage" in stacks["seplos"]["extras"]
    assert stacks["seplos"]["modules"][0]["port_voltage"] > 40 and "extras" not in stacks[DEFAULT]
    check = subprocess.run([need("promtool"), "check", "metrics"], input=body, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    text = body.decode()
    for name in OTHERS:  # the same metric names as Pylontech's, with the family as a label
        assert f'pylontech_module_voltage_volts{{bms="{name}",group="0",module="1"' in text
    assert 'pylontech_module_voltage_volts{group="0",module="1"' in text
    assert 'pylontech_temperature_celsius{bms="seplos",group="0",module="1",serial="",sensor="mosfet"}' in text
    assert 'pylontech_charged_energy_joules_total{bms="eg4"' in text


def test_battery_tables_give_each_port_its_family(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        '[[battery]]\ndevice = "/dev/ttyUSB0"\ninterval = 9\n\n'
        '[[battery]]\ndevice = "socket://gw:8899"\nbms = "seplos"\nbaud = 9600\n\n[influx]\nschema = "full"\n',
    )
    config = load(file, environ={})
    assert [(b.device, b.bms, b.baud, b.groups) for b in config.batteries] == [
        ("/dev/ttyUSB0", "pylontech", 115200, [0]),
        ("socket://gw:8899", "seplos", 9600, [0]),
    ]
    assert config.interval == 9 and config.device == "/dev/ttyUSB0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[battery]]\ndevice = "a"\n[[battery]]\ndevice = "b"\n', "a and b both hold group 0 of BMS family pylontech"),
        ('[[battery]]\ndevice = "a"\n[[battery]]\ndevice = "b"\nrescan = 5\n', "site.toml:5: rescan applies to every"),
        ('[battery]\nbms = "victron"\n', "site.toml:2: bms: unknown BMS family 'victron'"),
        ('[battery]\nbms = "pace"\n', "--schema c writes the C program's Battery lines"),
    ],
)
def test_a_battery_table_that_cannot_work_is_one_line_naming_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load(write(tmp_path, text), environ={})


def frame_of(family: str, cid2: str) -> str:
    """A real reply of the vectors (`tests/vectors/bms/frames.json`), by family and the command it answers."""
    vectors = json.loads((Path(__file__).parent / "vectors" / "bms" / "frames.json").read_text())
    return next(
        v["frame"]
        for v in vectors
        if v["family"].startswith(family) and v.get("response_to_cid2") == cid2 and v.get("checksum_valid")
    )


def test_decode_names_the_family_a_frame_proves_and_reads_the_others_as_bms_says() -> None:
    pace = cli("--decode", frame_of("PACE", "0x42"))
    assert pace.returncode == 0 and "response PACE ANALOG" in pace.stdout, pace.stdout + pace.stderr
    seplos = frame_of("Seplos", "0x47")  # Pylontech's VER and CID1, and no layout of either reads it alone
    assert "--command" in cli("--decode", seplos).stdout
    done = cli("--decode", "--bms", "seplos", "--command", "47", "--json", seplos)
    assert done.returncode == 0, done.stdout + done.stderr
    (document,) = json.loads(done.stdout)
    assert document["bms"] == "seplos" and document["command"] == "SYSTEM_PARAMETERS" and document["result"]
    unproven = cli("--decode", "--bms", "auto", seplos)
    assert unproven.returncode == 1 and "give --bms" in unproven.stdout


def test_ports_of_the_command_line_print_as_battery_tables_that_load_back(tmp_path: Path) -> None:
    from pylonbus.cli.pylon2influx import parse
    from pylonbus.service.settings import merge, render

    flags = vars(parse(["-d", "/dev/ttyUSB0", "-d", "socket://gw:8899", "--bms", "pylontech", "--bms", "seplos"]))
    assert [(p["device"], p["bms"]) for p in flags["batteries"]] == [
        ("/dev/ttyUSB0", "pylontech"),
        ("socket://gw:8899", "seplos"),
    ]
    again = merge(write(tmp_path, render(flags, environ={})))
    assert again["batteries"] == flags["batteries"] and again["device"] == "/dev/ttyUSB0"


def test_the_daemon_with_bms_auto_polls_the_family_it_found() -> None:
    args = ["-d", sim("daren"), "--bms", "auto", "--schema", "full", "--once", "-v", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--bms auto: Daren answers on" in done.stderr
    assert sum(line.startswith("pylontech_module,bms=daren,") for line in done.stdout.splitlines()) == 3
