"""A reply is consumed exactly and checked against what the frame can prove, or it is an error."""

from __future__ import annotations

import pytest

from conftest import load_vectors
from pylonbus import DecodeError, ImplausibleValue, ProtocolError
from pylonbus.protocol import (
    AlarmInfo,
    AnalogData,
    Command,
    SystemAnalogData,
    decode_reply,
    encode_frame,
    infer_command,
    parse_frame,
)
from pylonbus.protocol.families.pylontech.layouts import ALARM, ANALOG, SYSTEM_ANALOG_DATA
from pylonbus.sim import Stack

VECTORS = load_vectors()
FANOUT_3 = next(v for v in VECTORS if v["info"].startswith("11030F0C") and v["checksum_valid"])
SINGLE = next(v for v in VECTORS if v["info"].startswith("11020F0D") and v["checksum_valid"] is False)
MODEL = Stack.parse("US3000C*3,US5000", seed=2, frozen=True)


def reply(info: bytes, adr: int = 0x02, cid1: int = 0x46) -> object:
    return parse_frame(encode_frame(0x20, adr, 0, info, cid1=cid1))


def frame_of(vector: dict) -> object:
    return parse_frame(vector["frame"].encode() + b"\r")


def test_a_fanout_reply_decoded_as_0x42_is_read_as_every_module() -> None:
    result = decode_reply(Command.ANALOG, frame_of(FANOUT_3))
    assert isinstance(result, SystemAnalogData) and len(result.modules) == 3
    with pytest.raises(DecodeError, match="left over"):
        decode_reply(Command.ANALOG, frame_of(FANOUT_3), fanout=False)


def test_a_single_module_reply_is_read_as_one_module_when_fanout_is_not_said() -> None:
    info = ANALOG.encode(MODEL.modules[0x03].analog())
    result = decode_reply(Command.ANALOG, reply(info, 0x03))
    assert isinstance(result, AnalogData) and result.command_value == 0x03


def test_a_reply_that_fits_neither_reading_is_an_error() -> None:
    info = ANALOG.encode(MODEL.modules[0x02].analog()) + b"\x00\x00"
    with pytest.raises(DecodeError, match="fits neither the single-module reading"):
        decode_reply(Command.ANALOG, reply(info))


@pytest.mark.parametrize(
    "command",
    [Command.ALARM, Command.SYSTEM_PARAMETERS, Command.MANUFACTURER, Command.CHARGE_DISCHARGE, Command.SERIAL_NUMBER],
)
def test_an_analog_reply_does_not_decode_as_another_command(command: Command) -> None:
    frame = reply(ANALOG.encode(MODEL.modules[0x02].analog()))
    with pytest.raises(ProtocolError):
        decode_reply(command, frame, fanout=False)
    assert infer_command(frame) == (Command.ANALOG, False)


def test_the_33_byte_alarm_of_c_series_firmware_is_named_and_nothing_longer_is_accepted() -> None:
    alarm = MODEL.modules[0x02].alarm()
    assert len(alarm.extra) == 1
    info = ALARM.encode(alarm)
    assert len(info) == 33
    assert decode_reply(Command.ALARM, reply(info)) == alarm
    with pytest.raises(DecodeError, match="the extra tail of this reply has at most 1"):
        decode_reply(Command.ALARM, reply(info + b"\x00"))


def test_cid1_must_be_that_of_a_battery() -> None:
    frame = reply(ANALOG.encode(MODEL.modules[0x02].analog()), cid1=0x47)
    with pytest.raises(DecodeError, match="CID1 is 0x47"):
        decode_reply(Command.ANALOG, frame)


@pytest.mark.parametrize("echo", [0x02, 0x12])
def test_the_address_in_the_info_may_be_the_full_adr_or_the_module_part(echo: int) -> None:
    analog = MODEL.modules[0x02].analog()
    analog.command_value = echo
    assert decode_reply(Command.ANALOG, reply(ANALOG.encode(analog), 0x12)).command_value == echo


def test_a_late_reply_naming_another_module_is_rejected() -> None:
    analog = MODEL.modules[0x03].analog()  # names ADR 0x03
    with pytest.raises(DecodeError, match="names address 0x03 in its INFO"):
        decode_reply(Command.ANALOG, reply(ANALOG.encode(analog), 0x04), fanout=False)


