"""pylonbus.aio under asyncio against the simulator over a real pty and TCP: every read of the synchronous Stack
with the same results and errors, cancellation that leaves the link consistent, and a loop that never blocks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest

import pylonbus.aio
from pylonbus import Link, NoReplyError, ResponseError, Stack
from pylonbus.link.stack import ScanProgress
from pylonbus.protocol import Command, SerialNumber

STACK = "US3000C*2,US2000B"
READS = (
    "protocol_version",
    "analog",
    "alarm",
    "system_parameters",
    "manufacturer",
    "charge_discharge",
    "serial_number",
    "firmware",
    "identity",
)


@pytest.fixture(params=["pty", "tcp"])
def where(request: pytest.FixtureRequest) -> list[str]:
    return ["--pty"] if request.param == "pty" else ["--tcp", "127.0.0.1:0"]


@pytest.fixture
def port(sim_process, where: list[str]) -> Iterator[str]:
    yield sim_process(*where, "--stack", STACK, "--seed", "9", "--frozen").port


def sync_reads(port: str) -> dict[str, Any]:
    with Link(port) as link:
        stack = Stack(link)
        found = {"scan": stack.scan(), "identify": stack.identify(), "analog_all": stack.analog_all()}
        for name in READS:
            for module in (1, 2, 3):
                found[f"{name} {module}"] = getattr(stack, name)(module)
        return found


def test_every_read_gives_what_the_synchronous_stack_gives(port: str) -> None:
    expected = sync_reads(port)

    async def reads() -> dict[str, Any]:
        async with pylonbus.aio.connect(port, group=0) as stack:
            found: dict[str, Any] = {"scan": stack.modules, "identify": await stack.identify()}
            found["analog_all"] = await stack.analog_all()
            for name in READS:
                for module in (1, 2, 3):
                    found[f"{name} {module}"] = await getattr(stack, name)(module)
            assert await stack.scan() == [1, 2, 3]
            return found

    got = asyncio.run(reads())
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert type(got[key]) is type(value), key
        assert (asdict(got[key]) if hasattr(value, "__dataclass_fields__") else got[key]) == (
            asdict(value) if hasattr(value, "__dataclass_fields__") else value
        ), key


def test_the_same_typed_errors(port: str) -> None:
    async def errors() -> None:
        async with pylonbus.aio.connect(port, scan=False) as stack:
            with pytest.raises(NoReplyError, match="module 9"):
                await stack.link.query(Command.ANALOG, 0, 9, tries=1)
            with pytest.raises(ResponseError) as caught:
                await stack.system_analog()
            assert caught.value.rtn == 0x04
            with pytest.raises(PermissionError):
                await stack.turn_off(1)
            raw = await stack.link.request(0x93, bytes([2]))
            assert raw.result == await stack.serial_number(1)

    asyncio.run(errors())


@pytest.fixture
def slow_port(sim_process, where: list[str]) -> Iterator[str]:
    """Every reply comes 0.3 s after its request: long enough to cancel a read while it is on the wire."""
    yield sim_process(*where, "--stack", STACK, "--seed", "9", "--frozen", "--delay", "0.3").port


def test_a_cancelled_read_leaves_the_link_consistent(slow_port: str) -> None:
    async def cancel() -> None:
        async with pylonbus.aio.connect(slow_port, scan=False, timeout=1.0) as stack:
            serials = {module: (await stack.serial_number(module)).serial for module in (1, 2, 3)}
            # cancelled on the wire: its reply arrives after the next request would be sent
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await stack.serial_number(1)
            second = await stack.serial_number(2)
            assert isinstance(second, SerialNumber) and second.serial == serials[2]
            # cancelled before its turn: it never goes on the wire, the one before it is unharmed
            first = asyncio.create_task(stack.serial_number(3))
            queued = asyncio.create_task(stack.analog(1))
            await asyncio.sleep(0)
            queued.cancel()
            assert (await first).serial == serials[3]
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert (await stack.serial_number(1)).serial == serials[1]

    asyncio.run(cancel())


def test_the_loop_runs_while_a_read_waits(slow_port: str) -> None:
    async def heartbeat() -> None:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        async with pylonbus.aio.connect(slow_port, scan=False, timeout=1.0) as stack:
            before = ticks
            await stack.analog(1)  # 0.3 s in the worker
            assert ticks > before
        ticker.cancel()

    asyncio.run(heartbeat())


def test_a_cancelled_scan_stops_and_frees_the_link(port: str) -> None:
    async def scan() -> list[ScanProgress]:
        seen: list[ScanProgress] = []
        async with pylonbus.aio.connect(port, scan=False) as stack:
            task = asyncio.create_task(stack.scan(seen.append))
            while len(seen) < 4:  # past the three modules, into the silent addresses
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await stack.analog(2)).cell_voltages
            await asyncio.sleep(0)  # the progress of the last address probed, delivered on the loop
        return seen

    seen = asyncio.run(scan())
    assert [step.module for step in seen[:3]] == [1, 2, 3]
    assert len(seen) < 14


def test_link_timeouts_raise_no_reply_under_asyncio(port: str) -> None:
    async def silent() -> None:
        async with pylonbus.aio.AsyncLink(port, tries=2) as link:
            with pytest.raises(NoReplyError, match="after 2 tries"):
                await link.query(Command.SERIAL_NUMBER, 0, 12)
            assert (await link.query(Command.SERIAL_NUMBER, 0, 2)).command_value == 3

    asyncio.run(silent())


def test_a_cancelled_read_is_not_tried_again(port: str) -> None:
    """A read of an absent module cancelled during its first try: that try ends in the worker and no other is
    made (three tries of a silent address held the next read for three timeouts)."""

    async def cancel() -> None:
        async with pylonbus.aio.AsyncLink(port, timeout=0.3) as link:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await link.query(Command.SERIAL_NUMBER, 0, 12)
            assert (await link.query(Command.SERIAL_NUMBER, 0, 2)).command_value == 3
            assert link.link.errors == 1
            with pytest.raises(NoReplyError, match="after 3 tries"):  # one not cancelled still has every try
                await link.query(Command.SERIAL_NUMBER, 0, 12)

    asyncio.run(cancel())
