"""Home Assistant MQTT discovery for the state documents of the MQTT sink: a device per module, identified by its
serial so that it survives moving the pack to another address, linked to a device per stack; each entity reads
its key of the module's JSON state with the unit, device class and precision Home Assistant expects."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ...protocol.families import DEFAULT, family
from ...protocol.pack import TOTAL_INCREASING
from ...readings.documents import ALARMS, MODULE_UNITS, STACK_UNITS, alarm_names, lacks, module_extras
from ...readings.reading import Identity, group_path, named
from .settings import DEFAULT_PREFIX

if TYPE_CHECKING:
    from ...readings.reading import ModuleReading, StackReading

_DEVICE_CLASS = {
    "V": "voltage",
    "A": "current",
    "W": "power",
    "°C": "temperature",
    "kWh": "energy",
    "Wh": "energy",
    "h": "duration",
}
_PRECISION = {"V": 2, "A": 1, "W": 0, "°C": 1, "Ah": 1, "kWh": 3, "%": 0}


@dataclass(frozen=True)
class Entity:
    """One Home Assistant entity: `key` is the path into the state document (`cells[0]`)."""

    key: str
    name: str
    unit: str = ""
    component: str = "sensor"
    diagnostic: bool = False
    enabled: bool = True
    precision: int | None = None
    device_class: str | None = None
    counter: bool = False  # only grows: state_class total_increasing

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        value = f"value_json.{self.key}"
        if self.component == "binary_sensor":
            out["device_class"] = self.device_class or "problem"
            out["value_template"] = _guarded(self.key, f"('ON' if {value} else 'OFF')")
        else:
            out["value_template"] = _guarded(self.key, value)
            device_class = self.device_class or _DEVICE_CLASS.get(self.unit)
            if device_class:
                out["device_class"] = device_class
            if self.unit:
                out["unit_of_measurement"] = self.unit
            out["state_class"] = "total_increasing" if self.counter else "measurement"
            precision = self.precision if self.precision is not None else _PRECISION.get(self.unit)
            if precision is not None:
                out["suggested_display_precision"] = precision
        if self.diagnostic:
            out["entity_category"] = "diagnostic"
        if not self.enabled:
            out["enabled_by_default"] = False
        return out


def _present(key: str) -> str:
    """A Jinja test that `value_json.<key>` and every step of the path to it exist: a silent module's state has
    none of its values, and Home Assistant logs a warning for every template that reaches for a missing one,
    each entity each message (hundreds a minute)."""
    steps = [key[: found.start()] for found in re.finditer(r"[.\[]", key)] + [key]
    return " and ".join(["value_json is defined", *(f"value_json.{step} is defined" for step in steps)])


def _guarded(key: str, expression: str) -> str:
    """A template of `expression` that renders `None` (unknown to Home Assistant) where `key` is missing."""
    return f"{{{{ {expression} if {_present(key)} else none }}}}"


#: A module's entities are available while its state says it answers (their values are there).
ONLINE = f"{{{{ 'online' if {_present('online')} and value_json.online else 'offline' }}}}"


def _energy() -> list[Entity]:
    return [
        Entity("charge_kwh", "Charged energy", "kWh", counter=True),
        Entity("discharge_kwh", "Discharged energy", "kWh", counter=True),
        Entity("charge_ah", "Charged capacity", "Ah", counter=True),
        Entity("discharge_ah", "Discharged capacity", "Ah", counter=True),
    ]


#: Extras of one cell each (`cell_3_temperature` from the console): disabled until a user enables them.
PER_CELL = re.compile(r"cell_\d+_")
LIFETIME = "lifetime_"  # the console's lifetime counters: diagnostics
#: A family's extra quantity as an entity: its key, its description as the name, its unit and state class.
Extra = tuple[str, str, str, bool]


def module_entities(
    cells: int,
    temperatures: int,
    extras: tuple[Extra, ...] = (),
    alarms: tuple[str, ...] = ALARMS,
    lacking: tuple[str, ...] = (),
) -> list[Entity]:
    """A module device's entities; none for the keys in `lacking`, which its source never gives (no entity
    that would only ever show "unknown")."""
    u = MODULE_UNITS
    entities = [
        Entity("voltage", "Voltage", u["voltage"]),
        Entity("current", "Current", u["current"]),
        Entity("power", "Power", u["power"]),
        Entity("soc", "State of charge", u["soc"], device_class="battery"),
        Entity("remaining_capacity", "Remaining capacity", u["remaining_capacity"]),
        Entity("full_capacity", "Full capacity", u["full_capacity"]),
        Entity("cycles", "Cycles", counter=True),
        Entity("cell_min", "Cell voltage min", u["cell_min"], precision=3),
        Entity("cell_max", "Cell voltage max", u["cell_max"], precision=3),
        Entity("cell_delta", "Cell voltage delta", u["cell_delta"], precision=3),
        Entity("cell_min_index", "Lowest cell", diagnostic=True),
        Entity("cell_max_index", "Highest cell", diagnostic=True),
        Entity("temperature_bms", "BMS temperature", u["temperature_bms"]),
        *(
            Entity(f"cells[{n}]", f"Cell {n + 1} voltage", u["cells"], diagnostic=True, enabled=False, precision=3)
            for n in range(cells)
        ),
        *(
            Entity(f"temperatures[{n}]", f"Temperature {n + 1}", u["temperatures"], diagnostic=True, enabled=False)
            for n in range(temperatures)
        ),
        *(
            Entity(
                key,
                name[:1].upper() + name[1:],
                unit,
                diagnostic=counter,
                enabled=not PER_CELL.match(key),
                counter=counter,
            )
            for key, name, unit, counter in extras
        ),
        # What the console adds (--console-device): a binary sensor a balancing cell, off until enabled.
        *(
            Entity(
                f"balancing[{n}]",
                f"Cell {n + 1} balancing",
                component="binary_sensor",
                device_class="running",
                diagnostic=True,
                enabled=False,
            )
            for n in range(cells if any(key == "balancing_count" for key, *_ in extras) else 0)
        ),
        *_energy(),
        Entity("online", "Online", component="binary_sensor", device_class="connectivity", diagnostic=True),
        *(Entity(f"alarms.{name}", "Alarm " + name.replace("_", " "), component="binary_sensor") for name in alarms),
    ]
    return [entity for entity in entities if entity.key not in lacking]


def stack_entities() -> list[Entity]:
    u = STACK_UNITS
    return [
        Entity("voltage", "Voltage", u["voltage"]),
        Entity("current", "Current", u["current"]),
        Entity("power", "Power", u["power"]),
        Entity("soc", "State of charge", u["soc"], device_class="battery"),
        Entity("modules_online", "Modules online"),
        Entity("cell_delta", "Cell voltage delta", u["cell_delta"], precision=3),
        *_energy(),
    ]


@functools.lru_cache(maxsize=1024)  # each module's device names its stack every cycle
def node_id(text: str) -> str:
    """What Home Assistant allows in a discovery topic's node and object id."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)


