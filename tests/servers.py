"""Real database servers for the integration tests, started on 127.0.0.1 on ports free at the start of the run;
each proves that the server answering on its port is the process it started (another influxd on the machine must
not take the tests' writes).

In CI (CI=true) a missing server binary is a failure; elsewhere those tests are skipped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import IN_CI, stop_process

DEBIAN_PACKAGE = {
    "influxd": "influxdb",
    "victoria-metrics": "victoria-metrics",
    "mosquitto": "mosquitto",
    "mosquitto_passwd": "mosquitto",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
    "shellcheck": "shellcheck",
    "openssl": "openssl",
}


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        package = DEBIAN_PACKAGE.get(binary, binary)
        message = (
            f"{binary} is not installed; install it with "
            f"`sudo apt-get install --no-install-recommends {package}` to run these tests"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


_TAKEN: set[int] = set()


def free_port() -> int:
    """A TCP port nothing listens on now (and not handed out before in this run)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _TAKEN:
            _TAKEN.add(port)
            return port


def listener_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1:`port` (or any address), from /proc: the socket's inode in
    /proc/net/tcp, found among the descriptors of each process."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
            inode = fields[9]
            break
    if inode is None:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if f"socket:[{inode}]" in links:
            return int(pid)
    return None


def prove_ours(port: int, proc: subprocess.Popen) -> None:
    owner = listener_pid(port)
    if owner != proc.pid:
        raise RuntimeError(f"port {port} answers, but from process {owner}, not the server started here ({proc.pid})")


def wait_http(url: str, proc: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                prove_ours(urllib.parse.urlsplit(url).port or 80, proc)
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"server did not answer {url} within {seconds} s")


class Server:
    """A server process that can be stopped and started again on its data and port (an outage, see soak.py)."""

    def __init__(self, args: list[str], ready_url: str, base: str, log: Path) -> None:
        self.base = base
        self.args, self.ready_url, self.log_path = args, ready_url, log
        self.log_path.write_bytes(b"")
        self.start()

    def start(self) -> None:
        self.log = self.log_path.open("a")  # appended: the log of every run of one server
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_http(self.ready_url, self.proc)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


INFLUX_PORT, INFLUX_RPC_PORT, VM_PORT = free_port(), free_port(), free_port()
INFLUX_USER, INFLUX_PASSWORD = "admin", "s3cret pass&word"


def start_influxd(tmp: Path) -> Server:
    binary = need("influxd")
    config = tmp / "influxdb.conf"
    config.write_text(f"""
reporting-disabled = true
bind-address = "127.0.0.1:{INFLUX_RPC_PORT}"
[meta]
  dir = "{tmp}/meta"
[data]
  dir = "{tmp}/data"
  wal-dir = "{tmp}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{INFLUX_PORT}"
  auth-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
""")
    base = f"http://127.0.0.1:{INFLUX_PORT}"
    server = Server([binary, "-config", str(config)], base + "/ping", base, tmp / "influxd.log")
    # The first user may be created without credentials; after that, auth is enforced.
    influx_query(f"CREATE USER {INFLUX_USER} WITH PASSWORD '{INFLUX_PASSWORD}' WITH ALL PRIVILEGES", auth=False)
    return server


def influx_query(q: str, db: str | None = None, auth: bool = True, epoch: str | None = None) -> dict:
    """The JSON answer to `q`; times as RFC 3339 text, or integers in `epoch` units (ns, ms…) where given."""
    import json

    params = {"db": db} if db else {}
    if epoch:
        params["epoch"] = epoch
    if auth:
        params |= {"u": INFLUX_USER, "p": INFLUX_PASSWORD}
    url = f"http://127.0.0.1:{INFLUX_PORT}/query?" + urllib.parse.urlencode(params)
    data = urllib.parse.urlencode({"q": q}).encode()
    with urllib.request.urlopen(url, data=data, timeout=10) as response:
        return json.loads(response.read())


