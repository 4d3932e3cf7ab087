"""Property tests: every layout of every family round-trips byte for byte, and no input makes a parse raise
anything but ProtocolError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pylonbus import ProtocolError
from pylonbus.protocol import encode_frame, parse_frame
from pylonbus.protocol.families import family, names, recognise
from pylonbus.protocol.families.pylontech.layouts import CHARGE_DISCHARGE_SETTING
from pylonbus.protocol.families.seplos import INTRA_PACK
from pylonbus.protocol.layout import Array, Capacities, Int, Layout, Repeat, Rest, Tail, Text

FAMILIES = [family(name) for name in names()]
LAYOUTS = {f"{f.name}.{c.name}": layout for f in FAMILIES for c, layout in f.replies.items()}
LAYOUTS |= {f"{f.name}.{c.name}_FANOUT": layout for f in FAMILIES for c, layout in f.fanouts.items()}
LAYOUTS["pylontech.CHARGE_DISCHARGE_SETTING"] = CHARGE_DISCHARGE_SETTING
LAYOUTS["seplos.INTRA_PACK"] = INTRA_PACK


def wire_int(item: Int) -> st.SearchStrategy[bytes]:
    """The bytes of one integer, within its plausible range when it has one."""
    bounds = item.raw_bounds()
    if bounds is None:
        return st.binary(min_size=item.size, max_size=item.size)
    return st.integers(*bounds).map(lambda raw: raw.to_bytes(item.size, "big", signed=item.signed))


@st.composite
def wire_info(draw: st.DrawFn, layout: Layout) -> bytes:
    """INFO bytes as a module could send them for `layout`, built element by element."""
    out = bytearray()
    tails = {e.key: e.sizes for e in layout.elements if isinstance(e, Tail)}
    keys: dict[str, int] = {}
    for element in layout.elements:
        match element:
            case Int(name=name) if name in tails:
                keys[name] = draw(st.sampled_from(sorted(tails[name])))
                out += element.to_bytes(keys[name])
            case Int():
                out += draw(wire_int(element))
            case Array(item=item, count=count, counts=counts, more=more):
                low, high = counts or (more, 16)
                n = count if count is not None else draw(st.integers(low, max(low, min(high, 16))))
                if count is None:
                    out.append(n - more)
                out += b"".join(draw(st.lists(wire_int(item), min_size=n, max_size=n)))
            case Text(size=size, pad=pad):
                text = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", max_size=size or 20)).encode()
                out += text + pad * ((size or len(text)) - len(text))
            case Tail(key=key, sizes=sizes):
                out += draw(st.binary(min_size=sizes[keys[key]], max_size=sizes[keys[key]]))
            case Repeat(layout=inner):
                blocks = draw(st.lists(wire_info(inner), min_size=1, max_size=4))
                out.append(len(blocks))
                for block in blocks:
                    out += block
            case Rest(at_most=at_most):
                out += draw(st.binary(max_size=3 if at_most is None else at_most))
            case Capacities():
                udi = draw(st.sampled_from([2, 4]))
                cycles = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
                if udi == 4:
                    out += b"\xff\xff\x04\xff\xff" + cycles + draw(st.binary(min_size=6, max_size=6))
                else:
                    out += draw(st.binary(min_size=2, max_size=2)) + b"\x02"
                    out += draw(st.binary(min_size=2, max_size=2)) + cycles
    return bytes(out)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_layout_round_trips_byte_for_byte(name: str, data: st.DataObject) -> None:
    layout = LAYOUTS[name]
    info = data.draw(wire_info(layout))
    result = layout.decode(info)
    assert layout.encode(result) == info
    assert layout.decode(layout.encode(result)) == result


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_protocol_errors(data: bytes) -> None:
    for raw in (data, b"~" + data, b"~" + data + b"\r"):
        try:
            frame = parse_frame(raw)
        except ProtocolError:
            continue
        check_every_decoder(frame.info)


def check_every_decoder(info: bytes) -> None:
    """Every family reads `info` as each of its replies, or refuses it with a ProtocolError."""
    for described in FAMILIES:
        frame = parse_frame(encode_frame(described.ver, 0x02, 0x00, info, described.cid1))
        described.infer_command(frame)
        recognise(frame)
        for command in described.replies:
            for fanout in (False, True):
                with contextlib.suppress(ProtocolError, ValueError):  # ValueError: no fan-out form
                    described.decode(command, frame, fanout=fanout)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_info_only_raises_protocol_errors(info: bytes) -> None:
    check_every_decoder(info)


VALID = b"~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D220D220D21050BCD0BAF0BAF0BAF0BAF0015C4E88AAC02C350004FE594\r"  # noqa: E501


@settings(max_examples=500, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255), st.integers(0, len(VALID)))
def test_mutated_frames_are_rejected_or_decoded(position: int, value: int, cut: int) -> None:
    mutated = VALID[:position] + bytes([value]) + VALID[position + 1 :]
    for raw in (mutated, mutated[:cut], mutated[:cut] + b"\r"):
        try:
            frame = parse_frame(raw)
        except ProtocolError:
            continue
        check_every_decoder(frame.info)
