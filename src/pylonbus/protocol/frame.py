"""The ASCII-hex frame `~ VER ADR CID1 CID2 LENGTH INFO CHKSUM CR`: build, parse and validate.

Every BMS family on this wire (Pylontech, Seplos, PACE, EG4, Daren, Boqiang) sends this same envelope, so it
and the header codes they share (CID1 0x46, the return codes) live here; what differs is a `Family`'s."""

from __future__ import annotations

from binascii import a2b_hex
from dataclasses import dataclass
from enum import IntEnum
from zlib import adler32

from ..errors import ChecksumError, FrameError, LengthChecksumError

SOI = 0x7E
EOI = 0x0D
HEADER_CHARS = 12  # VER ADR CID1 CID2 LENGTH as hex
MIN_FRAME = 1 + HEADER_CHARS + 4 + 1
MAX_LENID = 0xFFF
MAX_FRAME = MIN_FRAME + MAX_LENID
_HEX_DIGITS = b"0123456789ABCDEFabcdef"
# Adler-32's low half is 1 + the bytes' sum mod 65521: exact while hex digits (at most 'f', 0x66) add up to
# less than that, so a frame's checksum is one C call where `sum` iterates in Python (0.9 of 5 µs a frame).
_ADLER_SPAN = (65521 - 2) // ord("f")
CID1_BATTERY = 0x46  # the battery device type; a family may use another (EG4 and Daren: 0x4A)


class Rtn(IntEnum):
    """Return code in the CID2 position of a response."""

    NORMAL = 0x00
    VER_ERROR = 0x01
    CHKSUM_ERROR = 0x02
    LCHKSUM_ERROR = 0x03
    CID2_INVALID = 0x04
    COMMAND_FORMAT_ERROR = 0x05
    INVALID_DATA = 0x06
    ADR_ERROR = 0x90
    COMMUNICATION_ERROR = 0x91


#: What each return code means; a family whose BMS words one otherwise gives `Family` its own table.
RTN_TEXT: dict[int, str] = {
    Rtn.NORMAL: "normal",
    Rtn.VER_ERROR: "VER error",
    Rtn.CHKSUM_ERROR: "CHKSUM error",
    Rtn.LCHKSUM_ERROR: "LCHKSUM error",
    Rtn.CID2_INVALID: "CID2 invalid: the module does not know this command",
    Rtn.COMMAND_FORMAT_ERROR: "command format error",
    Rtn.INVALID_DATA: "invalid data in INFO",
    Rtn.ADR_ERROR: "ADR error: INFO names another address",
    Rtn.COMMUNICATION_ERROR: "internal communication error between master and slave packs",
}
UNKNOWN_RTN = "unknown return code"


def rtn_meaning(rtn: int) -> str:
    return RTN_TEXT.get(rtn, UNKNOWN_RTN)


def split_address(adr: int) -> tuple[int, int]:
    """(group, module) of a wire ADR; module 0 or 15 is not a battery but is returned as is.

    This is Pylontech's numbering (its inverse is `families.pylontech.codes.address`). It stays beside
    `Frame` because `Frame.group` and `Frame.module` have always reported it, whatever sent the frame."""
    return adr >> 4, (adr & 0x0F) - 1


@dataclass(slots=True)
class Frame:
    """One decoded frame. In a response `cid2` holds the return code (RTN)."""

    ver: int
    adr: int
    cid1: int
    cid2: int
    info: bytes

    @property
    def rtn(self) -> int:
        return self.cid2

    @property
    def group(self) -> int:
        return split_address(self.adr)[0]

    @property
    def module(self) -> int:
        return split_address(self.adr)[1]


def length_checksum(lenid: int) -> int:
    """LCHKSUM: the 3 nibbles of LENID summed mod 16, inverted, plus one (0 stays 0)."""
    return -((lenid & 0xF) + (lenid >> 4 & 0xF) + (lenid >> 8 & 0xF)) & 0xF


def checksum(body: bytes) -> int:
    """CHKSUM over the ASCII characters between SOI and CHKSUM: sum mod 65536, inverted, plus one."""
    return -sum(body) & 0xFFFF


def encode_frame(ver: int, adr: int, cid2: int, info: bytes = b"", cid1: int = CID1_BATTERY) -> bytes:
    """A complete frame, upper-case hex, with the checksum computed over exactly what is sent."""
    info_hex = info.hex().upper().encode()
    lenid = len(info_hex)
    if lenid > MAX_LENID:
        raise ValueError(f"INFO of {len(info)} bytes does not fit the 12-bit LENID (at most {MAX_LENID // 2})")
    body = b"%02X%02X%02X%02X%04X" % (ver, adr, cid1, cid2, length_checksum(lenid) << 12 | lenid) + info_hex
    return b"~%s%04X\r" % (body, checksum(body))