def test_protocol_version_reply_has_no_info() -> None:
    assert decode_reply(Command.PROTOCOL_VERSION, reply(b"")).version_text == "2.0"
    with pytest.raises(DecodeError, match="carries no INFO"):
        decode_reply(Command.PROTOCOL_VERSION, reply(b"\x02"))


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"cell_voltages": (3.3,) * 6 + (0.0,) + (3.3,) * 8}, "cell_voltages[7]", "0"),
        ({"cell_voltages": (3.3,) * 14 + (0.499,)}, "cell_voltages[15]", "0.499"),
        ({"cell_voltages": (5.001,) + (3.3,) * 14}, "cell_voltages[1]", "5.001"),
        ({"cell_voltages": (4.9,) * 15}, "cell_voltages[1]", "4.9"),  # high byte 0x13: the exact check
        ({"cell_voltages": ()}, "cell_voltages count", "0"),
        ({"cell_voltages": (3.3,) * 33}, "cell_voltages count", "33"),
        ({"temperatures": (25.0, 100.1, 25.0)}, "temperatures[2]", "100.1"),
        ({"temperatures": (25.0, -40.1)}, "temperatures[2]", "-40.1"),
        ({"temperatures": (-273.1,)}, "temperatures[1]", "-273.1"),
    ],
)
def test_physically_impossible_values_are_refused_naming_field_value_and_module(
    change: dict, field: str, value: str
) -> None:
    analog = MODEL.modules[0x03].analog()
    for name, values in change.items():
        setattr(analog, name, values)
    frame = reply(ANALOG.encode(analog), 0x03)
    if field == "cell_voltages[1]" and value == "4.9":
        assert decode_reply(Command.ANALOG, frame).cell_voltages == (4.9,) * 15  # plausible after all
        return
    with pytest.raises(ImplausibleValue) as caught:
        decode_reply(Command.ANALOG, frame)
    error = caught.value
    assert error.field == field and f"{error.value:g}" == value
    assert f"implausible {field} = {value}" in str(error) and "module 2 (ADR 0x03)" in str(error)


@pytest.mark.parametrize(("cells", "ok"), [((0.5, 5.0), True), ((0.499, 3.3), False), ((3.3, 5.001), False)])
def test_the_plausible_bounds_are_inclusive(cells: tuple[float, ...], ok: bool) -> None:
    analog = MODEL.modules[0x02].analog()
    analog.cell_voltages = cells
    analog.temperatures = (-40.0, 100.0)
    frame = reply(ANALOG.encode(analog))
    if ok:
        assert decode_reply(Command.ANALOG, frame).temperatures == (-40.0, 100.0)
    else:
        with pytest.raises(ImplausibleValue):
            decode_reply(Command.ANALOG, frame)


def test_an_implausible_pack_of_a_fanout_reply_is_named_by_its_place() -> None:
    packs = [m.pack() for m in MODEL.group_modules(0)]
    packs[2].temperatures = (25.0, 180.0)
    info = SYSTEM_ANALOG_DATA.encode(SystemAnalogData(0x11, tuple(packs)))
    with pytest.raises(ImplausibleValue, match="in pack 3 of the fan-out reply from the master module 1"):
        decode_reply(Command.ANALOG, reply(info), fanout=True)


def test_a_fanout_reply_of_no_module_is_implausible() -> None:
    with pytest.raises(ImplausibleValue, match="modules count = 0"):
        decode_reply(Command.ANALOG, reply(b"\x11\x00"), fanout=True)


def test_an_alarm_reply_with_no_cells_is_implausible() -> None:
    alarm = MODEL.modules[0x02].alarm()
    alarm.cell_states = ()
    with pytest.raises(ImplausibleValue, match="cell_states count"):
        decode_reply(Command.ALARM, reply(ALARM.encode(alarm)))


def test_every_captured_reply_is_consumed_exactly() -> None:
    for vector in VECTORS:
        if vector["direction"] == "response" and vector["checksum_valid"]:
            frame = frame_of(vector)
            result = decode_reply(Command(int(vector["response_to_cid2"], 16)), frame)
            assert not isinstance(result, AlarmInfo) or result.extra == b""
    assert SINGLE["checksum_valid"] is False
