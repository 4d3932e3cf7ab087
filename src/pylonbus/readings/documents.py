"""A reading as the documents every sink publishes: one per module and one per stack, in base units (V, A, W,
Ah, %, °C, kWh) under the same keys everywhere (MQTT JSON, the `full` InfluxDB schema, the HTTP API)."""

from __future__ import annotations

import functools
import time
from enum import IntFlag
from typing import TYPE_CHECKING, Any

from ..protocol.families import DEFAULT
from ..protocol.families.pylontech.layouts import units_of
from ..protocol.families.pylontech.results import AnalogData, Status1
from ..protocol.families.pylontech.results import PackAlarm as PylontechAlarm
from ..protocol.fields import AlarmState
from ..protocol.pack import PackAlarm, PackAnalog, Quantity, extras
from .energy import FIELDS as ENERGY_FIELDS
from .reading import ModuleReading, Reading, StackReading, family_labels, group_path, row_quantities

if TYPE_CHECKING:  # the console's results are loaded only where a console is read
    from ..console.results import ModuleSummary

_ANALOG = units_of(AnalogData)
#: The unit of each number a module document holds (a list's is its items').
MODULE_UNITS = {
    "voltage": _ANALOG["voltage"],
    "current": _ANALOG["current"],
    "power": "W",
    "soc": "%",
    "remaining_capacity": _ANALOG["remaining_capacity"],
    "full_capacity": _ANALOG["total_capacity"],
    "cells": _ANALOG["cell_voltages"],
    "cell_min": _ANALOG["cell_voltages"],
    "cell_max": _ANALOG["cell_voltages"],
    "cell_mean": _ANALOG["cell_voltages"],
    "cell_delta": _ANALOG["cell_voltages"],
    "temperature_bms": _ANALOG["temperatures"],
    "temperatures": _ANALOG["temperatures"],
    "charge_ah": "Ah",
    "discharge_ah": "Ah",
    "charge_kwh": "kWh",
    "discharge_kwh": "kWh",
}
STACK_UNITS = {key: MODULE_UNITS[key] for key in ("voltage", "current", "power", "soc", "cell_delta")} | {
    key: MODULE_UNITS[key] for key in ("charge_ah", "discharge_ah", "charge_kwh", "discharge_kwh")
}
_LIMITS = {AlarmState.BELOW_LOWER_LIMIT: "low", AlarmState.ABOVE_UPPER_LIMIT: "high"}
#: Every alarm a module document names, each true or false.
ALARMS = (
    *(f"{part}_{side}" for part in ("cell_voltage", "temperature", "module_voltage") for side in ("low", "high")),
    "charge_current_high",
    "discharge_current_high",
    "other_error",
    *(flag.name.lower() for flag in Status1 if flag.name),
    "cell_error",
)
_NONE_RAISED = dict.fromkeys(ALARMS, False)
_STATUS1 = tuple((flag.name.lower(), flag) for flag in Status1 if flag.name)


def extra_units(analog: PackAnalog) -> dict[str, dict[str, str]]:
    """What a family's result reports beyond every family's (`pack.extras`), by key, with what a sink needs of
    each: unit, description and state class (`total_increasing` for a counter). Pylontech's reports none.
    Known by the result's class (the fields and their metadata): made once a class, not each module a cycle."""
    units = _EXTRA_UNITS.get(type(analog))
    if units is None:
        units = _EXTRA_UNITS[type(analog)] = _units(extras(analog))
    return units


_EXTRA_UNITS: dict[type, dict[str, dict[str, str]]] = {}


def module_extras(module: ModuleReading) -> dict[str, dict[str, str]]:
    """The extra quantities of a module: its family's, and what its console adds (`--console-device`)."""
    found = extra_units(module.analog) if module.analog is not None else {}
    if module.summary is not None:
        found = found | _units(row_quantities(module.summary))  # a new dict: extra_units' is its class's
    return found | _units(module.console.quantities()) if module.console is not None else found


