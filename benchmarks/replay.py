"""A day of backlog drained into a real influxd, and the daemon's footprint while it polls.

1. A spool holding 24 h of cycles at 5 s from 16 modules in two groups (17,280 batches, 276,480 lines, the
   values of the simulator's model) is shipped by the daemon's own Shipper and InfluxWriter into influxd (Debian
   package `influxdb`): the time until the spool is empty, then a count query that every point arrived.
2. The same request bodies posted straight to influxd with http.client, the floor a drain is compared with.
3. `pylon2influx --all` polls 8 modules of `pylontech-sim --pty` every 5 s, then 14 modules every second,
   into the same influxd: its peak resident memory and its CPU time per second of wall time, read from
   /proc, over a minute after start-up.

Run: python benchmarks/replay.py  (needs influxd; started on a free port, like the tests)"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from processes import proc_cpu, proc_rss_mb
from pylonbus.sim import Stack
from pylonbus.sinks.influx.config import InfluxTarget
from pylonbus.sinks.influx.lineproto import battery_line
from pylonbus.sinks.influx.shipper import Shipper
from pylonbus.sinks.influx.writer import InfluxWriter
from pylonbus.store.spool import Spool
from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, influx_query, start_influxd

PERIOD = 5
CYCLES = 24 * 3600 // PERIOD
STACK = "US3000C*8;US3000C*8"
WATCH = 60.0  # seconds the polling daemon is watched
SETTLE = 10.0  # seconds of start-up not counted
BATCH_LINES = 5000  # lines per request, as the shipper sends them


def fill_spool(path: Path) -> int:
    """The batches a daemon would have spooled during a day-long outage; returns the number of lines."""
    stack = Stack.parse(STACK, seed=3)
    spool = Spool(path, CYCLES)
    start_ns = (time.time_ns() // 10**9 - CYCLES * PERIOD) * 10**9
    lines = 0
    for cycle in range(CYCLES):
        stack.advance(cycle * PERIOD)
        stamp = start_ns + cycle * PERIOD * 10**9
        batch = [battery_line(m.number, m.pack(), stamp, m.group) for m in stack.modules.values()]
        spool.add("\n".join(batch).encode(), len(batch))
        lines += len(batch)
    spool.close()
    return lines


def count_points(db: str) -> int:
    series = influx_query("SELECT count(u) FROM Battery", db)["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def drain(path: Path) -> tuple[float, int]:
    influx_query("CREATE DATABASE replay")
    spool = Spool(path, CYCLES)
    target = InfluxTarget("127.0.0.1", INFLUX_PORT, db="replay", user=INFLUX_USER, password=INFLUX_PASSWORD)
    shipper = Shipper(spool, InfluxWriter(target))
    start = time.perf_counter()
    while spool.pending():
        outcome = shipper.send_pending()
        if outcome is not None:
            raise RuntimeError(f"influxd refused a batch: HTTP {outcome.status} {outcome.message}")
    return time.perf_counter() - start, count_points("replay")


def request_bodies(path: Path) -> list[bytes]:
    """The spool's batches grouped into requests as the shipper groups them."""
    import sqlite3

    rows = sqlite3.connect(path).execute("SELECT lines, body FROM batches ORDER BY created, id").fetchall()
    requests, body, count = [], [], 0
    for lines, batch in rows:
        if body and count + lines > BATCH_LINES:
            requests.append(b"\n".join(body))
            body, count = [], 0
        body.append(bytes(batch))
        count += lines
    requests.append(b"\n".join(body))
    return requests


def raw_upload(requests: list[bytes], db: str) -> float:
    """The same bodies posted straight to influxd: the floor for a drain."""
    import http.client

    influx_query(f"CREATE DATABASE {db}")
    target = InfluxTarget("127.0.0.1", INFLUX_PORT, db=db, user=INFLUX_USER, password=INFLUX_PASSWORD)
    connection = http.client.HTTPConnection("127.0.0.1", INFLUX_PORT)
    path, headers = target.url().removeprefix(target.base), target.headers()
    start = time.perf_counter()
    for request in requests:
        connection.request("POST", path, body=request, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 204:
            raise RuntimeError(f"influxd refused a raw upload: HTTP {response.status}")
    return time.perf_counter() - start


def footprint(tmp: Path, modules: int, period: float) -> tuple[float, float]:
    """Peak RSS in MB and CPU in % of one core of a daemon polling `modules` every `period` seconds."""
    influx_query("CREATE DATABASE poll")
    sim = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.sim", "--pty", "--stack", f"US3000C*{modules}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert sim.stdout is not None
    port = sim.stdout.readline().strip()
    command = [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", port, "--all", "-q", str(period)]
    command += ["-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", "poll", "-u", INFLUX_USER]
    daemon = subprocess.Popen(
        [*command, "--spool", str(tmp / f"poll{modules}.sqlite")],
        env=os.environ | {"INFLUX_PASSWORD": INFLUX_PASSWORD},
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(SETTLE)
        wall, cpu = time.monotonic(), proc_cpu(daemon.pid)
        peak = 0.0
        while time.monotonic() - wall < WATCH:
            peak = max(peak, proc_rss_mb(daemon.pid))
            time.sleep(0.5)
        used = (proc_cpu(daemon.pid) - cpu) / (time.monotonic() - wall)
    finally:
        for proc in (daemon, sim):
            proc.terminate()
            proc.wait()
    if count_points("poll") == 0:
        raise RuntimeError("the polling daemon wrote nothing")
    return peak, 100 * used


def main() -> int:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        lines = fill_spool(tmp / "backlog.sqlite")
        server = start_influxd(tmp)
        try:
            # Raw uploads before and after the drain, the faster counted: influxd warms up as it is written to.
            requests = request_bodies(tmp / "backlog.sqlite")
            before = raw_upload(requests, "raw_before")
            seconds, points = drain(tmp / "backlog.sqlite")
            raw = min(before, raw_upload(requests, "raw_after"))
            usage = {(modules, period): footprint(tmp, modules, period) for modules, period in ((8, PERIOD), (14, 1))}
        finally:
            server.stop()
    print(
        f"drain: {CYCLES:,} batches, {lines:,} lines into influxd in {seconds:.1f} s ({lines / seconds:,.0f} lines/s)"
    )
    print(f"       points in the database afterwards: {points:,}{'' if points == lines else '  MISSING POINTS'}")
    print(f"       the same request bodies posted straight to influxd: {raw:.1f} s (drain {seconds / raw:.2f}x)")
    for (modules, period), (rss, cpu) in usage.items():
        print(f"daemon polling {modules} modules every {period} s: peak RSS {rss:.1f} MB, CPU {cpu:.2f} % of a core")
    return 0 if points == lines else 1


if __name__ == "__main__":
    sys.exit(main())
