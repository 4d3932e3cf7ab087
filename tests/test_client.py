"""The stack client: retries, recovery and errors a user can act on."""

from __future__ import annotations

import logging
import os
import termios

import pytest

from pylonbus import Link, NoReplyError, PortBusyError, PortError, ResponseError, Stack, connect, read_analog
from pylonbus.protocol import ChargeDischargeSetting, Command


def test_connect_scans_and_reads() -> None:
    with connect("sim://?stack=US3000C*3&seed=4&frozen=1") as stack:
        assert stack.modules == [1, 2, 3]
        assert stack.analog(2).total_capacity == 74.0
        assert len(stack.analog_all().modules) == 3
    assert set(read_analog("sim://?stack=US2000B*2&frozen=1")) == {1, 2}


def test_scan_finds_modules_after_a_gap() -> None:
    assert Stack(Link("sim://?stack=US3000C,-,-,US3000C&frozen=1")).scan() == [1, 4]


@pytest.mark.parametrize("fault", ["no_reply=0.4", "corrupt=0.4", "truncate=0.4"])
def test_retries_ride_out_faults(fault: str) -> None:
    stack = Stack(Link(f"sim://?stack=US3000C&frozen=1&seed=3&{fault}"))
    for _ in range(10):
        assert stack.analog(1).command_value == 2
    assert stack.link.errors > 0


def test_noise_before_the_reply_is_skipped_without_a_retry() -> None:
    stack = Stack(Link("sim://?stack=US3000C&frozen=1&seed=3&noise=1"))
    for _ in range(5):
        assert stack.analog(1).command_value == 2
    assert stack.link.errors == 0


def test_unknown_command_raises_the_return_code_without_retrying() -> None:
    link = Link("sim://?stack=US3000C&frozen=1")
    with pytest.raises(ResponseError, match="CID2 invalid") as caught:
        Stack(link).system_analog()
    assert caught.value.rtn == 0x04
    assert link.errors == 0


def test_wrong_group_finds_nothing() -> None:
    assert Stack(Link("sim://?stack=US3000C*2&frozen=1"), group=3).scan() == []


def test_writes_need_an_explicit_permission() -> None:
    stack = Stack(Link("sim://?stack=US3000C*2&frozen=1"))
    with pytest.raises(PermissionError):
        stack.turn_off(2)
    setting = ChargeDischargeSetting(3, 52.0, 47.0, 20.0, -20.0)
    stack.set_charge_discharge(2, setting, allow_write=True)
    assert stack.charge_discharge(2).charge_current_limit == 20.0
    stack.turn_off(2, allow_write=True)
    with pytest.raises(NoReplyError):
        stack.analog(2)


def test_fixed_timeout_overrides_the_computed_one() -> None:
    link = Link("sim://?stack=US3000C&frozen=1&delay=0.3", timeout=0.1, tries=1)
    with pytest.raises(NoReplyError):
        link.query(Command.ANALOG)
    assert Link("sim://?stack=US3000C&frozen=1&delay=0.3", timeout=1.0).query(Command.ANALOG)


def test_port_held_by_another_process_is_reported(sim_process) -> None:
    sim = sim_process("--pty", "--modules", "1", "--frozen")
    with Link(sim.port), pytest.raises(PortBusyError, match="in use by another process"):
        Link(sim.port).open()


def test_device_removed_and_recreated_recovers(sim_process, tmp_path) -> None:
    path = str(tmp_path / "ttyUSB_pylontech")
    first = sim_process("--pty", "--link", path, "--modules", "2", "--frozen")
    stack = Stack(Link(path))
    assert stack.analog(2).command_value == 3
    first.stop()
    with pytest.raises((PortError, NoReplyError)):
        stack.analog(2)
    sim_process("--pty", "--link", path, "--modules", "2", "--frozen")
    assert os.path.islink(path)
    assert stack.analog(2).command_value == 3


def test_line_settings_altered_by_another_program_are_restored(sim_process, caplog) -> None:
    sim = sim_process("--pty", "--modules", "1", "--frozen")
    with Link(sim.port) as link:
        link.query(Command.ANALOG)
        fd = os.open(sim.port, os.O_RDWR | os.O_NOCTTY)
        try:
            expected = termios.tcgetattr(fd)
            altered = termios.tcgetattr(fd)
            altered[3] |= termios.ICANON | termios.ECHO  # a line discipline would hold replies back until LF
            altered[4] = altered[5] = termios.B9600
            termios.tcsetattr(fd, termios.TCSANOW, altered)
            with caplog.at_level(logging.WARNING, "pylonbus"):
                assert link.query(Command.ANALOG).command_value == 2
            assert f"settings of {sim.port} were altered externally" in caplog.text
            assert termios.tcgetattr(fd) == expected
        finally:
            os.close(fd)


@pytest.mark.parametrize("seed", range(8))
def test_a_scan_on_a_noisy_line_finds_every_module(seed: int) -> None:
    # One probe per address lost a module in about one start of three at these rates; a probe with the
    # tries of a read loses one in a few hundred.
    stack = Stack(Link(f"sim://?stack=US3000C*14&frozen=1&pace=0&no_reply=0.05&corrupt=0.05&seed={seed}"))
    assert stack.scan() == list(range(1, 15))


def test_a_scan_stops_when_asked() -> None:
    import threading

    stop = threading.Event()
    seen: list[int] = []

    def progress(step) -> None:
        seen.append(step.module)
        if step.module == 3:
            stop.set()

    assert Stack(Link("sim://?stack=US3000C*5&frozen=1&pace=0")).scan(progress, stop=stop) == [1, 2, 3]
    assert seen == [1, 2, 3]


def test_an_implausible_reply_names_the_module_and_the_port() -> None:
    from pylonbus import ImplausibleValue
    from pylonbus.protocol import decode_reply, encode_frame, parse_frame
    from pylonbus.protocol.families.pylontech.layouts import ANALOG
    from pylonbus.sim import Stack as Model

    analog = Model.parse("US3000C", frozen=True).modules[2].analog()
    analog.temperatures = (25.0, 250.0)
    frame = parse_frame(encode_frame(0x20, 0x02, 0, ANALOG.encode(analog)))
    with pytest.raises(ImplausibleValue, match=r"temperatures\[2\] = 250 °C from module 1 \(ADR 0x02\)"):
        decode_reply(Command.ANALOG, frame)


def test_every_transport_reads_every_module(sim_port: str) -> None:
    with connect(sim_port, group=1) as stack:
        assert stack.modules == [1, 2]
        assert [len(stack.analog(m).cell_voltages) for m in stack.modules] == [8, 15]


def test_spy_url_logs_the_traffic_to_a_file(sim_process, tmp_path) -> None:
    sim = sim_process("--pty", "--modules", "1", "--frozen")
    trace = tmp_path / "trace.txt"
    with connect(f"spy://{sim.port}?file={trace}", scan=False) as stack:
        assert stack.analog(1).command_value == 2
    lines = trace.read_text().splitlines()
    sent = "".join(line[-16:] for line in lines if " TX " in line)
    assert sent.startswith("~20024642E00202FD33.")  # pyserial's hex dump shows CR as '.'
    assert any(" RX " in line and "~20024600" in line for line in lines)