class Module(NamedTuple):
    """What a module device's configs are made of; a change of any is published again."""

    path: str  # its group's topic level (`group_path`)
    module: int
    device: dict[str, Any]
    cells: int
    temperatures: int
    extras: tuple[Extra, ...]
    alarms: tuple[str, ...]
    lacking: tuple[str, ...]  # keys its source never gives (`lacks`)


class Discovery:
    """The discovery configs of every device seen so far."""

    def __init__(self, prefix: str, ha_prefix: str, status_topic: str) -> None:
        self.prefix = prefix
        self.ha_prefix = ha_prefix
        self.status_topic = status_topic
        self.modules: dict[str, Module] = {}  # by what identifies the device: its serial
        self.stacks: dict[str, tuple[str, int]] = {}  # group path -> family, group
        self._shapes: dict[str, tuple[object, ...]] = {}  # by the same key: what the module's entry was made of

    def _key(self, module: ModuleReading) -> str | None:
        """What identifies a module's device: its serial (after its family's name, but Pylontech's); for a
        family that reads none (Seplos, EG4), its place (prefix, family, group, module), all there is."""
        serial = module.identity.serial
        if module.bms == DEFAULT:
            return serial
        return f"{module.bms}_{serial}" if serial else f"{self.prefix}_{module.bms}_{module.group}_{module.module}"

    def add_module(self, module: ModuleReading) -> bool:
        """Note a module; True when its configs are new or changed (and must be published)."""
        key = self._key(module)
        if not key or not module.online:
            return False  # without a serial there is nothing stable to identify the device by
        # What a module read over RS485 alone announces follows from these (its alarms' names and extras from
        # its results' classes): the same as last cycle, nothing is made again (0.2 ms a cycle for 14 modules).
        alarm = module.alarm
        shape = (
            *(getattr(module.identity, name) for name in Identity.__slots__),
            module.bms,
            module.group,
            module.module,
            type(module.analog),
            type(alarm),
            len(module.cell_voltages),
            len(module.cell_temperatures),
            0 if alarm is None else len(getattr(alarm, "cell_states", ())),
        )
        plain = module.console is None and module.summary is None
        if plain and self._shapes.get(key) == shape:
            return False
        self._shapes[key] = shape
        return self._note(key, module)

    def _note(self, key: str, module: ModuleReading) -> bool:
        identity, path, title = module.identity, group_path(module.bms, module.group), family(module.bms).title
        called = identity.serial or named(module.bms, f"{module.group}/{module.module}")
        device = {
            "identifiers": [f"pylontech_{key}"],
            "name": f"{identity.model or title} {called}",
            "manufacturer": identity.manufacturer or title,
            "model": identity.model,
            "serial_number": identity.serial,
            "sw_version": identity.firmware,
            "via_device": self._stack_id(path),
        }
        device = {key: value for key, value in device.items() if value is not None}
        extras = tuple(
            (name, q["description"], q["unit"], q["state_class"] == TOTAL_INCREASING)
            for name, q in module_extras(module).items()
        )
        alarms = alarm_names(module.alarm)
        entry = Module(
            path,
            module.module,
            device,
            len(module.cell_voltages),
            len(module.cell_temperatures),
            extras,
            alarms,
            lacks(module),
        )
        if self.modules.get(key) == entry:
            return False
        self.modules[key] = entry
        return True

    def add_stack(self, stack: StackReading) -> bool:
        path = group_path(stack.bms, stack.group)
        if path in self.stacks:
            return False
        self.stacks[path] = (stack.bms, stack.group)
        return True

    def nodes(self) -> set[str]:
        """The node ids of the module devices seen (the third part of their config topics)."""
        return {self._module_node(key) for key in self.modules}

    def state_topics(self) -> set[str]:
        """The state topics of the module devices seen."""
        return {self._state_topic(entry.path, entry.module) for entry in self.modules.values()}

    def _state_topic(self, path: str, module: int | str) -> str:
        return f"{self.prefix}/{path}/{module}/state"

    @staticmethod
    def _module_node(key: str) -> str:
        return f"pylontech_{node_id(key)}"

    def _stack_id(self, path: str) -> str:
        return f"{node_id(self.prefix)}_stack_{node_id(path)}"

    def configs(self) -> Iterator[tuple[str, str]]:
        """(topic, retained JSON) of every entity of every device, made as they are sent (800 configs take 3 MB)."""
        for path, (bms, group) in sorted(self.stacks.items(), key=lambda item: item[1]):
            # A second daemon on the broker (another --mqtt-prefix) names its stacks apart: Home Assistant makes
            # the entity ids from the device's name.
            title = family(bms).title
            name = f"{title} stack {group}" + ("" if self.prefix == DEFAULT_PREFIX else f" ({self.prefix})")
            device = {"identifiers": [self._stack_id(path)], "name": name, "manufacturer": title}
            yield from self._configs(
                self._stack_id(path), self._state_topic(path, "stack"), device, stack_entities(), []
            )
        for key, entry in list(self.modules.items()):  # the poll's thread adds to it meanwhile
            state = self._state_topic(entry.path, entry.module)
            online = {"topic": state, "value_template": ONLINE}
            entities = module_entities(entry.cells, entry.temperatures, entry.extras, entry.alarms, entry.lacking)
            yield from self._configs(self._module_node(key), state, entry.device, entities, [online])

    def _configs(
        self, node: str, state: str, device: dict[str, Any], entities: list[Entity], availability: list[dict[str, str]]
    ) -> Iterator[tuple[str, str]]:
        for entity in entities:
            object_id = node_id(entity.key.replace("[", "_").replace("]", "").replace(".", "_"))
            config = entity.config() | {
                "unique_id": f"{node}_{object_id}",
                "state_topic": state,
                "availability": [{"topic": self.status_topic}, *availability],
                "availability_mode": "all",
                "device": device,
            }
            if entity.key == "online":  # known also while the module is silent
                config["availability"] = [{"topic": self.status_topic}]
            topic = f"{self.ha_prefix}/{entity.component}/{node}/{object_id}/config"
            yield topic, json.dumps(config, separators=(",", ":"))