def start_victoria_metrics(tmp: Path) -> Server:
    binary = need("victoria-metrics")
    base = f"http://127.0.0.1:{VM_PORT}"
    return Server(
        [binary, f"-httpListenAddr=127.0.0.1:{VM_PORT}", f"-storageDataPath={tmp}/vm", "-search.latencyOffset=0s"],
        base + "/health",
        base,
        tmp / "vm.log",
    )


MQTT_PORT, MQTT_AUTH_PORT, MQTT_TLS_PORT = free_port(), free_port(), free_port()
MQTT_USER, MQTT_PASSWORD = "pylon", "mqtt s3cret"


class Broker:
    """A Mosquitto of `config` listening on `ports`; it can be stopped and started again (an outage)."""

    def __init__(self, tmp: Path, config: str, ports: tuple[int, ...]) -> None:
        self.binary = need("mosquitto")
        self.tmp = tmp
        self.ports = ports
        self.config = tmp / "mosquitto.conf"
        self.config.write_text(config)
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.log = (self.tmp / "mosquitto.log").open("a")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}; see {self.tmp}/mosquitto.log")
            try:
                socket.create_connection(("127.0.0.1", self.ports[0]), timeout=1).close()
                for port in self.ports:
                    prove_ours(port, self.proc)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("mosquitto did not listen within 30 s")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
            self.log.close()


def small_broker(tmp: Path, max_packet_size: int) -> Broker:
    """An anonymous broker on a port of its own that takes packets of at most `max_packet_size` bytes."""
    port = free_port()
    return Broker(tmp, f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_packet_size {max_packet_size}\n", (port,))


class Mosquitto(Broker):
    """A broker with an anonymous listener, one that needs a password and one with TLS (a certificate for
    127.0.0.1 made here: `ca_file`), its sessions kept across a restart."""

    def __init__(self, tmp: Path) -> None:
        passwd = tmp / "passwd"
        subprocess.run([need("mosquitto_passwd"), "-b", "-c", str(passwd), MQTT_USER, MQTT_PASSWORD], check=True)
        passwd.chmod(0o600)
        self.ca_file = tmp / "broker.crt"
        subprocess.run(
            [
                *(need("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
                *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
                *("-keyout", str(tmp / "broker.key"), "-out", str(self.ca_file)),
            ],
            check=True,
            capture_output=True,
        )
        config = f"""
per_listener_settings true
persistence true
persistence_location {tmp}/
autosave_interval 1
user root
# Every test's retained discovery configs stay on this one broker (over 1,000 with six families): a subscriber to
# them all must get them all, not the first 1,000 (Mosquitto's default queue bound).
max_queued_messages 0
listener {MQTT_PORT} 127.0.0.1
allow_anonymous true
listener {MQTT_AUTH_PORT} 127.0.0.1
allow_anonymous false
password_file {passwd}
listener {MQTT_TLS_PORT} 127.0.0.1
allow_anonymous true
certfile {self.ca_file}
keyfile {tmp / "broker.key"}
"""
        super().__init__(tmp, config, (MQTT_PORT, MQTT_AUTH_PORT, MQTT_TLS_PORT))


PROMETHEUS_PORT, HTTP_SINK_PORT = free_port(), free_port()


def start_prometheus(tmp: Path) -> Server:
    """Prometheus scraping the HTTP sink of the daemon under test (127.0.0.1:HTTP_SINK_PORT) every second."""
    binary = need("prometheus")
    config = tmp / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pylontech
    static_configs:
      - targets: ["127.0.0.1:{HTTP_SINK_PORT}"]
""")
    base = f"http://127.0.0.1:{PROMETHEUS_PORT}"
    return Server(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp}/data",
            f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
        ],
        base + "/-/ready",
        base,
        tmp / "prometheus.log",
    )


def prometheus_query(query: str) -> list[dict]:
    import json

    url = f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["data"]["result"]
