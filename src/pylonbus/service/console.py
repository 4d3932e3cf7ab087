"""The console port (`pylon2influx --console-device`): `pwr` every cycle, `bat`, `soh` and `stat` of each module
every `every` seconds (a 15-cell `bat` takes ~0.2 s on the wire).

Beside RS485 they are merged into each module's reading by module number once its serial (`info N` barcode)
matches the one RS485 gave (0x93); a console that stops answering is a fault like a silent module: said once,
and the RS485 readings go on. Alone (the RS485 port taken by the inverter), the console is the reading: each
module's `pwr` row every cycle, who it is from `info N`; a console that stops answering is said once, and no
readings are published until it answers again."""

from __future__ import annotations

import logging
import threading
import time

from ..console.results import (
    CellTable,
    ConsoleResult,
    DeviceInfo,
    ModuleSummary,
    SohTable,
    StackSummary,
    Statistics,
    SystemSummary,
    counter_name,
)
from ..errors import CommandFailedError, ConsoleError, ConsoleFormatError, LinkError, UnknownCommandError
from ..link.console import ConsoleLink
from ..readings.reading import ConsoleData, Identity, ModuleReading, StackReading
from ..readings.states import console_states

log = logging.getLogger("pylon2influx")


class ConsoleSource:
    """The console of the master module of `group` (the console answers for the group its cable is in);
    `alone`: no RS485 port is read, the console gives the readings."""

    def __init__(
        self, link: ConsoleLink, group: int, every: float, alone: bool = False, stop: threading.Event | None = None
    ) -> None:
        self.link = link
        self.stop = stop or threading.Event()  # SIGTERM: no further command is sent this cycle
        self.group = group
        self.every = every
        self.alone = alone
        self.data: dict[int, ConsoleData] = {}  # module number -> what its console said last
        self.infos: dict[int, DeviceInfo | None] = {}  # module number -> what `info N` said (None: refused)
        self.due: dict[int, float] = {}  # module number -> when its bat/soh/stat are read next (monotonic)
        self.mismatched: set[int] = set()  # modules whose console serial is not the RS485 one (said once)
        self.rows: dict[int, ModuleSummary] = {}  # module number -> its last `pwr` row (who it is, that it was)
        self.silent = False
        self.error: LinkError | ConsoleError | None = None  # alone: why this cycle's read failed (counted)
        self.retry_at = 0.0  # when a silent console is asked again beside RS485 (monotonic)

    @property
    def known(self) -> list[int]:
        """The modules `pwr` ever listed: kept (offline) while it does not."""
        return sorted(self.rows)

    def describe(self) -> str:
        return f"console {self.link.port}, group {self.group}: {self.known}"

    def merge(self, stacks: list[StackReading]) -> None:
        """Read what is due and give each module of the group what its console said last."""
        modules = [m for stack in stacks if stack.group == self.group for m in stack.modules if m.online]
        if not modules or (self.silent and time.monotonic() < self.retry_at):
            return  # a silent console is tried again once a period: its timeouts would slow every cycle
        try:
            present = self.pwr()
            self.read_due([m.module for m in modules if m.module in present])
        except (LinkError, ConsoleError) as error:
            self.went_silent(error, f"the RS485 readings go on, the console is tried again every {self.every:g} s")
            self.retry_at = time.monotonic() + self.every
            return  # what it said before is not passed on as current
        self.answers_again("")
        for module in modules:
            if module.module in self.data and self.same_module(module):
                module.console = self.data[module.module]

    def scan(self) -> None:
        """Alone: the modules the console lists, and who each is; LinkError or ConsoleError when it does not
        answer (the caller says so)."""
        self.read_due(list(self.pwr()))

    def read(self) -> StackReading:
        """Alone: the group as the console gives it this cycle. A module its `pwr` lists no more, or every
        module while the console is silent, is offline (a stale value is never passed on as a current one)."""
        self.error = None
        try:
            rows = self.pwr()
            self.read_due(list(rows))
        except (LinkError, ConsoleError) as error:
            self.error = error
            self.went_silent(error, "no readings are published until it answers; it is asked again every cycle")
            return StackReading(self.group, [self.offline(number, str(error)) for number in self.known])
        self.answers_again("; readings resume")
        modules = [
            ModuleReading(
                self.group,
                number,
                None,
                console_states(row),
                self.identity(number),
                console=self.data.get(number),
                summary=row,
            )
            for number, row in rows.items()
        ]
        modules += [
            self.offline(number, "not listed by the console's pwr") for number in self.known if number not in rows
        ]
        return StackReading(self.group, sorted(modules, key=lambda m: m.module))

    def offline(self, number: int, error: str) -> ModuleReading:
        return ModuleReading(self.group, number, None, identity=self.identity(number), error=error)

    def went_silent(self, error: Exception, meanwhile: str) -> None:
        if not self.silent:
            log.warning("the console on %s gives no data (%s); %s", self.link.port, error, meanwhile)
            self.silent = True
        self.link.close()

    def answers_again(self, then: str) -> None:
        if self.silent:
            log.warning("the console on %s answers again%s", self.link.port, then)
            self.silent = False

    def pwr(self) -> dict[int, ModuleSummary]:
        """The rows of `pwr` of the modules present, by module number."""
        summary = self.link.query("pwr")
        if isinstance(summary, SystemSummary):
            raise ConsoleFormatError(
                f"the console on {self.link.port} is a Force H2 tower's (its `pwr` sums up the tower, no module "
                "by module): read its modules over RS485 (-d PORT), or the tower with `pylontech --console -P`"
            )
        if not isinstance(summary, StackSummary):
            raise ConsoleFormatError(f"the console on {self.link.port} answered `pwr` with no table")
        rows = {row.module: row for row in summary.modules if not row.absent}
        self.rows |= rows
        return rows

    def read_due(self, numbers: list[int]) -> None:
        now = time.monotonic()
        for index, number in enumerate(numbers):
            if self.stop.is_set():
                break
            if now >= self.due.get(number, now):
                # Every module at the start, then spread over the period: module i a fraction i/n later.
                self.due[number] = now + self.every * (1 + index / len(numbers) if number not in self.data else 1)
                self.data[number] = self.read_module(number)

    def read_module(self, number: int) -> ConsoleData:
        if number not in self.infos:
            info = self.ask(f"info {number}")
            self.infos[number] = info if isinstance(info, DeviceInfo) else None
        cells, soh, stat = (self.ask(f"{command} {number}") for command in ("bat", "soh", "stat"))
        data = ConsoleData(time.time_ns())
        if isinstance(cells, CellTable) and not cells.unreadable:
            flags = [c.balancing for c in cells.cells]
            data.balancing = () if None in flags else tuple(bool(flag) for flag in flags)  # no BAL column: unknown
            temperatures = [c.temperature for c in cells.cells]
            data.cell_temperatures = tuple(t for t in temperatures if t is not None)
            voltages = [c.voltage for c in cells.cells]
            data.cell_voltages = () if None in voltages else tuple(v for v in voltages if v is not None)
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

    def identity(self, number: int) -> Identity:
        """Who module `number` is by its `info N`: the barcode is the serial RS485 gives as 0x93. Where `info N`
        was refused, the `Barcode` and `DevType` its `pwr` row has on Pytes V5."""
        info = self.infos.get(number)
        if info is None:
            row = self.rows.get(number)
            return Identity() if row is None else Identity(row.model, serial=row.serial)
        return Identity(info.model, info.manufacturer, info.serial, info.main_software_version)

    def same_module(self, module: ModuleReading) -> bool:
        """The console's module N is RS485's module N: the serials match (or one side gives none)."""
        console, rs485 = self.identity(module.module).serial, module.identity.serial
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
