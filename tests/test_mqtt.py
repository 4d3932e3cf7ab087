"""The MQTT sink against a real Mosquitto (started by the fixtures) and the simulator: state documents, Home
Assistant discovery, availability, and a broker outage with a kill -9 of the daemon that loses no reading."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from conftest import pylontech_json
from servers import MQTT_AUTH_PORT, MQTT_PASSWORD, MQTT_PORT, MQTT_TLS_PORT, MQTT_USER, Broker, free_port, small_broker

SIM = "sim://?stack=US3000C*2&frozen=1"
#: Pairs Home Assistant accepts (device class -> units), for the classes the configs use.
VALID_UNITS = {
    "voltage": {"V", "mV"},
    "current": {"A", "mA"},
    "power": {"W", "kW"},
    "temperature": {"°C", "°F", "K"},
    "battery": {"%"},
    "energy": {"Wh", "kWh", "MWh"},
    "duration": {"s", "min", "h", "d"},
}


class Listener:
    """A subscriber that keeps every message it gets, with a persistent session so that it misses nothing
    across a broker restart."""

    def __init__(self, *topics: str, client_id: str = "", live: bool = False, port: int = MQTT_PORT) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        session = bool(client_id)
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not session, protocol=mqtt.MQTTv311
        )
        self.client.reconnect_delay_set(1, 1)

        def on_connect(client: Any, *_: Any) -> None:
            for topic in topics:
                client.subscribe(topic, qos=1)

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            if live and message.retain:
                return  # the broker's stored copy, sent again on each subscription
            with self.lock:
                if message.dup and any(m[:2] == (message.topic, message.payload) for m in self.messages):
                    return  # the broker's own redelivery to us after its restart (at least once)
                self.messages.append((message.topic, message.payload, bool(message.retain)))

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def wait(self, check: Any, seconds: float = 20) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                got = list(self.messages)
            if check(got):
                return got
            time.sleep(0.1)
        raise AssertionError(f"not seen within {seconds} s; got {len(got)} messages: {[m[0] for m in got][-20:]}")

    def latest(self) -> dict[str, bytes]:
        with self.lock:
            return {topic: payload for topic, payload, _ in self.messages}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start(tmp_path: Path, *args: str, prefix: str = "pylontech", port: int = MQTT_PORT) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pylonbus.cli.pylon2influx",
            "--mqtt",
            f"mqtt://127.0.0.1:{port}",
            "--mqtt-prefix",
            prefix,
            "--spool",
            str(tmp_path / "spool.sqlite"),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def render(template: str, payload: bytes) -> str:
    """What Home Assistant makes of a message with a template: Jinja2 in a sandbox, `value_json` the parsed
    payload (absent when it is not JSON), and a missing key an error (Home Assistant logs a warning for each)."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    variables: dict[str, Any] = {"value": payload.decode()}
    with contextlib.suppress(ValueError):
        variables["value_json"] = json.loads(payload)
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined).from_string(template).render(variables)


def check_configs(configs: dict[str, Any], latest: dict[str, bytes], prefix: str) -> None:
    """What Home Assistant asks of every discovery config of our devices: each template renders on the state it
    reads, a device class has one of its units (and energy is a counter), availability and unique ids."""
    for topic, config in configs.items():
        if not config["state_topic"].startswith(f"{prefix}/"):
            continue
        render(config["value_template"], latest[config["state_topic"]])  # every key exists in the state document
        if "device_class" in config and topic.startswith("homeassistant/sensor/"):
            assert config["unit_of_measurement"] in VALID_UNITS[config["device_class"]], config
        if config.get("device_class") == "energy":
            assert config["state_class"] == "total_increasing", config
        assert config["availability"][0] == {"topic": f"{prefix}/status"}
        assert config["unique_id"] == "_".join(topic.split("/")[2:4])


def test_state_and_discovery_match_what_pylontech_reads(mosquitto, tmp_path: Path) -> None:
    listener = Listener("homeassistant/#", "disc/#")
    daemon = start(tmp_path, "-d", SIM, "-q", "1", prefix="disc")
    try:
        listener.wait(lambda got: {"disc/0/1/state", "disc/0/2/state", "disc/0/stack/state"} <= {t for t, _, _ in got})
        time.sleep(1.5)  # the discovery of every device
    finally:
        err = stop(daemon)
    latest = listener.latest()
    assert latest["disc/status"] == b"offline"  # said on a clean exit
    configs = {t: json.loads(p) for t, p in latest.items() if t.startswith("homeassistant/") and p}
    modules = [
        c for c in configs.values() if c["state_topic"].startswith("disc/0/") and "stack" not in c["state_topic"]
    ]
    assert modules, err
    check_configs(configs, latest, "disc")
    cells = [c for c in modules if "value_json.cells[" in c["value_template"]]
    assert len(cells) == 30, sorted(c["name"] for c in cells)  # 15 cells of two modules, off by default, 3 decimals
    assert all(c["enabled_by_default"] is False and c["entity_category"] == "diagnostic" for c in cells)
    assert all(c["suggested_display_precision"] == 3 for c in cells)
    by_name = {(c["device"]["serial_number"], c["name"]): c for c in modules}
    # The same values as the CLI reads from the same frozen simulator.
    for module in (1, 2):
        state = latest[f"disc/0/{module}/state"]
        cli = pylontech_json(SIM, module)
        serial = json.loads(state)["serial"]
        assert render(by_name[serial, "Voltage"]["value_template"], state) == str(cli["voltage"])
        assert render(by_name[serial, "Current"]["value_template"], state) == str(cli["current"])
        assert render(by_name[serial, "State of charge"]["value_template"], state) == str(cli["soc"])
        assert render(by_name[serial, "Cell 3 voltage"]["value_template"], state) == str(cli["cell_voltages"][2])
        assert by_name[serial, "Voltage"]["suggested_display_precision"] == 2
        assert by_name[serial, "Full capacity"]["unit_of_measurement"] == "Ah"
        assert "device_class" not in by_name[serial, "Full capacity"]
        assert by_name[serial, "Charged energy"]["state_class"] == "total_increasing"
        assert by_name[serial, "Voltage"]["device"]["via_device"] == "disc_stack_0"


