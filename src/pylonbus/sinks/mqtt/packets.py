"""MQTT 5 packets, sans I/O: what the MQTT sink sends, made as bytes, and what a broker sends back, read from
bytes. Only what a publisher with QoS 1, a last will and a few subscriptions needs (MQTT 5.0, OASIS standard,
section 3); no socket here (`client.py` has it)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

PING = b"\xc0\x00"
BYE = b"\xe0\x00"  # DISCONNECT, normal disconnection: the broker does not publish the will

#: CONNACK properties the client acts on (3.2.2.3)
MAXIMUM_PACKET_SIZE, RECEIVE_MAXIMUM, SERVER_KEEP_ALIVE, REASON_STRING = 0x27, 0x21, 0x13, 0x1F
#: The largest packet the client takes: a retained config of another integration is a few kB.
LARGEST_INCOMING = 1 << 20

#: How each property's value is coded (2.2.2.2): 1, 2 or 4 bytes, a variable byte integer, a string or binary
#: data (2-byte length), or a string pair.
_BYTE, _TWO, _FOUR, _VARINT, _DATA, _PAIR = range(6)
_PROPERTY_TYPES = {
    **dict.fromkeys((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), _BYTE),
    **dict.fromkeys((0x13, 0x21, 0x22, 0x23), _TWO),
    **dict.fromkeys((0x02, 0x11, 0x18, 0x27), _FOUR),
    0x0B: _VARINT,
    **dict.fromkeys((0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F), _DATA),
    0x26: _PAIR,
}

#: Reason codes (2.4) as a log names them; 0x01 is also MQTT 3.1.1's "unacceptable protocol version".
REASONS = {
    0x01: "unacceptable protocol version",
    0x02: "identifier rejected",
    0x03: "server unavailable",
    0x04: "bad user name or password",
    0x05: "not authorized",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9F: "connection rate exceeded",
}
UNSUPPORTED_VERSION = (0x01, 0x84)


class MalformedPacket(ValueError):
    """What the broker sent is not an MQTT 5 packet the client can read."""


def reason_name(code: int) -> str:
    return REASONS.get(code, f"reason code 0x{code:02X}")


def varint(n: int) -> bytes:
    """A variable byte integer (1.5.5)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | 0x80 if n else digit)
        if not n:
            return bytes(out)


