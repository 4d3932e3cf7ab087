"""What one poll cycle learnt, typed and in V, A, W, Ah, % and °C, with what is derived from it: the unit every
output (line protocol, MQTT, metrics) is built from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol.families import DEFAULT
from ..protocol.pack import TOTAL_INCREASING, PackAlarm, PackAnalog, Quantity
from .energy import Energy

if TYPE_CHECKING:  # the console's results are loaded only where a console is read
    from ..console.results import ModuleSummary


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
    """Model name (0x51), None if the module did not say."""
    manufacturer: str | None = None
    """Manufacturer name (0x51), None if the module did not say."""
    serial: str | None = None
    """Serial number (0x93), None if the module did not answer it."""
    firmware: str | None = None
    """Main-line firmware version (0x96) as text, None if the module did not answer it."""


@dataclass(slots=True)
class ConsoleData:
    """What the module's RS232 console adds to its reading (`pylon2influx --console-device`), as last read
    (`time_ns`, ns since the epoch): read every --console-every seconds, not every cycle."""

    time_ns: int
    soh: float | None = None  # %, where the firmware's `stat` prints it
    balancing: tuple[bool, ...] = ()  # a cell each, in the order of `cells`
    cell_temperatures: tuple[float, ...] = ()  # °C, a cell each
    cell_voltages: tuple[float, ...] = ()  # V, a cell each (`bat N`): a module's cells with the console alone
    lifetime: dict[str, int] = field(default_factory=dict)  # `stat` counters, snake_case (`cycles`, `bat_ov_times`)

    @property
    def balancing_count(self) -> int:
        return sum(self.balancing)

    def quantities(self) -> list[Quantity]:
        """Its values as extra quantities, the way a family's are listed (`pack.extras`), so that every sink
        shows them as it shows those: SOH, the balancing count, each cell's temperature, the counters."""
        found = [] if self.soh is None else [Quantity("soh", self.soh, "%", "state of health")]
        if self.balancing:  # empty where the firmware's `bat` has no BAL column
            found.append(Quantity("balancing_count", self.balancing_count, "", "cells balancing"))
        found += [
            Quantity(f"cell_{n}_temperature", value, "°C", f"cell {n} temperature")
            for n, value in enumerate(self.cell_temperatures, 1)
        ]
        found += [
            Quantity(f"lifetime_{name}", value, "", f"lifetime {name.replace('_', ' ')}", TOTAL_INCREASING)
            for name, value in self.lifetime.items()
        ]
        return found


def row_quantities(row: ModuleSummary) -> list[Quantity]:
    """What a `pwr` row gives beyond the values every reading has, as extra quantities (see
    `ConsoleData.quantities`): the module's own temperature and its sensors' extremes, where printed."""
    found = [
        Quantity("module_temperature", row.temperature, "°C", "module temperature"),
        Quantity("min_temperature", row.min_temperature, "°C", "lowest cell temperature"),
        Quantity("max_temperature", row.max_temperature, "°C", "highest cell temperature"),
    ]
    return [q for q in found if q.value is not None]


