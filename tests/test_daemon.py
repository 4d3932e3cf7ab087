"""pylon2influx: the C line protocol, the change filter, the spool, and real databases."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from fractions import Fraction
from pathlib import Path

import pytest

from pylonbus.protocol import PackAnalog
from pylonbus.readings.reading import ModuleReading, Reading, StackReading
from pylonbus.service import Poller
from pylonbus.service.config import Config
from pylonbus.service.daemon import Daemon
from pylonbus.sim import Stack
from pylonbus.sinks.influx.config import InfluxTarget
from pylonbus.sinks.influx.lineproto import ZERO, LineProtocol, Snapshot, battery_line, changed
from pylonbus.sinks.influx.shipper import Shipper
from pylonbus.sinks.influx.writer import InfluxWriter
from pylonbus.store.spool import Spool
from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, VM_PORT, influx_query

SIM = "sim://?stack=US3000C*2,US2000B&seed=11&frozen=1"
MODEL = Stack.parse("US3000C*2,US2000B", seed=11, frozen=True)


def pack(**changes: object) -> PackAnalog:
    values: dict[str, object] = {
        "cell_voltages": (3.293,) * 6 + (3.292,) + (3.293,) * 8,
        "temperatures": (28.0, 26.0, 25.5, 26.9, -12.4),
        "current": 0.0,
        "voltage": 49.39,
        "remaining_capacity": 36.26,
        "user_defined_items": 4,
        "total_capacity": 74.0,
        "cycles": 0,
    }
    return PackAnalog(**(values | changes))  # type: ignore[arg-type]


def test_line_is_byte_compatible_with_the_c_program() -> None:
    line = battery_line(1, pack(temperatures=(28.0, 26.0, 25.0, 26.0, 27.0)), 1700000000000000000)
    assert line == (
        "Battery,Module=1 i=0.0,u=49.39,AH=36260i,kWH=3.37,u0=3.293,u1=3.293,u2=3.293,u3=3.293,u4=3.293,u5=3.293,"
        "u6=3.292,u7=3.293,u8=3.293,u9=3.293,u10=3.293,u11=3.293,u12=3.293,u13=3.293,u14=3.293,temp_bms=28i,"
        "temp_1=26i,temp_2=25i,temp_3=26i,temp_4=27i,CycleCount=0i 1700000000000000000"
    )


def test_temperatures_truncate_toward_zero_and_other_groups_get_a_tag() -> None:
    line = battery_line(3, pack(current=-3.2), 1, group=2)
    assert line.startswith("Battery,Group=2,Module=3 i=-3.2,")
    assert "temp_2=25i,temp_3=26i,temp_4=-12i," in line


def _half_even(quotient: int, rest: int, divisor: int) -> int:
    return quotient + (2 * rest > divisor or (2 * rest == divisor and quotient % 2))


def c_float(numerator: int, denominator: int) -> tuple[int, int]:
    """The IEEE single-precision number nearest to numerator / denominator (ties to even) as (m, e), m·2^e: what a
    C `float` holds. Integer arithmetic, so this reference shares nothing with the code under test."""
    if numerator == 0:
        return 0, 0
    magnitude = abs(numerator)
    exponent = magnitude.bit_length() - denominator.bit_length() - 24
    while True:  # the exponent that gives the mantissa 24 bits
        divisor = denominator << max(exponent, 0)
        mantissa, rest = divmod(magnitude << max(-exponent, 0), divisor)
        if mantissa >= 1 << 24:
            exponent += 1
        elif mantissa < 1 << 23:
            exponent -= 1
        else:
            break
    return (1 if numerator > 0 else -1) * _half_even(mantissa, rest, divisor), exponent


def printf(value: tuple[int, int], decimals: int) -> str:
    """C's `%.Nf` of a float promoted to double: its exact binary value rounded to N decimals (glibc: ties even)."""
    mantissa, exponent = value
    if exponent >= 0:
        scaled = (abs(mantissa) << exponent) * 10**decimals
    else:  # m·2^e = m·5^-e / 10^-e exactly
        digits = -exponent
        exact = abs(mantissa) * 5**digits
        scaled = (
            _half_even(*divmod(exact, 10 ** (digits - decimals)), 10 ** (digits - decimals))
            if digits > decimals
            else exact * 10 ** (decimals - digits)
        )
    text = f"{scaled:0{decimals + 1}d}"
    return ("-" if mantissa < 0 else "") + f"{text[:-decimals]}.{text[-decimals:]}"


