"""Polling over a real pseudo-terminal, the simulator pacing bytes at 115200 Bd: 0x42 from 8 modules against
the wire time of the bytes exchanged, a scan of a group with 2 modules present and 12 absent, and
python-pylontech (in its own virtual environment under .bench/) reading the same 8 modules.

Run: python benchmarks/poll.py  (needs network access to PyPI the first time, for python-pylontech)"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from decode import peer_python
from pylonbus import Link, Stack
from pylonbus.protocol import Command, address, encode_frame, request
from pylonbus.protocol.families.pylontech.layouts import ANALOG

BAUD = 115200
MODULES = 8
ROUNDS = 15
PEER = "python-pylontech"
PEER_POLL = """
import json, sys, time
from pylontech import Pylontech
port, rounds, modules = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p = Pylontech(port, 115200)
p.s.readline = lambda: p.s.read_until(b"\\r")  # its readline waits for LF, which never comes: 2 s per call
walls, cpus = [], []
for _ in range(rounds + 1):
    wall, cpu = time.perf_counter(), time.process_time()
    for adr in range(2, 2 + modules):  # it addresses by ADR: module n of group 0 is n + 1
        p.get_values_single(adr)
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
print(json.dumps([walls[1:], cpus[1:]]))
"""


@contextmanager
def simulator(stack: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.sim", "--pty", "--stack", stack, "--frozen", "-b", str(BAUD)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait()


def timed(fn: Callable[[], object], rounds: int = ROUNDS) -> tuple[float, float]:
    """Median wall and CPU time of `fn`, after one warm-up call."""
    fn()
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def wire_time(stack: Stack, modules: range) -> float:
    """Seconds the requests and replies of one poll take on the wire at 10 bits per byte."""
    size = 0
    for module in modules:
        reply = encode_frame(0x20, address(0, module), 0, ANALOG.encode(stack.analog(module)))
        size += len(request(Command.ANALOG, 0, module)) + len(reply)
    return size * 10 / BAUD


def main() -> int:
    modules = range(1, MODULES + 1)
    with simulator(f"US3000C*{MODULES}") as port:
        with Link(port, BAUD) as link:
            stack = Stack(link)
            wire = wire_time(stack, modules)
            ours = timed(lambda: [stack.analog(m) for m in modules])
        peer = json.loads(
            subprocess.run(
                [peer_python(PEER), "-c", PEER_POLL, port, str(ROUNDS), str(MODULES)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
    theirs = (statistics.median(peer[0]), statistics.median(peer[1]))
    with simulator("US3000C*2") as port, Link(port, BAUD) as link:
        scan, _ = timed(Stack(link).scan, rounds=5)

    print(f"0x42 from {MODULES} US3000C modules at {BAUD} Bd over a pty, median of {ROUNDS} polls")
    print(f"  {'':<38}{'wall ms':>9}{'x wire':>8}{'CPU ms':>9}")
    print(f"  {'wire time of the bytes':<38}{wire * 1000:9.1f}")
    for name, (wall, cpu) in (("pylonbus", ours), (PEER + " (readline patched)", theirs)):
        print(f"  {name:<38}{wall * 1000:9.1f}{wall / wire:8.2f}{cpu * 1000:9.1f}")
    print(f"scan of modules 1-14, 2 present and 12 absent: {scan * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