@dataclass(slots=True)
class ModuleReading:
    """One module in one cycle. `analog` is None when it gave no data (`error` says why): it is offline."""

    group: int
    """The group number, 0-15."""
    module: int
    """The module number in its group, 1-14."""
    analog: PackAnalog | None
    """Its 0x42 values (V, A, °C, Ah), None when it gave none: it is offline."""
    alarm: PackAlarm | None = None
    """Its 0x44 alarm states, None when they could not be read."""
    identity: Identity = field(default_factory=Identity)
    """Model, manufacturer, serial and firmware, read when the module is first seen and when it comes back."""
    error: str | None = None
    """Why the module gave no data, None when it did."""
    energy: Energy = field(default_factory=Energy)
    """Its energy counters: charged and discharged in Ah and kWh since they began."""
    bms: str = DEFAULT
    """The name of its BMS family (`--bms`)."""
    console: ConsoleData | None = None
    """What its RS232 console said last (`pylon2influx --console-device`), None without a console."""
    summary: ModuleSummary | None = None
    """Its row of the console's `pwr`, when the console alone is read (`--console-device` without `-d`): what
    the module gives every cycle then, in place of `analog`."""

    @property
    def name(self) -> str:
        """What its energy counters are kept under: the serial, which stays when a pack moves, else the address."""
        return named(self.bms, self.identity.serial or f"{self.group}/{self.module}")

    @property
    def online(self) -> bool:
        """True when the module gave its analog values (or its console its `pwr` row) this cycle."""
        return self.analog is not None or self.summary is not None

    @property
    def voltage(self) -> float | None:
        """Module voltage in V, None when offline."""
        if self.analog is not None:
            return self.analog.voltage
        return None if self.summary is None else self.summary.voltage

    @property
    def current(self) -> float | None:
        """Current in A (charge positive); None when offline or where the console's table has no `Curr`."""
        if self.analog is not None:
            return self.analog.current
        return None if self.summary is None else self.summary.current

    @property
    def power(self) -> float | None:
        """Power in W (voltage × current): positive while charging."""
        if self.analog is not None:
            return self.analog.power
        voltage, current = self.voltage, self.current
        return None if voltage is None or current is None else round(voltage * current, 3)

    @property
    def cell_voltages(self) -> tuple[float, ...]:
        """Each cell's voltage in V: RS485's this cycle, else what the console's `bat N` said last."""
        if self.analog is not None:
            return self.analog.cell_voltages
        return self.console.cell_voltages if self.console is not None and self.summary is not None else ()

    @property
    def cell_temperatures(self) -> tuple[float, ...]:
        """The sensors on the cells in °C: RS485's this cycle, else what the console's `bat N` said last."""
        if self.analog is not None:
            return self.analog.cell_temperatures
        return self.console.cell_temperatures if self.console is not None and self.summary is not None else ()

    def _extreme(self, pick: Callable[[tuple[float, ...]], float]) -> tuple[float | None, int | None]:
        """The lowest or highest cell voltage and its number (from 1): from the cells, or from the console's
        `pwr` row (`Vlow`/`Vhigh`, numbered from 0 under `Vlow.Id`/`Vhigh.Id` where the firmware prints them)."""
        if self.analog is not None:
            cells = self.analog.cell_voltages
            value = pick(cells)
            return value, cells.index(value) + 1
        row = self.summary
        if row is None:
            return None, None
        if pick is min:
            extreme, index = row.min_cell_voltage, row.min_cell_voltage_index
        else:
            extreme, index = row.max_cell_voltage, row.max_cell_voltage_index
        return extreme, None if index is None else index + 1

    # Four names for the two ends of _extreme: what the documents, metrics and the page show.
    @property
    def cell_min(self) -> float | None:
        """Lowest cell voltage in V, None when offline."""
        analog = self.analog  # (the stack's cell_delta asks each module: no index needed)
        return min(analog.cell_voltages) if analog is not None else self._extreme(min)[0]

    @property
    def cell_max(self) -> float | None:
        """Highest cell voltage in V, None when offline."""
        analog = self.analog
        return max(analog.cell_voltages) if analog is not None else self._extreme(max)[0]

    @property
    def cell_min_index(self) -> int | None:
        """Number (from 1) of the lowest cell, None when offline or not printed."""
        return self._extreme(min)[1]

    @property
    def cell_max_index(self) -> int | None:
        """Number (from 1) of the highest cell, None when offline or not printed."""
        return self._extreme(max)[1]

    @property
    def cell_mean(self) -> float | None:
        """Mean cell voltage in V; None when offline, and with the console alone (its `pwr` gives no mean)."""
        if self.analog is None:
            return None
        cells = self.analog.cell_voltages
        return round(sum(cells) / len(cells), 4)

    @property
    def cell_delta(self) -> float | None:
        """Highest cell voltage minus the lowest, in V; None when offline."""
        return self.extremes()[4]

    def extremes(self) -> tuple[float | None, int | None, float | None, int | None, float | None]:
        """cell_min, cell_min_index, cell_max, cell_max_index and cell_delta at once (each module document
        has them all)."""
        low, low_index = self._extreme(min)
        high, high_index = self._extreme(max)
        delta = None if low is None or high is None else round(high - low, 3)
        return low, low_index, high, high_index, delta


