"""One connection to an MQTT 5 broker, driven by one thread at a time: CONNECT, PUBLISH with QoS 1 in a window
the broker sets (its Receive Maximum), SUBSCRIBE, keep-alive, and the messages the broker sends back. A whole
cycle's messages leave in one write and their acknowledgements are read as they come, in the sending thread:
paho-mqtt's network loop and its hand-over to the publishing thread cost 3.7 ms of CPU a cycle for 15 messages,
this 0.7 ms."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ...wakeup import Wakeup
from .. import address_host
from . import packets

if TYPE_CHECKING:
    import ssl

CONNECT_TIMEOUT = 10.0  # s for the TCP connection and the TLS handshake
SEND_TIMEOUT = 10.0  # s a write may wait for a broker that stopped reading: then it is taken as lost
PING_AFTER = 0.75  # of the keep-alive without a packet sent: a PINGREQ
WINDOW_MAX = 500  # messages in flight at most, whatever the broker takes: a replay's write stays small


class Lost(Exception):
    """The connection ended or cannot go on; the message says why."""


class Refused(Exception):
    """The broker answered CONNECT with an error."""

    def __init__(self, reason: int) -> None:
        super().__init__(packets.reason_name(reason))
        self.reason = reason


class Silent(Exception):
    """The broker took the connection and did not answer CONNECT."""


OnMessage = Callable[[packets.Message], None]
OnRefused = Callable[[str, int], None]  # what was declined ("a message to T", "the subscription to F"), reason


class Connection:
    def __init__(
        self, sock: socket.socket, keepalive: int, wakeup: Wakeup, on_message: OnMessage, on_refused: OnRefused
    ) -> None:
        self.sock = sock
        self.keepalive = keepalive
        self.wakeup = wakeup
        self.on_message = on_message
        self.on_refused = on_refused
        self.reader = packets.Reader()
        self.connack: packets.ConnAck | None = None
        self.window = WINDOW_MAX  # the broker's Receive Maximum if lower: QoS 1 messages it takes unacknowledged
        self.max_packet: int | None = None
        self.unacked: dict[int, str] = {}  # packet id -> topic of each QoS 1 PUBLISH not yet acknowledged
        self._filters: dict[int, str] = {}  # packet id -> filter of each SUBSCRIBE not yet acknowledged
        self._packet_id = 0
        self._last_sent = time.monotonic()
        self._ping_sent: float | None = None
        self._pending = getattr(sock, "pending", None)  # TLS: bytes decrypted already, which select cannot see

    @classmethod
    def open(
        cls,
        address: tuple[str, int],
        tls: ssl.SSLContext | None,
        hello: bytes,
        keepalive: int,
        wakeup: Wakeup,
        on_message: OnMessage,
        on_refused: OnRefused,
        stopped: Callable[[], bool],
        timeout: float = CONNECT_TIMEOUT,
    ) -> Connection | None:
        """Connected and accepted, or None when `stopped` came first. Raises OSError (ssl.SSLError among them)
        when the broker cannot be reached within `timeout` s, Refused, Silent after `keepalive` s without a
        CONNACK, or Lost."""
        sock = socket.create_connection((address_host(address[0]), address[1]), timeout=timeout)  # type: ignore[arg-type]
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=address[0])
            sock.settimeout(SEND_TIMEOUT)
            connection = cls(sock, keepalive, wakeup, on_message, on_refused)
            connection.send(hello)
            deadline = time.monotonic() + keepalive
            while connection.connack is None:
                left = deadline - time.monotonic()
                if stopped():
                    sock.close()
                    return None
                if left <= 0:
                    raise Silent()
                try:
                    connection.pump(left)
                except Lost as error:
                    raise Lost(f"{error} before answering CONNECT") from None
        except BaseException:
            sock.close()
            raise
        connack = connection.connack
        if not connack.accepted:
            sock.close()
            raise Refused(connack.reason)
        receive = connack.properties.get(packets.RECEIVE_MAXIMUM)
        connection.window = min(receive, WINDOW_MAX) if isinstance(receive, int) and receive > 0 else WINDOW_MAX
        largest = connack.properties.get(packets.MAXIMUM_PACKET_SIZE)
        connection.max_packet = largest if isinstance(largest, int) else None
        server_keepalive = connack.properties.get(packets.SERVER_KEEP_ALIVE)
        if isinstance(server_keepalive, int):  # the broker's word overrides ours (3.2.2.3.14)
            connection.keepalive = server_keepalive
        return connection

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as error:
            raise Lost(str(error) or type(error).__name__) from None
        self._last_sent = time.monotonic()

    def _next_id(self) -> int:
        packet_id = self._packet_id % 65535 + 1
        while packet_id in self.unacked or packet_id in self._filters:
            packet_id = packet_id % 65535 + 1
        self._packet_id = packet_id
        return packet_id

    def publish(self, messages: Iterable[tuple[str, str, bool]], give_up: Callable[[], bool]) -> bool:
        """Publish (topic, payload, retain) with QoS 1, in order, as many at a time as the broker takes; True when
        the broker has acknowledged every one, False when `give_up` said so first. Raises Lost."""
        unacked = self.unacked
        pending = iter(messages)
        more = True
        out: list[bytes] = []
        while True:
            while more and len(unacked) < self.window:
                message = next(pending, None)
                if message is None:
                    more = False
                    break
                topic, payload, retain = message
                packet_id = self._next_id()
                unacked[packet_id] = topic
                out.append(packets.publish(topic.encode(), payload.encode(), packet_id, retain))
            if out:
                self.send(b"".join(out))
                out.clear()
            if not unacked and not more:
                return True
            if give_up():
                return False
            self.pump(1.0)

    def subscribe(self, topic_filter: str) -> None:
        packet_id = self._next_id()
        self._filters[packet_id] = topic_filter
        self.send(packets.subscribe(packet_id, topic_filter))

    def unsubscribe(self, topic_filter: str) -> None:
        self.send(packets.unsubscribe(self._next_id(), topic_filter))

    def pump(self, seconds: float) -> None:
        """Wait at most `seconds` for the broker (or the wake-up) and handle what it sent; keep the connection
        alive meanwhile. Raises Lost."""
        if self.connack is not None:
            now = time.monotonic()
            if self._ping_sent is not None:
                if now - self._ping_sent > self.keepalive:
                    raise Lost(f"no answer to a ping within {self.keepalive} s")
                seconds = min(seconds, self._ping_sent + self.keepalive - now)
            elif self.keepalive:
                due = self._last_sent + PING_AFTER * self.keepalive
                if now >= due:
                    self.send(packets.PING)
                    self._ping_sent = now
                    seconds = min(seconds, self.keepalive)
                else:
                    seconds = min(seconds, due - now)
        if not (self._pending and self._pending()):
            fd = self.sock.fileno()
            ready = select.select([fd, self.wakeup.fd], [], [], max(0.0, seconds))[0]
            if self.wakeup.fd in ready:
                self.wakeup.clear()
            if fd not in ready:
                return
        try:
            data = self.sock.recv(65536)
        except OSError as error:
            if type(error).__name__ == "SSLWantReadError":  # a TLS record not complete yet
                return
            raise Lost(str(error) or type(error).__name__) from None
        if not data:
            raise Lost("the broker closed the connection")
        try:
            for kind, flags, body in self.reader.feed(data):
                self._handle(kind, flags, body)
        except packets.MalformedPacket as error:
            raise Lost(f"the broker sent {error}") from None

    def _handle(self, kind: int, flags: int, body: bytes) -> None:
        if kind == packets.PUBACK:
            packet_id, reason = packets.read_puback(body)
            topic = self.unacked.pop(packet_id, None)
            if reason >= 0x80 and topic is not None:
                self.on_refused(f"a message to {topic}", reason)
        elif kind == packets.PUBLISH:
            message = packets.read_message(flags, body)
            if message.packet_id is not None:
                self.send(packets.puback(message.packet_id))
            self.on_message(message)
        elif kind == packets.PINGRESP:
            self._ping_sent = None
        elif kind == packets.SUBACK:
            packet_id, reasons = packets.read_suback(body)
            topic_filter = self._filters.pop(packet_id, "")
            for reason in reasons:
                if reason >= 0x80:
                    self.on_refused(f"the subscription to {topic_filter}", reason)
        elif kind == packets.CONNACK and self.connack is None:
            self.connack = packets.read_connack(body)
        elif kind == packets.DISCONNECT:
            reason, text = packets.read_disconnect(body)
            raise Lost(f"the broker disconnected: {packets.reason_name(reason)}" + (f" ({text})" if text else ""))
        elif kind != packets.UNSUBACK:
            raise Lost(f"the broker sent a packet of type {kind}, which it must not send to a client")

    def close(self, goodbye: bool = False) -> None:
        """Disconnect (with `goodbye`, a normal DISCONNECT: the broker keeps the will to itself)."""
        try:
            if goodbye:
                self.sock.sendall(packets.BYE)
        except OSError:
            pass
        finally:
            self.sock.close()
