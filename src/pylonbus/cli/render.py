"""Results as JSON-ready dicts and as aligned text for people, in V, A, °C, Ah and %."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

from ..protocol.fields import flag_names
from ..protocol.plain import properties_of

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


_UNITS: dict[type, dict[str, str]] = {}


def unit_of(result: Any, name: str) -> str:
    """The unit its layout (or its class, for a derived value) declares for a field of a result."""
    cls = type(result)
    if cls not in _UNITS:
        _UNITS[cls] = _units_of(cls)
    return _UNITS[cls].get(name.removesuffix(TEXT_SUFFIX), "")


def _units_of(cls: type) -> dict[str, str]:
    """The units of a family's result class: from the layouts of the family that decodes it (the one whose
    module defines it), the fields' declared units (`pack.quantity`) and its derived values (`UNITS`,
    `DERIVED`)."""
    from ..protocol.families import family, names
    from ..protocol.layout import Repeat

    _, _, inside = cls.__module__.partition(".families.")
    owner = inside.partition(".")[0]
    units: dict[str, str] = {}
    for name in [owner] if owner in names() else names():
        tables = family(name)
        layouts = [*tables.replies.values(), *tables.fanouts.values()]
        layouts += [e.layout for layout in layouts for e in layout.elements if isinstance(e, Repeat)]
        for layout in layouts:
            if layout.cls is cls:
                units.update(layout.units())
    units |= {f.name: f.metadata["unit"] for f in dataclasses.fields(cls) if "unit" in f.metadata}
    for klass in reversed(cls.__mro__):
        units.update(vars(klass).get("UNITS", {}))
        units.update({key: q["unit"] for key, q in vars(klass).get("DERIVED", {}).items()})
    return units


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


def _text(unit: str, value: Any) -> str:
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
    names = [f.name for f in dataclasses.fields(result)] + properties_of(type(result))
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
        f"{indent}{label:>{width}}: {_text(unit_of(result, name), getattr(result, name))}"
        for label, name in shown
        if name not in nested
    ]
    for name in nested:
        for number, item in enumerate(getattr(result, name), 1):
            lines.append(f"{indent}{name.removesuffix('s')} {number}:")
            lines += render_text(item, indent + "    ", verbose)
    return lines


def _flat(result: Any, verbose: bool) -> list[tuple[str, str, Any]]:
    """(name with unit, unit, value) of what a person reads of a result, one entry per value: a list of
    values gives one each (`cell voltage 3 V`)."""
    out = []
    for label, name in text_fields(result, verbose):
        value = getattr(result, name)
        unit = unit_of(result, name)
        if isinstance(value, tuple | list) and value and not isinstance(value[0], str):
            singular = label.removesuffix("s")
            out += [(" ".join(filter(None, (singular, str(n), unit))), unit, item) for n, item in enumerate(value, 1)]
        elif isinstance(value, tuple | list):
            out.append((label, "", "; ".join(value)))
        else:
            out.append((" ".join(filter(None, (label, unit))), unit, value))
    return out


def flat_fields(result: Any, verbose: bool = False) -> dict[str, Any]:
    """A result as one flat row for CSV: names carry their unit, numbers stay numbers, the rest reads as text."""
    return {
        key: value
        if isinstance(value, int | float) and not isinstance(value, bool | enum.Enum)
        else _value(unit, value)
        for key, unit, value in _flat(result, verbose)
    }


def columns_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every key of the rows, each after the key that precedes it in its row (a 16th cell follows the 15th)."""
    columns: list[str] = []
    for row in rows:
        previous = None
        for key in row:
            if key not in columns:
                columns.insert(columns.index(previous) + 1 if previous is not None else len(columns), key)
            previous = key
    return columns


def render_columns(results: dict[int, Any], indent: str = "", verbose: bool = False) -> list[str]:
    """Results of several modules side by side: a row a value, a column a module."""
    flat = {
        module: {key: _value(unit, value) for key, unit, value in _flat(result, verbose)}
        for module, result in results.items()
    }
    labels = columns_of(list(flat.values()))
    width = max([len("module"), *map(len, labels)])
    widths = {m: max([len(str(m)), *(len(row.get(label, "-")) for label in labels)]) for m, row in flat.items()}
    lines = [f"{indent}{'module':>{width}}  " + "  ".join(f"{m:>{widths[m]}}" for m in flat)]
    for label in labels:
        lines.append(
            f"{indent}{label:>{width}}  " + "  ".join(f"{row.get(label, '-'):>{widths[m]}}" for m, row in flat.items())
        )
    return lines