def test_home_assistant_restart_brings_every_config_again(mosquitto, tmp_path: Path) -> None:
    daemon = start(tmp_path, "-d", SIM, "-q", "1", prefix="ha")
    listener = Listener("homeassistant/+/+/+/config")
    try:
        first = listener.wait(lambda got: len({t for t, _, _ in got if "ha_stack_0" in t}) >= 10)
        listener.wait(lambda got: len({t for t, _, _ in got}) >= 100)
        time.sleep(1)
        with listener.lock:
            listener.messages.clear()
        listener.client.publish("homeassistant/status", "online", qos=1)
        again = listener.wait(lambda got: len(got) >= 100 and any("ha_stack_0" in t for t, _, _ in got))
        assert not any(retain for _, _, retain in again)  # sent live, not from the broker's store
        assert first
    finally:
        listener.close()
        stop(daemon)


def test_availability_after_kill_and_restart(mosquitto, tmp_path: Path) -> None:
    listener = Listener("avail/status")
    daemon = start(tmp_path, "-d", SIM, "-q", "1", prefix="avail")
    try:
        listener.wait(lambda got: got and got[-1][1] == b"online")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        listener.wait(lambda got: got[-1][1] == b"offline", seconds=60)  # the will, within the keepalive
        daemon = start(tmp_path, "-d", SIM, "-q", "1", prefix="avail")
        listener.wait(lambda got: got[-1][1] == b"online")
    finally:
        listener.close()
        stop(daemon)


def test_broker_outage_and_kill_lose_no_reading(mosquitto, tmp_path: Path) -> None:
    listener = Listener("outage/0/1/state", client_id="outage-listener", live=True)
    daemon = start(tmp_path, "-d", "sim://?stack=US3000C*2", "-q", "1", prefix="outage")
    try:
        listener.wait(lambda got: len(got) >= 2)
        mosquitto.stop()
        time.sleep(4)
        daemon.send_signal(signal.SIGKILL)  # while the broker is away: its readings are in the spool only
        daemon.wait()
        daemon = start(tmp_path, "-d", "sim://?stack=US3000C*2", "-q", "1", prefix="outage")
        time.sleep(6)
        mosquitto.start()
        got = listener.wait(lambda got: len(got) >= 16, seconds=40)
    finally:
        err = stop(daemon)
        listener.close()
    times = [json.loads(payload)["time"] for _, payload, _ in got]
    assert times == sorted(times) and len(set(times)) == len(times), err  # in order, none twice
    gaps = [b - a for a, b in zip(map(_seconds, times), map(_seconds, times[1:]), strict=False)]
    # One reading a second throughout; the only longer gap is the restart of the daemon (a scan).
    assert sum(gap > 1.6 for gap in gaps) <= 1, (gaps, err)


def _seconds(stamp: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("password, refused", [(MQTT_PASSWORD, False), ("wrong", True)])
def test_password_from_the_environment(mosquitto, tmp_path: Path, password: str, refused: bool) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pylonbus.cli.pylon2influx",
            "--mqtt",
            f"mqtt://{MQTT_USER}@127.0.0.1:{MQTT_AUTH_PORT}",
            "-d",
            SIM,
            "--spool",
            str(tmp_path / "spool.sqlite"),
            "--once",
            "-v",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"MQTT_PASSWORD": password},
    )
    if refused:
        assert proc.returncode == 1
        assert proc.stderr.count("refused the connection") == 1, proc.stderr
        assert "MQTT_PASSWORD" in proc.stderr and password not in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert MQTT_PASSWORD not in proc.stderr


def test_the_config_file_has_an_mqtt_table(tmp_path: Path) -> None:
    config = tmp_path / "p.toml"
    config.write_text('[mqtt]\nurl = "mqtt://pylon@broker.lan"\nha_discovery = false\n[influx]\nschema = "both"\n')
    shown = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "--config", str(config), "--print-config"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 'url = "mqtt://pylon@broker.lan"' in shown and "ha_discovery = false" in shown
    assert 'schema = "both"' in shown
    config.write_text('[mqtt]\nurl = "mqtt://broker.lan"\npassword = "x"\n')
    refused = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "--config", str(config)], capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        == f"pylon2influx: {config}:3: password does not belong in this file; use password_file or the environment"
    )


