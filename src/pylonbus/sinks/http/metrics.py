"""A reading as the Prometheus text format (0.0.4), written by hand: base units with their suffix (capacity in
coulombs and energy in joules: `promtool check metrics` refuses hours), `_total` for counters, labels `group`,
`module`, `serial` on every module metric. A silent module has
`pylontech_module_up 0` and no values, so nothing stale is scraped as if it were current."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Labels = dict[str, Any]
Sample = tuple[Labels, float]

#: (key of the document, module metric, stack metric, type, factor to the base unit, help); a None metric is
#: not exposed at that level.
QUANTITIES = (
    ("voltage", "pylontech_module_voltage_volts", "pylontech_stack_voltage_volts", "gauge", 1, "Voltage."),
    (
        "current",
        "pylontech_module_current_amperes",
        "pylontech_stack_current_amperes",
        "gauge",
        1,
        "Current, charge positive.",
    ),
    ("power", "pylontech_module_power_watts", "pylontech_stack_power_watts", "gauge", 1, "Power, charge positive."),
    (
        "soc",
        "pylontech_state_of_charge_ratio",
        "pylontech_stack_state_of_charge_ratio",
        "gauge",
        0.01,
        "Remaining over full capacity (0-1).",
    ),
    ("remaining_capacity", "pylontech_remaining_capacity_coulombs", None, "gauge", 3600, "Remaining capacity."),
    ("full_capacity", "pylontech_full_capacity_coulombs", None, "gauge", 3600, "Full capacity."),
    ("cycles", "pylontech_cycles", None, "gauge", 1, "Charge cycles the module counts."),
    ("modules_online", None, "pylontech_stack_modules_online", "gauge", 1, "Modules that answered last cycle."),
    (
        "cell_delta",
        "pylontech_cell_voltage_delta_volts",
        "pylontech_stack_cell_voltage_delta_volts",
        "gauge",
        1,
        "Highest minus lowest cell voltage.",
    ),
    (
        "charge_kwh",
        "pylontech_charge_energy_joules_total",
        "pylontech_stack_charge_energy_joules_total",
        "counter",
        3.6e6,
        "Energy charged.",
    ),
    (
        "discharge_kwh",
        "pylontech_discharge_energy_joules_total",
        "pylontech_stack_discharge_energy_joules_total",
        "counter",
        3.6e6,
        "Energy discharged.",
    ),
)


#: A unit as Prometheus writes it: (name suffix, factor to the base unit).
BASE_UNITS = {
    "V": ("_volts", 1),
    "A": ("_amperes", 1),
    "W": ("_watts", 1),
    "%": ("_ratio", 0.01),
    "Ah": ("_coulombs", 3600),
    "Wh": ("_joules", 3600),
    "kWh": ("_joules", 3.6e6),
    "h": ("_seconds", 3600),
    "s": ("_seconds", 1),
    "": ("", 1),
}


TEMPERATURES = "Temperature of the BMS and of the cell sensors."


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(value)


class Exposition:
    """The metric families of one scrape, each written once with its HELP and TYPE."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, str, list[Sample]]] = {}

    def add(self, name: str, kind: str, help_text: str, labels: Labels, value: float | None) -> None:
        family = self.families.setdefault(name, (kind, help_text, []))
        if value is not None:
            family[2].append((labels, value))

    def text(self) -> str:
        lines = []
        for name, (kind, help_text, samples) in self.families.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            for labels, value in samples:
                rendered = ",".join(f'{key}="{_escape(v)}"' for key, v in labels.items())
                lines.append(f"{name}{{{rendered}}} {_number(value)}" if rendered else f"{name} {_number(value)}")
        return "\n".join(lines) + "\n"


def _values(out: Exposition, level: int, doc: dict[str, Any], labels: Labels) -> None:
    """The QUANTITIES of a module (level 1) or stack (level 2) document."""
    for key, module_name, stack_name, kind, factor, help_text in QUANTITIES:
        name = module_name if level == 1 else stack_name
        if name is None:
            continue
        value = doc.get(key)
        if value is not None and factor != 1:
            value = round(value * factor, 6)
        out.add(name, kind, help_text, labels, value)