def _digit_sum(body: bytes) -> int:
    """The sum of bytes that are all hex digits (`checksum` before its inversion)."""
    if len(body) <= _ADLER_SPAN:
        return (adler32(body) & 0xFFFF) - 1
    view = memoryview(body)
    spans = range(0, len(body), _ADLER_SPAN)
    return sum([adler32(view[start : start + _ADLER_SPAN]) & 0xFFFF for start in spans]) - len(spans)


def _bad_hex_offset(data: bytes, start: int, end: int) -> int:
    for pos in range(start, end):
        if data[pos] not in _HEX_DIGITS:
            return pos
    return -1


def parse_frame(data: bytes) -> Frame:
    """Validate and decode one frame, SOI through EOI. Raises a `FrameError` subclass on any fault."""
    size = len(data)
    if size < MIN_FRAME:
        raise FrameError(
            f"frame too short: {size} bytes, a frame has at least {MIN_FRAME} (~, 12 header digits, "
            f"4 checksum digits, CR): {bytes(data[:40])!r}"
        )
    if data[0] != SOI:
        raise FrameError(f"frame starts with {bytes(data[:1])!r} at offset 0, expected SOI '~'")
    if data[-1] != EOI:
        raise FrameError(f"frame ends with {bytes(data[-1:])!r} at offset {size - 1}, expected EOI CR (0x0D)")
    if data.translate(None, _HEX_DIGITS) != b"~\r":
        pos = _bad_hex_offset(data, 1, size - 1)
        raise FrameError(f"non-hex character {bytes(data[pos : pos + 1])!r} at offset {pos}")
    # Header, INFO and CHKSUM in one conversion; an odd digit count is not whole bytes, so only the header
    # is converted and the LENGTH checks below are bound to reject the frame.
    raw = a2b_hex(data[1:13] if size & 1 else data[1:-1])
    length = raw[4] << 8 | raw[5]
    lenid = length & MAX_LENID
    # LCHKSUM makes the four nibbles of LENGTH add up to 0 mod 16: one test, no call, on the usual path.
    if (length + (length >> 4) + (length >> 8) + (length >> 12)) & 0xF:
        raise LengthChecksumError(
            f"LENGTH 0x{length:04X}: LCHKSUM nibble is 0x{length >> 12:X}, "
            f"LENID 0x{lenid:03X} needs 0x{length_checksum(lenid):X}"
        )
    if lenid & 1:
        raise FrameError(f"LENID {lenid} is odd; INFO is sent as pairs of hex digits")
    if size != MIN_FRAME + lenid:
        raise FrameError(
            f"LENGTH says {lenid} INFO digits ({MIN_FRAME + lenid} bytes in all), "
            f"but the frame has {size} bytes: truncated or run together with another frame"
        )
    given = raw[-2] << 8 | raw[-1]
    expected = -_digit_sum(data[1:-5]) & 0xFFFF
    if given != expected:
        raise ChecksumError(f"CHKSUM is {given:04X} at offset {size - 5}, contents need {expected:04X}")
    return Frame(raw[0], raw[1], raw[2], raw[3], raw[6:-2])


class FrameReader:
    """Buffers received bytes and cuts them into frames: noise before `~` is skipped, and a frame cut short
    by the next `~` is dropped so that reading resynchronises on the frame that follows."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.skipped = 0  # noise bytes thrown away since creation

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def clear(self) -> None:
        self._buffer.clear()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def next_raw(self) -> bytes | None:
        """The bytes of the next candidate frame, `~` through CR, unvalidated; None if more are needed."""
        buf = self._buffer
        start = buf.find(SOI)
        if start < 0:
            self.skipped += len(buf)
            buf.clear()
            return None
        end = buf.find(EOI, start)
        if end < 0:
            if len(buf) - start > MAX_FRAME:
                self.skipped += len(buf)
                buf.clear()
            elif start:
                self.skipped += start
                del buf[:start]
            return None
        restart = buf.rfind(SOI, start, end)  # a later '~' means what came before it was cut short
        self.skipped += restart
        raw = bytes(buf[restart : end + 1])
        del buf[: end + 1]
        return raw

    def missing(self) -> int:
        """How many more bytes the frame being received needs at least (1 if that is unclear), so that a
        reader can wait for a whole frame in one call rather than wake for every chunk."""
        buf = self._buffer
        start = buf.rfind(SOI)  # an earlier '~' without CR was cut short by this one
        if start < 0:
            return MIN_FRAME
        have = len(buf) - start
        if have < 1 + HEADER_CHARS:
            return MIN_FRAME - have
        try:
            lenid = int(buf[start + 9 : start + 13], 16) & MAX_LENID
        except ValueError:
            return 1
        return max(1, MIN_FRAME + lenid - have)

    def next_frame(self) -> Frame | None:
        """The next complete frame, None if more bytes are needed; a broken frame raises and is consumed."""
        raw = self.next_raw()
        return None if raw is None else parse_frame(raw)
