"""The BMS families that speak this frame, one module (or package) each with its `FAMILY`.

They are found by listing this package, so adding a family is adding its module and nothing else names it.
A family is imported when it is first asked for: a program reading Pylontech builds no other family's layouts."""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..family import Family
    from ..frame import Frame

DEFAULT = "pylontech"


@cache
def names() -> tuple[str, ...]:
    """The name of every family, as `--bms` will take it."""
    import pkgutil  # here, not above: the CLI's --version reads Pylontech's codes through this package

    return tuple(sorted(module.name for module in pkgutil.iter_modules(__path__)))


@cache  # asked for by each module's documents each cycle: the import machinery's lookup cost 50 us a cycle
def family(name: str = DEFAULT) -> Family[Any, Any]:
    """The family called `name`; ValueError for a name no module here has."""
    if name not in names():
        raise ValueError(f"unknown BMS family {name!r}; known: {', '.join(names())}")
    found: Family[Any, Any] = importlib.import_module(f".{name}", __name__).FAMILY
    return found


def recognise(frame: Frame) -> Family[Any, Any] | None:
    """The family a reply proves it comes from, or None: VER and CID1 alone where one family has them (VER 0x25
    is PACE; CID1 0x4A with VER 0x20 is EG4, with 0x22 Daren), else the one whose layouts read the INFO exactly
    (Seplos shares Pylontech's VER and CID1; their 0x42 replies differ in layout)."""
    fits = [f for f in map(family, names()) if (f.ver, f.cid1) == (frame.ver, frame.cid1)]
    if len(fits) > 1:
        fits = [f for f in fits if _reads(f, frame)]
    return fits[0] if len(fits) == 1 else None


def _reads(described: Family[Any, Any], frame: Frame) -> bool:
    """Whether a layout of the family reads the frame, other than one that keeps any INFO whole."""
    found = described.infer_command(frame)
    if found is None:
        return False
    command, fanout = found
    layouts = described.fanouts if fanout else described.replies
    return command not in layouts or not layouts[command].raw
