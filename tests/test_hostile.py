"""What comes from the battery is data, never syntax: simulated modules send serials full of the characters each
output gives a meaning to (line protocol, MQTT topics, JSON, Prometheus labels, HTML), and one with a newline,
which the decoder refuses; the real daemon writes them to a real InfluxDB, Mosquitto and promtool."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, influx_query, need
from test_http import get, serve, stop
from test_mqtt import Listener, start
from test_mqtt import stop as stop_mqtt

#: At most 16 characters each, as the 0x93 reply holds.
SERIALS = {1: 'x,y z=w"\\#+/é', 2: "<script>'&</b>"}
NEWLINE = "evil\nm v=1i 1"  # a line of its own: measurement `evil`
SIM = "sim://?stack=US3000C*3&frozen=1&" + urllib.parse.urlencode(
    [("serial", f"{n}:{s}") for n, s in [*SERIALS.items(), (3, NEWLINE)]]
)
REFUSED = "implausible serial = 'evil\\nm v=1i 1'"


def test_the_decoder_refuses_a_newline_and_keeps_every_printable_character() -> None:
    from pylonbus import ImplausibleValue, Link
    from pylonbus import Stack as Client

    stack = Client(Link(SIM + "&pace=0", tries=1))
    assert {n: stack.serial_number(n).serial for n in SERIALS} == SERIALS
    with pytest.raises(ImplausibleValue, match=re.escape(REFUSED)):
        stack.serial_number(3)


@pytest.mark.parametrize("spec", ["1:" + "x" * 17, "1:€", "1", "4:x"])
def test_the_simulator_refuses_a_serial_it_cannot_send(spec: str) -> None:
    from pylonbus import Link

    with pytest.raises(Exception, match="serial"):
        Link("sim://?stack=US3000C*3&serial=" + urllib.parse.quote(spec), tries=1).open()


@pytest.mark.server
def test_influxdb_gets_the_serials_as_tags_and_no_measurement_of_theirs(influxd, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE hostile")
    password = tmp_path / "password"
    password.write_text(INFLUX_PASSWORD + "\n")
    args = ["-d", SIM, "--once", "--schema", "both", "-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", "hostile"]
    args += ["-u", INFLUX_USER, "--password-file", str(password), "--spool", str(tmp_path / "spool.sqlite")]
    logs = []
    for _ in range(2):  # the second batch too is accepted
        command = [sys.executable, "-m", "pylonbus.cli.pylon2influx", *args]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        logs.append(done.stderr)
    assert all(log.count(REFUSED) == 1 for log in logs), logs
    assert not any("refused batch" in log for log in logs)
    series = influx_query("SHOW MEASUREMENTS", db="hostile")["results"][0]["series"][0]["values"]
    assert sorted(name for (name,) in series) == ["Battery", "pylontech_module", "pylontech_stack"]
    tags = influx_query('SHOW TAG VALUES FROM pylontech_module WITH KEY = "serial"', db="hostile")
    # A backslash is doubled: a single one before the space that ends the tags would escape it. InfluxDB 2 reads
    # the pair as one backslash; 1.x keeps both.
    influx_1x = {n: s.replace("\\", "\\\\") for n, s in SERIALS.items()}
    assert sorted(value for _, value in tags["results"][0]["series"][0]["values"]) == sorted(influx_1x.values())
    rows = influx_query("SELECT count(voltage) FROM pylontech_module GROUP BY module", db="hostile")
    assert [s["values"][0][1] for s in rows["results"][0]["series"]] == [2, 2, 2]


def devices(messages: list[tuple[str, bytes, bool]]) -> set[str]:
    """The serials of this test's modules in the discovery configs."""
    configs = (json.loads(p) for t, p, _ in messages if t.endswith("/online/config") and p)
    return {c["device"].get("serial_number") for c in configs} & set(SERIALS.values())  # some BMSs have none


@pytest.mark.server
def test_mqtt_topics_stay_ours_and_payloads_carry_the_exact_serials(mosquitto, tmp_path: Path) -> None:
    listener = Listener("#", live=True)  # other tests' retained states hold the same topics
    proc = start(tmp_path, "-d", SIM, "-q", "1")
    try:
        # Both devices announced and a state of each module: discovery and states travel apart.
        wanted = {f"pylontech/0/{n}/state" for n in (1, 2, 3)}
        got = listener.wait(lambda m: len(devices(m)) == 2 and wanted <= {topic for topic, _, _ in m})
    finally:
        err = stop_mqtt(proc)
        listener.close()
    assert err.count(REFUSED) == 1, err
    topics = {topic for topic, _, _ in got}
    assert all(re.fullmatch(r"[A-Za-z0-9_/-]+", topic) for topic in topics), topics
    states = {json.loads(p)["module"]: json.loads(p) for t, p, _ in got if re.fullmatch(r"pylontech/0/\d/state", t)}
    assert {n: states[n]["serial"] for n in (1, 2, 3)} == {**SERIALS, 3: None}
    assert devices(got) == set(SERIALS.values())


@pytest.mark.server
def test_metrics_pass_promtool_and_the_state_carries_the_exact_serials() -> None:
    proc = serve(SIM)
    try:
        status, body = get("/metrics")
        _, state = get("/api/state")
    finally:
        stop(proc)
    assert status == 200
    check = subprocess.run([need("promtool"), "check", "metrics"], input=body, capture_output=True)
    assert check.returncode == 0, check.stderr
    assert 'serial="x,y z=w\\"\\\\#+/é"' in body.decode()
    modules = json.loads(state)["stacks"][0]["modules"]
    assert [m["serial"] for m in modules] == [*SERIALS.values(), None]
