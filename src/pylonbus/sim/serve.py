"""Serving the simulator on a pseudo-terminal or a TCP port, for programs that open a real port."""

from __future__ import annotations

import logging
import os
import select
import socket
import socketserver
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..errors import PylonbusError
from .bus import write_paced

log = logging.getLogger(__name__)


class Line(Protocol):
    """The battery end of a connection: the RS485 `Bus` or the console's `ConsoleBus`."""

    @property
    def byte_time(self) -> float: ...

    def receive(self, data: bytes, now: float) -> list[tuple[float, bytes]]: ...


def _serve(
    bus: Line,
    source: int | socket.socket,
    read: Callable[[], bytes],
    write: Callable[[bytes], object],
    stop: threading.Event,
) -> None:
    """Answer requests read from `source` (a file descriptor or socket) until it closes or `stop` is set."""
    while not stop.is_set():
        if not select.select([source], [], [], 0.2)[0]:
            continue
        data = read()
        if not data:
            return
        for start, reply in bus.receive(data, time.monotonic()):
            write_paced(write, reply, max(start, time.monotonic()), bus.byte_time)


def serve_pty(
    make_bus: Callable[[], Line], link: str | None, on_ready: Callable[[str], None], stop: threading.Event
) -> None:
    """Serve on a new pseudo-terminal; `on_ready` gets the slave path (or the link to it)."""
    if link:
        _check_link(Path(link))
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line discipline: bytes pass as on a serial line
    path = os.ttyname(slave)
    if link:
        Path(link).unlink(missing_ok=True)  # a simulator's link left by a run that was killed
        Path(link).symlink_to(path)
    on_ready(link or path)
    try:
        # The slave stays open here, so a client closing its end never makes this read fail with EIO.
        _serve(make_bus(), master, lambda: os.read(master, 4096), lambda data: os.write(master, data), stop)
    finally:
        if link and Path(link).is_symlink() and os.readlink(link) == path:  # still ours: another run may own it
            Path(link).unlink()
        os.close(master)
        os.close(slave)


def _check_link(link: Path) -> None:
    """`--link` may replace only a link to a pseudo-terminal (what a simulator leaves behind), never a file."""
    if link.is_symlink():
        if os.readlink(link).startswith("/dev/pts/"):
            return
        what = f"a link to {os.readlink(link)}"
    elif link.exists():
        what = "a directory" if link.is_dir() else "a file"
    else:
        return
    raise PylonbusError(
        f"--link {link}: {what} is there, not a simulator's link to a pseudo-terminal; remove it or choose another path"
    )


class _Handler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log.info("client %s:%s connected", *self.client_address[:2])

        def read() -> bytes:
            try:
                return sock.recv(4096)
            except OSError:
                return b""

        _serve(self.server.make_bus(), sock, read, sock.sendall, self.server.stop)
        log.info("client %s:%s left", *self.client_address[:2])


class _TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], make_bus: Callable[[], Line], stop: threading.Event) -> None:
        super().__init__(address, _Handler)
        self.make_bus = make_bus
        self.stop = stop


def serve_tcp(
    make_bus: Callable[[], Line], host: str, port: int, on_ready: Callable[[str], None], stop: threading.Event
) -> None:
    """Serve on a TCP port like an RS485-to-Ethernet gateway; every client shares one stack."""
    with _TcpServer((host, port), make_bus, stop) as server:
        bound_host, bound_port = server.socket.getsockname()[:2]
        on_ready(f"socket://{bound_host}:{bound_port}")
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        stop.wait()
        server.shutdown()
