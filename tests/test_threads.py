"""One Link shared by many threads: requests serialised, every read answered or a typed error, the port usable
afterwards (simulator over a real pty, a TCP socket and sim://)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import fields

import pytest

from pylonbus import Link, NoReplyError, PylonbusError, Stack
from pylonbus.protocol import AlarmInfo, AnalogData, Command, ManufacturerInfo, SerialNumber

THREADS = 8
READS = 200


@pytest.fixture(params=["pty", "tcp", "sim"])
def shared_port(request: pytest.FixtureRequest, sim_process) -> Iterator[str]:
    """A three-module stack that answers at once (no wire pacing: 1600 reads stay short)."""
    if request.param == "sim":
        yield "sim://?stack=US3000C*3&seed=5&frozen=1&pace=0"
        return
    where = ["--pty"] if request.param == "pty" else ["--tcp", "127.0.0.1:0"]
    yield sim_process(*where, "--stack", "US3000C*3", "--seed", "5", "--frozen", "--no-pace").port


def mixed_read(stack: Stack, worker: int, index: int) -> object:
    """A read chosen by position: four commands over the three modules, now and then an absent module (a typed
    NoReplyError) or a refused write (PermissionError), so failing calls are interleaved with good ones."""
    module = 1 + (worker + index) % 3
    choice = (worker * 7 + index) % 50
    if choice == 0:
        return stack.link.query(Command.ANALOG, 0, 9, tries=1)  # nothing at module 9
    if choice == 1:
        return stack.turn_off(module)  # refused: no allow_write
    reads = (stack.analog, stack.alarm, stack.serial_number, stack.manufacturer)
    return reads[index % len(reads)](module)


def test_eight_threads_share_one_link(shared_port: str) -> None:
    link = Link(shared_port)
    stack = Stack(link)
    # What each module answers when asked alone: every threaded read must return exactly this.
    expected = {
        (module, n): read(module)
        for module in (1, 2, 3)
        for n, read in enumerate((stack.analog, stack.alarm, stack.serial_number, stack.manufacturer))
    }
    outcomes: list[list[object]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def work(worker: int) -> None:
        start.wait()
        for index in range(READS):
            try:
                outcomes[worker].append(mixed_read(stack, worker, index))
            except (PylonbusError, PermissionError) as error:
                outcomes[worker].append(error)
            except Exception as error:  # anything else is a bug the test names
                outcomes[worker].append(AssertionError(f"untyped {error!r}"))

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for worker, results in enumerate(outcomes):
        assert len(results) == READS
        for index, result in enumerate(results):
            choice = (worker * 7 + index) % 50
            module = 1 + (worker + index) % 3
            if choice == 0:
                assert isinstance(result, NoReplyError), result
            elif choice == 1:
                assert isinstance(result, PermissionError), result
            else:
                assert not isinstance(result, BaseException), f"worker {worker} read {index}: {result!r}"
                want = expected[(module, index % 4)]
                assert type(result) is type(want)
                assert all(getattr(result, f.name) == getattr(want, f.name) for f in fields(want))  # type: ignore[arg-type]
    # The port is neither locked nor left in a state the next caller trips on.
    assert isinstance(stack.analog(2), AnalogData)
    assert isinstance(stack.alarm(3), AlarmInfo)
    link.close()
    with Link(shared_port) as again:
        assert isinstance(Stack(again).serial_number(1), SerialNumber)


def test_a_failing_call_releases_the_port_for_the_others() -> None:
    link = Link("sim://?stack=US3000C&frozen=1&pace=0")
    stack = Stack(link)
    errors: list[BaseException] = []

    def fail() -> None:
        try:
            link.query(Command.ANALOG, 0, 5, tries=2)
        except NoReplyError as error:
            errors.append(error)

    thread = threading.Thread(target=fail)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert isinstance(stack.manufacturer(1), ManufacturerInfo)
    assert link._lock.acquire(blocking=False)  # nobody holds it
    link._lock.release()


def test_a_request_waiting_its_turn_does_not_use_up_its_timeout(sim_process) -> None:
    """Replies paced at 115200 Bd: eight threads queue for one port, each waiting seven exchanges (about 0.1 s)
    longer than a reply timeout (about 0.07 s). Every read is still answered at its first try: the timeout
    runs from a request's turn."""
    port = sim_process("--pty", "--stack", "US3000C*3", "--frozen").port
    link = Link(port)
    stack = Stack(link)
    failures: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(worker: int) -> None:
        start.wait()
        for index in range(10):
            try:
                stack.analog(1 + (worker + index) % 3)
            except PylonbusError as error:
                failures.append(error)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    link.close()
    assert failures == []
    assert link.errors == 0