def _list(
    out: Exposition, name: str, help_text: str, label: str, items: Iterable[tuple[str, Any]], labels: Labels
) -> None:
    for key, value in items:
        out.add(name, "gauge", help_text, labels | {label: key}, value)


def _extras(out: Exposition, extras: dict[str, dict[str, str]], doc: dict[str, Any], labels: Labels) -> None:
    """A family's extra quantities: a temperature as one more sensor of `pylontech_temperature_celsius`, the
    rest as `pylontech_<key>` in its base unit (`_total` for a counter)."""
    for key, quantity in extras.items():
        value, unit = doc.get(key), quantity["unit"]
        if unit == "°C" and key.endswith("_temperature"):
            sensor = [(key.removesuffix("_temperature"), value)]
            _list(out, "pylontech_temperature_celsius", TEMPERATURES, "sensor", sensor, labels)
            continue
        suffix, factor = BASE_UNITS.get(unit, ("", 1))
        counter = quantity["state_class"] == "total_increasing"
        name = f"pylontech_{key}{suffix}{'_total' if counter else ''}"
        number = value * factor if isinstance(value, int | float) and factor != 1 else value
        help_text = quantity["description"][:1].upper() + quantity["description"][1:] + "."
        out.add(
            name, "counter" if counter else "gauge", help_text, labels, round(number, 6) if number is not None else None
        )


def exposition(state: dict[str, Any], last_success: float | None, spool: tuple[int, int] | None) -> str:
    """The text of /metrics for a cycle's `reading_state`; `last_success` the start (s since the epoch) of the
    last cycle in which a module answered; `spool` is (pending batches, dropped batches) when there is one."""
    out = Exposition()
    for stack in state["stacks"]:
        family = {"bms": stack["bms"]} if "bms" in stack else {}
        for doc in stack["modules"]:
            labels = family | {"group": doc["group"], "module": doc["module"], "serial": doc["serial"] or ""}
            out.add(
                "pylontech_module_up", "gauge", "1 when the module answered in the last cycle.", labels, doc["online"]
            )
            info = labels | {key: doc[key] or "" for key in ("model", "manufacturer", "firmware")}
            out.add("pylontech_module_info", "gauge", "Who the module says it is.", info, 1)
            if not doc["online"]:
                continue
            _values(out, 1, doc, labels)
            cells = ((str(n), v) for n, v in enumerate(doc["cells"], 1))
            _list(out, "pylontech_cell_voltage_volts", "Cell voltage.", "cell", cells, labels)
            sensors = [("bms", doc["temperature_bms"]), *((str(n), v) for n, v in enumerate(doc["temperatures"], 1))]
            _list(out, "pylontech_temperature_celsius", TEMPERATURES, "sensor", sensors, labels)
            flags = ((name, value) for name, value in doc.get("alarms", {}).items() if not name.startswith("status"))
            _list(out, "pylontech_alarm", "1 while the alarm is raised.", "type", flags, labels)
            _extras(out, stack.get("extras", {}), doc, labels)
        _values(out, 2, stack, family | {"group": stack["group"]})
    out.add("pylontech_poll_duration_seconds", "gauge", "Duration of the last poll cycle.", {}, state["duration"])
    for reason, count in state["errors"].items():
        out.add("pylontech_read_errors_total", "counter", "Failed module reads by reason.", {"reason": reason}, count)
    help_text = "Start of the last cycle in which a module answered."
    out.add("pylontech_last_success_timestamp_seconds", "gauge", help_text, {}, last_success)
    if spool is not None:
        out.add("pylontech_spool_pending_batches", "gauge", "Batches waiting in the spool.", {}, spool[0])
        out.add(
            "pylontech_spool_dropped_batches_total", "counter", "Batches the spool dropped when full.", {}, spool[1]
        )
    return out.text()
