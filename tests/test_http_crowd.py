"""A crowd at the HTTP door: the daemon under the file limit systemd gives it (1,024) while a thousand idle
clients and fifty slowloris clients hold connections. /metrics answers, polling and delivery to a real influxd go
on, the spool keeps its file, and the server closes the idle and the slow. And the endpoint binds IPv6."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, free_port, influx_query

SIM = "sim://?modules=3&frozen=1"
FILE_LIMIT = 1024  # systemd's default LimitNOFILE soft limit
IDLE, SLOW = 1000, 50
IDLE_TIMEOUT, REQUEST_TIMEOUT = 15.0, 10.0  # the server's, as documented in the README


def limited_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


def start(port: int, *args: str, host: str = "127.0.0.1", log: Path) -> subprocess.Popen[bytes]:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    command = [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", SIM, "-q", "1", "--http", address, *args]
    with log.open("wb") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=limited_files)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if b'"stacks": [{' in get(f"http://{address}/api/state"):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no reading served within 20 s: {log.read_text()}")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed the connection (EOF or a reset); False while it is still open."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def points(db: str) -> int:
    series = influx_query("SELECT * FROM Battery", db=db)["results"][0].get("series", [])
    return sum(len(s["values"]) for s in series)


def test_a_crowd_of_idle_and_slow_clients_stops_neither_metrics_nor_polling_nor_delivery(
    influxd, tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4 * FILE_LIMIT:
        pytest.skip(f"the test's own file limit ({hard}) cannot hold {IDLE + SLOW} client sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4 * FILE_LIMIT), hard))
    port, log = free_port(), tmp_path / "daemon.log"
    influx_query("CREATE DATABASE crowd")
    database = ("-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", "crowd", "-u", INFLUX_USER, "-p", INFLUX_PASSWORD)
    proc = start(port, *database, "--all", "--spool", str(tmp_path / "spool.sqlite"), log=log)
    base = f"http://127.0.0.1:{port}"
    idle: list[socket.socket] = []
    slow: list[socket.socket] = []
    stop = threading.Event()
    try:
        for _ in range(IDLE):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        for _ in range(SLOW):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)

        def trickle() -> None:  # slowloris: one more header byte from each every 2 s, never the end
            while not stop.wait(2.0):
                for sock in slow:
                    with contextlib.suppress(OSError):  # closed by the server: what the test wants
                        sock.send(b"X")

        threading.Thread(target=trickle, daemon=True).start()
        started = time.monotonic()
        first = json.loads(get(base + "/api/state"))["time_ns"]
        delivered = points("crowd")
        while time.monotonic() - started < IDLE_TIMEOUT + 5:
            assert b"pylontech_module_up" in get(base + "/metrics")  # within urlopen's 10 s, each time
            status = Path(f"/proc/{proc.pid}/status").read_text()
            threads = int(status.split("Threads:")[1].split()[0])
            assert threads < 20, f"{threads} threads for {IDLE + SLOW} connections"
            assert len(os.listdir(f"/proc/{proc.pid}/fd")) < FILE_LIMIT - 100  # the reserve stays free
            time.sleep(1)
        assert json.loads(get(base + "/api/state"))["time_ns"] > first  # polling went on
        deadline = time.monotonic() + 20
        while points("crowd") <= delivered and time.monotonic() < deadline:
            time.sleep(1)
        assert points("crowd") > delivered  # and delivery
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(closed_by_server(s) for s in idle + slow):
            time.sleep(0.5)
        still_open = [s for s in idle + slow if not closed_by_server(s)]
        assert not still_open, f"{len(still_open)} of {IDLE + SLOW} connections never closed by the server"
        assert proc.poll() is None
    finally:
        stop.set()
        for sock in idle + slow:
            sock.close()
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert "batches are held in memory" not in text and "spool unusable" not in text and "Traceback" not in text
    assert text.count("connections open, the limit") == 1, text
    assert text.count("sent no whole request") == 1, text


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["::1", "::"])
def test_an_ipv6_address_is_served(host: str, tmp_path: Path) -> None:
    if not ipv6_loopback():
        if os.environ.get("CI") == "true":
            pytest.fail("no IPv6 loopback (::1) on this CI machine: the IPv6 endpoint is untested")
        pytest.skip("no IPv6 loopback (::1) on this machine")
    port = free_port()
    proc = start(port, host=host, log=tmp_path / "daemon.log")
    try:
        with urllib.request.urlopen(f"http://[::1]:{port}/healthz", timeout=10) as response:
            assert (response.status, response.read()) == (200, b"ok\n")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("value", ["9101", ":9101", "::1:9101", "[::1]9101", "[::1:9101", "host:70000", "a b:1"])
def test_a_malformed_address_is_refused_at_start_in_one_line(value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", SIM, "--once", "--http", value],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert f"--http {value}: give HOST:PORT" in line and "[::1]:9101 for IPv6" in line
