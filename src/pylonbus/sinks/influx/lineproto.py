"""The C daemon's InfluxDB line protocol (`Battery,Module=N …`) and its change filter, byte-compatible; and the
`full` schema (`pylontech_module`, `pylontech_stack`) in base units with readable names."""

from __future__ import annotations

import functools
import operator
import struct
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from ...protocol.families import DEFAULT

if TYPE_CHECKING:
    from ...protocol.pack import PackAnalog
    from ...readings.reading import Reading


USABLE_PERCENT = 95
_FLOAT32 = struct.Struct("f")


# A module's voltage and capacity take few values, and the struct round trip would cost a line 7 % of its time.
@functools.lru_cache(maxsize=4096)
def c_float_text(value: float, decimals: int) -> str:
    """`value` printed as the C program prints its `float` fields: rounded to IEEE single precision, then `%.Nf` of
    that promoted to double. `u` and `kWH` print differently from a double for some values (50165 mV: 50.17, not
    50.16); `i` and the cell voltages have fewer decimals than a float's error can reach, so they need no rounding."""
    single: float = _FLOAT32.unpack(_FLOAT32.pack(value))[0]
    return f"{single:.{decimals}f}"


def _trunc_celsius(temperature: float) -> int:
    """Whole °C truncated toward zero, as the C program's integer division of (raw - 2731) / 10."""
    tenths = round(temperature * 10)
    return tenths // 10 if tenths >= 0 else -(-tenths // 10)


def design_voltage(pack: PackAnalog) -> int:
    # The C program always uses 48 V; 8-cell 24 V modules (UP2500) get 24 V so that kWH is right for them.
    return 24 if len(pack.cell_voltages) <= 8 else 48


#: Line protocol has no escape for a line break: a control character in a tag would end the line and make the
#: rest a line of its own (a measurement named by the battery). The decoder refuses them; this guards every
#: other way a reading is made (a program that builds one).
_CONTROLS = {code: "\ufffd" for code in [*range(0x20), *range(0x7F, 0xA0)]}


def escape_tag(text: str) -> str:
    text = text.translate(_CONTROLS)
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def battery_line(
    module: int,
    pack: PackAnalog,
    timestamp_ns: int,
    group: int = 0,
    tags: str = "",
    temperatures_c: tuple[int, ...] | None = None,
) -> str:
    """One line: `Battery,Module=N i=…,u=…,AH=…i,kWH=…,u0=…,temp_bms=…i,temp_1=…i,…,CycleCount=…i TS`.
    Group 0 keeps the C program's single tag; other groups add `Group=g`; `tags` (`,site=house`) follow.
    `temperatures_c`: the pack's whole °C where the change filter's snapshot has them already."""
    capacity_mah = round(pack.total_capacity * 1000)
    kwh = capacity_mah * USABLE_PERCENT // 100 * design_voltage(pack) / 1e6
    series = f"Group={group},Module={module}" if group else f"Module={module}"
    return _line_format(len(pack.cell_voltages), len(pack.temperatures)) % (
        series + tags,
        pack.current,
        c_float_text(round(pack.voltage * 1000) / 1000, 2),
        round(pack.remaining_capacity * 1000),
        c_float_text(kwh, 2),
        *pack.cell_voltages,
        *(temperatures_c if temperatures_c is not None else [_trunc_celsius(t) for t in pack.temperatures]),
        pack.cycles,
        timestamp_ns,
    )


@functools.lru_cache(maxsize=64)
def _line_format(cells: int, temperatures: int) -> str:
    """The `%` format of a line with this many cells and temperatures: one formatting call a line, not one a
    field (a third of the time of a line)."""
    fields = ["i=%.1f", "u=%s", "AH=%di", "kWH=%s"]
    fields += [f"u{n}=%.3f" for n in range(cells)]
    fields += [f"{'temp_bms' if n == 0 else f'temp_{n}'}=%di" for n in range(temperatures)]
    fields.append("CycleCount=%di")
    return f"Battery,%s {','.join(fields)} %d"


