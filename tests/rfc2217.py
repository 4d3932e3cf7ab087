"""An RFC 2217 server in front of a TCP serial port (the simulator's), as ser2net or an RS485 gateway would be:
pyserial's own `PortManager` speaks the protocol, so the client meets a real implementation, not ours."""

from __future__ import annotations

import contextlib
import socket
import threading

import serial
import serial.rfc2217


class _Connection:
    """What PortManager writes its replies and escaped data to."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)


class Rfc2217Server:
    """On `port` (0: any free one); `stop` closes the connections too, as a gateway that reboots."""

    def __init__(self, target: str, port: int = 0) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", port))
        self.connections: list[socket.socket] = []
        self.url = f"rfc2217://127.0.0.1:{self.listener.getsockname()[1]}"
        self.alive = True
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while self.alive:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as a gateway: no 40 ms Nagle stalls
        try:
            port = serial.serial_for_url(self.target, timeout=0.05)
        except (OSError, serial.SerialException):
            conn.close()  # the serial side is down: the client sees its connection closed, as with a gateway
            return
        manager = serial.rfc2217.PortManager(port, _Connection(conn))
        done = threading.Event()

        def to_network() -> None:
            while not done.is_set():
                try:
                    data = port.read(port.in_waiting or 1)
                    if data:
                        conn.sendall(b"".join(manager.escape(data)))
                except (OSError, serial.SerialException):
                    return

        reader = threading.Thread(target=to_network, daemon=True)
        reader.start()
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                port.write(b"".join(manager.filter(data)))
        except OSError:
            pass
        finally:
            done.set()
            reader.join(2)
            port.close()
            conn.close()

    def stop(self) -> None:
        self.alive = False
        self.listener.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
