"""The frame layer: checksums, LENGTH, requests byte for byte, and every captured frame."""

from __future__ import annotations

import pytest

from pylonbus import ChecksumError, FrameError, LengthChecksumError, ProtocolError, ResponseError
from pylonbus.protocol import (
    Command,
    FrameReader,
    address,
    checksum,
    decode_reply,
    encode_frame,
    length_checksum,
    parse_frame,
    request,
    split_address,
)


def test_checksum_is_the_inverted_sum_plus_one() -> None:
    assert checksum(bytes([0xFF, 0xFF, 0xFF, 0x91])) == 0xFC72  # the spec's sum 0x038E
    assert checksum(b"200246000000") == 0xFDB2


@pytest.mark.parametrize(
    ("lenid", "length"),
    [
        (0, 0x0000),
        (2, 0xE002),
        (4, 0xC004),
        (0x12, 0xD012),
        (0x06E, 0xC06E),
        (0x07A, 0xF07A),
        (0x032, 0xB032),
        (0x040, 0xC040),
        (0x042, 0xA042),
        (0x022, 0xC022),
        (0x014, 0xB014),
        (0x00C, 0x400C),
        (0x062, 0x8062),
    ],
)
def test_length_field_examples(lenid: int, length: int) -> None:
    assert length_checksum(lenid) << 12 | lenid == length


