"""A layout's reader of one shape (protocol/shaped.py) reads every INFO as its generic reader does: the same
result and offset, or the same error, whatever bytes were changed, cut or added after the shape was learnt."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pylonbus import ProtocolError
from pylonbus.protocol.layout import Layout, Repeat
from pylonbus.protocol.shaped import shape_of
from test_properties import LAYOUTS, wire_info

# The blocks of the fan-out replies have shaped readers of their own; the replies around them do not.
BLOCKS = {
    f"{name}.{element.name}": element.layout
    for name, layout in LAYOUTS.items()
    for element in layout.elements
    if isinstance(element, Repeat)
}
ALL = LAYOUTS | BLOCKS


def outcome(read: Any, info: bytes) -> tuple[Any, ...]:
    try:
        result, end = read(info, 0)
    except ProtocolError as error:
        return type(error), str(error), getattr(error, "pack", None)
    return result, end


@pytest.mark.parametrize("name", sorted(ALL))
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_a_shaped_reader_reads_as_the_generic_reader(name: str, data: st.DataObject) -> None:
    layout: Layout[Any] = ALL[name]
    info = data.draw(wire_info(layout))
    result, _ = layout.read(info, 0)  # the shape of this INFO is learnt here
    if shape_of(layout, result) is not None:
        assert layout.read is not layout.generic
    changed = bytearray(info)
    for _ in range(data.draw(st.integers(0, 3)) if info else 0):
        changed[data.draw(st.integers(0, len(info) - 1))] = data.draw(st.integers(0, 255))
    changed = changed[: len(changed) - data.draw(st.integers(0, 2))] + data.draw(st.binary(max_size=2))
    assert outcome(layout.read, bytes(changed)) == outcome(layout.generic, bytes(changed))
