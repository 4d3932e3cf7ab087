"""The simulator answers like hardware: replies, return codes, silence, faults, pacing, pty and TCP."""

from __future__ import annotations

import time

import pytest
import serial

from pylonbus.link.urls import register_url_handler
from pylonbus.protocol import (
    AlarmInfo,
    AnalogData,
    Command,
    Rtn,
    decode_reply,
    encode_frame,
    parse_frame,
    request,
)
from pylonbus.protocol.families.pylontech.layouts import REPLY_LAYOUTS
from pylonbus.sim import Faults, Responder, Stack
from pylonbus.sim.bus import Bus


def responder(spec: str = "US3000C*2;UP2500", **faults: float) -> Responder:
    return Responder(Stack.parse(spec, seed=1, frozen=True), Faults(**faults), seed=1)


def ask(sim: Responder, frame: bytes) -> bytes | None:
    return sim.handle(frame, 0.0)


def test_every_read_command_gets_a_reply_that_decodes_to_the_model() -> None:
    sim = responder()
    module = sim.stack.modules[0x03]
    expected = {
        Command.ANALOG: module.analog(),
        Command.ALARM: module.alarm(),
        Command.SYSTEM_PARAMETERS: module.parameters(),
        Command.MANUFACTURER: module.manufacturer(),
        Command.CHARGE_DISCHARGE: module.charge_discharge(),
        Command.SERIAL_NUMBER: module.serial_number(),
        Command.FIRMWARE: module.firmware(),
    }
    for command, value in expected.items():
        reply = ask(sim, request(command, 0, 2))
        assert reply is not None
        assert decode_reply(command, parse_frame(reply)) == value
    assert decode_reply(Command.PROTOCOL_VERSION, parse_frame(ask(sim, request(Command.PROTOCOL_VERSION, 0, 2))))


def test_fanout_returns_every_pack_of_the_group() -> None:
    sim = responder("US3000C*3")
    reply = decode_reply(Command.ANALOG, parse_frame(ask(sim, request(Command.ANALOG, fanout=True))), fanout=True)
    assert [p.voltage for p in reply.modules] == [m.pack().voltage for m in sim.stack.modules.values()]
    alarm = decode_reply(Command.ALARM, parse_frame(ask(sim, request(Command.ALARM, fanout=True))), fanout=True)
    assert len(alarm.modules) == 3


@pytest.mark.parametrize(
    ("frame", "rtn"),
    [
        (encode_frame(0x20, 0x02, 0x99), Rtn.CID2_INVALID),
        (encode_frame(0x20, 0x02, Command.ANALOG, b"\x05"), Rtn.ADR_ERROR),
        (encode_frame(0x20, 0x02, Command.ANALOG), Rtn.COMMAND_FORMAT_ERROR),
        (request(Command.ANALOG, 0, 1)[:-5] + b"0000\r", Rtn.CHKSUM_ERROR),
    ],
)
def test_bad_requests_get_the_return_code_hardware_gives(frame: bytes, rtn: Rtn) -> None:
    reply = ask(responder(), frame)
    assert reply is not None and parse_frame(reply).rtn == rtn


def test_absent_addresses_stay_silent() -> None:
    sim = responder()
    assert ask(sim, request(Command.ANALOG, 0, 5)) is None
    assert ask(sim, request(Command.ANALOG, 2, 1)) is None
    assert ask(sim, b"~garbage\r") is None


def test_c_style_info_with_the_module_part_only_is_accepted_in_group_1() -> None:
    reply = ask(responder(), encode_frame(0x20, 0x12, Command.ANALOG, b"\x02"))
    assert isinstance(decode_reply(Command.ANALOG, parse_frame(reply)), AnalogData)


@pytest.mark.parametrize(
    ("model", "cells", "temps", "udi", "alarm_bytes"),
    [
        ("US2000B", 15, 5, 2, 32),
        ("US2000C", 15, 5, 2, 33),
        ("US3000C", 15, 5, 4, 33),
        ("US5000", 16, 6, 4, 35),
        ("UP2500", 8, 5, 4, 25),
    ],
)
def test_presets(model: str, cells: int, temps: int, udi: int, alarm_bytes: int) -> None:
    sim = responder(model)
    analog = decode_reply(Command.ANALOG, parse_frame(ask(sim, request(Command.ANALOG))))
    assert (len(analog.cell_voltages), len(analog.temperatures), analog.user_defined_items) == (cells, temps, udi)
    assert analog.voltage == pytest.approx(sum(analog.cell_voltages), abs=1e-6)
    alarm_frame = parse_frame(ask(sim, request(Command.ALARM)))
    assert len(alarm_frame.info) == alarm_bytes
    assert isinstance(decode_reply(Command.ALARM, alarm_frame), AlarmInfo)


