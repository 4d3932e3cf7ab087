"""Results as JSON-ready dicts and as aligned text for people, in V, A, °C, Ah and %."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .protocol.results import flag_names

_UNITS = (("voltage", "V"), ("current", "A"), ("temperature", "°C"), ("capacity", "Ah"), ("power", "W"))
_PERCENT = ("soc", "average_soh", "min_soh")
#: Protocol bookkeeping a battery owner has no use for: shown in text only at -v 2 (always in JSON).
INTERNAL = frozenset({"info_flag", "data_flag", "command_value", "user_defined_items", "extra", "status4", "status5"})
#: Fields that a derived property shows better in text: each temperature as BMS and cell temperatures.
SHOWN_BY_PROPERTIES = frozenset({"temperatures"})
TEXT_SUFFIX = "_text"
ACRONYMS = {
    "soc": "SOC",
    "soh": "SOH",
    "bms": "BMS",
    "mosfet": "MOSFET",
}  # a property `x_text` is how field `x` reads, and takes its place in text


def unit_of(name: str) -> str:
    if name in _PERCENT:
        return "%"
    for part, unit in _UNITS:
        if part in name and not name.endswith(("_module", "_state", "_states")):
            return unit
    return ""


def _properties(cls: type) -> list[str]:
    return [
        name
        for klass in reversed(cls.__mro__)
        for name, member in vars(klass).items()
        if isinstance(member, property) and not name.startswith("_")
    ]


def as_dict(value: Any) -> Any:
    """A JSON-ready form: dataclass fields and derived properties (soc, alarms …), enums by name,
    flag bytes as their value and the names of the set flags, bytes as hex."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: as_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in _properties(type(value)):
            out[name] = as_dict(getattr(value, name))
        return out
    if isinstance(value, enum.IntFlag):
        return {"value": int(value), "flags": flag_names(value)}
    if isinstance(value, enum.IntEnum):
        return value.name
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, tuple | list):
        return [as_dict(v) for v in value]
    return value


def _value(unit: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.IntFlag):
        names = flag_names(value)
        return f"0x{int(value):02X} " + (", ".join(names) if names else "(none)")
    if isinstance(value, enum.IntEnum):
        return value.name.lower().replace("_", " ") if value == 0 else f"!! {value.name}"
    if isinstance(value, bytes):
        return value.hex().upper() or "-"
    if isinstance(value, float):
        return f"{value:.{3 if unit in ('V', 'Ah') else 1}f}"
    if value is None:
        return "-"
    return str(value)


def _text(name: str, value: Any) -> str:
    unit = unit_of(name)
    if isinstance(value, tuple | list):
        if value and dataclasses.is_dataclass(value[0]):
            return f"{len(value)} entries"
        if value and isinstance(value[0], str):
            text = ", ".join(value)
        elif len(value) > 1 and isinstance(value[0], enum.IntEnum) and len(set(value)) == 1:
            text = f"all {len(value)} {_value(unit, value[0])}"
        else:
            text = " ".join(_value(unit, v) for v in value) or "none"
    else:
        text = _value(unit, value)
    return f"{text} {unit}" if unit and text not in ("-", "none") else text


def text_fields(result: Any, verbose: bool = False) -> list[tuple[str, str]]:
    """(label, field or property name) of what a person reads, in order: fields, then derived values."""
    names = [f.name for f in dataclasses.fields(result)] + _properties(type(result))
    shown = []
    for name in names:
        if name in SHOWN_BY_PROPERTIES or name + TEXT_SUFFIX in names:
            continue
        if name in INTERNAL and not verbose:
            continue
        words = name.removesuffix(TEXT_SUFFIX).split("_")
        shown.append((" ".join(ACRONYMS.get(word, word) for word in words), name))
    return shown


def render_text(result: Any, indent: str = "", verbose: bool = False) -> list[str]:
    """`label: value unit` lines, labels right-aligned; nested packs (fan-out replies) follow, numbered."""
    shown = text_fields(result, verbose)
    nested = [
        name
        for _, name in shown
        if isinstance(value := getattr(result, name), tuple) and value and dataclasses.is_dataclass(value[0])
    ]
    width = max((len(label) for label, _ in shown), default=0)
    lines = [
        f"{indent}{label:>{width}}: {_text(name, getattr(result, name))}" for label, name in shown if name not in nested
    ]
    for name in nested:
        for number, item in enumerate(getattr(result, name), 1):
            lines.append(f"{indent}{name.removesuffix('s')} {number}:")
            lines += render_text(item, indent + "    ", verbose)
    return lines
