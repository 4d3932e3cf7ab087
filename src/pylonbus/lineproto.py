"""The C daemon's InfluxDB line protocol (`Battery,Module=N …`) and its change filter, byte-compatible."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .protocol.results import PackAnalog

if TYPE_CHECKING:
    from .service.reading import Reading

USABLE_PERCENT = 95


def _trunc_celsius(temperature: float) -> int:
    """Whole °C truncated toward zero, as the C program's integer division of (raw - 2731) / 10."""
    tenths = round(temperature * 10)
    return tenths // 10 if tenths >= 0 else -(-tenths // 10)


def design_voltage(pack: PackAnalog) -> int:
    # The C program always uses 48 V; 8-cell 24 V modules (UP2500) get 24 V so that kWH is right for them.
    return 24 if len(pack.cell_voltages) <= 8 else 48


def escape_tag(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def battery_line(module: int, pack: PackAnalog, timestamp_ns: int, group: int = 0) -> str:
    """One line: `Battery,Module=N i=…,u=…,AH=…i,kWH=…,u0=…,temp_bms=…i,temp_1=…i,…,CycleCount=…i TS`.
    Group 0 keeps the C program's single tag; other groups add `Group=g`."""
    capacity_mah = round(pack.total_capacity * 1000)
    kwh = capacity_mah * USABLE_PERCENT // 100 * design_voltage(pack) / 1e6
    fields = [
        f"i={pack.current:.1f}",
        f"u={pack.voltage:.2f}",
        f"AH={round(pack.remaining_capacity * 1000)}i",
        f"kWH={kwh:.2f}",
    ]
    fields += [f"u{n}={v:.3f}" for n, v in enumerate(pack.cell_voltages)]
    for n, temperature in enumerate(pack.temperatures):
        fields.append(f"{'temp_bms' if n == 0 else f'temp_{n}'}={_trunc_celsius(temperature)}i")
    fields.append(f"CycleCount={pack.cycles}i")
    tags = f"Group={group},Module={module}" if group else f"Module={module}"
    return f"Battery,{tags} {','.join(fields)} {timestamp_ns}"


@dataclass(frozen=True)
class Snapshot:
    """What the change filter compares, in the wire's integer units."""

    voltage_mv: int
    current_da: int
    cells_mv: tuple[int, ...]
    temperatures_c: tuple[int, ...]

    @classmethod
    def of(cls, pack: PackAnalog) -> Snapshot:
        return cls(
            round(pack.voltage * 1000),
            round(pack.current * 10),
            tuple(round(v * 1000) for v in pack.cell_voltages),
            tuple(_trunc_celsius(t) for t in pack.temperatures),
        )


ZERO = Snapshot(0, 0, (), ())


def changed(new: Snapshot, last: Snapshot) -> bool:
    """The C filter: ΔU > 10 mV, ΔI > 0.2 A, current fell to 0, any Δcell > 4 mV, any whole °C changed."""
    if abs(new.voltage_mv - last.voltage_mv) > 10 or abs(new.current_da - last.current_da) > 2:
        return True
    if new.current_da == 0 and last.current_da != 0:
        return True
    if len(new.cells_mv) != len(last.cells_mv) or new.temperatures_c != last.temperatures_c:
        return True
    return any(abs(a - b) > 4 for a, b in zip(new.cells_mv, last.cells_mv, strict=True))


class LineProtocol:
    """The C program's batch for a reading: a line per module whose values passed the change filter (every
    online module with `every`); offline modules write nothing."""

    def __init__(self, every: bool = False) -> None:
        self.every = every
        self.last: dict[tuple[int, int], Snapshot] = {}  # by (group, module)

    def lines(self, reading: Reading) -> list[str]:
        out = []
        for module in reading.modules:
            if module.analog is None:
                continue
            key = (module.group, module.module)
            snapshot = Snapshot.of(module.analog)
            if self.every or changed(snapshot, self.last.get(key, ZERO)):
                out.append(battery_line(module.module, module.analog, reading.time_ns, module.group))
                self.last[key] = snapshot
        return out