def line_fields(line: str) -> dict[str, str]:
    return dict(field.split("=") for field in line.split(" ")[1].split(","))


def test_every_module_voltage_rounds_through_a_c_float_like_the_c_program() -> None:
    differ = 0
    for mv in range(65536):
        c = printf(c_float(mv, 1000), 2)  # u: (float)mv / 1000, printed %.2f
        assert line_fields(battery_line(1, pack(voltage=mv / 1000), 0))["u"] == c, mv
        differ += c != f"{mv / 1000:.2f}"
    assert differ == 3146  # the values a double rounds otherwise (issue 19): all of them written as the C does
    assert line_fields(battery_line(1, pack(voltage=50.165), 0))["u"] == "50.17"


def test_current_cells_and_kwh_print_as_c_floats() -> None:
    for raw in range(-32768, 32768):  # i: the signed 0.1 A count / 10, %.1f
        assert line_fields(battery_line(1, pack(current=raw / 10), 0))["i"] == printf(c_float(raw, 10), 1), raw
    cells = tuple(mv / 1000 for mv in range(65536))  # u0…: mV / 1000, %.3f
    fields = line_fields(battery_line(1, pack(cell_voltages=cells), 0))
    assert all(fields[f"u{mv}"] == printf(c_float(mv, 1000), 3) for mv in range(65536))
    # kWH: int mAh * 95 / 100 * 48 (integers), / 1e6 (a double), kept in a float. The 2-byte range whole, and the
    # 3-byte range where the float's error first reaches the second decimal (5.6 million mAh and up).
    for mah in (*range(0, 65536, 7), *range(5_622_000, 5_640_000), 0xFFFFFF):
        double = Fraction(mah * 95 // 100 * 48 / 1e6)  # the double: Python's / is IEEE double division too
        c = printf(c_float(double.numerator, double.denominator), 2)
        assert line_fields(battery_line(1, pack(total_capacity=mah / 1000), 0))["kWH"] == c, mah


def test_change_filter_follows_the_c_thresholds() -> None:
    base = Snapshot.of(pack(current=-1.0))
    assert changed(base, ZERO)
    assert not changed(Snapshot.of(pack(current=-1.2, voltage=49.40)), base)
    assert changed(Snapshot.of(pack(current=-1.3)), base)
    assert changed(Snapshot.of(pack(current=0.0)), Snapshot.of(pack(current=-0.1)))
    assert changed(Snapshot.of(pack(voltage=49.401, current=-1.0)), base)
    cells = (3.298,) + (3.293,) * 5 + (3.292,) + (3.293,) * 8
    assert changed(Snapshot.of(pack(cell_voltages=cells, current=-1.0)), base)
    assert changed(Snapshot.of(pack(temperatures=(29.0, 26.0, 25.5, 26.9, -12.4), current=-1.0)), base)


def reading(time_ns: int, *packs: PackAnalog) -> Reading:
    return Reading(time_ns, [StackReading(0, [ModuleReading(0, n, p) for n, p in enumerate(packs, 1)])])


def test_the_change_filter_counts_a_line_only_once_the_database_accepted_it() -> None:
    protocol = LineProtocol(confirmed=True)
    first = protocol.lines(reading(1, pack(), pack()))
    assert len(first) == 2
    assert len(protocol.lines(reading(2, pack(), pack()))) == 2  # nothing accepted yet (refused, or in flight)
    protocol.accepted("\n".join(first).encode())  # an older line of each: the filter stays on the old reference
    assert len(protocol.lines(reading(3, pack(), pack()))) == 2
    protocol.accepted(b"\n".join(line.encode() for line in protocol.lines(reading(4, pack(), pack()))[:1]))
    assert [line.split(" ")[0] for line in protocol.lines(reading(5, pack(), pack()))] == ["Battery,Module=2"]
    written = LineProtocol()  # standard output: a line counts when it is written
    assert len(written.lines(reading(1, pack()))) == 1 and not written.lines(reading(2, pack()))


def c_changed(new: PackAnalog, sent: PackAnalog | None) -> bool:
    """analogDataChanged as SEED.md describes it, on the wire's integers (mV, 0.1 A, °C truncated by C's integer
    division); before the first post the reference is all zeros."""
    if sent is None:
        return True

    def wire(p: PackAnalog) -> tuple[int, int, list[int], list[int]]:
        return (
            round(p.voltage * 1000),
            round(p.current * 10),
            [round(v * 1000) for v in p.cell_voltages],
            [int(round(t * 10) / 10) for t in p.temperatures],
        )

    (u, i, cells, temps), (u0, i0, cells0, temps0) = wire(new), wire(sent)
    return (
        abs(u - u0) > 10
        or abs(i - i0) > 2
        or (i == 0 and i0 != 0)
        or any(abs(a - b) > 4 for a, b in zip(cells, cells0, strict=True))
        or temps != temps0
    )


def test_lines_a_minute_follow_the_readings_a_minute_the_decisions_are_the_c_programs() -> None:
    """Issue 19: 14 moving modules at -q 1 gave the C daemon 40-43 lines a minute, pylonbus 118-120. The same
    readings get the same decisions; the C daemon makes fewer readings: it cannot read modules 9-14 (their requests
    carry the lower-case INFO checksum bug, and each costs three refused tries, ~1.2 s with its 500 ms reopen), and
    its period is the time those reads take plus the interval. Scripted: the simulator's model over 20 minutes."""

    def lines_a_minute(modules: range, read_time: float) -> float:
        model = Stack.parse("US3000C*14", seed=0)
        protocol, sent = LineProtocol(), {}
        t, lines, minutes = 0.0, 0, 20
        while t < minutes * 60:
            model.advance(t)
            packs = [model.modules[n + 1].pack() for n in modules]
            written = {int(line.split(" ")[0].split("=")[1]) for line in protocol.lines(reading(int(t * 1e9), *packs))}
            expected = {n for n, p in zip(modules, packs, strict=True) if c_changed(p, sent.get(n))}
            assert written == expected, t
            sent |= {n: packs[n - 1] for n in written}
            lines += len(written)
            t += read_time + 1.0  # then sleep(queryInterval)
        return lines / minutes

    ours = lines_a_minute(range(1, 15), 0.0)  # one fan-out read, a fixed 1 s period
    c_program = lines_a_minute(range(1, 9), 8 * 0.015 + 6 * 1.2)
    assert 110 < ours < 140 and 35 < c_program < 50


def daemon(*args: str, env: dict | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=(os.environ | (env or {})),
        **kwargs,
    )  # type: ignore[call-overload]


def test_stdout_mode_writes_one_batch_per_cycle() -> None:
    done = daemon("-d", SIM, "--once")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == [f"Battery,Module={n}" for n in (1, 2, 3)]
    assert len({line.rsplit(" ", 1)[1] for line in lines}) == 1  # one timestamp per cycle
    assert re.search(r" i=-?\d+\.\d,u=\d+\.\d\d,AH=\d+i,kWH=\d+\.\d\d,u0=\d\.\d{3},", lines[0])
    tagged = daemon("-d", SIM, "--once", "--site", "cabin-2", "--schema", "both").stdout.splitlines()
    assert [line.split(" ")[0] for line in tagged if line.startswith("Battery")] == [
        f"Battery,Module={n},site=cabin-2" for n in (1, 2, 3)
    ]
    assert all(",site=cabin-2 " in line for line in tagged) and len(tagged) == 3 + 3 + 1


def test_stdout_is_a_sink_of_its_own_off_beside_http_unless_asked_for(tmp_path: Path) -> None:
    from servers import free_port

    http = ["--http", f"127.0.0.1:{free_port()}"]
    quiet = daemon("-d", SIM, "--once", *http)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == ""  # a journal under systemd stays free of line protocol
    asked = daemon("-d", SIM, "--once", "--stdout", *http)
    assert asked.returncode == 0, asked.stderr
    assert [line.split(" ")[0] for line in asked.stdout.splitlines()] == [f"Battery,Module={n}" for n in (1, 2, 3)]
    config = tmp_path / "pylon2influx.toml"
    config.write_text('[influx]\nstdout = true\nschema = "full"\n')
    from_file = daemon("-d", SIM, "--once", "--config", str(config), *http)
    assert from_file.stdout.startswith("pylontech_module,"), from_file.stderr


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["-s", "x"], "needs --db"),
        (["-s", "x", "-O", "o", "-T", "t"], "--bucket is missing"),
        (["-I", "2"], "out of range (0-1)"),
        (["-q", "0"], "at least 1"),
        (["-g", "16"], "out of range"),
        (["--site", "my house"], "'my house': give 1-64 letters, digits, _, - or ."),
        (["--bogus"], "error"),
    ],
)
def test_invalid_options_exit_1_naming_the_flag(args: list[str], text: str) -> None:
    done = daemon("-d", SIM, *args)
    assert done.returncode == 1 and text in done.stderr


