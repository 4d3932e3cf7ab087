"""The console port beside RS485 (`pylon2influx --console-device`): `pwr` every cycle, `bat`, `soh` and `stat`
of each module every `every` seconds (a 15-cell `bat` takes ~0.2 s on the wire), merged into each module's
reading by module number once its serial (`info N` barcode) matches the one RS485 gave (0x93). A console
that stops answering is a fault like a silent module: said once, and the RS485 readings go on."""

from __future__ import annotations

import logging
import time

from ..console.results import (
    CellTable,
    ConsoleResult,
    DeviceInfo,
    SohTable,
    StackSummary,
    Statistics,
    counter_name,
)
from ..errors import CommandFailedError, ConsoleError, LinkError, UnknownCommandError
from ..link.console import ConsoleLink
from ..readings.reading import ConsoleData, ModuleReading, StackReading

log = logging.getLogger("pylon2influx")


class ConsoleSource:
    """The console of the master module of `group` (the console answers for the group its cable is in)."""

    def __init__(self, link: ConsoleLink, group: int, every: float) -> None:
        self.link = link
        self.group = group
        self.every = every
        self.data: dict[int, ConsoleData] = {}  # module number -> what its console said last
        self.serials: dict[int, str | None] = {}  # module number -> the barcode `info N` gave
        self.due: dict[int, float] = {}  # module number -> when its bat/soh/stat are read next (monotonic)
        self.mismatched: set[int] = set()  # modules whose console serial is not the RS485 one (said once)
        self.silent = False
        self.retry_at = 0.0  # when a silent console is asked again (monotonic)

    def merge(self, stacks: list[StackReading]) -> None:
        """Read what is due and give each module of the group what its console said last."""
        modules = [m for stack in stacks if stack.group == self.group for m in stack.modules if m.online]
        if not modules or (self.silent and time.monotonic() < self.retry_at):
            return  # a silent console is tried again once a period: its timeouts would slow every cycle
        try:
            self.read_due(modules)
        except (LinkError, ConsoleError) as error:
            if not self.silent:
                log.warning(
                    "the console on %s gives no data (%s); the RS485 readings go on, the console is tried again "
                    "every %g s",
                    self.link.port,
                    error,
                    self.every,
                )
                self.silent = True
            self.retry_at = time.monotonic() + self.every
            self.link.close()
        else:
            if self.silent:
                log.warning("the console on %s answers again", self.link.port)
                self.silent = False
        if self.silent:
            return  # what it said before is not passed on as current
        for module in modules:
            if module.module in self.data and self.same_module(module):
                module.console = self.data[module.module]

    def read_due(self, modules: list[ModuleReading]) -> None:
        summary = self.link.query("pwr")
        present = set(summary.present) if isinstance(summary, StackSummary) else set()
        now = time.monotonic()
        numbers = [m.module for m in modules if m.module in present]
        for index, number in enumerate(numbers):
            if now >= self.due.get(number, now):
                # Every module at the start, then spread over the period: module i a fraction i/n later.
                self.due[number] = now + self.every * (1 + index / len(numbers) if number not in self.data else 1)
                self.data[number] = self.read_module(number)

    def read_module(self, number: int) -> ConsoleData:
        if number not in self.serials:
            info = self.ask(f"info {number}")
            self.serials[number] = info.serial if isinstance(info, DeviceInfo) else None
        cells, soh, stat = (self.ask(f"{command} {number}") for command in ("bat", "soh", "stat"))
        data = ConsoleData(time.time_ns())
        if isinstance(cells, CellTable) and not cells.unreadable:
            data.balancing = tuple(bool(c.balancing) for c in cells.cells)
            temperatures = [c.temperature for c in cells.cells]
            data.cell_temperatures = tuple(t for t in temperatures if t is not None)
        if isinstance(stat, Statistics):
            data.soh = stat.soh
            data.lifetime = {counter_name(k): v for k, v in stat.counters.items() if isinstance(v, int)}
            if stat.cycles is not None:
                data.lifetime["cycles"] = stat.cycles
        if isinstance(soh, SohTable) and any(c.soh_count is not None for c in soh.cells):
            data.lifetime["soh_cell_events"] = sum(c.soh_count or 0 for c in soh.cells)
        return data

    def ask(self, command: str) -> ConsoleResult | None:
        """A reply, or None where this firmware refuses the command (Pytes V5 `stat N`)."""
        try:
            return self.link.query(command)
        except (UnknownCommandError, CommandFailedError) as error:
            log.debug("the console refuses %r: %s", command, error)
            return None

    def same_module(self, module: ModuleReading) -> bool:
        """The console's module N is RS485's module N: the serials match (or one side gives none)."""
        console, rs485 = self.serials.get(module.module), module.identity.serial
        if console is None or rs485 is None or console == rs485:
            return True
        if module.module not in self.mismatched:
            log.warning(
                "module %d: the console names serial %r, RS485 %r; its console data is left out",
                module.module,
                console,
                rs485,
            )
            self.mismatched.add(module.module)
        return False
