"""What every family's 0x42 and 0x44 replies say of one pack, whatever their layout: the base classes of the
families' results, and the way a sink lists what a family reports beyond them.

`PackAnalog` names the quantities every reading is made of (`readings.reading` uses no others): `voltage` (V),
`current` (A, signed, charge positive), `cell_voltages` (V), `temperatures` (°C, every sensor in wire order),
`remaining_capacity` and `total_capacity` (Ah), `cycles`, and the derived `soc` (%), `power` (W),
`bms_temperature` (°C, None where the BMS reports none) and `cell_temperatures` (the sensors on the cells). A
family's result is a slotted dataclass that subclasses it and declares these as fields or properties; a family
whose frame carries its own SOC declares `soc` as a field.

What a family reports beyond those is a field whose metadata is `quantity(...)` (unit, description, and
`state_class="total_increasing"` for cumulative counters), or a property named in the class's `DERIVED` (with
the same metadata);
`extras(result)` lists both, so sinks never name a family's fields one by one.

`PackAlarm` is the 0x44 result of one pack: `alarms` lists the active alarm and protection names, worded for a
person; a family names which of its fields are alarm words (`ALARM_FIELDS`) and the generic wording does the
rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from enum import IntFlag
from typing import Any, ClassVar

from .fields import AlarmState, flag_names

TOTAL_INCREASING = "total_increasing"  # a counter that only grows (Home Assistant's state class)
MEASUREMENT = "measurement"


def quantity(unit: str, description: str, state_class: str = MEASUREMENT) -> dict[str, str]:
    """The metadata of a result field that is one of a family's extra quantities, for the sinks:
    `soh: float = field(metadata=quantity("%", "state of health"))`."""
    return {"unit": unit, "description": description, "state_class": state_class}


@dataclass(frozen=True, slots=True)
class Quantity:
    """One extra quantity of a result, as `extras` lists it."""

    name: str
    value: Any
    unit: str
    description: str
    state_class: str = MEASUREMENT


def extras(result: object) -> list[Quantity]:
    """Every quantity of `result` beyond `PackAnalog`'s: its `quantity` fields, then the properties its class
    names in `DERIVED`, in declaration order."""
    found: list[Quantity] = []
    if is_dataclass(result):
        for f in fields(result):
            if "unit" in f.metadata:
                found.append(Quantity(f.name, getattr(result, f.name), **f.metadata))
    for name, metadata in getattr(type(result), "DERIVED", {}).items():
        found.append(Quantity(name, getattr(result, name), **metadata))
    return found


class PackAnalog:
    """Analog values of one pack, in any family: the attributes every family's 0x42 result has."""

    __slots__ = ()

    UNITS: ClassVar[dict[str, str]] = {"soc": "%", "power": "W", "bms_temperature": "°C", "cell_temperatures": "°C"}
    #: Properties that are extra quantities (name -> `quantity(...)`), listed by `extras` after the fields.
    DERIVED: ClassVar[Mapping[str, Mapping[str, str]]] = {}

    cell_voltages: tuple[float, ...]
    temperatures: tuple[float, ...]
    current: float
    voltage: float
    remaining_capacity: float
    total_capacity: float
    cycles: int

    @property
    def soc(self) -> float | None:
        """State of charge in % (remaining / total), None if the total is 0."""
        if not self.total_capacity:
            return None
        return round(100 * self.remaining_capacity / self.total_capacity, 1)

    @property
    def power(self) -> float:
        """Power in W (voltage × current): positive while charging."""
        return round(self.voltage * self.current, 3)

    @property
    def bms_temperature(self) -> float | None:
        """The BMS board's own sensor in °C; None where the family names none."""
        return None

    @property
    def cell_temperatures(self) -> tuple[float, ...]:
        """The sensors on the cells, in °C."""
        return self.temperatures


_BOARD_SENSORS: Mapping[str, Mapping[str, str]] = {
    "environment_temperature": quantity("°C", "temperature around the pack"),
    "mosfet_temperature": quantity("°C", "temperature of the BMS's power MOSFETs"),
}


@dataclass(slots=True)
class PackValues(PackAnalog):
    """The fields of `PackAnalog` as most families send them, whose last two sensors are on the BMS board:
    environment and MOSFET, at the positions `ENVIRONMENT` and `MOSFET` (from the end) the family's result
    names; the sensors before them are the cells'. A family's result adds its own fields to these."""

    DERIVED: ClassVar[Mapping[str, Mapping[str, str]]] = _BOARD_SENSORS
    ENVIRONMENT: ClassVar[int] = -2
    MOSFET: ClassVar[int] = -1

    cell_voltages: tuple[float, ...]
    temperatures: tuple[float, ...]
    current: float
    voltage: float
    remaining_capacity: float
    total_capacity: float
    cycles: int

    @property
    def cell_temperatures(self) -> tuple[float, ...]:
        return self.temperatures[:-2]

    @property
    def environment_temperature(self) -> float:
        return self.temperatures[self.ENVIRONMENT]

    @property
    def mosfet_temperature(self) -> float:
        return self.temperatures[self.MOSFET]

    @property
    def bms_temperature(self) -> float:
        """The MOSFETs', the BMS board's own sensor."""
        return self.temperatures[self.MOSFET]


class PackAlarm:
    """Alarm states of one pack, in any family: per-cell and per-sensor states and the family's alarm words."""

    __slots__ = ()

    #: The fields that are alarm or protection words (an `AlarmState`, an `IntFlag`, or an int whose bits no
    #: source names), in the order `alarms` names them; status words that are not alarms (FET and switch
    #: states, balancing) are left out.
    ALARM_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: Flags of those words that say how the pack is rather than that something is wrong (PACE's "fully
    #: charged" protection): not named as alarms.
    QUIET_FLAGS: ClassVar[frozenset[str]] = frozenset()
    #: Whether the result has a state a cell and a sensor (every 0x44 has; the console's `pwr` row has none):
    #: where it has none, no cell or sensor alarm is named, rather than named and never raised.
    SENSOR_STATES: ClassVar[bool] = True

    cell_states: tuple[AlarmState, ...]
    temperature_states: tuple[AlarmState, ...]

    @property
    def alarms(self) -> list[str]:
        """Every abnormal state and protection flag, worded for a person; empty when all is well."""
        found = [f"cell {n} {s.name}" for n, s in enumerate(self.cell_states, 1) if s]
        found += [f"temperature {n} {s.name}" for n, s in enumerate(self.temperature_states, 1) if s]
        for name in self.ALARM_FIELDS:
            value = getattr(self, name)
            if isinstance(value, AlarmState):
                if value:
                    found.append(f"{name.removesuffix('_state').replace('_', ' ')} {value.name}")
            elif isinstance(value, IntFlag):
                found += [flag for flag in flag_names(value) if flag not in self.QUIET_FLAGS]
            elif value:  # a word whose bits no source names
                found.append(f"{name.replace('_', ' ')} 0x{value:04X}")
        return found