class Relay:
    """A TCP relay in front of the simulator that drops the requests to the addresses in `blocked`: a module
    that does not answer for a while, as one with a loose cable or switched on late."""

    def __init__(self, target: str) -> None:
        host, _, port = target.removeprefix("socket://").rpartition(":")
        self.target = (host, int(port))
        self.blocked: set[int] = set()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                upstream = socket.create_connection(self.target)
                threading.Thread(target=self._copy, args=(upstream, client, False), daemon=True).start()
                threading.Thread(target=self._copy, args=(client, upstream, True), daemon=True).start()

    def _copy(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        pending = b""
        with contextlib.suppress(OSError), source, sink:
            while chunk := source.recv(4096):
                if not requests:
                    sink.sendall(chunk)
                    continue
                *frames, pending = (pending + chunk).split(b"\r")
                for frame in frames:
                    start = frame.find(b"~")
                    if start < 0 or int(frame[start + 3 : start + 5] or b"0", 16) not in self.blocked:
                        sink.sendall(frame + b"\r")

    def close(self) -> None:
        self.server.close()


class Daemon:
    """pylon2influx publishing under `prefix`, its log read as it is written."""

    def __init__(self, tmp_path: Path, *args: str, prefix: str) -> None:
        self.proc = start(tmp_path, *args, prefix=prefix)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stderr.readline, "")))
        self.reader.start()

    def wait_log(self, text: str, seconds: float = 60) -> int:
        """The number of the first line of the log with `text`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [n for n, line in enumerate(list(self.lines)) if text in line]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not logged within {seconds} s: {''.join(self.lines)}")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.reader.join()
        assert self.proc.returncode == 0, "".join(self.lines)
        return "".join(self.lines)


def retained(pattern: str) -> dict[str, bytes]:
    """The messages the broker keeps under `pattern`, each topic's payload."""
    marker = f"test/retained-marker/{time.monotonic_ns()}"
    publisher = Listener()
    publisher.client.publish(marker, b"end", qos=1, retain=True).wait_for_publish(5)
    # Subscribed after `pattern` on the same connection: the marker comes after every message of the pattern.
    listener = Listener(pattern, marker)
    listener.wait(lambda got: any(topic == marker for topic, _, _ in got))
    listener.close()
    publisher.client.publish(marker, b"", qos=1, retain=True).wait_for_publish(5)
    publisher.close()
    return {topic: payload for topic, payload, retain in listener.messages if retain and topic != marker}


def test_ha_cleanup_keeps_a_module_that_missed_the_scan_and_removes_the_gone(
    mosquitto, sim_process, tmp_path: Path
) -> None:
    """--ha-cleanup waits a full rescan period: a module that answers only after the start-up scan keeps its
    device; a module unseen that long loses its configs and its retained state; another program's stay."""
    from pylonbus.protocol.families.pylontech.codes import address

    sim = sim_process("--tcp", "127.0.0.1:0", "--stack", "US3000C*2", "--frozen", "--no-pace")
    listener = Listener("homeassistant/+/+/+/config", "clean/0/2/state")
    first = Daemon(tmp_path, "-d", sim.port, "-q", "1", prefix="clean")
    try:
        listener.wait(lambda got: sum(b'"clean/0/2/state"' in payload for _, payload, _ in got) > 40)
    finally:
        first.stop()
        listener.close()
    ghost = "homeassistant/sensor/pylontech_GHOST1/voltage/config"
    other = "homeassistant/sensor/pylontech_OTHER1/voltage/config"  # another program's: left alone
    publisher = Listener()
    publisher.client.publish(ghost, json.dumps({"state_topic": "clean/0/9/state"}), qos=1, retain=True)
    publisher.client.publish("clean/0/9/state", json.dumps({"online": False}), qos=1, retain=True)
    publisher.client.publish(other, json.dumps({"state_topic": "elsewhere/0/9/state"}), qos=1, retain=True)
    publisher.client.publish("elsewhere/0/9/state", b"{}", qos=1, retain=True).wait_for_publish(5)
    publisher.close()
    before = retained("homeassistant/+/+/+/config")
    module2 = {topic for topic, payload in before.items() if payload and b'"clean/0/2/state"' in payload}
    assert len(module2) > 40, sorted(before)

    relay = Relay(sim.port)
    relay.blocked.add(address(0, 2))
    daemon = Daemon(tmp_path, "-d", relay.port, "-q", "1", "--rescan", "8", "--ha-cleanup", prefix="clean")
    try:
        daemon.wait_log("modules found: group 0: [1]")
        relay.blocked.clear()
        joined = daemon.wait_log("module 2 of group 0 answers now")
        cleaned = daemon.wait_log("--ha-cleanup: removed")
    finally:
        err = daemon.stop()
        relay.close()
    assert joined < cleaned, err
    assert "removed 1 entities and 1 retained states of modules not seen for 10 s" in err, err
    after = retained("#")
    assert {topic for topic in module2 if after.get(topic)} == module2  # kept, none emptied
    assert ghost not in after and "clean/0/9/state" not in after
    assert other in after and "elsewhere/0/9/state" in after
    assert after["clean/0/2/state"] and after["clean/0/1/state"]