def test_values_move_over_time_and_are_deterministic_for_a_seed() -> None:
    a, b = Stack.parse("US3000C*2", seed=5), Stack.parse("US3000C*2", seed=5)
    before = a.modules[2].pack()
    for stack in (a, b):
        stack.advance(1800.0)
    after = a.modules[2].pack()
    assert after != before
    assert after == b.modules[2].pack()
    assert Stack.parse("US3000C*2", seed=6).modules[2].pack() != before


def test_frozen_stack_does_not_move() -> None:
    stack = Stack.parse("US3000C", seed=5, frozen=True)
    before = stack.modules[2].pack()
    stack.advance(99999.0)
    assert stack.modules[2].pack() == before


def test_limits_crossed_raise_alarm_flags() -> None:
    stack = Stack.parse("US2000B", seed=1, frozen=True)
    module = stack.modules[2]
    module.soc, module.current = 1.0, 200.0
    module.temperatures[0] = 55.0
    alarm = module.alarm()
    assert alarm.temperature_states[0].name == "ABOVE_UPPER_LIMIT"
    assert "FULLY_CHARGED" in alarm.status3.name
    assert "CHARGE_OVER_TEMPERATURE" in alarm.alarms
    assert "cell 1 ABOVE_UPPER_LIMIT" in alarm.alarms
    assert "charge current ABOVE_UPPER_LIMIT" in alarm.alarms


def test_faults_are_injected_at_their_rates() -> None:
    silent = responder(no_reply=1.0)
    assert ask(silent, request(Command.ANALOG)) is None
    noisy = responder(noise=1.0)
    reply = ask(noisy, request(Command.ANALOG))
    assert reply is not None and not reply.startswith(b"~20") and b"~20" in reply
    cut = responder(truncate=1.0)
    assert len(ask(cut, request(Command.ANALOG))) < len(ask(responder(), request(Command.ANALOG)))


def test_layouts_reproduce_every_reply_layout() -> None:
    assert set(REPLY_LAYOUTS) >= {Command.ANALOG, Command.ALARM, Command.FIRMWARE, Command.SYSTEM_ANALOG}


def test_a_reply_starts_once_the_request_has_crossed_the_wire() -> None:
    bus = Bus(responder(), baud=9600)
    frame = request(Command.ANALOG)
    wire = len(frame) * 10 / 9600
    [(start, reply)] = bus.receive(frame[:10], 100.0) + bus.receive(frame[10:], 100.001)
    assert start == pytest.approx(100.0 + wire)  # a pty delivers it at once: the wire time is added
    assert parse_frame(reply).adr == 0x02
    assert bus.receive(frame[:1], 200.0) == []
    [(start, _)] = bus.receive(frame[1:], 200.0 + wire)  # it came at the baud rate: nothing is added
    assert start == pytest.approx(200.0 + wire)


def test_sim_url_paces_replies_at_the_baud_rate() -> None:
    register_url_handler()
    port = serial.serial_for_url("sim://?stack=US3000C&frozen=1", baudrate=9600, timeout=2)
    start = time.monotonic()
    port.write(request(Command.ANALOG))
    reply = port.read_until(b"\r")
    elapsed = time.monotonic() - start
    wire = (len(request(Command.ANALOG)) + len(reply)) * 10 / 9600
    assert parse_frame(reply)
    assert elapsed >= wire * 0.95


@pytest.mark.parametrize("where", ["pty", "tcp"])
def test_simulator_serves_a_real_port(sim_process, where: str) -> None:
    args = ["--pty"] if where == "pty" else ["--tcp", "127.0.0.1:0"]
    sim = sim_process(*args, "--stack", "US5000*2", "--frozen")
    port = serial.serial_for_url(sim.port, baudrate=115200, timeout=2)
    try:
        for module in (1, 2):
            port.write(request(Command.ANALOG, 0, module))
            reply = decode_reply(Command.ANALOG, parse_frame(port.read_until(b"\r")))
            assert len(reply.cell_voltages) == 16
            assert reply.command_value == module + 1
    finally:
        port.close()


def test_pty_link_is_made_and_removed(sim_process, tmp_path) -> None:
    link = tmp_path / "ttyUSB_pylontech"
    sim = sim_process("--pty", "--link", str(link), "--modules", "1")
    assert sim.port == str(link) and link.is_symlink()
    sim.stop()
    assert not link.exists()
