"""An adapter that echoes what it sends (many USB-RS485 ones do): a request read back is never a reply.

The simulator's `--echo` sends every byte back, as such an adapter does, over a real pty and TCP port; with
`--stack -` no battery is on the line at all."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import stop_process
from pylonbus import Link, Stack
from pylonbus.errors import NoReplyError
from pylonbus.protocol import Command, address, encode_frame, request
from pylonbus.sim import Bus, Faults, responder_class
from pylonbus.sim import Stack as SimStack

WHERE = {"pty": ["--pty"], "tcp": ["--tcp", "127.0.0.1:0"]}
ECHOES = "echoes what it sends"


def test_an_echoing_line_sends_each_byte_back_before_the_reply() -> None:
    bus = Bus(responder_class()(SimStack.parse("US3000C"), Faults()), pace=False, echo=True)
    sent = request(Command.PROTOCOL_VERSION, 0, 1)
    half = len(sent) // 2
    assert bus.receive(b"\x00" + sent[:half], 0.0) == [(0.0, b"\x00" + sent[:half])]  # noise echoes too
    (start, echo), (_, reply) = bus.receive(sent[half:], 1.0)
    assert (start, echo) == (1.0, sent[half:]) and reply[7:9] == b"00"  # then the reply, RTN 0


@pytest.mark.parametrize("where", WHERE)
def test_a_line_that_only_echoes_has_no_battery(sim_process, where: str) -> None:
    port = sim_process(*WHERE[where], "--stack", "-", "--echo").port
    for flag in ("-t", "-s"):
        done = subprocess.run(
            [sys.executable, "-m", "pylonbus.cli.pylontech", "-d", port, flag, "--timeout", "0.2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        said = (done.stdout + done.stderr).strip()
        assert done.returncode == 2, said
        assert "module" not in done.stdout.replace("no module", "")  # -s lists nothing
        assert len(said.splitlines()) == 1 and "Traceback" not in said
        assert f"only the request came back on {port}" in said
        assert "the adapter echoes, and no battery answers" in said


@pytest.mark.parametrize("where", WHERE)
def test_scans_through_an_echoing_adapter_find_exactly_the_real_modules(
    sim_process, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = sim_process(*WHERE[where], "--stack", "US3000C,-,US2000B", "--echo", "--frozen").port
    caplog.set_level(logging.INFO, "pylonbus.link")
    with Link(port, timeout=0.2) as link:
        stack = Stack(link)
        for _ in range(3):  # the start-up scan and two rescans
            assert stack.scan() == [1, 3]
        assert len(stack.analog(3).cell_voltages) == 15 and stack.protocol_version(1).version == 0x20
        # Only the absent addresses' attempts failed: an echo costs a module's read no attempt.
        assert link.errors == 3 * 12 * link.tries
    echoed = [r.getMessage() for r in caplog.records if ECHOES in r.getMessage()]
    assert echoed == [f"the adapter on {port} {ECHOES}; the requests read back are skipped"]


def test_a_line_that_does_not_echo_is_not_said_to(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "pylonbus.link")
    with Link("sim://?stack=US3000C*2&pace=0") as link:
        assert Stack(link).scan() == [1, 2]
        assert not link.echoes
    assert not [r for r in caplog.records if "read back" in r.getMessage()]


def test_another_request_on_the_line_is_not_a_reply() -> None:
    """A frame with the CID2 just sent is a request, even from the asked ADR and with other INFO (another
    master's, or an echo an adapter altered): it is skipped, and no reply is made up from it."""
    adr = address(0, 1)
    other = encode_frame(0x20, adr, Command.ANALOG, bytes([0xFF]))
    with socket.create_server(("127.0.0.1", 0)) as server:

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                while conn.recv(4096):
                    conn.sendall(other)

        threading.Thread(target=answer, daemon=True).start()
        with Link(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout=0.2, tries=1) as link:
            with pytest.raises(NoReplyError):
                Stack(link).analog(1)
            assert not link.echoes


def _lines_per_module(port: str, seconds: float, energy: Path) -> tuple[Counter[str], str]:
    """The line-protocol lines of each module `pylon2influx -q 1 --all --rescan 1` writes to stdout in
    `seconds`, and its log."""
    daemon = ["-m", "pylonbus.cli.pylon2influx", "-d", port, "-q", "1", "--all", "--rescan", "1"]
    proc = subprocess.Popen(
        [sys.executable, *daemon, "--energy-state", str(energy)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(seconds)
    stop_process(proc)
    out, err = proc.communicate()
    return Counter(re.findall(r"^Battery,Module=(\d+) ", out, re.M)), err


@pytest.mark.parametrize("where", WHERE)
def test_the_daemon_polls_through_an_echoing_adapter_at_the_normal_rate(
    sim_process, where: str, tmp_path: Path
) -> None:
    stack = ["--stack", "US3000C,US3000C,-,US2000B", "--frozen"]
    plain = sim_process(*WHERE[where], *stack).port
    echoing = sim_process(*WHERE[where], *stack, "--echo").port
    results: dict[str, tuple[Counter[str], str]] = {}
    # Both at once, so that a busy machine slows both alike.
    threads = [
        threading.Thread(target=lambda k=k, p=p: results.__setitem__(k, _lines_per_module(p, 12.0, tmp_path / k)))
        for k, p in (("plain", plain), ("echo", echoing))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (counts, log), (echo_counts, echo_log) = results["plain"], results["echo"]
    assert set(counts) == set(echo_counts) == {"1", "2", "4"}, (counts, echo_counts, echo_log)  # no phantom
    for module in counts:  # the same cycles, with a generous margin for a shared machine
        assert counts[module] >= 3 and echo_counts[module] >= counts[module] / 2, (counts, echo_counts)
    assert echo_log.count(ECHOES) == 1 and log.count(ECHOES) == 0, echo_log
    assert "modules found: group 0: [1, 2, 4]" in echo_log and "Traceback" not in echo_log
