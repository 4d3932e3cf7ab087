"""A reading as the documents every sink publishes: one per module and one per stack, in base units (V, A, W,
Ah, %, °C, kWh) under the same keys everywhere (MQTT JSON, the `full` InfluxDB schema, the HTTP API)."""

from __future__ import annotations

import functools
import time
from typing import Any

from ..protocol.families.pylontech.layouts import units_of
from ..protocol.families.pylontech.results import AnalogData, PackAlarm, Status1
from ..protocol.fields import AlarmState
from .energy import FIELDS as ENERGY_FIELDS
from .reading import ModuleReading, Reading, StackReading

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


@functools.lru_cache(maxsize=4)  # every document of a reading has its time
def rfc3339(time_ns: int) -> str:
    seconds, ns = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns // 1_000_000:03d}Z"


def alarm_flags(alarm: PackAlarm) -> dict[str, bool]:
    """Each name of ALARMS: is it raised?"""
    found = dict.fromkeys(ALARMS, False)
    groups = {
        "cell_voltage": alarm.cell_states,
        "temperature": alarm.temperature_states,
        "module_voltage": (alarm.module_voltage_state,),
        "charge_current": (alarm.charge_current_state,),
        "discharge_current": (alarm.discharge_current_state,),
    }
    for part, states in groups.items():
        for state in states:
            name = f"{part}_{_LIMITS[state]}" if state in _LIMITS else "other_error"
            if state:
                found[name if name in found else "other_error"] = True
    for flag in Status1:
        if flag in alarm.status1 and flag.name:
            found[flag.name.lower()] = True
    found["cell_error"] = bool(alarm.cell_errors)
    return found


def module_state(module: ModuleReading, time_ns: int) -> dict[str, Any]:
    """One module: who it is, its values and what is derived from them; an offline module has `online`
    false and no values (a stale value is never passed on as a current one)."""
    identity = module.identity
    doc: dict[str, Any] = {
        "time": rfc3339(time_ns),
        "group": module.group,
        "module": module.module,
        "serial": identity.serial,
        "model": identity.model,
        "manufacturer": identity.manufacturer,
        "firmware": identity.firmware,
        "online": module.online,
    }
    analog = module.analog
    if analog is None:
        return doc | {"error": module.error}
    doc |= {
        "voltage": analog.voltage,
        "current": analog.current,
        "power": analog.power,
        "soc": analog.soc,
        "remaining_capacity": analog.remaining_capacity,
        "full_capacity": analog.total_capacity,
        "cycles": analog.cycles,
        "cells": list(analog.cell_voltages),
        "cell_min": module.cell_min,
        "cell_max": module.cell_max,
        "cell_mean": module.cell_mean,
        "cell_delta": module.cell_delta,
        "cell_min_index": module.cell_min_index,
        "cell_max_index": module.cell_max_index,
        "temperature_bms": analog.bms_temperature,
        "temperatures": list(analog.cell_temperatures),
    }
    if module.alarm is not None:
        alarm = module.alarm
        raw = {f"status{n}": int(getattr(alarm, f"status{n}")) for n in range(1, 6)}
        doc["alarms"] = alarm_flags(alarm) | raw
    return doc | _energy(module.energy)


def stack_state(stack: StackReading, time_ns: int) -> dict[str, Any]:
    return {
        "time": rfc3339(time_ns),
        "group": stack.group,
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
