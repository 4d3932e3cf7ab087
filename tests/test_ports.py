"""Any port, any command: a Link on a serial object it was given, the port's own line settings put back on
close, raw requests with the link's retries, and the identity of each module."""

from __future__ import annotations

import os
import termios
from collections.abc import Iterator

import pytest
import serial

from pylonbus import Link, NoReplyError, PortError, ResponseError, Stack
from pylonbus.protocol import AnalogData, Command, ProtocolVersion, SerialNumber


@pytest.fixture
def pty_port(sim_process) -> Iterator[str]:
    yield sim_process("--pty", "--stack", "US3000C*2,US2000B", "--seed", "3", "--frozen", "--no-pace").port


def line_settings(path: str) -> list:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        return termios.tcgetattr(fd)
    finally:
        os.close(fd)


def set_cooked_9600(path: str) -> list:
    """Settings a link would never leave behind: canonical input, echo and 9600 Bd."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        attrs = termios.tcgetattr(fd)
        attrs[3] |= termios.ICANON | termios.ECHO
        attrs[4] = attrs[5] = termios.B9600
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        return termios.tcgetattr(fd)
    finally:
        os.close(fd)


def test_close_puts_the_original_line_settings_back(pty_port: str) -> None:
    before = set_cooked_9600(pty_port)
    link = Link(pty_port)
    assert isinstance(Stack(link).analog(1), AnalogData)
    assert line_settings(pty_port) != before  # the link made it raw at 115200 Bd
    link.close()
    assert line_settings(pty_port) == before


def test_the_settings_come_back_after_an_error(pty_port: str) -> None:
    before = set_cooked_9600(pty_port)
    with pytest.raises(NoReplyError), Link(pty_port) as link:
        link.query(Command.ANALOG, 0, 9, tries=1)  # no module 9
    assert line_settings(pty_port) == before
    # and a link reopened after it closed (as after a lost port) still restores what the port had at first
    link = Link(pty_port)
    Stack(link).analog(2)
    link.close()
    Stack(link).analog(2)
    link.close()
    assert line_settings(pty_port) == before


def test_a_serial_object_given_is_used_and_never_closed(pty_port: str) -> None:
    port = serial.Serial(pty_port, 115200, timeout=0.7)
    before = termios.tcgetattr(port.fileno())
    with Link(port) as link:
        assert link.port == pty_port
        assert isinstance(Stack(link).analog(1), AnalogData)
        assert isinstance(Stack(link).serial_number(3), SerialNumber)
    assert port.is_open
    assert port.timeout == 0.7
    assert termios.tcgetattr(port.fileno()) == before
    port.close()
    with pytest.raises(PortError, match="closed"):
        Link(port).open()


def test_any_object_with_the_serial_api_will_do() -> None:
    # A sim:// port opened by the caller is a pyserial SerialBase with no file descriptor.
    port = serial.serial_for_url("sim://?stack=US3000C&frozen=1&pace=0")
    link = Link(port)
    assert isinstance(Stack(link).analog(1), AnalogData)
    link.close()
    assert port.is_open


def test_a_raw_request_returns_the_frame_and_where_known_the_result(pty_port: str) -> None:
    with Link(pty_port) as link:
        version = link.request(0x4F, ver=0x00)
        assert isinstance(version.result, ProtocolVersion)
        assert version.frame.rtn == 0
        analog = link.request(0x42, bytes([3]), module=2)
        assert analog.result == Stack(link).analog(2)
        assert analog.frame.adr == 0x03
        by_adr = link.request(0x93, bytes([4]), adr=0x04)
        assert by_adr.result == Stack(link).serial_number(3)


def test_a_raw_request_of_a_command_without_layout(pty_port: str) -> None:
    with Link(pty_port) as link:
        with pytest.raises(ResponseError) as caught:
            link.request(0x4D)  # the simulator, like a module, says CID2 invalid
        assert caught.value.rtn == 0x04
        assert link.errors == 0  # an answer: no retry


def test_reserved_addresses_only_when_asked(pty_port: str) -> None:
    with Link(pty_port) as link:
        for adr in (0x00, 0x01, 0x10, 0x21):
            with pytest.raises(ValueError, match="reserved=True"):
                link.request(0x4F, adr=adr)
        with pytest.raises(NoReplyError, match="ADR 0x01"):
            link.request(0x4F, adr=0x01, reserved=True, tries=2)
        with pytest.raises(PermissionError):
            link.request(0x95, bytes([2]))


def test_identify_gives_model_firmware_and_serial_per_module(pty_port: str) -> None:
    with Link(pty_port) as link:
        stack = Stack(link)
        found = stack.identify()
        assert list(found) == [1, 2, 3] == stack.modules
        assert [found[m].model for m in found] == ["US3000C", "US3000C", "US2KBPL"]  # as a US2000B names itself
        for module, identity in found.items():
            assert identity.serial == stack.serial_number(module).serial
            assert identity.firmware == stack.firmware(module).mainline_version_text
            assert identity.manufacturer
