"""Requests per second for /metrics while the daemon polls 16 modules, and the memory the HTTP endpoint adds.

1. `pylon2influx --http` polls 16 modules in two groups (in-process simulator) every second; clients in
   PROCESSES processes, CONNECTIONS keep-alive connections each, request /metrics for 10 s, then /api/state for
   10 s. Printed: requests per second beside the target (at least 5,000, issue 25) and the size of one
   response. For comparison, the same clients request a static file of the same size from Python's own
   `http.server` in another process, the ceiling of a stdlib server on this machine. The clients are raw
   sockets in processes of their own: four `http.client` connections in one process were the limit (2,300/s),
   not the server.
2. Peak resident memory of the daemon over 30 s with and without --http.

Run: python benchmarks/http_metrics.py [--processes N] (not http.py: a script of that name would hide the
standard library's `http` package from the other scripts of its folder)"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from processes import peak_rss_mb, proc_cpu, pylon2influx

PORT, STATIC_PORT = 19111, 19112
PROCESSES = 3
CONNECTIONS = 2  # a process, each with one request on the wire at a time, as a scraper or a page asks
SECONDS = 10.0
LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


def client(port: int, path: str, start: float, seconds: float) -> tuple[int, int]:
    """Requests answered in full on CONNECTIONS keep-alive connections from `start` (monotonic, which every
    process shares) for `seconds`, and the size of a body."""
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
    for sock in connections:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    buffer = bytearray(1 << 21)
    view = memoryview(buffer)
    count = length = 0
    time.sleep(max(0.0, start - time.monotonic()))
    deadline = start + seconds
    while time.monotonic() < deadline:
        for sock in connections:  # one request on each, then every answer: both servers see them together
            sock.sendall(request)
        for sock in connections:
            have, head = 0, -1
            while head < 0:
                received = sock.recv_into(view[have:])
                if not received:
                    raise ConnectionError("the server closed the connection")
                have += received
                head = buffer.find(b"\r\n\r\n", 0, have)
            match = LENGTH.search(buffer, 0, head + 2)
            assert match is not None, bytes(buffer[:head])
            length = int(match[1])
            while have < head + 4 + length:
                received = sock.recv_into(view[have:])
                if not received:
                    raise ConnectionError("the server closed the connection")
                have += received
            count += 1
    for sock in connections:
        sock.close()
    return count, length


def hammer(port: int, path: str, processes: int) -> tuple[float, int]:
    """Requests per second from `processes` client processes, and the body size."""
    start = time.monotonic() + 0.5  # every process connected before any request
    with multiprocessing.Pool(processes) as pool:
        results = pool.starmap(client, [(port, path, start, SECONDS)] * processes)
    return sum(count for count, _ in results) / SECONDS, results[0][1]


def per_request(cpu: float, rate: float) -> str:
    """The daemon's CPU a request (its polling included), and the rate one core of it would serve."""
    each = cpu / (rate * SECONDS)
    return f"{each * 1e6:.0f} µs a request (one core: {1 / each:,.0f}/s)"


def wait_for(port: int, path: str, ready: bytes) -> None:
    for _ in range(100):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", path)
            if ready in connection.getresponse().read():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=PROCESSES, help="client processes")
    processes = parser.parse_args().processes
    proc = pylon2influx("-q", "1", "--http", f"127.0.0.1:{PORT}")
    try:
        wait_for(PORT, "/metrics", b"pylontech_cell_voltage_volts")
        cpu = proc_cpu(proc.pid)
        rate, size = hammer(PORT, "/metrics", processes)
        cpu, metrics_cpu = proc_cpu(proc.pid), proc_cpu(proc.pid) - cpu
        state_rate, state_size = hammer(PORT, "/api/state", processes)
        state_cpu = proc_cpu(proc.pid) - cpu
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "metrics").write_bytes(b"x" * size)
            static = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    "-b",
                    "127.0.0.1",
                    "-d",
                    folder,
                    "-p",
                    "HTTP/1.1",
                    str(STATIC_PORT),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_for(STATIC_PORT, "/metrics", b"x")
                ceiling, _ = hammer(STATIC_PORT, "/metrics", processes)
            finally:
                static.terminate()
                static.wait()
        print(
            f"/metrics with 16 modules while polling every second: {rate:,.0f} requests/s ({size / 1024:.0f} KiB a "
            f"scrape; target >= 5,000), the daemon's CPU {per_request(metrics_cpu, rate)}; python -m http.server, "
            f"same size, static: {ceiling:,.0f}/s (ratio {rate / ceiling:.2f})"
        )
        print(
            f"/api/state: {state_rate:,.0f} requests/s ({state_size / 1024:.0f} KiB a response; target >= 5,000), "
            f"the daemon's CPU {per_request(state_cpu, state_rate)}"
        )
        print(f"({processes} client processes of {CONNECTIONS} keep-alive connections)")
        with_http = peak_rss_mb(proc, 30)
    finally:
        proc.terminate()
        proc.wait()
    plain = pylon2influx("-q", "1")
    try:
        without = peak_rss_mb(plain, 30)
    finally:
        plain.terminate()
        plain.wait()
    print(f"peak RSS: {with_http:.1f} MB with --http, {without:.1f} MB without (+{with_http - without:.1f} MB)")


if __name__ == "__main__":
    main()
