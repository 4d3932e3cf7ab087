"""The MQTT 5 packets the sink sends and reads, byte by byte against the standard (MQTT 5.0, OASIS): the sink's
talk with a real broker is in test_mqtt.py."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pylonbus.sinks.mqtt import packets


@pytest.mark.parametrize(
    "value, coded",
    [
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (16_383, "ff7f"),
        (16_384, "808001"),
        (2_097_151, "ffff7f"),
        (2_097_152, "80808001"),
        (268_435_455, "ffffff7f"),
    ],
)
def test_variable_byte_integers_are_those_of_the_standard(value: int, coded: str) -> None:
    """The table of 1.5.5."""
    assert packets.varint(value).hex() == coded
    assert packets.Reader().feed(bytes([0x30]) + bytes.fromhex(coded) + bytes(value))[0][2] == bytes(value)


def test_a_length_of_five_bytes_is_malformed() -> None:
    with pytest.raises(packets.MalformedPacket, match="more than four bytes"):
        packets.Reader().feed(bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]))


def test_a_packet_larger_than_the_client_asked_for_is_refused_before_it_is_read() -> None:
    with pytest.raises(packets.MalformedPacket, match="larger than"):
        packets.Reader().feed(bytes([0x30]) + packets.varint(packets.LARGEST_INCOMING + 1) + b"x")


def strings(data: bytes) -> list[bytes]:
    """Strings and binary data one after another, each after its 2-byte length."""
    out = []
    while data:
        (size,) = struct.unpack(">H", data[:2])
        out.append(data[2 : 2 + size])
        data = data[2 + size :]
    return out


def test_connect_is_laid_out_as_the_standard_says() -> None:
    hello = packets.connect("pylonbus-pi-7", 30, ("pylontech/status", b"offline"), "pylon", "secret")
    kind, flags, body = packets.Reader().feed(hello)[0]
    assert (kind, flags) == (packets.CONNECT, 0)
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0b1110_1110  # user name, password, will retain, will QoS 1, will flag, clean start
    assert body[8:10] == b"\x00\x1e"  # keep-alive 30 s
    assert body[10:16] == b"\x05\x27" + struct.pack(">I", packets.LARGEST_INCOMING)
    assert strings(body[16:31]) == [b"pylonbus-pi-7"] and body[31] == 0  # no will properties
    assert strings(body[32:]) == [b"pylontech/status", b"offline", b"pylon", b"secret"]


def test_connect_without_a_user_sets_neither_flag() -> None:
    body = packets.Reader().feed(packets.connect("c", 30, ("s", b"offline")))[0][2]
    assert body[7] == 0b0010_1110


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))


LONG = st.integers(16_000, 16_800).map(lambda n: "9" * n)  # lengths that take a third byte to say


@given(TEXT.filter(bool), TEXT | LONG, st.integers(1, 65535), st.booleans())
def test_publish_reads_back_and_its_size_is_known_before_it_is_made(
    topic: str, payload: str, packet_id: int, retain: bool
) -> None:
    data = packets.publish(topic.encode(), payload.encode(), packet_id, retain)
    assert packets.publish_size(topic, payload) == len(data)
    [(kind, flags, body)] = packets.Reader().feed(data)
    assert kind == packets.PUBLISH and flags == (0b0011 if retain else 0b0010)
    message = packets.read_message(flags, body)
    assert (message.topic, message.packet_id, message.retain) == (topic, packet_id, retain)
    assert message.payload == payload.encode()


def test_packets_fed_a_byte_at_a_time_come_out_whole_and_in_order() -> None:
    stream = b"".join(
        [packets.puback(7), packets.publish(b"a/b", b"x" * 300, 9, True), packets.PING, packets.puback(65535)]
    )
    reader = packets.Reader()
    out = [packet for byte in stream for packet in reader.feed(bytes([byte]))]
    assert [kind for kind, _, _ in out] == [packets.PUBACK, packets.PUBLISH, packets.PINGREQ, packets.PUBACK]
    assert packets.read_puback(out[0][2]) == (7, 0) and packets.read_puback(out[3][2]) == (65535, 0)
    assert reader.feed(stream) == out


def test_a_connack_with_properties() -> None:
    props = (
        bytes([packets.RECEIVE_MAXIMUM])
        + struct.pack(">H", 20)
        + bytes([packets.MAXIMUM_PACKET_SIZE])
        + struct.pack(">I", 600)
        + b"\x26\x00\x01k\x00\x01v"  # a user property (a string pair)
        + b"\x12\x00\x03abc"  # assigned client identifier
        + b"\x0b\x80\x01"  # subscription identifier, a variable byte integer
    )
    ack = packets.read_connack(b"\x00\x00" + packets.varint(len(props)) + props)
    assert ack.accepted
    assert ack.properties[packets.RECEIVE_MAXIMUM] == 20 and ack.properties[packets.MAXIMUM_PACKET_SIZE] == 600
    assert ack.properties[0x0B] == 128


def test_what_an_mqtt_3_broker_answers_is_an_unsupported_version() -> None:
    ack = packets.read_connack(b"\x00\x01")
    assert not ack.accepted and ack.reason in packets.UNSUPPORTED_VERSION
    assert packets.reason_name(ack.reason) == "unacceptable protocol version"


def test_a_refusal_is_named() -> None:
    ack = packets.read_connack(b"\x00\x86\x00")
    assert packets.reason_name(ack.reason) == "bad user name or password"
    assert packets.reason_name(0xFE) == "reason code 0xFE"


@pytest.mark.parametrize(
    "props, problem",
    [
        (b"\x05\x27\x00\x00", "properties longer than their packet"),
        (b"\x01\x7f", "a property that cannot be read"),
        (b"\x02\x21\x00\x14", "properties overrun their length"),
    ],
)
def test_properties_that_cannot_be_read_are_malformed(props: bytes, problem: str) -> None:
    with pytest.raises(packets.MalformedPacket, match=problem):
        packets.read_connack(b"\x00\x00" + props)


def test_a_message_from_the_broker_with_properties_and_qos_0() -> None:
    body = b"\x00\x14homeassistant/status" + b"\x02\x01\x01" + b"online"  # payload format indicator: UTF-8
    message = packets.read_message(0b0001, body)
    assert message == packets.Message("homeassistant/status", b"online", True, None)


def test_suback_and_disconnect() -> None:
    assert packets.read_suback(b"\x00\x05\x00\x01") == (5, [1])
    assert packets.read_suback(b"\x00\x06\x00\x87") == (6, [0x87])
    assert packets.read_disconnect(b"") == (0, None)
    assert packets.read_disconnect(b"\x8e\x07\x1f\x00\x04gone") == (0x8E, "gone")
    assert packets.read_puback(b"\x00\x09\x87\x00") == (9, 0x87)
