"""Home Assistant MQTT discovery for the state documents of the MQTT sink: a device per module, identified by its
serial so that it survives moving the pack to another address, linked to a device per stack; each entity reads
its key of the module's JSON state with the unit, device class and precision Home Assistant expects."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...readings.documents import ALARMS, MODULE_UNITS, STACK_UNITS
from .settings import DEFAULT_PREFIX

if TYPE_CHECKING:
    from ...readings.reading import ModuleReading

_DEVICE_CLASS = {"V": "voltage", "A": "current", "W": "power", "°C": "temperature", "kWh": "energy"}
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


def module_entities(cells: int, temperatures: int, console: tuple[str, ...] | None = None) -> list[Entity]:
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
        *_energy(),
        Entity("online", "Online", component="binary_sensor", device_class="connectivity", diagnostic=True),
        *(Entity(f"alarms.{name}", "Alarm " + name.replace("_", " "), component="binary_sensor") for name in ALARMS),
    ]
    return entities + console_entities(console, cells) if console is not None else entities


def console_entities(counters: tuple[str, ...], cells: int) -> list[Entity]:
    """What the console adds (pylon2influx --console-device): SOH and the balancing count, a binary sensor a
    balancing cell (disabled by default) and the lifetime counters as diagnostics."""
    return [
        Entity("soh", "State of health", MODULE_UNITS["soh"], precision=0),
        Entity("balancing_count", "Cells balancing"),
        *(
            Entity(
                f"balancing[{n}]",
                f"Cell {n + 1} balancing",
                component="binary_sensor",
                device_class="running",
                enabled=False,
            )
            for n in range(cells)
        ),
        *(Entity(f"lifetime.{name}", "Lifetime " + name.replace("_", " "), diagnostic=True) for name in counters),
    ]


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


def node_id(text: str) -> str:
    """What Home Assistant allows in a discovery topic's node and object id."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)


class Discovery:
    """The discovery configs of every device seen so far."""

    def __init__(self, prefix: str, ha_prefix: str, status_topic: str) -> None:
        self.prefix = prefix
        self.ha_prefix = ha_prefix
        self.status_topic = status_topic
        self.modules: dict[
            str, tuple[int, int, dict[str, Any], int, int, tuple[str, ...] | None]
        ] = {}  # serial -> group, module, …
        self.stacks: set[int] = set()

    def add_module(self, module: ModuleReading) -> bool:
        """Note a module; True when its configs are new or changed (and must be published)."""
        serial = module.identity.serial
        if not serial or module.analog is None:
            return False  # without a serial there is nothing stable to identify the device by
        identity = module.identity
        device = {
            "identifiers": [f"pylontech_{serial}"],
            "name": f"{identity.model or 'Pylontech'} {serial}",
            "manufacturer": identity.manufacturer or "Pylontech",
            "model": identity.model,
            "serial_number": serial,
            "sw_version": identity.firmware,
            "via_device": self._stack_id(module.group),
        }
        device = {key: value for key, value in device.items() if value is not None}
        entry = (
            module.group,
            module.module,
            device,
            len(module.analog.cell_voltages),
            len(module.analog.cell_temperatures),
            # Once a module's console was read its entities stay, also through a cycle without console data.
            tuple(module.console.lifetime) if module.console is not None else self._console_of(serial),
        )
        if self.modules.get(serial) == entry:
            return False
        self.modules[serial] = entry
        return True

    def _console_of(self, serial: str) -> tuple[str, ...] | None:
        known = self.modules.get(serial)
        return None if known is None else known[5]

    def add_stack(self, group: int) -> bool:
        if group in self.stacks:
            return False
        self.stacks.add(group)
        return True

    def nodes(self) -> set[str]:
        """The node ids of the module devices seen (the third part of their config topics)."""
        return {self._module_node(serial) for serial in self.modules}

    def state_topics(self) -> set[str]:
        """The state topics of the module devices seen."""
        return {self._state_topic(group, module) for group, module, *_ in self.modules.values()}

    def _state_topic(self, group: int, module: int | str) -> str:
        return f"{self.prefix}/{group}/{module}/state"

    @staticmethod
    def _module_node(serial: str) -> str:
        return f"pylontech_{node_id(serial)}"

    def _stack_id(self, group: int) -> str:
        return f"{node_id(self.prefix)}_stack_{group}"

    def configs(self) -> list[tuple[str, str]]:
        """(topic, retained JSON) of every entity of every device."""
        out = []
        for group in sorted(self.stacks):
            # A second daemon on the broker (another --mqtt-prefix) names its stacks apart: Home Assistant makes
            # the entity ids from the device's name.
            name = f"Pylontech stack {group}" + ("" if self.prefix == DEFAULT_PREFIX else f" ({self.prefix})")
            device = {"identifiers": [self._stack_id(group)], "name": name, "manufacturer": "Pylontech"}
            out += self._configs(self._stack_id(group), self._state_topic(group, "stack"), device, stack_entities(), [])
        for serial, (group, module, device, cells, temperatures, console) in self.modules.items():
            state = self._state_topic(group, module)
            online = {"topic": state, "value_template": ONLINE}
            entities = module_entities(cells, temperatures, console)
            out += self._configs(self._module_node(serial), state, device, entities, [online])
        return out

    def _configs(
        self, node: str, state: str, device: dict[str, Any], entities: list[Entity], availability: list[dict[str, str]]
    ) -> list[tuple[str, str]]:
        out = []
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
            out.append((topic, json.dumps(config, separators=(",", ":"))))
        return out