def test_try_version_and_no_module() -> None:
    assert daemon("-d", SIM, "--try").returncode == 0
    assert daemon("-d", "sim://?stack=US3000C", "-g", "1", "-t").returncode == 2
    assert daemon("--version").returncode == 0


def test_spool_drops_the_oldest_when_full(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", limit=3)
    for n in range(5):
        spool.add(b"line %d" % n, 1)
    assert [body for _, _, body in spool.oldest(100)] == [b"line 2", b"line 3", b"line 4"]
    assert spool.counter("dropped") == 2


def expected_fields(module: int) -> dict:
    p = MODEL.modules[module + 1].pack()
    return {
        "i": p.current,
        "u": round(p.voltage, 2),
        "AH": round(p.remaining_capacity * 1000),
        "CycleCount": p.cycles,
        "u0": p.cell_voltages[0],
    }


def influx_rows(db: str) -> list[dict]:
    series = influx_query("SELECT * FROM Battery", db=db)["results"][0].get("series", [])
    if not series:
        return []
    columns = series[0]["columns"]
    return [dict(zip(columns, values, strict=True)) for values in series[0]["values"]]


def influx_v1(*args: str) -> list[str]:
    """pylon2influx options for one cycle into the test InfluxDB's `battery` database."""
    return ["-d", SIM, "--once", "-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", "battery", "-u", INFLUX_USER, *args]


@pytest.mark.server
def test_influxdb_v1_receives_every_field(influxd, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE battery")
    password_file = tmp_path / "password"
    password_file.write_text(INFLUX_PASSWORD + "\n")
    done = daemon(*influx_v1("--password-file", str(password_file), "--spool", str(tmp_path / "spool.sqlite")))
    assert done.returncode == 0, done.stderr
    rows = influx_rows("battery")
    assert sorted(r["Module"] for r in rows) == ["1", "2", "3"]
    for row in rows:
        for name, value in expected_fields(int(row["Module"])).items():
            assert row[name] == value, name
        assert isinstance(row["temp_bms"], int)


@pytest.mark.server
def test_wrong_password_keeps_the_data(influxd, tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite"
    done = daemon(*influx_v1("--spool", str(spool)), env={"INFLUX_PASSWORD": "wrong"})
    assert done.returncode == 1 and "401" in done.stderr
    assert Spool(spool, 10).pending() == 1


@pytest.mark.server
def test_outage_kill_and_restart_lose_nothing(influxd, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE outage")
    spool = tmp_path / "spool.sqlite"
    common = [
        "-d",
        "sim://?stack=US3000C*2&seed=3",
        "--all",
        "-n",
        "outage",
        "-u",
        INFLUX_USER,
        "-p",
        INFLUX_PASSWORD,
        "--spool",
        str(spool),
        "-s",
        "127.0.0.1",
    ]
    down = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", *common, "-o", "18999", "-q", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(4.5)
    down.send_signal(signal.SIGKILL)
    down.wait()
    polled = Spool(spool, 1000).pending()
    assert polled >= 3
    done = daemon(*common, "-o", str(INFLUX_PORT), "--once")
    assert done.returncode == 0, done.stderr
    rows = influx_rows("outage")
    times = {row["time"] for row in rows}
    assert len(times) == polled + 1
    assert len(rows) == 2 * len(times)  # every module at every timestamp, exactly once
    assert Spool(spool, 1000).pending() == 0


def wait_for(condition: object, what: str, seconds: float = 60) -> None:
    """Poll until `condition()` is true; a generous bound that only ends a hung run (no timing is asserted)."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.2)


@pytest.mark.server
def test_values_in_a_refused_batch_are_written_again_once_the_database_takes_them(influxd, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE refused")
    write = f"http://127.0.0.1:{INFLUX_PORT}/write?" + urllib.parse.urlencode(
        {"db": "refused", "u": INFLUX_USER, "p": INFLUX_PASSWORD}
    )
    urllib.request.urlopen(write, data=b'Battery,Module=1 u="text"', timeout=10).read()  # u is a string now
    log = tmp_path / "daemon.log"
    with log.open("wb") as stderr:
        running = subprocess.Popen(
            [
                *(sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", SIM, "-q", "1", "-s", "127.0.0.1"),
                *("-o", str(INFLUX_PORT), "-n", "refused", "-u", INFLUX_USER, "-p", INFLUX_PASSWORD),
                *("--spool", str(tmp_path / "spool.sqlite")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        # The frozen stack never changes: after the refusal only a filter that did not count the refused
        # batch writes these values at all.
        wait_for(lambda: "server refused a batch" in log.read_text(), "the field type conflict (HTTP 400)")
        influx_query("DROP MEASUREMENT Battery", db="refused")  # the conflict is gone: float u is accepted now
        wait_for(lambda: {r["Module"] for r in influx_rows("refused") if r["u"] is not None} == {"1", "2", "3"}, "rows")
    finally:
        running.send_signal(signal.SIGTERM)
        running.wait(30)
    rows = influx_rows("refused")
    assert all(row["u"] == expected_fields(int(row["Module"]))["u"] for row in rows)


def vm_export() -> list[dict]:
    query = urllib.parse.urlencode({"match[]": '{__name__=~"Battery_.*"}'})
    urllib.request.urlopen(f"http://127.0.0.1:{VM_PORT}/internal/force_flush", timeout=10).read()
    with urllib.request.urlopen(f"http://127.0.0.1:{VM_PORT}/api/v1/export?{query}", timeout=10) as response:
        return [json.loads(line) for line in response.read().splitlines()]


@pytest.mark.server
@pytest.mark.parametrize(
    ("label", "args"),
    [
        ("v2", ["-O", "home", "-B", "v2bucket", "-T", "tok"]),
        ("custom", ["-A", "/write?db=custom"]),
        ("v1", ["-n", "v1db"]),
    ],
)
def test_victoria_metrics_receives_v1_v2_and_custom_writes(
    victoria_metrics, tmp_path: Path, label: str, args: list[str]
) -> None:
    done = daemon(
        "-d",
        SIM,
        "--once",
        "-s",
        "http://127.0.0.1",
        "-o",
        str(VM_PORT),
        *args,
        "--spool",
        str(tmp_path / "spool.sqlite"),
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while True:
        series = {(s["metric"]["__name__"], s["metric"]["Module"]): s["values"][-1] for s in vm_export()}
        if ("Battery_CycleCount", "3") in series or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    for module in (1, 2, 3):
        fields = expected_fields(module)
        assert series[("Battery_u", str(module))] == fields["u"]
        assert series[("Battery_AH", str(module))] == fields["AH"]
        assert series[("Battery_CycleCount", str(module))] == fields["CycleCount"]


class ScriptedDatabase(http.server.ThreadingHTTPServer):
    """Answers writes with scripted statuses, for answers the real databases cannot be made to give."""

    def __init__(self, script: list[tuple[int, dict]], max_body: int | None = None) -> None:
        self.script = script
        self.bodies: list[bytes] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, headers = server.script.pop(0) if server.script else (204, {})
                if max_body is not None and len(body) > max_body:
                    status = 413
                if status == 400 and b"bad" not in body:
                    status = 204
                if status == 204:
                    server.bodies.append(body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def sink(self) -> InfluxWriter:
        return InfluxWriter(InfluxTarget("127.0.0.1", self.server_address[1], db="x"), timeout=2)


def test_malformed_batch_is_quarantined_and_the_rest_goes_through(tmp_path: Path) -> None:
    db = ScriptedDatabase([(400, {}), (400, {}), (400, {}), (400, {})])
    spool = Spool(tmp_path / "s.sqlite", 100)
    for body in (b"a 1", b"b 2", b"bad", b"c 3"):
        spool.add(body, 1)
    shipper = Shipper(spool, db.sink())
    while spool.pending():
        assert shipper.send_pending() is None
    assert spool.counter("rejected") == 1
    assert sorted(b"\n".join(db.bodies).split(b"\n")) == [b"a 1", b"b 2", b"c 3"]
    db.shutdown()


def test_too_large_requests_are_split_down_to_the_servers_limit(tmp_path: Path) -> None:
    db = ScriptedDatabase([], max_body=30)
    spool = Spool(tmp_path / "s.sqlite", 100)
    sent = [b"m%d v=%d" % (n, n) for n in range(12)]  # 7 bytes a line: 3 lines fit in 30 bytes, 4 do not
    for start in range(0, 12, 6):
        spool.add(b"\n".join(sent[start : start + 6]), 6)
    spool.add(b"huge v=" + b"9" * 40, 1)
    shipper = Shipper(spool, db.sink())
    while spool.pending():
        assert shipper.send_pending() is None
    assert sorted(b"\n".join(db.bodies).split(b"\n")) == sorted(sent)
    assert shipper.batch_lines <= 3
    assert spool.counter("rejected") == 1  # one line alone over the limit cannot be split
    db.shutdown()


def test_429_backs_off_as_told_and_5xx_exponentially(tmp_path: Path) -> None:
    db = ScriptedDatabase([(429, {"Retry-After": "7"}), (503, {}), (503, {})])
    spool = Spool(tmp_path / "s.sqlite", 100)
    spool.add(b"a 1", 1)
    shipper = Shipper(spool, db.sink())
    first = shipper.send_pending()
    assert first is not None and shipper.delay_after(first) == 7.0
    delays = [shipper.delay_after(shipper.send_pending()) for _ in range(2)]  # type: ignore[arg-type]
    assert delays == [2.0, 4.0]
    assert shipper.send_pending() is None and spool.pending() == 0
    db.shutdown()


def test_slow_server_times_out_and_keeps_the_batch(tmp_path: Path) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections but never answers
    spool = Spool(tmp_path / "s.sqlite", 100)
    spool.add(b"a 1", 1)
    sink = InfluxWriter(InfluxTarget("127.0.0.1", listener.getsockname()[1], db="x"), timeout=0.5)
    outcome = Shipper(spool, sink).send_pending()
    assert outcome is not None and outcome.status == 0 and spool.pending() == 1
    listener.close()


@pytest.mark.parametrize(
    ("server", "port", "api", "url"),
    [
        ("influx.lan", 8086, None, "http://influx.lan:8086/write?db=battery"),
        ("127.0.0.1:28086", 8086, None, "http://127.0.0.1:28086/write?db=battery"),
        ("http://127.0.0.1:28086", 9999, None, "http://127.0.0.1:28086/write?db=battery"),
        ("https://db.example/influx/", 8086, None, "https://db.example:8086/influx/write?db=battery"),
        ("[::1]:8087", 8086, None, "http://[::1]:8087/write?db=battery"),
        ("tcp://host", 8086, None, "http://host:8086/write?db=battery"),
        ("host", 8428, "write?db=x", "http://host:8428/write?db=x"),
        ("host", 8428, "/api/v1/import", "http://host:8428/api/v1/import"),
    ],
)
def test_server_is_a_name_host_port_or_url(server: str, port: int, api: str | None, url: str) -> None:
    assert InfluxTarget(server, port, db="battery", api=api).url() == url


def test_credentials_go_in_a_header_not_in_the_url() -> None:
    target = InfluxTarget("host", db="battery", user="me", password="s3cret")
    assert "s3cret" not in target.url()
    assert target.headers()["authorization"].startswith("Basic ")
    assert InfluxTarget("host", org="o", bucket="b", token="t0k").headers()["Authorization"] == "Token t0k"


@pytest.mark.server
def test_secrets_never_reach_the_debug_log(influxd, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE secrets")
    done = daemon(
        "-d", SIM, "--once", "-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", "secrets", "-u", INFLUX_USER,
        "--spool", str(tmp_path / "s.sqlite"), "-vvv", env={"INFLUX_PASSWORD": INFLUX_PASSWORD},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "POST /write?db=secrets" in done.stderr  # the request line is there, without credentials
    assert INFLUX_PASSWORD not in done.stderr
    assert urllib.parse.quote_plus(INFLUX_PASSWORD) not in done.stderr


def test_a_password_that_looks_like_a_port_gets_a_hint(tmp_path: Path) -> None:
    done = daemon("-d", SIM, "-s", "127.0.0.1", "-n", "x", "-p", "28086", "--once", "--spool", str(tmp_path / "s"))
    warning = next(line for line in done.stderr.splitlines() if "did you mean -o/--port?" in line)
    assert "28086" not in warning  # the hint does not repeat the password


def test_spool_keeps_the_order_readings_were_taken_when_a_batch_is_split(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", 100)
    for name in (b"a", b"b", b"c"):
        spool.add(name + b"1\n" + name + b"2", 2)
        time.sleep(0.01)
    first = spool.oldest(2)[0][0]
    assert spool.split(first)
    assert [body for _, _, body in spool.oldest(100)] == [b"a1", b"a2", b"b1\nb2", b"c1\nc2"]


def test_a_failing_spool_holds_batches_in_memory_and_commits_them_when_it_works_again(tmp_path: Path) -> None:
    from pylonbus import Link
    from pylonbus import Stack as Client
    from pylonbus.sinks.influx.sink import InfluxSink

    sink = InfluxSink(InfluxTarget("127.0.0.1", 1, db="x"), Spool(tmp_path / "s.sqlite", 100), every=True)
    poller = Poller([Client(Link(SIM))], 3600)
    poller.scan()
    sink.spool.close()  # the database is gone: every write fails as on a dead disk
    sink.publish(poller.cycle())
    sink.publish(poller.cycle())
    assert len(sink.backlog.unspooled) == 2
    assert "spool unusable" in sink.statistics()
    sink.shipper.spool = sink.backlog.spool = Spool(tmp_path / "s.sqlite", 100)
    sink.publish(poller.cycle())
    assert not sink.backlog.unspooled and sink.spool.pending() == 3


def test_a_module_missed_by_the_start_up_scan_joins_at_the_next_rescan(tmp_path: Path) -> None:
    from pylonbus import Link
    from pylonbus import Stack as Client
    from pylonbus.service.config import load

    # The library's way in, without the command line; its energy counters in a file of its own (the default one
    # would stay locked by this test process for the daemons the next tests start).
    config = load(device=SIM, rescan=1.0, energy_state=tmp_path / "energy.sqlite")
    stack = Client(Link(SIM))
    stack.modules = [1]  # as if modules 2 and 3 had been silent during the scan
    runner = Daemon(config, Poller([stack], config.rescan))
    runner.poller.rescan()
    assert stack.modules == [1, 2, 3]


def test_daemon_polls_over_every_transport(sim_port: str) -> None:
    done = daemon("-d", sim_port, "-g", "1", "--once")
    assert done.returncode == 0, done.stderr
    assert [line.split(" ")[0] for line in done.stdout.splitlines()] == [
        "Battery,Group=1,Module=1",
        "Battery,Group=1,Module=2",
    ]


def test_a_module_that_goes_silent_is_logged_once_and_skipped(caplog, tmp_path: Path) -> None:
    import logging

    from pylonbus import Link
    from pylonbus import Stack as Client

    stack = Client(Link("sim://?stack=US3000C*3&frozen=1&pace=0", tries=1))
    stack.scan()
    runner = Daemon(Config(energy_state=tmp_path / "energy.sqlite"), Poller([stack], 60))
    stack.turn_off(2, allow_write=True)  # the simulator's module 2 is silent from now on
    with caplog.at_level(logging.INFO):
        assert not runner.cycle() and not runner.cycle() and not runner.cycle()
    assert caplog.text.count("module 2 gives no data and is skipped until it does") == 1
    assert runner.poller.silent == {("pylontech", 0, 2)} and stack.modules == [1, 2, 3]  # still known


def test_with_no_module_at_start_the_daemon_keeps_probing() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", "sim://?modules=1&group=1", "--rescan", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(6)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "probing again every 1 s" in err


def test_two_groups_are_polled_by_one_process(sim_port: str) -> None:
    done = daemon("-d", sim_port, "-g", "0,1", "--once", "--all")
    assert done.returncode == 0, done.stderr
    assert [line.split(" ")[0] for line in done.stdout.splitlines()] == [
        "Battery,Module=1",
        "Battery,Module=2",
        "Battery,Module=3",
        "Battery,Module=4",
        "Battery,Group=1,Module=1",
        "Battery,Group=1,Module=2",
    ]
    assert "modules found: group 0: [1, 2, 3, 4]; group 1: [1, 2]" in done.stderr


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pylon2influx.toml"
    path.write_text(text)
    return path


def test_the_config_file_sets_options_and_flags_override_it(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f'[battery]\ndevice = "{SIM}"\ngroups = [0]\ninterval = 9\n\n[influx]\nserver = "db.lan"\ndb = "x"\n'
        'user = "me"\nverify_tls = false\nall = true\n',
    )
    done = daemon("--config", str(config), "--print-config", "-q", "3", env={"INFLUX_PASSWORD": "hunter2"})
    assert done.returncode == 0, done.stderr
    assert f'device = "{SIM}"' in done.stdout and "interval = 3.0" in done.stdout  # the flag wins
    assert 'server = "db.lan"' in done.stdout and "verify_tls = false" in done.stdout and "all = true" in done.stdout
    assert "hunter2" not in done.stdout and '# password = "***"' in done.stdout
    polled = daemon("--config", str(write_config(tmp_path, f'[battery]\ndevice = "{SIM}"\n')), "--once")
    assert polled.returncode == 0 and len(polled.stdout.splitlines()) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[battery]\ndevice = "x"\n\nbuad = 9600\n', "pylon2influx.toml:4: unknown key buad in [battery]"),
        ("[battery]\ninterval = 0\n", "pylon2influx.toml:2: interval: 0 is out of range"),
        ('[influx]\npassword = "x"\n', "password does not belong in this file; use password_file"),
        ("[modbus]\nhost = 1\n", "pylon2influx.toml:1: unknown table [modbus]"),
        ("[influx]\nall = 1\n", "all must be true or false"),
        ('[influx]\nschema = "csv"\n', "pylon2influx.toml:2: schema: 'csv' is not one of c, full, both"),
        ("[influx\n", "Expected ']'"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    done = daemon("--config", str(write_config(tmp_path, text)))
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_the_example_config_runs_as_shipped_and_its_commented_sinks_are_valid(tmp_path: Path) -> None:
    """As shipped it needs no database, broker or syslog: on a plain machine it prints the readings (the
    simulator stands in for the battery its `device` names)."""
    import re

    from conftest import ROOT

    example = ROOT / "contrib" / "pylon2influx.toml"
    done = daemon("--config", str(example), "-d", SIM, "--once")
    assert done.returncode == 0, done.stderr
    assert [line.split(" ")[0] for line in done.stdout.splitlines()] == [f"Battery,Module={n}" for n in (1, 2, 3)]
    assert "syslog" not in done.stderr
    shipped = daemon("--config", str(example), "--print-config")
    assert shipped.returncode == 0 and 'device = "/dev/ttyUSB_pylontech"' in shipped.stdout, shipped.stderr
    # Each sink table, uncommented as a user would, is a valid configuration too.
    battery, sinks = example.read_text().split("# [influx]")
    sinks = re.sub(r"^# (\[(mqtt|http)\]|[a-z_]+ = )", r"\1", "[influx]" + sinks, flags=re.MULTILINE)
    (tmp_path / "all.toml").write_text(battery + sinks)
    every = daemon("--config", str(tmp_path / "all.toml"), "--print-config")
    assert every.returncode == 0, every.stderr
    assert 'bucket = "battery"' in every.stdout and 'listen = "127.0.0.1:9101"' in every.stdout
