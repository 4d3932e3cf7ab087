"""The families are found by listing `protocol/families/`, and each one's requests and replies work from its
description alone: what the simulator's responder of a family encodes, the family decodes back."""

from __future__ import annotations

import pytest

from pylonbus import protocol
from pylonbus.protocol.families import DEFAULT, family, names
from pylonbus.protocol.frame import Rtn, parse_frame
from pylonbus.sim import responder_class


def test_the_registry_finds_pylontech_as_the_default() -> None:
    assert DEFAULT in names()
    pylontech = family()
    assert pylontech is family("pylontech")
    assert (pylontech.name, pylontech.ver, pylontech.cid1) == ("pylontech", 0x20, 0x46)
    # The names pylonbus.protocol has always exported are the default family's.
    assert protocol.request(protocol.Command.ANALOG, 1, 3) == pylontech.request(protocol.Command.ANALOG, 1, 3)


def test_an_unknown_family_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown BMS family 'nosuch'; known: .*pylontech"):
        family("nosuch")
    with pytest.raises(ValueError, match="does not play the 'nosuch' family"):
        responder_class("nosuch")


@pytest.mark.parametrize("name", names())
def test_every_read_round_trips_through_the_simulator(name: str) -> None:
    described = family(name)
    played = responder_class(name)
    sim = played(played.parse_stack(f"{played.default_model}*2", seed=4, frozen=True), seed=4)
    reads = [(command, False) for command in described.replies if command not in described.writes]
    reads += [(command, True) for command in described.fanouts]
    answered = 0
    for command, fanout in reads:
        reply = sim.handle(described.request(command, 0, 1, fanout=fanout), 0.0)
        assert reply is not None, command.name
        frame = parse_frame(reply)
        if frame.rtn == Rtn.CID2_INVALID:
            continue  # a command the simulator does not play (Pylontech's 0x61)
        answered += 1
        assert (frame.ver, frame.cid1, frame.rtn) == (described.ver, described.cid1, 0)
        result = described.decode(command, frame, fanout=fanout)
        layout = (described.fanouts if fanout else described.replies)[command]
        assert type(result) is layout.cls
        assert layout.encode(result) == frame.info  # the decoder reads what the encoder wrote, nothing lost
    assert answered
