"""One kept-alive HTTP/1.1 connection that posts a body and reads the answer: its status, headers and body
(by Content-Length, chunked, or up to the close). http.client cost 0.3-0.4 ms of CPU a request (its header
parser is the e-mail package's), this under 0.1 ms; and a plain http:// server needs no `ssl` (5 MB of memory:
it is imported only for https://)."""

from __future__ import annotations

import io
import select
import socket
from typing import TYPE_CHECKING, NamedTuple

from .. import address_host

if TYPE_CHECKING:
    import ssl

MAX_LINE = 65536  # bytes of a status or header line
MAX_HEADERS = 100
MAX_BODY = 1 << 20  # bytes of an answer kept; past that the connection is closed rather than read to its end


class HttpError(Exception):
    """The peer's answer is not HTTP/1.x as this client reads it, or it ended early."""


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]  # by lower-case name; repeated headers joined by ", "
    body: bytes


def describe(error: Exception) -> str:
    """A transport error in a few words, with the fix where there is one."""
    if reason := getattr(error, "verify_message", None):  # ssl.SSLCertVerificationError (ssl may not be loaded)
        return f"its TLS certificate is not trusted ({reason}); give its CA with --ca-file, or -I 0"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: is the database running, and on this port? (-s/--server, -o/--port)"
    if isinstance(error, socket.gaierror):
        return f"the host name does not resolve ({error.strerror}): check -s/--server"
    return str(error) or type(error).__name__


class Connection:
    """Requests to `host`:`port` over one connection, made when there is none or the server closed the idle
    one. `connect_timeout` bounds connecting (and the TLS handshake), `read_timeout` each wait for bytes."""

    def __init__(
        self, host: str, port: int, connect_timeout: float, read_timeout: float, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.sock: socket.socket | None = None
        self._reader: io.BufferedReader | None = None  # the connection's answers, buffered
        default = 443 if tls is not None else 80
        name = f"[{host}]" if ":" in host else host
        self.host_header = name if port == default else f"{name}:{port}"

    def post(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        sock, reader = self._connected()
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host_header}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        sock.sendall("\r\n".join([*lines, "", ""]).encode("latin-1") + body)  # one send: one segment, one wake-up
        status, version = self._status(reader)
        while 100 <= status < 200:  # an interim answer (100 Continue): its headers, then the real one
            self._headers(reader)
            status, version = self._status(reader)
        fields = self._headers(reader)
        body, complete = self._body(reader, status, fields)
        tokens = {token.strip().lower() for token in fields.get("connection", "").split(",")}
        if not complete or "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens):
            self.close()
        return Answer(status, fields, body)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _connected(self) -> tuple[socket.socket, io.BufferedReader]:
        # A readable idle connection is at its end (the server closed it) or holds what no request asked for.
        if self.sock is not None and select.select([self.sock], [], [], 0)[0]:
            self.close()
        if self.sock is None or self._reader is None:
            # typeshed allows only text for the host; create_connection hands it to getaddrinfo, which takes bytes
            address = (address_host(self.host), self.port)
            sock = socket.create_connection(address, timeout=self.connect_timeout)  # type: ignore[arg-type]
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.tls is not None:
                    sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
            sock.settimeout(self.read_timeout)
            self.sock, self._reader = sock, sock.makefile("rb")
        return self.sock, self._reader

    @staticmethod
    def _line(reader: io.BufferedReader) -> bytes:
        line = reader.readline(MAX_LINE + 1)
        if not line:
            raise HttpError("the server closed the connection before its answer was complete")
        if len(line) > MAX_LINE:
            raise HttpError(f"a line of the answer is longer than {MAX_LINE} bytes")
        return line

    def _status(self, reader: io.BufferedReader) -> tuple[int, str]:
        line = self._line(reader)
        version, _, rest = line.decode("latin-1").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise HttpError(f"not an HTTP answer: {line[:80]!r}")
        return int(code), version

    def _headers(self, reader: io.BufferedReader) -> dict[str, str]:
        fields: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._line(reader)
            if line in (b"\r\n", b"\n"):
                return fields
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise HttpError(f"not an HTTP header: {line[:80]!r}")
            name, value = name.strip().lower(), value.strip()
            fields[name] = f"{fields[name]}, {value}" if name in fields else value
        raise HttpError(f"more than {MAX_HEADERS} headers in the answer")

    def _body(self, reader: io.BufferedReader, status: int, fields: dict[str, str]) -> tuple[bytes, bool]:
        """The body, and whether the connection is at its end (and can carry the next request)."""
        read = reader.read
        if status in (204, 304):
            return b"", True
        if "chunked" in fields.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            kept = 0
            while True:
                size_text = self._line(reader).split(b";")[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise HttpError(f"not a chunk size: {size_text[:20]!r}") from None
                if size == 0:
                    break
                if kept + size > MAX_BODY:
                    return b"".join(chunks), False
                chunk = read(size + 2)  # and its CRLF
                if len(chunk) < size + 2:
                    raise HttpError("the server closed the connection within a chunk")
                chunks.append(chunk[:size])
                kept += size
            while self._line(reader) not in (b"\r\n", b"\n"):  # trailers
                pass
            return b"".join(chunks), True
        if "content-length" in fields:
            try:
                length = int(fields["content-length"])
            except ValueError:
                raise HttpError(f"not a Content-Length: {fields['content-length'][:20]!r}") from None
            if length < 0:
                raise HttpError(f"not a Content-Length: {length}")
            data = read(min(length, MAX_BODY))
            if len(data) < min(length, MAX_BODY):
                raise HttpError("the server closed the connection before the end of its answer")
            return data, length <= MAX_BODY
        data = read(MAX_BODY)  # delimited by the end of the connection
        return data, False
