"""What one poll cycle learnt, typed and in V, A, W, Ah, % and °C, with what is derived from it: the unit every
output (line protocol, MQTT, metrics) is built from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..protocol.families import DEFAULT
from ..protocol.pack import PackAlarm, PackAnalog
from .energy import Energy


def named(bms: str, text: str) -> str:
    """`text` as a key of a stack or module of family `bms`: the default family's keys stay as they always were."""
    return text if bms == DEFAULT else f"{bms} {text}"


def group_path(bms: str, group: int) -> str:
    """A group as a topic level (`0`), below its family's name for another family (`seplos/0`)."""
    return str(group) if bms == DEFAULT else f"{bms}/{group}"


def family_labels(bms: str) -> dict[str, str]:
    """The `bms` tag or label of a family's series; none for the default family, whose series stay as they were."""
    return {} if bms == DEFAULT else {"bms": bms}


@dataclass(slots=True)
class Identity:
    """What a module says about itself, read once when it is first seen and again when it comes back."""

    model: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    firmware: str | None = None  # main-line version (0x96)


@dataclass(slots=True)
class ModuleReading:
    """One module in one cycle. `analog` is None when it gave no data (`error` says why): it is offline."""

    group: int
    module: int
    analog: PackAnalog | None
    alarm: PackAlarm | None = None
    identity: Identity = field(default_factory=Identity)
    error: str | None = None
    energy: Energy = field(default_factory=Energy)
    bms: str = DEFAULT  # the family's name

    @property
    def name(self) -> str:
        """What its energy counters are kept under: the serial, which stays when a pack moves, else the address."""
        return self.identity.serial or named(self.bms, f"{self.group}/{self.module}")

    @property
    def online(self) -> bool:
        return self.analog is not None

    @property
    def power(self) -> float | None:
        return None if self.analog is None else self.analog.power

    def _extreme(self, pick: Callable[[tuple[float, ...]], float]) -> tuple[float | None, int | None]:
        """The lowest or highest cell voltage and its number (from 1)."""
        if self.analog is None:
            return None, None
        cells = self.analog.cell_voltages
        value = pick(cells)
        return value, cells.index(value) + 1

    # Four names for the two ends of _extreme: what the documents, metrics and the page show.
    @property
    def cell_min(self) -> float | None:
        return self._extreme(min)[0]

    @property
    def cell_max(self) -> float | None:
        return self._extreme(max)[0]

    @property
    def cell_min_index(self) -> int | None:
        return self._extreme(min)[1]

    @property
    def cell_max_index(self) -> int | None:
        return self._extreme(max)[1]

    @property
    def cell_mean(self) -> float | None:
        if self.analog is None:
            return None
        cells = self.analog.cell_voltages
        return round(sum(cells) / len(cells), 4)

    @property
    def cell_delta(self) -> float | None:
        if self.analog is None:
            return None
        return round(max(self.analog.cell_voltages) - min(self.analog.cell_voltages), 3)


@dataclass(slots=True)
class StackReading:
    """The modules of one group in one cycle, and the stack's totals over those online."""

    group: int
    modules: list[ModuleReading]
    energy: Energy = field(default_factory=Energy)
    bms: str = DEFAULT  # the family of every module of the group

    @property
    def online(self) -> list[PackAnalog]:
        return [m.analog for m in self.modules if m.analog is not None]

    @property
    def modules_online(self) -> int:
        return len(self.online)

    @property
    def voltage(self) -> float | None:
        """Mean module voltage: the modules of a group are in parallel."""
        online = self.online
        return round(sum(a.voltage for a in online) / len(online), 3) if online else None

    @property
    def current(self) -> float | None:
        online = self.online
        return round(sum(a.current for a in online), 1) if online else None

    @property
    def power(self) -> float | None:
        online = self.online
        return round(sum(a.power for a in online), 1) if online else None

    @property
    def soc(self) -> float | None:
        """Capacity-weighted: remaining over total of the modules online, in %."""
        total = sum(a.total_capacity for a in self.online)
        return round(100 * sum(a.remaining_capacity for a in self.online) / total, 1) if total else None

    @property
    def cell_delta(self) -> float | None:
        """Highest cell minus lowest cell across the stack, in V."""
        cells = [v for a in self.online for v in a.cell_voltages]
        return round(max(cells) - min(cells), 3) if cells else None


@dataclass(slots=True)
class Reading:
    """One cycle: when it started (ns since the epoch, and s on the monotonic clock, which no clock step moves),
    each group polled, how long the cycle took (s) and the failed reads since the start of the process, by reason."""

    time_ns: int
    stacks: list[StackReading]
    duration: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    monotonic: float = 0.0
    documents: dict[str, Any] | None = field(default=None, repr=False)  # made once by state.reading_state

    @property
    def modules(self) -> list[ModuleReading]:
        return [module for stack in self.stacks for module in stack.modules]