def test_two_daemons_with_other_prefixes_name_their_stacks_apart(mosquitto, tmp_path: Path) -> None:
    """Two stacks on one broker and one Home Assistant, each daemon under its own --mqtt-prefix."""
    listener = Listener("homeassistant/binary_sensor/+/alarms_cell_error/config")
    daemons = [
        Daemon(tmp_path / prefix, "-d", f"{SIM}&seed={seed}", "-q", "1", prefix=prefix)
        for prefix, seed in (("pylontech", 1), ("garage", 2))
    ]
    try:  # the last config of each module of both: the stacks' come first
        listener.wait(lambda got: len({topic for topic, _, retain in got if not retain}) == 4)
    finally:
        listener.close()
        for daemon in daemons:
            daemon.stop()
    configs = [json.loads(p) for p in retained("homeassistant/+/+/+/config").values() if p]
    stacks = {c["state_topic"]: c["device"] for c in configs if c["state_topic"].endswith("/0/stack/state")}
    assert stacks["pylontech/0/stack/state"]["name"] == "Pylontech stack 0"  # as before for the default prefix
    assert stacks["garage/0/stack/state"]["name"] == "Pylontech stack 0 (garage)"
    assert stacks["garage/0/stack/state"]["identifiers"] != stacks["pylontech/0/stack/state"]["identifiers"]
    ids = [c["unique_id"] for c in configs if c["state_topic"].split("/")[0] in ("pylontech", "garage")]
    assert len(ids) == len(set(ids)) > 100


def once(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", SIM, "--once", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_mqtts_with_the_brokers_ca_and_without(mosquitto, tmp_path: Path) -> None:
    listener = Listener("tls/0/1/state")
    url = f"mqtts://127.0.0.1:{MQTT_TLS_PORT}"
    spool = ("--spool", str(tmp_path / "spool.sqlite"))
    try:
        done = once("--mqtt", url, "--mqtt-prefix", "tls", "--ca-file", str(mosquitto.ca_file), *spool)
        assert done.returncode == 0, done.stderr
        listener.wait(lambda got: len(got) == 1)
    finally:
        listener.close()
    untrusted = once("--mqtt", url, "--mqtt-prefix", "tls", *spool)
    assert untrusted.returncode == 1
    assert untrusted.stderr.count("TLS certificate is not trusted") == 1, untrusted.stderr
    assert "give its CA with --ca-file" in untrusted.stderr
    unchecked = once("--mqtt", url, "--mqtt-prefix", "tls", "-I", "0", *spool)  # the spooled cycle and its own
    assert unchecked.returncode == 0, unchecked.stderr
    (tmp_path / "not.pem").write_text("not a certificate\n")
    garbled = once("--mqtt", url, "--ca-file", str(tmp_path / "not.pem"), *spool)
    assert garbled.returncode == 1 and "Traceback" not in garbled.stderr
    assert f"--ca-file {tmp_path / 'not.pem'}: not a PEM certificate" in garbled.stderr.splitlines()[-1]


def without_package(name: str, folder: Path) -> dict[str, str]:
    """An environment whose Python cannot import `name` (a package in `folder` that raises ImportError), and
    finds this checkout's modules as the tests do."""
    (folder / name).mkdir()
    (folder / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed')\n")
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}


def test_no_mqtt_library_is_needed(mosquitto, tmp_path: Path) -> None:
    """The sink speaks MQTT 5 itself: with paho-mqtt made impossible to import, --once still publishes."""
    env = without_package("paho", tmp_path)
    listener = Listener("nopaho/0/1/state")
    try:
        spool = str(tmp_path / "spool.sqlite")
        done = once("--mqtt", f"mqtt://127.0.0.1:{MQTT_PORT}", "--mqtt-prefix", "nopaho", "--spool", spool, env=env)
        assert done.returncode == 0, done.stderr
        got = listener.wait(lambda got: len(got) == 1)
    finally:
        listener.close()
    assert json.loads(got[0][1])["module"] == 1


REFUSE_PREFIX = "give letters, digits and / such as pylontech or home/battery"
REFUSE_PORT = "the port must be a number 1-65535 (or none: 1883, 8883 for mqtts://)"


@pytest.mark.parametrize(
    "args, line",
    [
        (["--mqtt-prefix", "pylon#"], "argument --mqtt-prefix: 'pylon#' holds a wildcard (# or +), which only"),
        (["--mqtt-prefix", "home/+/battery"], "argument --mqtt-prefix: 'home/+/battery' holds a wildcard"),
        (["--mqtt-prefix", "#"], "argument --mqtt-prefix: '#' holds a wildcard"),
        (["--mqtt-prefix", ""], f"argument --mqtt-prefix: '' is empty; {REFUSE_PREFIX}"),
        (["--mqtt-prefix", "pylon\udcff"], "argument --mqtt-prefix: 'pylon\\udcff' is not valid UTF-8"),
        (["--mqtt-prefix", "pylon\x1b[31m"], "argument --mqtt-prefix: 'pylon\\x1b[31m' holds a control character"),
        (["--mqtt-prefix", "$SYS/pylon"], "argument --mqtt-prefix: '$SYS/pylon' starts with $, which the broker"),
        (["--ha-prefix", "homeassistant/#"], "argument --ha-prefix: 'homeassistant/#' holds a wildcard"),
        (["--ha-prefix", "ha+"], "argument --ha-prefix: 'ha+' holds a wildcard (# or +), which only"),
        (["--ha-prefix", "h\xe4\udce4"], "argument --ha-prefix: 'h\xe4\\udce4' is not valid UTF-8"),
        (["--ha-prefix", ""], f"argument --ha-prefix: '' is empty; {REFUSE_PREFIX}"),
        (["--mqtt", "mqtt://127.0.0.1:0"], f"argument --mqtt: mqtt://127.0.0.1:0: {REFUSE_PORT}"),
        (["--mqtt", "mqtts://pylon@broker.lan:0"], f"argument --mqtt: mqtts://pylon@broker.lan:0: {REFUSE_PORT}"),
        (["--mqtt", "mqtt://broker:65536"], f"argument --mqtt: mqtt://broker:65536: {REFUSE_PORT}"),
        (["--mqtt", "mqtt://broker:port"], f"argument --mqtt: mqtt://broker:port: {REFUSE_PORT}"),
        (["--mqtt", "http://broker:1883"], "argument --mqtt: http://broker:1883: give mqtt://[USER@]HOST[:PORT]"),
        (["--mqtt", "ws://broker"], "argument --mqtt: ws://broker: give mqtt://[USER@]HOST[:PORT] (mqtts:// for TLS)"),
    ],
)
def test_prefixes_and_broker_urls_mqtt_refuses_are_refused_at_start(tmp_path: Path, args: list[str], line: str) -> None:
    """In one line naming the option and the fix, before the scan: nothing is spooled, nothing published."""
    spool = tmp_path / "spool.sqlite"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pylonbus.cli.pylon2influx", "--mqtt", f"mqtt://127.0.0.1:{MQTT_PORT}"),
            *("-d", SIM, "--spool", str(spool), "--once", *args),
        ],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"pylon2influx: error: {line}"), done.stderr
    assert "Traceback" not in done.stderr and not spool.exists()


