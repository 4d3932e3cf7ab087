"""Issue 20, item 2: a database (or a proxy in front of it) that misbehaves never makes pylon2influx spin, stall
in silence, grow without bound or print a secret: each case against a small misbehaving server of its own."""

from __future__ import annotations

import base64
import http.server
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pylonbus.sinks.influx.config import InfluxTarget
from pylonbus.sinks.influx.shipper import Shipper
from pylonbus.sinks.influx.sink import InfluxSink
from pylonbus.sinks.influx.writer import InfluxWriter
from pylonbus.store.spool import Spool
from test_daemon import daemon

SIM = "sim://?modules=3&frozen=1"
CONFLICT = 'partial write: field type conflict: input field "u" on measurement "Battery" is type float'


class Refusing(http.server.ThreadingHTTPServer):
    """Answers every write with `status`, `headers` and a body; with `echo`, the body repeats the request line
    and its headers, as some proxies' error pages do."""

    def __init__(self, status: int, headers: dict[str, str] | None = None, body: str = "", echo: bool = False):
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                server.requests += 1
                text = f"{self.requestline}\n{self.headers}" if echo else body
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> str:
        return str(self.server_address[1])


def run_daemon(seconds: float, *args: str, env: dict[str, str] | None = None) -> str:
    """pylon2influx on the simulator for `seconds`, every second; its stderr once SIGTERM ended it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", SIM, "-q", "1", "--all", *args],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(seconds)
        assert proc.poll() is None, proc.communicate()[1]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    return err


def test_retry_after_0_forever_backs_off_from_1_s_and_is_logged_once(tmp_path: Path) -> None:
    db = Refusing(429, {"Retry-After": "0"})
    err = run_daemon(20, "-s", "127.0.0.1", "-o", db.port, "-n", "x", "--spool", str(tmp_path / "s.sqlite"))
    assert 3 <= db.requests <= 8, db.requests  # at 0, 1, 3, 7, 15 s (about 1,500 a second before)
    assert err.count("cannot write to the database (HTTP 429") == 1, err
    assert len(err.splitlines()) < 10, err
    assert f"failed posts: {db.requests}" in err.splitlines()[-1]  # the statistics count every one
    db.shutdown()


def test_a_server_that_sends_its_headers_a_byte_a_second_meets_the_whole_request_deadline(
    tmp_path: Path, caplog
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    trickled: list[int] = []

    def trickle() -> None:
        while True:
            conn, _ = listener.accept()
            conn.recv(65536)
            sent = 0
            try:
                for byte in b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"z" * 1000:
                    conn.send(bytes([byte]))
                    sent += 1
                    time.sleep(1)
            except OSError:  # the client ended the request
                trickled.append(sent)

    threading.Thread(target=trickle, daemon=True).start()
    spool = Spool(tmp_path / "s.sqlite", 100)
    spool.add(b"a 1", 1)
    shipper = Shipper(spool, InfluxWriter(InfluxTarget("127.0.0.1", listener.getsockname()[1], db="x"), timeout=2))
    stop = threading.Event()
    thread = threading.Thread(target=shipper.run, args=(stop,), daemon=True)
    with caplog.at_level(logging.WARNING):
        thread.start()
        failure = time.monotonic() + 60  # bounds a failure only: a request never ended
        while len(trickled) < 2:  # a first request, and a retry after the back-off
            assert thread.is_alive() and time.monotonic() < failure, "the request was never ended"
            time.sleep(0.2)
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and spool.pending() == 1  # kept for later
    assert max(trickled) <= 6, trickled  # ended about 2 s in, not when the peer was done
    told = [record.getMessage() for record in caplog.records]
    assert len(told) == 1 and "no complete answer within 2 s" in told[0], told


@pytest.mark.parametrize(
    ("bounds", "kept"),
    [((5, 10**6, 3600.0), 5), ((100, 3 * 61, 3600.0), 3), ((100, 10**6, 0.0), 1)],
    ids=["rows", "bytes", "age"],
)
def test_a_persistent_400_fills_the_rejected_table_only_to_its_bounds(
    tmp_path: Path, caplog, bounds: tuple[int, int, float], kept: int
) -> None:
    db = Refusing(400, body=f'{{"error":"{CONFLICT}"}}')
    spool = Spool(tmp_path / "s.sqlite", 100)
    spool.rejected_bounds = bounds
    sink = InfluxSink(InfluxTarget("127.0.0.1", int(db.port), db="x"), spool)
    for n in range(12):
        spool.add(b"Battery,Module=1 u=%02di" % n + b" " * 20 + b"1700000000000000000", 1)  # 61 bytes
    with caplog.at_level(logging.WARNING):
        while spool.pending():
            assert sink.shipper.send_pending() is None
    rows = spool._db.execute("SELECT body FROM rejected ORDER BY id").fetchall()
    assert len(rows) == kept and rows[-1][0].startswith(b"Battery,Module=1 u=11i")  # the newest stay
    assert f"rejected: 12 ({12 - kept} dropped from the table)" in sink.statistics()
    assert caplog.text.count(CONFLICT) == 1  # the server's reason, once
    assert caplog.text.count("'rejected' table is full") == 1
    db.shutdown()


def test_a_persistent_400_is_logged_once_by_the_daemon(tmp_path: Path) -> None:
    db = Refusing(400, body=f'{{"error":"{CONFLICT}"}}')
    err = run_daemon(6, "-s", "127.0.0.1", "-o", db.port, "-n", "x", "--spool", str(tmp_path / "s.sqlite"))
    assert db.requests >= 4 and err.count(CONFLICT) == 1, err
    assert f"rejected: {db.requests} (0 dropped from the table)" in err.splitlines()[-1]
    db.shutdown()


SECRET = "hunter2"


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["-A", f"write?db=x&u=admin&p={SECRET}"], {}),
        (["-n", "x", "-u", "admin"], {"INFLUX_PASSWORD": SECRET}),
        (["--org", "o", "--bucket", "b"], {"INFLUX_TOKEN": SECRET}),
    ],
    ids=["query", "basic", "token"],
)
def test_an_error_page_that_echoes_the_request_never_puts_a_secret_in_the_log(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    import os

    db = Refusing(503, echo=True)
    err = run_daemon(
        4, "-s", "127.0.0.1", "-o", db.port, *args, "--spool", str(tmp_path / "s.sqlite"), env=os.environ | env
    )
    assert db.requests >= 2 and "HTTP 503" in err and "***" in err, err
    assert SECRET not in err and base64.b64encode(f"admin:{SECRET}".encode()).decode() not in err, err
    db.shutdown()


def test_a_bad_server_url_is_shown_without_its_password(tmp_path: Path) -> None:
    done = daemon("-d", SIM, "-s", f"http://user:{SECRET}@host:badport", "-n", "x", "--spool", str(tmp_path / "s"))
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert SECRET not in line and "--server http://user:***@host:badport" in line and "give a name" in line
