"""The asyncio API: `async with pylonbus.aio.connect(url, group=0) as stack: await stack.analog(1)`.

Each `AsyncLink` owns one worker thread that runs the synchronous `Link`'s exchanges, so the event loop never
blocks on the port (opening and closing it included) and every read keeps the retries, echo handling and reply
proofs of the synchronous API, with the same typed results and errors. Why a thread and not a native asyncio
serial transport: README "asyncio" (measured by benchmarks/aio.py).

Cancellation: a read cancelled (by `asyncio.timeout`, `wait_for` or `Task.cancel`) returns at once. An exchange
not yet started is dropped; one already on the wire finishes its attempt in the worker, its late reply read and
discarded there, before the next request is sent (a reply is never handed to a later request), and is not tried
again. A cancelled scan stops after the address it is probing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from enum import IntEnum
from functools import partial
from typing import Any, TypeVar

from .link.link import Link, RawReply, abandoned
from .link.ports import DEFAULT_BAUD, DEFAULT_PORT, SerialLike
from .link.stack import ScanProgress, Stack
from .protocol import (
    ChargeDischargeInfo,
    ChargeDischargeSetting,
    FirmwareInfo,
    ManufacturerInfo,
    ProtocolVersion,
    SerialNumber,
    SystemAnalog,
    SystemParameters,
    pack,
)
from .protocol.families.pylontech.results import Result
from .readings.reading import Identity

T = TypeVar("T")

__all__ = ["AsyncLink", "AsyncStack", "connect"]


class AsyncLink:
    """A `Link` driven from asyncio: its exchanges run one at a time in a worker thread of its own.

    `port` and the keywords are `Link`'s (a URL or an open serial-like object, `baud`, `timeout` in s, `tries`,
    …), or `link` an existing `Link` (which other threads may go on using: it is thread-safe). One request is in
    flight per link; the others wait their turn in order. Use `async with AsyncLink(…)` or `await close()`."""

    def __init__(
        self,
        port: str | SerialLike = DEFAULT_PORT,
        baud: int = DEFAULT_BAUD,
        *,
        link: Link | None = None,
        **options: Any,
    ) -> None:
        self.link = link if link is not None else Link(port, baud, **options)
        """The synchronous `Link` underneath, whose exchanges the worker runs."""
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pylonbus-link")

    async def run(self, call: Callable[[], T], cancelled: Callable[[], None] | None = None) -> T:
        """Run `call` (anything using the link) in the link's worker and await its result; `cancelled` is
        called when the awaiting task is cancelled while `call` runs."""
        gone = threading.Event()

        def marked() -> T:
            token = abandoned.set(gone)
            try:
                return call()
            finally:
                abandoned.reset(token)

        future = asyncio.get_running_loop().run_in_executor(self._worker, marked)
        try:
            return await future
        except asyncio.CancelledError:
            gone.set()
            if cancelled is not None:
                cancelled()
            raise

    async def open(self) -> None:
        """Open the port (in the worker: opening a device or a gateway may take long)."""
        await self.run(self.link.open)

    async def close(self) -> None:
        """Close the port once the exchange in flight (a cancelled one included) has finished, and end the
        worker. The port's original line settings are put back, as by `Link.close`."""
        try:
            await asyncio.shield(self.run(self.link.close))
        finally:
            self._worker.shutdown(wait=False)

    async def query(self, command: IntEnum, group: int = 0, module: int = 1, **options: Any) -> Result:
        """`Link.query`: one command to a module, decoded, with the link's retries."""
        return await self.run(partial(self.link.query, command, group, module, **options))

    async def request(self, cid2: int, info: bytes = b"", **options: Any) -> RawReply:
        """`Link.request`: any CID2 and INFO to any ADR; the reply frame and, where a layout exists, its result."""
        return await self.run(partial(self.link.request, cid2, info, **options))

    async def __aenter__(self) -> AsyncLink:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncStack:
    """The modules of one group on an `AsyncLink`: every read of `Stack`, awaited, with the same typed results
    (values in V, A — charge positive —, °C, Ah, %) and the same errors (`NoReplyError`, `ResponseError`, …)."""

    def __init__(self, link: AsyncLink, group: int = 0, bms: str | None = None) -> None:
        self.link = link
        """The `AsyncLink` the reads go through."""
        self.stack = Stack(link.link, group, bms)
        """The synchronous `Stack` whose reads run in the link's worker."""

    @property
    def group(self) -> int:
        """The group number, 0-15."""
        return self.stack.group

    @property
    def modules(self) -> list[int]:
        """The module numbers the last scan found (empty before a scan)."""
        return self.stack.modules

    async def _read(self, read: Callable[..., T], *args: Any, **options: Any) -> T:
        return await self.link.run(partial(read, *args, **options))

    async def scan(
        self, progress: Callable[[ScanProgress], None] | None = None, probe_latency: float = 0.04
    ) -> list[int]:
        """`Stack.scan`: the modules 1-14 that answer. `progress` is called on the event loop after each address;
        a cancelled scan stops after the address it is probing."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def report(step: ScanProgress) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, step)

        return await self.link.run(partial(self.stack.scan, report, probe_latency, stop), stop.set)

    async def probe(self, module: int, latency: float = 0.04) -> bool:
        """`Stack.probe`: True if `module` answers 0x4F."""
        return await self._read(self.stack.probe, module, latency)

    async def identity(self, module: int = 1) -> Identity:
        """`Stack.identity`: model, manufacturer, serial and firmware of `module`."""
        return await self._read(self.stack.identity, module)

    async def identify(self) -> dict[int, Identity]:
        """`Stack.identify`: the identity of each module, scanning first if no scan has run."""
        return await self._read(self.stack.identify)

    async def protocol_version(self, module: int = 1) -> ProtocolVersion:
        """`Stack.protocol_version` (0x4F)."""
        return await self._read(self.stack.protocol_version, module)

    async def analog(self, module: int = 1) -> pack.PackAnalog:
        """`Stack.analog` (0x42): voltages in V, current in A (charge positive), temperatures in °C, Ah."""
        return await self._read(self.stack.analog, module)

    async def alarm(self, module: int = 1) -> pack.PackAlarm:
        """`Stack.alarm` (0x44): the alarm and status flags."""
        return await self._read(self.stack.alarm, module)

    async def system_parameters(self, module: int = 1) -> SystemParameters:
        """`Stack.system_parameters` (0x47): the module's limits in V, °C and A."""
        return await self._read(self.stack.system_parameters, module)

    async def manufacturer(self, module: int = 1) -> ManufacturerInfo:
        """`Stack.manufacturer` (0x51): model, software version and manufacturer."""
        return await self._read(self.stack.manufacturer, module)

    async def charge_discharge(self, module: int = 1) -> ChargeDischargeInfo:
        """`Stack.charge_discharge` (0x92): charge/discharge limits in V and A, and the request flags."""
        return await self._read(self.stack.charge_discharge, module)

    async def serial_number(self, module: int = 1) -> SerialNumber:
        """`Stack.serial_number` (0x93)."""
        return await self._read(self.stack.serial_number, module)

    async def firmware(self, module: int = 1) -> FirmwareInfo:
        """`Stack.firmware` (0x96): manufacture and main-line versions."""
        return await self._read(self.stack.firmware, module)

    async def system_analog(self) -> SystemAnalog:
        """`Stack.system_analog` (0x61, protocol V3.5 masters only)."""
        return await self._read(self.stack.system_analog)

    async def analog_all(self) -> Any:
        """`Stack.analog_all`: 0x42 fan-out, every pack in one reply from the master."""
        return await self._read(self.stack.analog_all)

    async def alarm_all(self) -> Any:
        """`Stack.alarm_all`: 0x44 fan-out."""
        return await self._read(self.stack.alarm_all)

    async def set_charge_discharge(
        self, module: int, setting: ChargeDischargeSetting, *, allow_write: bool = False
    ) -> None:
        """`Stack.set_charge_discharge` (0x94). Changes the battery: refused unless `allow_write` is true."""
        await self._read(self.stack.set_charge_discharge, module, setting, allow_write=allow_write)

    async def turn_off(self, module: int, *, allow_write: bool = False) -> None:
        """`Stack.turn_off` (0x95). Changes the battery: refused unless `allow_write` is true."""
        await self._read(self.stack.turn_off, module, allow_write=allow_write)


@asynccontextmanager
async def connect(
    port: str | SerialLike = DEFAULT_PORT,
    group: int = 0,
    baud: int = DEFAULT_BAUD,
    *,
    scan: bool = True,
    bms: str | None = None,
    **link: Any,
) -> AsyncIterator[AsyncStack]:
    """`async with connect("/dev/ttyUSB0") as stack:` — opens the port, scans the group (unless `scan` is
    false) and closes the port on exit, as `pylonbus.connect` does; `bms` names the family (default Pylontech),
    the other keywords are `Link`'s."""
    async with AsyncLink(port, baud, **link) as opened:
        stack = AsyncStack(opened, group, bms)
        if scan:
            await stack.scan()
        yield stack
