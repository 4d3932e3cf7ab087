"""A battery stack that evolves plausibly over time: groups of modules built from model presets.

Deterministic for a seed: the load profile is a function of simulated time, and the state only moves when
`Stack.advance` is called with a later time. Values are kept at wire resolution so that what a client
decodes equals what the model holds."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..protocol.families.pylontech.family import FAMILY as PYLONTECH

# The results the simulator's modules hold values for: the same types the layouts decode.
from ..protocol.families.pylontech.results import (
    AlarmInfo,
    AnalogData,
    ChargeDischargeInfo,
    ChargeStatus,
    FirmwareInfo,
    ManufacturerInfo,
    PackAlarm,
    PackAnalog,
    SerialNumber,
    Status1,
    Status2,
    Status3,
    SystemParameters,
)
from ..protocol.family import Family
from ..protocol.fields import AlarmState


@dataclass(frozen=True)
class Preset:
    """What distinguishes one model on the bus (Pylontech's here; each family's responder has its own)."""

    name: str
    device_name: str
    cells: int
    temperatures: int
    capacity: float  # Ah
    user_defined_items: int
    software_version: tuple[int, ...]
    alarm_extra_bytes: int  # C-series firmwares append a byte to the 0x44 reply
    current_limit: float  # A, the 0x92 charge (and negated discharge) limit
    protection_current: float  # A, the 0x47 limits


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("US2000B", "US2KBPL", 15, 5, 50.0, 2, (2, 3), 0, 25.0, 100.0),
        Preset("US2000C", "US2000C", 15, 5, 50.0, 2, (2, 8), 1, 25.0, 100.0),
        Preset("US3000C", "US3000C", 15, 5, 74.0, 4, (2, 8), 1, 37.0, 102.0),
        Preset("US5000", "US5000", 16, 6, 100.0, 4, (1, 6), 1, 80.0, 100.0),
        Preset("UP2500", "UP2500", 8, 5, 111.0, 4, (1, 4), 0, 55.5, 100.0),
    )
}

# Open-circuit voltage of an LFP cell against state of charge.
_OCV_SOC = (0.0, 0.05, 0.10, 0.20, 0.40, 0.60, 0.80, 0.95, 1.0)
_OCV_VOLT = (2.90, 3.10, 3.20, 3.25, 3.29, 3.30, 3.33, 3.38, 3.45)
CELL_HIGH, CELL_LOW, CELL_UNDER = 3.65, 3.05, 2.9
TEMP_HIGH, TEMP_LOW = 50.0, 0.0
CELL_RESISTANCE = 0.0006  # ohm per cell, for the voltage sag under load


def field_values(obj: Any) -> dict[str, Any]:
    """The fields of a dataclass by name, not copied, to build a subclass or sibling from them."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def open_circuit_voltage(soc: float) -> float:
    i = min(max(bisect.bisect_right(_OCV_SOC, soc), 1), len(_OCV_SOC) - 1)
    s0, s1, v0, v1 = _OCV_SOC[i - 1], _OCV_SOC[i], _OCV_VOLT[i - 1], _OCV_VOLT[i]
    return v0 + (v1 - v0) * (min(max(soc, 0.0), 1.0) - s0) / (s1 - s0)


