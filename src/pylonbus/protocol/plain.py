"""Results as plain values: `as_dict` turns any typed result into what `json.dumps` takes."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .fields import flag_names

#: Properties that only restate fields, for programs (an identity result's `identity`): in no plain form.
RESTATED = frozenset({"identity"})


def properties_of(cls: type) -> list[str]:
    """The public derived values (properties) of a result class, each once where the class that defines it last
    puts it (a family's class overrides its base's), the base classes' first; less the fields of the class and
    what only restates them."""
    skip = RESTATED | ({f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set())
    found = [
        name
        for klass in reversed(cls.__mro__)
        for name, member in vars(klass).items()
        if isinstance(member, property) and not name.startswith("_") and name not in skip
    ]
    return list(reversed(dict.fromkeys(reversed(found))))


def as_dict(value: Any) -> Any:
    """The JSON-ready form of a result (`AnalogData`, `Identity`, a `Reading` …): a dict of its fields and its
    derived properties (`soc`, `alarms` …) in the units of the result (V, A, °C, Ah, %, s), enums by name, flag
    bytes as `{"value": int, "flags": [names of the set flags]}`, bytes as upper-case hex, tuples as lists;
    anything else as it is. `json.dumps(pylonbus.as_dict(stack.analog(1)))` is what `pylontech --json` shows."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: as_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in properties_of(type(value)):
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
