"""Many sites on engines made for it (README "Many sites"): three daemons on three simulated stacks, each
publishing to its site's Mosquitto, which bridges to a central broker, and writing through its spool to a
central VictoriaMetrics. One site's uplink (its bridge's and its daemon's connections to the centre) is cut for
20 s; every reading of every site still arrives centrally, under site-unique topics and `site` tags."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from pylonbus.readings.documents import rfc3339
from servers import VM_PORT, Broker, free_port
from test_mqtt import Listener

pytestmark = pytest.mark.server
SITES = ("house", "cabin", "barn")
CUT = "cabin"


def bridge_config(site: str, port: int, uplink: int, store: Path) -> str:
    """The site broker's configuration, as the README shows it: a local listener, and a bridge that sends the
    site's topics to the central broker with QoS 1, queueing them (on disk) while the uplink is down."""
    return f"""\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {store}/
autosave_interval 1
max_queued_messages 0

connection central
address 127.0.0.1:{uplink}
remote_clientid bridge-{site}
cleansession false
topic pylontech/{site}/# out 1
restart_timeout 1 2
notifications false
"""


class Uplink:
    """A site's link to the centre: a TCP relay to `target` that can be cut (every connection closed, nothing
    listening) and restored on the same port."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port()
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            for connection in [self.server, *self.connections]:
                with contextlib.suppress(OSError):  # shutdown wakes a blocked accept or recv; close alone does not
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self.connections.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            end.close()


class Site:
    """A site: its broker (bridged to the centre through `mqtt_uplink`) and its daemon, whose spool writes to
    VictoriaMetrics through `vm_uplink`; `cycles` holds the time of every reading the daemon made (from its
    --stdout lines)."""

    def __init__(self, name: str, seed: int, tmp: Path, central: int) -> None:
        self.name, self.tmp = name, tmp
        self.mqtt_uplink, self.vm_uplink = Uplink(central), Uplink(VM_PORT)
        self.port = free_port()
        self.broker = Broker(tmp, bridge_config(name, self.port, self.mqtt_uplink.port, tmp), (self.port,))
        self.args = [
            *(sys.executable, "-m", "pylonbus.cli.pylon2influx", "-q", "1", "--all", "--schema", "full"),
            *("-d", f"sim://?stack=US3000C*2&seed={seed}", "--site", name, "--stdout"),
            *("--mqtt", f"mqtt://127.0.0.1:{self.port}", "--mqtt-prefix", f"pylontech/{name}", "--no-ha-discovery"),
            *("--server", f"127.0.0.1:{self.vm_uplink.port}", "--influxapi", "/write"),
            *("--spool", str(tmp / "spool.sqlite")),
        ]
        self.cycles: set[int] = set()
        self.proc = self._start()

    def _start(self, *extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([*self.args, *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()
        return proc

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("pylontech_stack,"):
                self.cycles.add(int(line.rsplit(" ", 1)[1]))

    def drain(self) -> None:
        """SIGTERM, then one more run with --once on the same spool, which sends what the first left."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        once = self._start("--once")
        assert once.wait(60) == 0
        time.sleep(0.5)  # its last stdout lines read

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.broker.stop()
        self.mqtt_uplink.cut()
        self.vm_uplink.cut()


def central_cycles(listener: Listener, site: str) -> dict[str, set[str]]:
    """The reading times each of the site's topics brought to the central broker."""
    seen: dict[str, set[str]] = {}
    for topic, payload, _ in list(listener.messages):
        if topic.startswith(f"pylontech/{site}/") and topic.endswith("/state"):
            seen.setdefault(topic, set()).add(json.loads(payload)["time"])
    return seen


def vm_cycles(site: str) -> dict[str, set[int]]:
    """The timestamps (ms) VictoriaMetrics holds for each module's voltage of the site, by module."""
    query = urllib.parse.urlencode({"match[]": f'pylontech_module_voltage{{site="{site}"}}'})
    with urllib.request.urlopen(f"http://127.0.0.1:{VM_PORT}/api/v1/export?{query}", timeout=10) as response:
        rows = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    return {row["metric"]["module"]: set(row["timestamps"]) for row in rows}


def test_three_sites_reach_the_centre_through_a_cut_uplink(victoria_metrics, tmp_path: Path) -> None:
    central_dir = tmp_path / "central"
    central_dir.mkdir()
    central_port = free_port()
    central = Broker(central_dir, f"listener {central_port} 127.0.0.1\nallow_anonymous true\n", (central_port,))
    listener = Listener("pylontech/#", port=central_port)
    sites: list[Site] = []
    try:
        for seed, name in enumerate(SITES, 1):
            (tmp_path / name).mkdir()
            sites.append(Site(name, seed, tmp_path / name, central_port))
        listener.wait(lambda got: all(len(central_cycles(listener, s)) == 3 for s in SITES), 60)
        cut = next(site for site in sites if site.name == CUT)
        cut.mqtt_uplink.cut()
        cut.vm_uplink.cut()
        time.sleep(2)  # what was in flight when the link went down has landed
        arrived = sum(map(len, central_cycles(listener, CUT).values())), sum(map(len, vm_cycles(CUT).values()))
        time.sleep(18)  # the rest of the 20 s outage
        during = len(cut.cycles)
        # Nothing of the site reached the centre meanwhile: the outage was real.
        assert (
            sum(map(len, central_cycles(listener, CUT).values())),
            sum(map(len, vm_cycles(CUT).values())),
        ) == arrived
        cut.mqtt_uplink.restore()
        cut.vm_uplink.restore()
        time.sleep(5)
        for site in sites:
            site.drain()
        assert len(cut.cycles) > during > 15  # the daemon kept polling through the outage

        deadline = time.monotonic() + 90
        while True:
            missing = {}
            for site in sites:
                times = {rfc3339(ns) for ns in site.cycles}
                topics = central_cycles(listener, site.name)
                for topic in (f"pylontech/{site.name}/0/{m}/state" for m in ("1", "2", "stack")):
                    if times - topics.get(topic, set()):
                        missing[topic] = len(times - topics.get(topic, set()))
                stored = vm_cycles(site.name)
                for module in ("1", "2"):
                    lost = {ns // 1_000_000 for ns in site.cycles} - stored.get(module, set())
                    if lost:
                        missing[f"VictoriaMetrics {site.name} module {module}"] = len(lost)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert not missing, f"readings that did not arrive centrally: {missing}"
        for site in sites:  # site-unique topics, and only its own
            topics = {t for t, _, _ in listener.messages if t.startswith(f"pylontech/{site.name}/")}
            assert topics == {
                f"pylontech/{site.name}/{t}" for t in ("0/1/state", "0/2/state", "0/stack/state", "status")
            }
    finally:
        listener.close()
        for site in sites:
            site.close()
        central.stop()
