"""The InfluxDB writer's HTTP/1.1 connection (sinks/influx/connection.py): kept alive between writes, made again
when the server closed the idle one, answers read by Content-Length, chunked or up to the close, and over TLS
verified against the system's CAs or `--ca-file`, or not at all with `-I 0`."""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from pylonbus.errors import PylonbusError
from pylonbus.sinks.influx.config import InfluxTarget
from pylonbus.sinks.influx.writer import InfluxWriter
from servers import free_port, need


class Database(http.server.ThreadingHTTPServer):
    """Takes every write (204), noting each body and the client port it came from; with `tls`, over TLS."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.bodies: list[bytes] = []
        self.peers: list[int] = []
        self.handlers: list[http.server.BaseHTTPRequestHandler] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps the connection open between requests

            def do_POST(self) -> None:
                server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                server.peers.append(self.client_address[1])
                server.handlers.append(self)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def target(self, scheme: str = "http", **options: object) -> InfluxTarget:
        return InfluxTarget(f"{scheme}://127.0.0.1:{self.server_address[1]}", db="x", **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            *(need("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(tmp / "db.key"), "-out", str(tmp / "db.crt")),
        ],
        check=True,
        capture_output=True,
    )
    return tmp / "db.crt", tmp / "db.key"


@pytest.fixture
def tls_database(certificate: tuple[Path, Path]) -> Database:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return Database(context)


def test_writes_share_one_connection() -> None:
    db = Database()
    writer = InfluxWriter(db.target())
    assert all(writer.write(b"m v=%d" % n).ok for n in range(3))
    assert db.bodies == [b"m v=0", b"m v=1", b"m v=2"] and len(set(db.peers)) == 1
    writer.close()
    db.shutdown()


def test_a_connection_the_server_closed_while_idle_is_made_again() -> None:
    db = Database()
    writer = InfluxWriter(db.target())
    assert writer.write(b"m v=1").ok
    db.handlers[-1].close_connection = True  # the server ends the idle connection after its answer
    with contextlib.suppress(OSError):  # (or has ended it already)
        db.handlers[-1].connection.shutdown(socket.SHUT_RDWR)
    assert writer.write(b"m v=2").ok  # not a failed post: the closed connection is seen before the request
    assert db.bodies == [b"m v=1", b"m v=2"] and len(set(db.peers)) == 2
    db.shutdown()


def test_tls_with_the_servers_ca(tls_database: Database, certificate: tuple[Path, Path]) -> None:
    writer = InfluxWriter(tls_database.target("https", ca_file=str(certificate[0])))
    assert writer.write(b"m v=1").ok and writer.write(b"m v=2").ok
    assert tls_database.bodies == [b"m v=1", b"m v=2"] and len(set(tls_database.peers)) == 1
    tls_database.shutdown()


def test_tls_an_untrusted_certificate_is_refused_and_named_with_the_fix(tls_database: Database) -> None:
    target = tls_database.target("https")
    outcome = InfluxWriter(target).write(b"m v=1")
    assert outcome.status == 0 and not tls_database.bodies
    assert outcome.message.startswith(f"{target.base}: its TLS certificate is not trusted")
    assert "--ca-file" in outcome.message and "-I 0" in outcome.message
    tls_database.shutdown()


def test_tls_without_verification(tls_database: Database) -> None:
    assert InfluxWriter(tls_database.target("https", verify_tls=False)).write(b"m v=1").ok
    assert tls_database.bodies == [b"m v=1"]
    tls_database.shutdown()


def test_a_ca_file_that_is_no_certificate_is_named(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    with pytest.raises(PylonbusError, match=r"--ca-file .*ca\.pem: not a PEM certificate"):
        InfluxWriter(InfluxTarget("https://127.0.0.1:1", db="x", ca_file=str(tmp_path / "ca.pem")))


class Scripted:
    """A raw TCP server that answers each request it reads with the next of `answers`, byte for byte, and closes
    the connection after an answer followed by `None`; it counts connections and requests."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers = answers
        self.connections = 0
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            conn, _ = self.listener.accept()
            self.connections += 1
            with conn:
                while self.answers:
                    request = b""
                    while b"\r\n\r\n" not in request or not request.endswith(b"v=1"):
                        if not (data := conn.recv(65536)):
                            break
                        request += data
                    if not request:
                        break
                    self.requests.append(request)
                    conn.sendall(self.answers.pop(0) or b"")
                    if self.answers and self.answers[0] is None:
                        self.answers.pop(0)
                        break

    def writer(self) -> InfluxWriter:
        return InfluxWriter(InfluxTarget("127.0.0.1", self.listener.getsockname()[1], db="x"), timeout=5)


@pytest.mark.parametrize(
    ("answer", "message", "kept_alive"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nwrong", "wrong", True),
        (
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nwro\r\n2\r\nng\r\n0\r\n\r\n",
            "wrong",
            True,
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nwrong", "wrong", True),
        (b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 5\r\n\r\nwrong", "wrong", False),
        (b"HTTP/1.0 400 Bad Request\r\nContent-Length: 5\r\n\r\nwrong", "wrong", False),
    ],
)
def test_answers_are_read_whole_and_the_connection_kept_where_http_allows(
    answer: bytes, message: str, kept_alive: bool
) -> None:
    server = Scripted([answer, b"HTTP/1.1 204 No Content\r\n\r\n"])
    writer = server.writer()
    outcome = writer.write(b"m v=1")
    assert (outcome.status, outcome.message) == (400, message)
    assert writer.write(b"m v=1").ok
    assert server.connections == (1 if kept_alive else 2)


def test_an_answer_up_to_the_close() -> None:
    server = Scripted([b"HTTP/1.1 503 Unavailable\r\nRetry-After: 7\r\n\r\ntry later", None])
    outcome = server.writer().write(b"m v=1")
    assert (outcome.status, outcome.message, outcome.retry_after) == (503, "try later", 7.0)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP answer"),
        (b"HTTP/1.1 204 No Content\r\nno colon here\r\n\r\n", "not an HTTP header"),
        (b"HTTP/1.1 400 Bad\r\nContent-Length: 50\r\n\r\nshort", "before the end of its answer"),
        (b"", "closed the connection before its answer was complete"),
    ],
)
def test_what_is_no_http_answer_is_a_failed_post_that_names_the_server(answer: bytes, said: str) -> None:
    server = Scripted([answer, None])
    writer = server.writer()
    outcome = writer.write(b"m v=1")
    assert outcome.status == 0 and outcome.message.startswith(writer.target.base + ": ")
    assert said in outcome.message


def test_a_port_nobody_listens_on_is_named_with_the_fix() -> None:
    target = InfluxTarget("127.0.0.1", free_port(), db="x")
    outcome = InfluxWriter(target).write(b"m v=1")
    assert outcome.status == 0 and outcome.message.startswith(f"{target.base}: connection refused")
    assert "-o/--port" in outcome.message