@dataclass
class Module:
    """One battery module and its changing state."""

    preset: Preset
    group: int
    number: int
    address: int  # the ADR it answers at, by its family's numbering
    serial: str
    soc: float
    cycles: int
    cell_offsets: tuple[float, ...]  # V, manufacturing spread
    ambient: float  # °C
    load_share: float
    current: float = 0.0
    temperatures: list[float] = field(default_factory=list)
    discharged: float = 0.0  # Ah since the last cycle was counted
    off: bool = False  # turned off by 0x95: silent until the simulator restarts
    limits: ChargeDischargeInfo | None = None  # imposed by 0x94
    raised: set[str] = field(default_factory=set)  # alarms injected (`--alarm`), raised whatever the values

    def cell_voltages(self) -> tuple[float, ...]:
        base = open_circuit_voltage(self.soc) + self.current * CELL_RESISTANCE * 100 / self.preset.capacity
        return tuple(round(base + offset, 3) for offset in self.cell_offsets)

    def pack(self) -> PackAnalog:
        cells = self.cell_voltages()
        capacity = self.preset.capacity
        return PackAnalog(
            cell_voltages=cells,
            temperatures=tuple(round(t, 1) for t in self.temperatures),
            current=round(self.current, 1),
            voltage=round(sum(cells), 3),
            remaining_capacity=round(capacity * self.soc, 3),
            user_defined_items=self.preset.user_defined_items,
            total_capacity=capacity,
            cycles=self.cycles,
        )

    def centi(self) -> PackAnalog:
        """The values of `pack` at the 10 mV, 10 mA and 10 mAh the Pylontech clones send."""
        cells = self.cell_voltages()
        return PackAnalog(
            cell_voltages=cells,
            temperatures=tuple(round(t, 1) for t in self.temperatures),
            current=round(self.current, 2),
            voltage=round(sum(cells), 2),
            remaining_capacity=round(self.preset.capacity * self.soc, 2),
            user_defined_items=self.preset.user_defined_items,
            total_capacity=self.preset.capacity,
            cycles=self.cycles,
        )

    def analog(self, info_flag: int = 0) -> AnalogData:
        return AnalogData(**field_values(self.pack()), info_flag=info_flag, command_value=self.address)

    def pack_alarm(self) -> PackAlarm:
        pack = self.pack()
        cells = tuple(_state(v, CELL_LOW, CELL_HIGH) for v in pack.cell_voltages)
        temps = tuple(_state(t, TEMP_LOW, TEMP_HIGH) for t in pack.temperatures)
        params = self.parameters()
        status1 = Status1(0)
        if pack.voltage > params.module_high_voltage_limit:
            status1 |= Status1.MODULE_OVER_VOLTAGE
        if pack.voltage < params.module_under_voltage_limit:
            status1 |= Status1.MODULE_UNDER_VOLTAGE
        if min(pack.cell_voltages) < CELL_UNDER:
            status1 |= Status1.CELL_UNDER_VOLTAGE
        if pack.current > params.charge_current_limit:
            status1 |= Status1.CHARGE_OVER_CURRENT
        if pack.current < params.discharge_current_limit:
            status1 |= Status1.DISCHARGE_OVER_CURRENT
        if max(pack.temperatures) > TEMP_HIGH:
            status1 |= Status1.CHARGE_OVER_TEMPERATURE if pack.current > 0 else Status1.DISCHARGE_OVER_TEMPERATURE
        status3 = Status3(0)
        if pack.current > 0.1:
            status3 |= Status3.EFFECTIVE_CHARGE_CURRENT
        elif pack.current < -0.1:
            status3 |= Status3.EFFECTIVE_DISCHARGE_CURRENT
        if self.soc >= 1.0:
            status3 |= Status3.FULLY_CHARGED
        for name in self.raised:
            if name in _STATUS1_ALARMS:
                status1 |= _STATUS1_ALARMS[name]
        states = dict(_INJECTED[name] for name in self.raised if name in _INJECTED)
        if "cell_voltage" in states:
            cells = (states["cell_voltage"], *cells[1:])
        if "temperature" in states:
            temps = (states["temperature"], *temps[1:])
        return PackAlarm(
            cell_states=cells,
            temperature_states=temps,
            charge_current_state=states.get(
                "charge_current", _state(pack.current, -math.inf, params.charge_current_limit)
            ),
            module_voltage_state=states.get(
                "module_voltage",
                _state(pack.voltage, params.module_low_voltage_limit, params.module_high_voltage_limit),
            ),
            discharge_current_state=states.get(
                "discharge_current", _state(pack.current, params.discharge_current_limit, math.inf)
            ),
            status1=status1,
            status2=Status2.CHARGE_MOSFET | Status2.DISCHARGE_MOSFET | Status2.USING_BATTERY_POWER,
            status3=status3,
            status4=0,
            status5=0,
        )

    def alarm(self) -> AlarmInfo:
        extra = bytes(self.preset.alarm_extra_bytes)
        return AlarmInfo(**field_values(self.pack_alarm()), data_flag=0, command_value=self.address, extra=extra)

    def parameters(self) -> SystemParameters:
        cells = self.preset.cells
        limit = self.preset.protection_current
        return SystemParameters(
            info_flag=0x11,
            cell_high_voltage_limit=CELL_HIGH,
            cell_low_voltage_limit=CELL_LOW,
            cell_under_voltage_limit=CELL_UNDER,
            charge_high_temperature_limit=61.0,
            charge_low_temperature_limit=-11.0,
            charge_current_limit=limit,
            module_high_voltage_limit=round(3.6 * cells, 3),
            module_low_voltage_limit=round(3.0667 * cells, 1),
            module_under_voltage_limit=round(2.9667 * cells, 1),
            discharge_high_temperature_limit=61.0,
            discharge_low_temperature_limit=-11.0,
            discharge_current_limit=-limit,
        )

    def charge_discharge(self) -> ChargeDischargeInfo:
        if self.limits is not None:
            return self.limits
        status = ChargeStatus(0)
        if self.soc < 1.0:
            status |= ChargeStatus.CHARGE_ENABLE
        if self.soc > 0.05:
            status |= ChargeStatus.DISCHARGE_ENABLE
        if self.soc < 0.09:
            status |= ChargeStatus.CHARGE_IMMEDIATELY_1
        cells = self.preset.cells
        return ChargeDischargeInfo(
            command_value=self.address,
            charge_voltage_limit=round(3.55 * cells, 2),
            discharge_voltage_limit=round(3.1334 * cells, 1),
            charge_current_limit=self.preset.current_limit,
            discharge_current_limit=-self.preset.current_limit,
            status=status,
        )

    def manufacturer(self) -> ManufacturerInfo:
        return ManufacturerInfo(self.preset.device_name, self.preset.software_version, "Pylon")

    def serial_number(self) -> SerialNumber:
        return SerialNumber(self.address, self.serial)

    def firmware(self) -> FirmwareInfo:
        return FirmwareInfo(self.address, self.preset.software_version, (0, 6, 5))

    def step(self, current: float, dt: float) -> None:
        """Move the state on by dt seconds at the given current (A, charge positive)."""
        capacity = self.preset.capacity
        if (current > 0 and self.soc >= 1.0) or (current < 0 and self.soc <= 0.02):
            current = 0.0  # the BMS stops charge when full and discharge when empty
        self.current = current
        self.soc = min(max(self.soc + current * dt / 3600 / capacity, 0.0), 1.0)
        if current < 0:
            self.discharged -= current * dt / 3600
            if self.discharged >= capacity:
                self.discharged -= capacity
                self.cycles += 1
        heat = abs(current) / capacity * 8  # °C above ambient at a sustained 1 C
        weight = min(dt / 600, 1.0)  # thermal time constant of about ten minutes
        for i, temp in enumerate(self.temperatures):
            target = self.ambient + heat * (1.3 if i == 0 else 1.0) + 0.5 * i % 1.5
            self.temperatures[i] = temp + (target - temp) * weight


