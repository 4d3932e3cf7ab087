"""Names a package exports but imports only when first used, so that `import pylonbus` or a program's --version
does not load pyserial or build every reply layout."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def exports(package: str, sources: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: each name of `sources` comes from the module named beside it
    (relative to the package), and is kept in the package once imported."""

    def getattr_(name: str) -> Any:
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return getattr_