@pytest.mark.parametrize(
    "key, value, line",
    [
        ("prefix", '"pylon#"', "prefix: 'pylon#' holds a wildcard (# or +)"),
        ("prefix", '"a\\u0000b"', "prefix: 'a\\x00b' holds a control character ('\\x00')"),
        ("ha_prefix", '"+"', "ha_prefix: '+' holds a wildcard (# or +)"),
        ("url", '"mqtt://broker.lan:0"', f"url: mqtt://broker.lan:0: {REFUSE_PORT}"),
        ("url", '"https://broker.lan"', "url: https://broker.lan: give mqtt://[USER@]HOST[:PORT]"),
    ],
)
def test_the_config_file_refuses_them_with_its_line(tmp_path: Path, key: str, value: str, line: str) -> None:
    config = tmp_path / "p.toml"
    url = "" if key == "url" else 'url = "mqtt://broker.lan"\n'
    config.write_text(f"[mqtt]\n{url}{key} = {value}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "--config", str(config), "-d", SIM, "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    number = 2 if key == "url" else 3
    assert done.stderr.startswith(f"pylon2influx: {config}:{number}: {line}"), done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_a_program_that_embeds_the_collector_is_refused_too() -> None:
    from pylonbus.errors import PylonbusError
    from pylonbus.service.config import load

    with pytest.raises(PylonbusError, match=r"^--mqtt-prefix: 'pylon\+' holds a wildcard"):
        load(None, {}, mqtt="mqtt://broker.lan", mqtt_prefix="pylon+")
    with pytest.raises(PylonbusError, match=rf"^--mqtt: mqtt://broker.lan:0: {re.escape(REFUSE_PORT)}$"):
        load(None, {}, mqtt="mqtt://broker.lan:0")


def test_spooled_messages_to_a_topic_mqtt_refuses_are_skipped_and_counted(mosquitto, tmp_path: Path) -> None:
    """A spool an earlier version filled (JSON batches) under a prefix it did not check: those messages are
    skipped (logged once, counted), the valid ones of the same spool go out in order, and the daemon's own
    after them. So are batches the disk changed: each is skipped (said once, counted), never retried for ever."""
    from pylonbus.sinks.mqtt.sink import batch
    from pylonbus.store.spool import Spool

    spool = Spool(tmp_path / "spool.sqlite", 100)
    queue = spool.queue("mqtt", 100)
    invalid = ["old#/0/1/state", "old/+/stack/state", "old\udcff/0/1/state", "old\x00/0/2/state"]
    queue.add(json.dumps([[topic, '{"old":true}'] for topic in invalid]).encode(), len(invalid))
    queue.add(json.dumps([["skip/0/1/state", '{"spooled":1}']]).encode(), 1)
    damaged = bytearray(batch([("skip/0/1/state", '{"damaged":1}')], compress=True))
    damaged[-1] ^= 0x01  # a bit the SD card flipped: zlib's checksum no longer matches
    queue.add(bytes(damaged), 1)
    queue.add(b'[["skip/0/1/state"', 1)  # a JSON batch cut short
    queue.add(json.dumps([["old#/0/1/state", "{}"], ["skip/0/1/state", '{"spooled":2}']]).encode(), 2)
    queue.add(batch([("skip/0/1/state", '{"spooled":3}')], compress=False), 1)
    spool.close()
    listener = Listener("skip/0/1/state", "old/#")
    daemon = start(tmp_path, "-d", SIM, "-q", "1", prefix="skip")
    try:
        got = listener.wait(lambda got: sum(b'"online":true' in payload for _, payload, _ in got) >= 2)
    finally:
        err = stop(daemon)
        listener.close()
    payloads = [payload for _, payload, _ in got]
    assert payloads[:3] == [b'{"spooled":1}', b'{"spooled":2}', b'{"spooled":3}'], (payloads[:4], err)
    assert not [topic for topic, _, _ in got if topic.startswith("old")]
    assert err.count("is skipped: the topic") == 1, err
    assert "a spooled message to 'old#/0/1/state' is skipped: the topic holds a wildcard" in err
    assert "skipped (invalid topic): 5" in err
    assert err.count("cannot be read") == 1, err
    read = "Error -3 while decompressing data: incorrect data check: the disk changed it"
    assert f"MQTT: a batch in the spool's queue mqtt cannot be read ({read})" in err
    assert "unreadable batches skipped: 2" in err


def test_every_template_renders_every_state_a_silent_module_publishes(mosquitto, sim_process, tmp_path: Path) -> None:
    """Module 2 turned off (0x95, as with its power button) while the daemon polls: each value and availability
    template of the discovery renders against every state message captured at the broker, online and silent,
    without reaching for a missing key (Home Assistant logged 613 template warnings a minute); the silent
    module's entities go unavailable and its values unknown."""
    from pylonbus.link.stack import connect

    sim = sim_process("--tcp", "127.0.0.1:0", "--stack", "US3000C*2", "--frozen", "--no-pace")
    listener = Listener("tpl/#", "homeassistant/#")
    daemon = start(tmp_path, "-d", sim.port, "-q", "1", prefix="tpl")
    try:
        listener.wait(lambda got: {"tpl/0/1/state", "tpl/0/2/state"} <= {topic for topic, _, _ in got})
        with connect(sim.port, scan=False) as stack:
            stack.turn_off(2, allow_write=True)
        listener.wait(lambda got: sum(t == "tpl/0/2/state" and b'"online":false' in p for t, p, _ in got) >= 3)
    finally:
        err = stop(daemon)
        listener.close()
    states: dict[str, list[bytes]] = {}
    configs = []
    for topic, payload, _ in listener.messages:
        if topic.startswith("homeassistant/") and payload and json.loads(payload)["state_topic"].startswith("tpl/"):
            configs.append(json.loads(payload))
        elif topic.endswith("/state"):
            states.setdefault(topic, []).append(payload)
    silent = [payload for payload in states["tpl/0/2/state"] if b'"online":false' in payload]
    assert b'"voltage"' not in silent[0] and b'"error"' in silent[0], silent[0]
    rendered = 0
    for config in configs:
        available = [a for a in config["availability"] if "value_template" in a]
        for payload in states[config["state_topic"]]:
            value = render(config["value_template"], payload)
            shown = [render(a["value_template"], payload) for a in available]
            rendered += 1 + len(shown)
            if payload in silent:
                assert value == "None" or config["name"] == "Online", (config["name"], value)
                assert shown == ([] if config["name"] == "Online" else ["offline"]), config["name"]
            elif config["state_topic"] != "tpl/0/stack/state":
                assert value != "None" and shown in ([], ["online"]), (config["name"], value, payload)
    module_configs = [c for c in configs if c["state_topic"] == "tpl/0/2/state"]
    # Every template of the silent module met an online and several offline messages (the count varies with load).
    assert len(module_configs) > 40 and rendered > 4 * len(module_configs), (len(configs), rendered, err)
    assert {c["name"]: render(c["value_template"], silent[0]) for c in module_configs}["Online"] == "OFF"


@pytest.mark.server
def test_a_message_larger_than_the_broker_takes_is_set_aside_and_the_queue_moves_on(tmp_path: Path) -> None:
    broker = small_broker(tmp_path, max_packet_size=600)  # a stack's state fits, a module's does not
    listener = Listener("pylontech/#", live=True, port=broker.ports[0])
    proc = start(tmp_path, "-d", SIM, "-q", "1", port=broker.ports[0])
    try:
        time.sleep(20)
        got = listener.wait(lambda m: len(m) >= 10)
    finally:
        err = stop(proc)
        listener.close()
        broker.stop()
    assert {topic for topic, _, _ in got} == {"pylontech/0/stack/state", "pylontech/status"}, err
    assert err.count("takes packets of at most 600 bytes (its max_packet_size)") == 1, err
    skipped = re.findall(r"skipped \(larger than the broker takes\): (\d+)", err)
    assert skipped and int(skipped[-1]) >= 20, err  # two modules a cycle, and the discovery configs
    assert err.count("WARNING") == 1, err  # no reconnect storm
    assert len(re.findall(r"New client connected .* as pylonbus-", (tmp_path / "mosquitto.log").read_text())) == 1


@pytest.mark.server
def test_a_broker_that_never_answers_connect_is_named_once(tmp_path: Path) -> None:
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))
    accepted: list[socket.socket] = []

    def accept() -> None:  # takes every connection and says nothing
        with contextlib.suppress(OSError):
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    proc = start(tmp_path, "-d", SIM, "-q", "1", port=port)
    try:
        time.sleep(45)  # paho gives up on the CONNECT after the 30 s keep-alive, then tries again
    finally:
        err = stop(proc)
        server.close()
    line = f"MQTT broker 127.0.0.1:{port} took the connection but did not answer CONNECT within 30 s"
    assert err.count(line) == 1, err
    assert err.count("WARNING") == 1, err
    assert 1 <= len(accepted) <= 3, err  # no reconnect storm