def _units(quantities: list[Quantity]) -> dict[str, dict[str, str]]:
    return {q.name: {"unit": q.unit, "description": q.description, "state_class": q.state_class} for q in quantities}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _real(value: Any) -> Any:
    """A quantity with a unit as a float, whichever family sent it as a whole number (EG4's SOC, Daren's SOH):
    one InfluxDB measurement takes a field of one type only."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def path_of(doc: dict[str, Any]) -> str:
    """The group of a module or stack document as a topic level (`reading.group_path`)."""
    return group_path(doc.get("bms", DEFAULT), doc["group"])


@functools.lru_cache(maxsize=4)  # every document of a reading has its time
def rfc3339(time_ns: int) -> str:
    seconds, ns = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns // 1_000_000:03d}Z"


def alarm_flags(alarm: PylontechAlarm) -> dict[str, bool]:
    """Each name of ALARMS: is it raised?"""
    found = _NONE_RAISED.copy()
    groups = {
        "cell_voltage": alarm.cell_states,
        "temperature": alarm.temperature_states,
        "module_voltage": (alarm.module_voltage_state,),
        "charge_current": (alarm.charge_current_state,),
        "discharge_current": (alarm.discharge_current_state,),
    }
    status1 = alarm.status1
    _raise(found, groups, {name: flag for name, flag in _STATUS1 if flag in status1} if status1 else {})
    found["cell_error"] = bool(alarm.cell_errors)
    return found


def alarm_names(alarm: PackAlarm | None) -> tuple[str, ...]:
    """The names of a module document's `alarms`: ALARMS for Pylontech's 0x44 (and where none was read),
    else those of its family's result (or of the console's states)."""
    return ALARMS if alarm is None or isinstance(alarm, PylontechAlarm) else tuple(family_alarms(alarm))


def family_alarms(alarm: PackAlarm) -> dict[str, bool]:
    """Another family's alarms, each true or false, named from its result: the cell and sensor states and
    each state its `ALARM_FIELDS` names (`<part>_low`, `<part>_high`, `other_error`), and each flag of its
    alarm words (a flag two words have, such as a warning and a protection, named with its word's field)."""
    groups: dict[str, tuple[AlarmState, ...]] = (
        {"cell_voltage": alarm.cell_states, "temperature": alarm.temperature_states} if alarm.SENSOR_STATES else {}
    )
    words: dict[str, IntFlag] = {}
    for name in alarm.ALARM_FIELDS:
        value = getattr(alarm, name)
        if isinstance(value, AlarmState):
            groups[name.removesuffix("_state")] = (value,)
        elif isinstance(value, IntFlag):
            words[name] = value
    quiet = alarm.QUIET_FLAGS  # states a word carries beside its alarms (PACE's fully charged)
    members = [
        (f, member) for f, word in words.items() for member in type(word) if member.name and member.name not in quiet
    ]
    shared = {m.name for _, m in members if sum(m.name == other.name for _, other in members) > 1}

    def key(field: str, member: IntFlag) -> str:
        name = str(member.name).lower()
        return f"{field}_{name}" if member.name in shared else name

    found = dict.fromkeys([f"{part}_{side}" for part in groups for side in ("low", "high")] + ["other_error"], False)
    found |= {key(field, member): False for field, member in members}
    _raise(found, groups, {key(field, member): member for field, member in members if member in words[field]})
    return found


def _raise(found: dict[str, bool], groups: dict[str, tuple[AlarmState, ...]], flags: dict[str, IntFlag]) -> None:
    """Mark in `found` each state outside its limits (`<part>_low`/`_high`, else `other_error`) and each flag."""
    for part, states in groups.items():
        if not any(states):  # the usual case, at C speed: every state normal (0)
            continue
        for state in states:
            name = f"{part}_{_LIMITS[state]}" if state in _LIMITS else "other_error"
            if state:
                found[name if name in found else "other_error"] = True
    for name in flags:
        found[name] = True


def module_state(module: ModuleReading, time_ns: int) -> dict[str, Any]:
    """One module: who it is, its values and what is derived from them; an offline module has `online`
    false and no values (a stale value is never passed on as a current one)."""
    identity = module.identity
    doc: dict[str, Any] = {
        "time": rfc3339(time_ns),
        "group": module.group,
        "module": module.module,
        **family_labels(module.bms),
        "serial": identity.serial,
        "model": identity.model,
        "manufacturer": identity.manufacturer,
        "firmware": identity.firmware,
        "online": module.online,
    }
    analog = module.analog
    if analog is None and module.summary is not None:
        doc |= console_values(module, module.summary)
    elif analog is None:
        return doc | {"error": module.error}
    else:
        doc |= rs485_values(module, analog)
    if module.console is not None:  # a flag a cell (its list for the page and the state), each value an extra
        doc["balancing"] = list(module.console.balancing)
        doc |= {q.name: q.value for q in module.console.quantities()}
    alarm = module.alarm
    if isinstance(alarm, PylontechAlarm):
        doc["alarms"] = _pylontech_alarms(alarm)
    elif alarm is not None:
        doc["alarms"] = family_alarms(alarm)
    doc |= _energy(module.energy)  # in place: `doc | ...` copied the whole document again
    return doc


_ALARM_DOCUMENTS: dict[tuple[Any, ...], dict[str, Any]] = {}  # by the 0x44 reply's values: they seldom change


def _pylontech_alarms(alarm: PylontechAlarm) -> dict[str, Any]:
    """A module document's `alarms` from Pylontech's 0x44: each name of ALARMS and the raw status bytes."""
    statuses = (alarm.status1, alarm.status2, alarm.status3, alarm.status4, alarm.status5)
    key = (
        alarm.cell_states,
        alarm.temperature_states,
        alarm.charge_current_state,
        alarm.module_voltage_state,
        alarm.discharge_current_state,
        statuses,
    )
    found = _ALARM_DOCUMENTS.get(key)
    if found is None:
        if len(_ALARM_DOCUMENTS) > 1024:  # a fault that flickers through every combination: start again
            _ALARM_DOCUMENTS.clear()
        raw = {f"status{n}": int(status) for n, status in enumerate(statuses, 1)}
        found = _ALARM_DOCUMENTS[key] = alarm_flags(alarm) | raw
    return found.copy()  # a document of its own: a consumer may change it


def _cells(module: ModuleReading) -> dict[str, Any]:
    low, low_index, high, high_index, delta = module.extremes()
    return {
        "cell_min": low,
        "cell_max": high,
        "cell_mean": module.cell_mean,
        "cell_delta": delta,
        "cell_min_index": low_index,
        "cell_max_index": high_index,
    }


def rs485_values(module: ModuleReading, analog: PackAnalog) -> dict[str, Any]:
    doc = {
        "voltage": analog.voltage,
        "current": analog.current,
        "power": analog.power,
        "soc": _real(analog.soc),
        "remaining_capacity": analog.remaining_capacity,
        "full_capacity": analog.total_capacity,
        "cycles": analog.cycles,
        "cells": list(analog.cell_voltages),
        **_cells(module),
        "temperature_bms": analog.bms_temperature,
        "temperatures": list(analog.cell_temperatures),
    }
    if not extra_units(analog):  # (Pylontech's result has none: no need to look for them)
        return doc
    return doc | {q.name: _plain(_real(q.value) if q.unit else q.value) for q in extras(analog)}


#: What a module read from the console alone never carries: `pwr` prints no capacities.
CONSOLE_ALONE_LACKS = ("remaining_capacity", "full_capacity")


def lacks(module: ModuleReading) -> tuple[str, ...]:
    """The module document's keys its source cannot give at all (not: not this cycle)."""
    return CONSOLE_ALONE_LACKS if module.analog is None and module.summary is not None else ()


def console_values(module: ModuleReading, row: ModuleSummary) -> dict[str, Any]:
    """A module read from the console alone: what its `pwr` row proves this cycle (what the firmware's table
    lacks is None, never 0), and the cells and their sensors as `bat N` gave them last. No capacities: `pwr`
    prints none; `cycles` is `stat N`'s."""
    cycles = None if module.console is None else module.console.lifetime.get("cycles")
    return {
        "voltage": row.voltage,
        "current": row.current,
        "power": module.power,
        "soc": row.soc,
        "cycles": cycles,
        "cells": list(module.cell_voltages),
        **_cells(module),
        "temperature_bms": row.mosfet_temperature,
        "temperatures": list(module.cell_temperatures),
    } | {q.name: q.value for q in row_quantities(row)}


def stack_state(stack: StackReading, time_ns: int) -> dict[str, Any]:
    """One group; another family's also names its extras, with their units, for the sinks that show them."""
    units: dict[str, dict[str, str]] = {}
    for module in stack.modules:
        units |= module_extras(module)
    return {
        "time": rfc3339(time_ns),
        "group": stack.group,
        **family_labels(stack.bms),
        **({"extras": units} if units else {}),
        "modules_known": len(stack.modules),
        "modules_online": stack.modules_online,
        "voltage": stack.voltage,
        "current": stack.current,
        "power": stack.power,
        "soc": stack.soc,
        "cell_delta": stack.cell_delta,
    } | _energy(stack.energy)


def _energy(energy: Any) -> dict[str, float]:
    # Not `asdict`, whose deep copies were a third of the documents' time.
    return {key: round(getattr(energy, key), 6) for key in ENERGY_FIELDS}


def reading_state(reading: Reading) -> dict[str, Any]:
    """A whole cycle: each stack's document with its modules' documents, and the cycle's own figures. Made
    once a reading, however many sinks publish it."""
    if reading.documents is None:
        reading.documents = {
            "time": rfc3339(reading.time_ns),
            "time_ns": reading.time_ns,
            "duration": round(reading.duration, 6),
            "errors": reading.errors,
            "stacks": [
                stack_state(stack, reading.time_ns)
                | {"modules": [module_state(m, reading.time_ns) for m in stack.modules]}
                for stack in reading.stacks
            ],
        }
    return reading.documents
