"""What thread safety and asyncio cost a read, over a real pseudo-terminal with the simulator pacing bytes at
115200 Bd: 0x42 from 8 modules, per module, through

- the synchronous `Stack` on a `Link` whose lock is replaced by a no-op (the read as it was before issue 23),
- the same `Stack` on a locked `Link` (what every read now takes),
- `pylonbus.aio` (the `Link` run in a worker thread of its own),
- a native asyncio serial transport, pyserial-asyncio-fast (if installed): the request written and the reply
  read up to its CR on the event loop, then decoded — a lower bound, with none of the link's retries, echo
  handling or reply proofs.

Run: python benchmarks/library.py"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext

import pylonbus.aio
from poll import BAUD, MODULES, ROUNDS, simulator, timed, wire_time
from pylonbus import Link, Stack
from pylonbus.protocol import Command, decode_reply, parse_frame, request


async def timed_async(fn: Callable[[], Awaitable[object]], rounds: int = ROUNDS) -> tuple[float, float]:
    """Median wall and CPU time of `fn`, after one warm-up call (CPU of the whole process, worker included)."""
    await fn()
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        await fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


async def through_aio(port: str, modules: range) -> tuple[float, float]:
    async with pylonbus.aio.connect(port, baud=BAUD, scan=False) as stack:

        async def poll() -> None:
            for module in modules:
                await stack.analog(module)

        return await timed_async(poll)


async def through_transport(port: str, modules: range) -> tuple[float, float] | None:
    try:
        import serial_asyncio_fast  # type: ignore[import-not-found]
    except ImportError:
        return None
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=port, baudrate=BAUD)
    requests = {module: request(Command.ANALOG, 0, module) for module in modules}

    async def poll() -> None:
        for module in modules:
            writer.write(requests[module])
            decode_reply(Command.ANALOG, parse_frame(await reader.readuntil(b"\r")))

    try:
        return await timed_async(poll)
    finally:
        writer.close()


def main() -> int:
    modules = range(1, MODULES + 1)
    results: dict[str, tuple[float, float] | None] = {}
    with simulator(f"US3000C*{MODULES}") as port:
        with Link(port, BAUD) as link:
            stack = Stack(link)
            wire = wire_time(stack, modules)
            link._lock = nullcontext()  # type: ignore[assignment]  # the read without serialisation
            results["Stack, Link without its lock"] = timed(lambda: [stack.analog(m) for m in modules])
            link._lock = type(Link(port)._lock)()  # a fresh RLock, as every Link has
            results["Stack, locked Link"] = timed(lambda: [stack.analog(m) for m in modules])
        results["pylonbus.aio (worker thread)"] = asyncio.run(through_aio(port, modules))
        results["pyserial-asyncio-fast, bare exchange"] = asyncio.run(through_transport(port, modules))

    base = results["Stack, Link without its lock"]
    assert base is not None
    print(f"0x42 from {MODULES} US3000C modules at {BAUD} Bd over a pty, median of {ROUNDS} polls, per module")
    print(f"  {'':<40}{'wall ms':>9}{'vs base':>9}{'x wire':>8}{'CPU ms':>9}")
    print(f"  {'wire time of the bytes':<40}{wire / MODULES * 1000:9.2f}")
    for name, result in results.items():
        if result is None:
            print(f"  {name:<40} (not installed)")
            continue
        wall, cpu = result
        change = f"{(wall / base[0] - 1) * 100:+8.1f}%"
        print(f"  {name:<40}{wall / MODULES * 1000:9.2f}{change}{wall / wire:8.2f}{cpu / MODULES * 1000:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