@pytest.mark.server
def test_a_broker_that_speaks_only_mqtt_3_is_named_once(tmp_path: Path) -> None:
    """What an MQTT 3.1.1 broker answers to an MQTT 5 CONNECT: CONNACK, return code 1 (unacceptable protocol
    version), then it closes the connection."""
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))
    accepted: list[socket.socket] = []

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                client = server.accept()[0]
                accepted.append(client)
                client.recv(4096)
                client.sendall(bytes([0x20, 0x02, 0x00, 0x01]))
                client.close()

    threading.Thread(target=answer, daemon=True).start()
    proc = start(tmp_path, "-d", SIM, "-q", "1", port=port)
    try:
        deadline = time.monotonic() + 20
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
    finally:
        err = stop(proc)
        server.close()
    assert err.count(f"MQTT broker 127.0.0.1:{port} does not speak MQTT 5") == 1, err
    assert "Traceback" not in err and len(accepted) <= 2, err


@pytest.mark.server
def test_a_broker_gone_without_a_word_is_found_by_the_keepalive(tmp_path: Path) -> None:
    """What a gateway reboot or a cable pulled between daemon and broker looks like: the connection stays open
    and nothing comes back, no acknowledgement, no answer to a ping. The daemon takes it as lost once the
    keep-alive has passed without an answer, says so once, connects again, and keeps the readings spooled."""
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))
    accepted: list[socket.socket] = []

    def swallow(client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            client.recv(4096)  # CONNECT
            client.sendall(bytes([0x20, 0x03, 0x00, 0x00, 0x00]))  # CONNACK, MQTT 5: accepted, no properties
            while client.recv(65536):
                pass  # taken, never answered

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client = server.accept()[0]
                accepted.append(client)
                threading.Thread(target=swallow, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    proc = start(tmp_path, "-d", SIM, "-q", "1", port=port)
    try:
        deadline = time.monotonic() + 90
        while len(accepted) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        err = stop(proc)
        server.close()
    assert len(accepted) == 2, err
    assert err.count(f"MQTT broker 127.0.0.1:{port} lost (no answer to a ping within 30 s)") == 1, err
    assert err.count("MQTT broker") == 3, err  # connected, lost, connected again
    assert re.search(r"MQTT connected, published: 0, spooled: [1-9]", err), err


def test_a_backlog_of_many_chunks_leaves_in_order_before_the_cycles_reading(mosquitto, tmp_path: Path) -> None:
    """300 spooled batches of 18 messages (more than five reads of the spool) and --once: every one goes out,
    in order, then the cycle's own, and nothing is left (exit 0)."""
    from pylonbus.store.spool import Spool

    spool = Spool(tmp_path / "spool.sqlite", 1000)
    queue = spool.queue("mqtt", 1000)
    for n in range(300):
        queue.add(json.dumps([["many/0/1/state", json.dumps({"n": n, "m": m})] for m in range(18)]).encode(), 18)
    spool.close()
    listener = Listener("many/0/1/state")
    try:
        done = once("--mqtt", f"mqtt://127.0.0.1:{MQTT_PORT}", "--mqtt-prefix", "many", "--spool", str(spool.path))
        assert done.returncode == 0, done.stderr
        got = listener.wait(lambda got: len(got) == 300 * 18 + 1, 60)
    finally:
        listener.close()
    spooled = [json.loads(payload) for _, payload, _ in got[:-1]]
    assert spooled == [{"n": n, "m": m} for n in range(300) for m in range(18)]
    assert json.loads(got[-1][1])["module"] == 1


@pytest.mark.server
def test_messages_the_brokers_acl_declines_are_said_once_and_counted(tmp_path: Path) -> None:
    """A broker whose ACL lets the daemon publish one module's state only: MQTT 5 acknowledges the others with
    "not authorized". Said once with the fix, counted; the allowed topic keeps its messages, no reconnect."""
    port = free_port()
    (tmp_path / "acl").write_text("topic readwrite acl/status\ntopic readwrite acl/0/1/state\n")
    config = f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\nacl_file {tmp_path / 'acl'}\n"
    broker = Broker(tmp_path, config, (port,))
    listener = Listener("acl/#", live=True, port=port)
    proc = start(tmp_path, "-d", SIM, "-q", "1", "--no-ha-discovery", prefix="acl", port=port)
    try:
        got = listener.wait(lambda m: sum(topic == "acl/0/1/state" for topic, _, _ in m) >= 3)
    finally:
        err = stop(proc)
        listener.close()
        broker.stop()
    assert {topic for topic, _, _ in got} == {"acl/0/1/state", "acl/status"}, err
    assert err.count("declined a message to acl/0/") == 1 and ": not authorized; check what the broker" in err, err
    declined = re.findall(r"declined by the broker: (\d+)", err)
    assert declined and int(declined[-1]) >= 6, err  # module 2 and the stack, each cycle
    assert err.count("WARNING") == 1, err


def test_a_backlog_is_spooled_compressed_and_read_back_as_it_was(tmp_path: Path) -> None:
    """While the broker keeps up a batch is spooled as it is; once BACKLOG wait, the next are compressed (a long
    outage fills the SD card 7 times slower), and both read back to the same messages."""
    from pylonbus import Link
    from pylonbus import Stack as Client
    from pylonbus.service.poller import Poller
    from pylonbus.sinks.mqtt.config import MqttConfig
    from pylonbus.sinks.mqtt.sink import BACKLOG, MqttSink, unbatch
    from pylonbus.store.spool import Spool

    queue = Spool(tmp_path / "spool.sqlite", 100).queue("mqtt", 100)
    sink = MqttSink(MqttConfig(f"mqtt://127.0.0.1:{free_port()}", prefix="bk"), queue, 1.0)  # not started
    poller = Poller([Client(Link("sim://?stack=US3000C*14&frozen=1"))], 3600)
    poller.scan()
    for _ in range(BACKLOG + 2):
        sink.publish(poller.cycle())
    bodies = [body for _, _, body in queue.oldest(10**6)]
    assert [body[:1] for body in bodies] == [b"\0"] * BACKLOG + [b"h"] * 2  # zlib's header, a 16 kB window
    assert len(bodies[0]) > 6 * len(bodies[-1])  # 16.7 kB, 2.4 kB
    plain, packed = unbatch(bodies[BACKLOG - 1]), unbatch(bodies[BACKLOG])
    topics = [*(f"bk/0/{n}/state" for n in range(1, 15)), "bk/0/stack/state"]
    assert [topic for topic, _ in plain] == [topic for topic, _ in packed] == topics
    docs = [json.loads(payload) for _, payload in plain + packed]
    assert [doc["serial"] for doc in docs[:14]] == [doc["serial"] for doc in docs[15:29]]
    assert [doc["cells"] for doc in docs[:14]] == [doc["cells"] for doc in docs[15:29]]  # a frozen stack


STDLIB_PAYLOADS = """
import json, sys
from pylonbus.sinks.mqtt.sink import _payload
print(json.dumps([_payload(doc) for doc in json.load(sys.stdin)]))
"""


def test_payloads_are_the_same_documents_with_orjson_and_without(tmp_path: Path) -> None:
    """Where orjson is installed it encodes the documents; where its wheel is missing (armv6) the standard
    library does. Either way each payload is its document, key for key and in the same order: every family's,
    and a module whose strings need escaping."""

    from pylonbus import Link
    from pylonbus import Stack as Client
    from pylonbus.protocol.families import names
    from pylonbus.readings.documents import reading_state
    from pylonbus.service.poller import Poller
    from pylonbus.sinks.mqtt.sink import _payload

    docs: list[dict[str, Any]] = []
    for name in names():
        poller = Poller([Client(Link(f"sim://?bms={name}&frozen=1&pace=0"), bms=name)], 3600)
        poller.scan()
        for stack in reading_state(poller.cycle())["stacks"]:
            docs += [*stack["modules"], {key: value for key, value in stack.items() if key != "modules"}]
    docs.append(docs[0] | {"serial": 'PPT"\\é\u2028\x01', "alarms": {"cell_error": True, "status1": 255}})
    env = without_package("orjson", tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", STDLIB_PAYLOADS], input=json.dumps(docs), capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    fast, plain = [_payload(doc) for doc in docs], json.loads(done.stdout)
    assert fast != plain  # two encoders did run: they differ in escapes and exponents, not in values
    for doc, one, other in zip(docs, fast, plain, strict=True):
        alarms_last = [key for key in doc if key != "alarms"] + (["alarms"] if "alarms" in doc else [])
        assert list(json.loads(one)) == list(json.loads(other)) == alarms_last
        assert json.loads(one) == json.loads(other) == doc