class Snapshot(NamedTuple):
    """What the change filter compares, in the wire's integer units. A named tuple, not a dataclass: this
    module is imported at start-up, and dataclasses cost pylon2influx --version 4 ms."""

    voltage_mv: int
    current_da: int
    cells_mv: tuple[int, ...]
    temperatures_c: tuple[int, ...]

    @classmethod
    def of(cls, pack: PackAnalog) -> Snapshot:
        return cls(
            round(pack.voltage * 1000),
            round(pack.current * 10),
            tuple([round(v * 1000) for v in pack.cell_voltages]),  # from a list: faster than from a generator
            tuple(map(_trunc_celsius, pack.temperatures)),  # map: no frame of a comprehension
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
    # map() over the pairs, not a generator (15 cells: 1.8 -> 1.5 us), on every module every cycle.
    return max(map(abs, map(operator.sub, new.cells_mv, last.cells_mv)), default=0) > 4


def _field(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    return repr(float(value))


_TAGS_AND_TEXT = frozenset(
    {"time", "bms", "group", "module", "serial", "model", "manufacturer", "firmware", "error", "modules", "extras"}
)


def _flat(doc: dict[str, Any]) -> dict[str, Any]:
    """A module or stack document as line-protocol fields: lists numbered from 1 (`cell_1`), alarms as
    `alarm_<name>` booleans and the raw status bytes as integers; missing values left out."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in _TAGS_AND_TEXT:
            continue
        if isinstance(value, list):
            item = _ITEMS.get(key, key)
            out.update((f"{item}_{n}", v) for n, v in enumerate(value, 1))
        elif isinstance(value, dict):
            out.update((name if name.startswith("status") else f"alarm_{name}", v) for name, v in value.items())
        elif value is not None:
            out[key] = value
    return out


_ITEMS = {"cells": "cell", "temperatures": "temperature"}  # a list's field name per item (an extra's: its own)


def _line(measurement: str, tags: str, doc: dict[str, Any], time_ns: int) -> str:
    fields = ",".join(f"{key}={_field(value)}" for key, value in _flat(doc).items())
    return f"{measurement},{tags} {fields} {time_ns}"


def full_lines(reading: Reading, extra: str = "") -> list[str]:
    """The `full` schema: a `pylontech_module` line per module (tags group, module, serial; an offline one
    writes `online=false` only) and a `pylontech_stack` line per group; another family's with its `bms` tag
    and its extra fields; `extra` tags (`,site=house`) follow."""
    from ...readings.documents import module_state, stack_state
    from ...readings.reading import family_labels

    out = []
    for stack in reading.stacks:
        family = "".join(f"{key}={escape_tag(value)}," for key, value in family_labels(stack.bms).items())
        for module in stack.modules:
            tags = f"{family}group={module.group},module={module.module}"
            if module.identity.serial:
                tags += f",serial={escape_tag(module.identity.serial)}"
            doc = module_state(module, reading.time_ns)
            out.append(_line("pylontech_module", tags + extra, doc, reading.time_ns))
        doc = stack_state(stack, reading.time_ns)
        out.append(_line("pylontech_stack", f"{family}group={stack.group}{extra}", doc, reading.time_ns))
    return out


class LineProtocol:
    """The batch for a reading. Schema `c` (the C program's): a line per module whose values passed the change
    filter (every online module with `every`), offline modules write nothing. Schema `full`: every module and
    stack every cycle (`full_lines`). `both`: the two.

    As in the C program, the filter compares with the values the database last accepted: with `confirmed`, a line
    counts only once `accepted` is called with a body that holds it (a batch refused with HTTP 400 never does, so
    its values are written again); without, a line counts when it is made (standard output)."""

    def __init__(
        self, every: bool = False, schema: str = "c", confirmed: bool = False, site: str | None = None
    ) -> None:
        self.every = every
        self.schema = schema
        self.confirmed = confirmed
        self.tags = f",site={escape_tag(site)}" if site else ""  # where many sites write to one database
        self.last: dict[tuple[int, int], Snapshot] = {}  # by (group, module): what the database has
        # The newest line of each module not yet accepted, by its series and timestamp (b"Battery,Module=1",
        # b"1700000000000000000"): one a module, so an outage does not grow it; a line older than that one being
        # accepted leaves the filter on the older reference, which can only write more, never less.
        self._unconfirmed: dict[bytes, tuple[bytes, tuple[int, int], Snapshot]] = {}
        self._lock = threading.Lock()  # `accepted` runs on the shipper's thread

    def lines(self, reading: Reading) -> list[str]:
        out = self.c_lines(reading) if self.schema != "full" else []
        return out + full_lines(reading, self.tags) if self.schema != "c" else out

    def c_lines(self, reading: Reading) -> list[str]:
        out = []
        with self._lock:
            for module in reading.modules:
                if module.analog is None or module.bms != DEFAULT:  # the C program's lines are Pylontech's
                    continue
                key = (module.group, module.module)
                snapshot = Snapshot.of(module.analog)
                if self.every or changed(snapshot, self.last.get(key, ZERO)):
                    line = battery_line(
                        module.module, module.analog, reading.time_ns, module.group, self.tags, snapshot.temperatures_c
                    )
                    out.append(line)
                    if self.confirmed:
                        series, _, _ = line.partition(" ")
                        self._unconfirmed[series.encode()] = (b"%d" % reading.time_ns, key, snapshot)
                    else:
                        self.last[key] = snapshot
        return out

    def accepted(self, body: bytes) -> None:
        """The database accepted `body` (lines joined by newlines, ours or an earlier run's)."""
        with self._lock:
            # While a backlog drains, the lines waiting are in the newest batches: a search for their timestamps
            # skips older requests at memory speed instead of splitting thousands of lines.
            stamps = {b" " + stamp for stamp, _, _ in self._unconfirmed.values()}
            if not any(stamp in body for stamp in stamps):
                return
            for line in body.split(b"\n"):
                series = line[: line.find(b" ")]
                entry = self._unconfirmed.get(series)
                if entry is not None and line.endswith(b" " + entry[0]):
                    del self._unconfirmed[series]
                    self.last[entry[1]] = entry[2]
