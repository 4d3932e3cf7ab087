"""Requests per second for /metrics while the daemon polls 16 modules, and the memory the HTTP endpoint adds.

1. `pylon2influx --http` polls 16 modules in two groups (in-process simulator) every second; clients on 4
   keep-alive connections request /metrics for 10 s, then /api/state for 10 s. Printed: requests per second
   (target: at least 5,000, issue 25) and the size of one scrape. For comparison, the same clients request a
   static file of the same size from Python's own `http.server` in another process, the ceiling of a stdlib
   server on this machine.
2. Peak resident memory of the daemon over 30 s with and without --http.

Run: python benchmarks/http_metrics.py (not http.py: a script of that name would hide the standard library's
`http` package from the other scripts of its folder)"""

from __future__ import annotations

import http.client
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from processes import peak_rss_mb, pylon2influx

PORT, STATIC_PORT = 19111, 19112
CLIENTS = 4
SECONDS = 10.0


def hammer(port: str, path: str) -> tuple[float, int]:
    """Requests per second over CLIENTS keep-alive connections, and the body size."""
    counts = [0] * CLIENTS
    size = [0]
    deadline = time.monotonic() + SECONDS

    def client(n: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        while time.monotonic() < deadline:
            connection.request("GET", path)
            size[0] = len(connection.getresponse().read())
            counts[n] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / SECONDS, size[0]


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
    proc = pylon2influx("-q", "1", "--http", f"127.0.0.1:{PORT}")
    try:
        wait_for(PORT, "/metrics", b"pylontech_cell_voltage_volts")
        rate, size = hammer(str(PORT), "/metrics")
        state_rate, state_size = hammer(str(PORT), "/api/state")
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
                ceiling, _ = hammer(str(STATIC_PORT), "/metrics")
            finally:
                static.terminate()
                static.wait()
        print(
            f"/metrics with 16 modules while polling every second: {rate:,.0f} requests/s ({size / 1024:.0f} KiB a "
            f"scrape; target >= 5,000); python -m http.server, same size, static: {ceiling:,.0f}/s "
            f"(ratio {rate / ceiling:.2f})"
        )
        print(f"/api/state: {state_rate:,.0f} requests/s ({state_size / 1024:.0f} KiB)")
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