@pytest.mark.parametrize("lenid", [0x088, 0x0A6, 0x1D2])
def test_length_whose_nibbles_sum_to_a_multiple_of_16_is_accepted(lenid: int) -> None:
    # The C program rejects these valid replies; their LCHKSUM is 0.
    assert length_checksum(lenid) == 0
    frame = encode_frame(0x20, 0x02, 0x00, bytes(lenid // 2))
    assert frame[9:13] == b"%04X" % lenid
    assert parse_frame(frame).info == bytes(lenid // 2)


@pytest.mark.parametrize(
    ("command", "module", "expected"),
    [
        (Command.ANALOG, 1, "~20024642E00202FD33"),
        (Command.ANALOG, 2, "~20034642E00203FD31"),
        (Command.ALARM, 1, "~20024644E00202FD31"),
        (Command.ALARM, 2, "~20034644E00203FD2F"),
        (Command.SYSTEM_PARAMETERS, 1, "~200246470000FDA7"),
        (Command.SYSTEM_PARAMETERS, 2, "~200346470000FDA6"),
        (Command.MANUFACTURER, 1, "~200246510000FDAC"),
        (Command.MANUFACTURER, 2, "~200346510000FDAB"),
        (Command.CHARGE_DISCHARGE, 1, "~20024692E00202FD2E"),
        (Command.CHARGE_DISCHARGE, 2, "~20034692E00203FD2C"),
        (Command.SERIAL_NUMBER, 1, "~20024693E00202FD2D"),
        (Command.SERIAL_NUMBER, 2, "~20034693E00203FD2B"),
        (Command.PROTOCOL_VERSION, 1, "~2002464F0000FD98"),
        # Module 9: upper-case INFO and the checksum over what is sent (the C program sends ...FCF5).
        (Command.ANALOG, 9, "~200A4642E0020AFD15"),
    ],
)
def test_requests_match_the_c_program_corrected(command: Command, module: int, expected: str) -> None:
    assert request(command, 0, module) == expected.encode() + b"\r"


def test_request_in_group_1_names_the_full_address_in_info() -> None:
    frame = parse_frame(request(Command.ANALOG, 1, 1))
    assert frame.adr == 0x12 and frame.info == b"\x12"


def test_fanout_request_goes_to_the_master_with_info_ff() -> None:
    assert request(Command.ANALOG, 0, fanout=True) == b"~20024642E002FFFD09\r"


def test_addresses_round_trip() -> None:
    for group in range(16):
        for module in range(1, 15):
            assert split_address(address(group, module)) == (group, module)
    with pytest.raises(ValueError, match="module 15"):
        address(0, 15)


def test_every_captured_frame_parses_and_the_bad_spec_example_fails(vectors) -> None:
    for vector in vectors:
        raw = vector["frame"].encode() + b"\r"
        if not vector["checksum_valid"]:
            with pytest.raises(ChecksumError, match="E1A2"):
                parse_frame(raw)
            continue
        frame = parse_frame(raw)
        assert f"0x{frame.ver:02X}" == vector["ver"]
        assert f"0x{frame.adr:02X}" == vector["adr"]
        assert frame.info.hex().upper() == vector["info"].upper()


@pytest.fixture
def vectors():
    from conftest import load_vectors

    return load_vectors()


def test_lower_case_hex_is_accepted_on_receive() -> None:
    body = b"20024600b014026ef05aa0022bfdd5c0"
    frame = b"~%s%04x\r" % (body, checksum(body))
    reply = decode_reply(Command.CHARGE_DISCHARGE, parse_frame(frame))
    assert reply.discharge_current_limit == -55.5


@pytest.mark.parametrize(
    ("raw", "error", "text"),
    [
        (b"~2002460000FDB2\r", FrameError, "too short"),
        (b"!200246000000FDB2\r", FrameError, "SOI"),
        (b"~200246000000FDB2\n", FrameError, "EOI"),
        (b"~2002460G0000FDB2\r", FrameError, "offset 8"),
        (b"~200246 00000FDB2\r", FrameError, "non-hex"),
        (b"~20024600E002FDB2\r", FrameError, "LENGTH says 2"),
        (b"~20024600F002FDB2\r", LengthChecksumError, "LCHKSUM"),
        (b"~200246000000FDB3\r", ChecksumError, "FDB2"),
    ],
)
def test_broken_frames_say_what_is_wrong(raw: bytes, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        parse_frame(raw)


def test_error_reply_raises_with_the_rtn_meaning() -> None:
    with pytest.raises(ResponseError, match="CID2 invalid") as caught:
        decode_reply(Command.ANALOG, parse_frame(b"~200246040000FDAE\r"))
    assert caught.value.rtn == 4


@pytest.mark.parametrize(("rtn", "text"), [(0x90, "ADR error"), (0x91, "internal communication error")])
def test_rtn_0x90_and_0x91_have_their_spec_meaning(rtn: int, text: str) -> None:
    with pytest.raises(ResponseError, match=text):
        decode_reply(Command.ANALOG, parse_frame(encode_frame(0x20, 2, rtn)))


def test_reader_skips_noise_and_resynchronises_after_a_cut_frame() -> None:
    reader = FrameReader()
    good = encode_frame(0x20, 0x02, 0x00)
    reader.feed(b"\x00\xffnoise" + good[:9] + b"~" + good[1:])
    assert reader.next_frame() is not None
    assert reader.skipped == 7 + 9
    reader.feed(good[:5])
    assert reader.next_frame() is None
    reader.feed(good[5:])
    assert reader.next_frame() == parse_frame(good)


def test_reader_knows_how_many_bytes_the_frame_being_received_still_needs() -> None:
    reader = FrameReader()
    frame = encode_frame(0x20, 0x02, 0x00, bytes(30))
    assert reader.missing() == 18  # nothing yet: a frame has at least 18 bytes
    reader.feed(b"noise" + frame[:5])
    assert reader.missing() == 13  # the header is not in yet
    reader.feed(frame[5:20])
    assert reader.missing() == len(frame) - 20
    reader.feed(b"~20024")  # a new frame cuts the old one short: its needs count
    assert reader.missing() == 12
    reader.clear()
    reader.feed(b"~200246000XYZ")
    assert reader.missing() == 1  # a garbled LENGTH gives no hint


def test_reader_raises_on_a_broken_frame_then_reads_the_next() -> None:
    reader = FrameReader()
    good = encode_frame(0x20, 0x02, 0x00)
    reader.feed(good[:-3] + b"00\r" + good)
    with pytest.raises(ProtocolError):
        reader.next_frame()
    assert reader.next_frame() == parse_frame(good)
