"""Results as JSON-ready dicts and as aligned text for people, in V, A, °C, Ah and %."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .protocol.results import flag_names

_UNITS = (("voltage", "V"), ("current", "A"), ("temperature", "°C"), ("capacity", "Ah"), ("power", "W"))
_PERCENT = ("soc", "average_soh", "min_soh")


def unit_of(name: str) -> str:
    if name in _PERCENT:
        return "%"
    for part, unit in _UNITS:
        if part in name and not name.endswith("_module") and not name.endswith("_state"):
            return unit
    return ""


def _properties(cls: type) -> list[str]:
    return [
        name
        for klass in cls.__mro__
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
    if isinstance(value, enum.IntFlag):
        names = flag_names(value)
        return f"0x{int(value):02X} " + (", ".join(names) if names else "(none)")
    if isinstance(value, enum.IntEnum):
        return value.name if value == 0 else f"!! {value.name}"
    if isinstance(value, bytes):
        return value.hex().upper() or "-"
    if isinstance(value, float):
        return f"{value:.{3 if unit in ('V', 'Ah') else 1}f}"
    if value is None:
        return "-"
    return str(value)


def _text(name: str, value: Any) -> str:
    unit = "" if name.endswith("_states") else unit_of(name)
    if isinstance(value, tuple | list):
        if value and dataclasses.is_dataclass(value[0]):
            return f"{len(value)} entries"
        text = " ".join(_value(unit, v) for v in value) or "none"
    else:
        text = _value(unit, value)
    return f"{text} {unit}" if unit and text not in ("-", "none") else text


def render_text(result: Any, indent: str = "") -> list[str]:
    """`name: value unit` lines, names right-aligned; nested packs (fan-out replies) follow, numbered."""
    names = [f.name for f in dataclasses.fields(result)] + _properties(type(result))
    nested = [
        n
        for n in names
        if isinstance(getattr(result, n), tuple)
        and getattr(result, n)
        and dataclasses.is_dataclass(getattr(result, n)[0])
    ]
    width = max((len(n) for n in names), default=0)
    lines = [
        f"{indent}{name.replace('_', ' '):>{width}}: {_text(name, getattr(result, name))}"
        for name in names
        if name not in nested
    ]
    for name in nested:
        for number, item in enumerate(getattr(result, name), 1):
            lines.append(f"{indent}{name[:-1] if name.endswith('s') else name} {number}:")
            lines += render_text(item, indent + "    ")
    return lines