_SIDES = {"low": AlarmState.BELOW_LOWER_LIMIT, "high": AlarmState.ABOVE_UPPER_LIMIT}
#: Alarms the simulator can raise on demand: a value's state (name -> which state, to what) …
_INJECTED = {
    f"{part}_{side}": (part, state)
    for part in ("cell_voltage", "temperature", "module_voltage", "charge_current", "discharge_current")
    for side, state in _SIDES.items()
    if not (part.endswith("current") and side == "low")  # a current has an upper limit only
}
# … or a protection flag of status 1.
_STATUS1_ALARMS = {flag.name.lower(): flag for flag in Status1 if flag.name}
ALARM_NAMES = (*_INJECTED, *_STATUS1_ALARMS)


def _state(value: float, low: float, high: float) -> AlarmState:
    if value > high:
        return AlarmState.ABOVE_UPPER_LIMIT
    if value < low:
        return AlarmState.BELOW_LOWER_LIMIT
    return AlarmState.NORMAL


class Stack:
    """Groups of modules sharing one load profile, as on one RS485 bus."""

    def __init__(
        self,
        groups: dict[int, list[str | None]],
        *,
        seed: int = 0,
        frozen: bool = False,
        speed: float = 1.0,
        start: float = 0.0,
        presets: Mapping[str, Preset] = PRESETS,
        family: Family[Any, Any] = PYLONTECH,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed {speed} is negative; 0 holds the values, 1 is real time, 60 a minute a second")
        self.seed = seed
        self.family = family
        self.frozen = frozen
        self.speed = speed
        self.clock = start  # wall time of the last advance
        self.elapsed = 0.0  # simulated seconds since creation
        rng = random.Random(seed)
        self.modules: dict[int, Module] = {}
        for group, models in sorted(groups.items()):
            for number, model in enumerate(models, 1):
                if model is None:
                    continue  # an empty slot: modules after it keep their addresses
                module = _new_module(presets[model], group, number, family.address(group, number), rng)
                self.modules[module.address] = module
        self._phase = rng.uniform(0, 2 * math.pi)
        self.advance(start, force=True)

    @classmethod
    def parse(
        cls,
        spec: str,
        *,
        presets: Mapping[str, Preset] = PRESETS,
        family: Family[Any, Any] = PYLONTECH,
        **kwargs: float,
    ) -> Stack:
        """From `US3000C*3;US2000B,-,US2000C`: groups separated by `;` (group 0 first), modules by `,`,
        `-` for an address left empty; `-` alone is a bus without a battery (a line that only echoes). The
        models are those of `presets`, addressed as `family` numbers them."""
        groups: dict[int, list[str | None]] = {}
        named = False  # an address was written, if only as empty: an empty bus is asked for, not a slip
        parts = spec.split(";")
        max_group, max_module = family.max_group, family.max_module
        if len(parts) > max_group + 1:
            raise ValueError(
                f"stack '{spec}' has {len(parts)} groups; a bus holds at most {max_group + 1} (0-{max_group})"
            )
        for group, part in enumerate(parts):
            models: list[str | None] = []
            for item in filter(None, (s.strip() for s in part.split(","))):
                name, _, count = item.partition("*")
                preset = None if name.strip() == "-" else _preset_name(name.strip(), presets)
                try:
                    models += [preset] * (int(count) if count else 1)
                except ValueError:
                    raise ValueError(f"'{item}' in stack '{spec}': the count after '*' is not a number") from None
            if len(models) > max_module:
                raise ValueError(f"group {group} has {len(models)} modules; a group holds at most {max_module}")
            if any(models):
                groups[group] = models
            named = named or bool(models)
        if not named:
            raise ValueError(f"stack '{spec}' names no module")
        return cls(groups, presets=presets, family=family, **kwargs)  # type: ignore[arg-type]

    def raise_alarm(self, spec: str) -> None:
        """`[GROUP/]MODULE:NAME` (`2:cell_voltage_high`, `1/3:charge_over_temperature`): that module reports the
        alarm from now on, whatever its values."""
        where, _, name = spec.partition(":")
        if name not in ALARM_NAMES:
            raise ValueError(f"alarm {spec!r}: give [GROUP/]MODULE:NAME with NAME one of {', '.join(ALARM_NAMES)}")
        self._module_at(where, f"alarm {spec!r}").raised.add(name)

    def set_serial(self, spec: str) -> None:
        """`[GROUP/]MODULE:SERIAL`: that module sends SERIAL (any 16 latin-1 bytes, control characters too: a
        damaged or hostile BMS is simulated with it)."""
        where, colon, serial = spec.partition(":")
        if not colon or len(serial) > 16 or max(map(ord, serial), default=0) > 0xFF:
            raise ValueError(f"serial {spec!r}: give [GROUP/]MODULE:SERIAL, SERIAL at most 16 latin-1 characters")
        self._module_at(where, f"serial {spec!r}").serial = serial

    def _module_at(self, where: str, what: str) -> Module:
        group, _, number = where.rpartition("/")
        module = next(
            (m for m in self.modules.values() if str(m.number) == number and str(m.group) == (group or "0")),
            None,
        )
        if module is None:
            raise ValueError(f"{what}: no module {number} in group {group or 0} of this stack")
        return module

    def group_modules(self, group: int) -> list[Module]:
        return [m for m in self.modules.values() if m.group == group]

    def load(self, t: float) -> float:
        """Stack current in C-rate at simulated time t: a day of solar charge and evening discharge."""
        day = 2 * math.pi * t / 7200 + self._phase  # one compressed "day" every two hours
        return 0.35 * math.sin(day) + 0.08 * math.sin(7.3 * day) + 0.03 * math.sin(31 * day)

    def advance(self, now: float, force: bool = False) -> None:
        """Bring the state to wall time `now` (a frozen stack does not move)."""
        if now <= self.clock and not force:
            return
        dt_total = 0.0 if self.frozen else (now - self.clock) * self.speed
        self.clock = max(now, self.clock)
        while True:
            dt = min(dt_total, 30.0)
            c_rate = self.load(self.elapsed + dt)
            for module in self.modules.values():
                module.step(round(c_rate * module.load_share * module.preset.capacity, 1), dt)
            self.elapsed += dt
            dt_total -= dt
            if dt_total <= 0:
                break


def group_spec(model: str, modules: int, group: int, family: Family[Any, Any] = PYLONTECH) -> str:
    """The stack string of `modules` alike in one group, for --model/--modules/--group."""
    family.address(group, max(modules, 1))  # validates both
    if modules < 1:
        raise ValueError(f"modules {modules} is out of range 1..{family.max_module}")
    return ";" * group + f"{model}*{modules}"


def _preset_name(name: str, presets: Mapping[str, Preset]) -> str:
    for known in presets:
        if known.lower() == name.lower():
            return known
    raise ValueError(f"unknown model '{name}'; known models: {', '.join(presets)}")


def _new_module(preset: Preset, group: int, number: int, adr: int, rng: random.Random) -> Module:
    ambient = rng.uniform(18.0, 26.0)
    serial = f"PPTBH{group:02d}{number:02d}{rng.randrange(10**7):07d}"
    return Module(
        preset=preset,
        group=group,
        number=number,
        address=adr,
        serial=serial,
        soc=rng.uniform(0.45, 0.85),
        cycles=rng.randrange(5, 400),
        cell_offsets=tuple(rng.choice((-3, -2, -1, 0, 0, 1, 2, 3)) / 1000 for _ in range(preset.cells)),
        ambient=ambient,
        load_share=rng.uniform(0.92, 1.08),
        temperatures=[ambient + rng.uniform(0, 2) for _ in range(preset.temperatures)],
    )