def _string(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connect(
    client_id: str,
    keepalive: int,
    will: tuple[str, bytes],
    user: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT with a clean start, a retained QoS 1 will, and the largest packet the client takes."""
    flags = 0x02 | 0x04 | 0x08 | 0x20 | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
    properties = bytes([MAXIMUM_PACKET_SIZE]) + struct.pack(">I", LARGEST_INCOMING)
    body = [_string(b"MQTT"), bytes([5, flags]), struct.pack(">H", keepalive), varint(len(properties)), properties]
    body += [_string(client_id.encode()), b"\x00", _string(will[0].encode()), _string(will[1])]
    body += [_string(text.encode()) for text in (user, password) if text is not None]
    return _packet(CONNECT << 4, b"".join(body))


def publish(topic: bytes, payload: bytes, packet_id: int, retain: bool) -> bytes:
    """PUBLISH with QoS 1 and no properties."""
    body_length = 5 + len(topic) + len(payload)  # topic length, packet id, properties length
    head = bytes([0x33 if retain else 0x32]) + varint(body_length)
    return b"".join((head, struct.pack(">H", len(topic)), topic, struct.pack(">HB", packet_id, 0), payload))


def publish_size(topic: str, payload: str) -> int:
    """Bytes of `publish` for these, as a broker's maximum packet size counts them."""
    body = 5 + len(topic.encode()) + len(payload.encode())
    return 1 + len(varint(body)) + body


def puback(packet_id: int) -> bytes:
    return struct.pack(">BBH", PUBACK << 4, 2, packet_id)


def subscribe(packet_id: int, topic_filter: str) -> bytes:
    """SUBSCRIBE to one filter with QoS 1."""
    return _packet(0x82, struct.pack(">HB", packet_id, 0) + _string(topic_filter.encode()) + b"\x01")


def unsubscribe(packet_id: int, topic_filter: str) -> bytes:
    return _packet(0xA2, struct.pack(">HB", packet_id, 0) + _string(topic_filter.encode()))


@dataclass(slots=True)
class ConnAck:
    reason: int
    properties: dict[int, object] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.reason == 0


@dataclass(slots=True)
class Message:
    """A PUBLISH from the broker."""

    topic: str
    payload: bytes
    retain: bool
    packet_id: int | None  # None for QoS 0, else to acknowledge


def _varint_at(data: bytes | bytearray, start: int) -> tuple[int, int]:
    """(value, where it ends) of a variable byte integer at `start`; (-1, start) when `data` ends first."""
    value = shift = 0
    for end in range(start, min(start + 4, len(data))):
        value |= (data[end] & 0x7F) << shift
        if not data[end] & 0x80:
            return value, end + 1
        shift += 7
    if len(data) >= start + 4:
        raise MalformedPacket("a length of more than four bytes")
    return -1, start


def properties(data: bytes, start: int) -> tuple[dict[int, object], int]:
    """The properties at `start` (their length first) and where they end."""
    length, at = _varint_at(data, start)
    end = at + length
    if length < 0 or end > len(data):
        raise MalformedPacket("properties longer than their packet")
    out: dict[int, object] = {}
    try:
        while at < end:
            key = data[at]
            kind = _PROPERTY_TYPES[key]
            at += 1
            value: object
            if kind == _BYTE:
                value, at = data[at], at + 1
            elif kind == _TWO:
                (value,), at = struct.unpack_from(">H", data, at), at + 2
            elif kind == _FOUR:
                (value,), at = struct.unpack_from(">I", data, at), at + 4
            elif kind == _VARINT:
                value, at = _varint_at(data, at)
            else:
                for _ in range(2 if kind == _PAIR else 1):
                    (size,) = struct.unpack_from(">H", data, at)
                    value, at = bytes(data[at + 2 : at + 2 + size]), at + 2 + size
            out[key] = value
    except (KeyError, IndexError, struct.error) as error:
        raise MalformedPacket(f"a property that cannot be read ({error})") from None
    if at != end:
        raise MalformedPacket("properties overrun their length")
    return out, end


def read_connack(body: bytes) -> ConnAck:
    if len(body) == 2:  # an MQTT 3.1.1 broker's CONNACK: session present, return code
        return ConnAck(body[1] or 0x01)
    if len(body) < 3:
        raise MalformedPacket("a CONNACK too short")
    return ConnAck(body[1], properties(body, 2)[0])


def read_puback(body: bytes) -> tuple[int, int]:
    """(packet id, reason code) of a PUBACK (the reason may be left out when it is 0: 3.4.2.1)."""
    if len(body) < 2:
        raise MalformedPacket("a PUBACK without a packet id")
    return struct.unpack_from(">H", body)[0], body[2] if len(body) > 2 else 0


def read_suback(body: bytes) -> tuple[int, list[int]]:
    """(packet id, a reason code a filter) of a SUBACK or UNSUBACK."""
    if len(body) < 3:
        raise MalformedPacket("a SUBACK without a packet id or properties")
    return struct.unpack_from(">H", body)[0], list(body[properties(body, 2)[1] :])


def read_message(flags: int, body: bytes) -> Message:
    qos = (flags >> 1) & 3
    try:
        (size,) = struct.unpack_from(">H", body)
        topic = body[2 : 2 + size].decode()
        at = 2 + size
        packet_id = None
        if qos:
            (packet_id,) = struct.unpack_from(">H", body, at)
            at += 2
    except (struct.error, UnicodeDecodeError) as error:
        raise MalformedPacket(f"a PUBLISH that cannot be read ({error})") from None
    at = properties(body, at)[1]
    return Message(topic, bytes(body[at:]), bool(flags & 1), packet_id)


def read_disconnect(body: bytes) -> tuple[int, str | None]:
    """(reason code, the broker's reason string if it gave one) of a DISCONNECT."""
    if not body:
        return 0, None
    if len(body) == 1:
        return body[0], None
    text = properties(body, 1)[0].get(REASON_STRING)
    return body[0], text.decode(errors="replace") if isinstance(text, bytes) else None


class Reader:
    """Cuts the bytes a broker sends into packets: (type, flags, body)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        buffer = self.buffer
        buffer += data
        out = []
        at = 0
        while len(buffer) - at >= 2:
            length, start = _varint_at(buffer, at + 1)
            if length < 0 or len(buffer) < start + length:
                if length > LARGEST_INCOMING:
                    raise MalformedPacket(f"a packet of {length} bytes, larger than the {LARGEST_INCOMING} asked for")
                break
            first = buffer[at]
            out.append((first >> 4, first & 0x0F, bytes(buffer[start : start + length])))
            at = start + length
        if at:
            del buffer[:at]
        return out