@dataclass(slots=True)
class StackReading:
    """The modules of one group in one cycle, and the stack's totals over those online."""

    group: int
    """The group number, 0-15."""
    modules: list[ModuleReading]
    """Every known module of the group, online or not."""
    energy: Energy = field(default_factory=Energy)
    """The group's energy counters: charged and discharged in Ah and kWh."""
    bms: str = DEFAULT
    """The BMS family of every module of the group."""

    @property
    def online(self) -> list[PackAnalog]:
        """The analog values of the modules online over RS485."""
        return [m.analog for m in self.modules if m.analog is not None]

    @property
    def modules_online(self) -> int:
        """How many modules gave their values this cycle."""
        return sum(m.online for m in self.modules)

    def _figures(self, pick: Callable[[ModuleReading], float | None]) -> list[float] | None:
        """A figure of each module online; None when none is online or one of them lacks it (a stack total
        is never made of some modules only)."""
        values = [pick(m) for m in self.modules if m.online]
        return None if not values or None in values else [v for v in values if v is not None]

    @property
    def voltage(self) -> float | None:
        """Mean module voltage in V (the modules of a group are in parallel), None when no module is online."""
        values = self._figures(lambda m: m.voltage)
        return None if values is None else round(sum(values) / len(values), 3)

    @property
    def current(self) -> float | None:
        """Sum of the module currents in A (charge positive), None when no module is online."""
        values = self._figures(lambda m: m.current)
        return None if values is None else round(sum(values), 1)

    @property
    def power(self) -> float | None:
        """Power in W (voltage × current): positive while charging."""
        values = self._figures(lambda m: m.power)
        return None if values is None else round(sum(values), 1)

    @property
    def soc(self) -> float | None:
        """Capacity-weighted: remaining over total of the modules online, in %. None where a module online has
        no capacities (the console's `pwr` prints none: an unweighted mean of a mixed stack would be wrong)."""
        if any(m.online and m.analog is None for m in self.modules):
            return None
        total = sum(a.total_capacity for a in self.online)
        return round(100 * sum(a.remaining_capacity for a in self.online) / total, 1) if total else None

    @property
    def cell_delta(self) -> float | None:
        """Highest cell minus lowest cell across the stack, in V."""
        lows, highs = self._figures(lambda m: m.cell_min), self._figures(lambda m: m.cell_max)
        return None if lows is None or highs is None else round(max(highs) - min(lows), 3)


@dataclass(slots=True)
class Reading:
    """One cycle: when it started (ns since the epoch, and s on the monotonic clock, which no clock step moves),
    each group polled, how long the cycle took (s) and the failed reads since the start of the process, by reason."""

    time_ns: int
    """When the cycle started, in ns since the epoch (stamped from `monotonic` if the clock was not yet set)."""
    stacks: list[StackReading]
    """Each group polled."""
    duration: float = 0.0
    """How long the cycle took, in s."""
    errors: dict[str, int] = field(default_factory=dict)
    """Failed module reads since the process started, by reason: `timeout`, `port`, `checksum`, `rtn`,
    `implausible`, `decode`."""
    documents: dict[str, Any] | None = field(default=None, repr=False)
    """The reading as the sinks' JSON documents, made once by the first sink that needs them (else None)."""
    monotonic: float = 0.0
    """When the cycle started on the monotonic clock, in s: what the energy counters integrate over."""

    @property
    def modules(self) -> list[ModuleReading]:
        """Every module of every group."""
        return [module for stack in self.stacks for module in stack.modules]
