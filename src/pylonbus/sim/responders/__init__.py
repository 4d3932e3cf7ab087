"""The simulator's responder of each BMS family: a module named as the family in `protocol/families/`, each
with its `RESPONDER`; a family without one is not simulated yet."""

from __future__ import annotations

import importlib

from ...protocol.families import DEFAULT
from ..responder import Responder


def responder_class(name: str = DEFAULT) -> type[Responder]:
    """The responder of the family called `name`; ValueError if the simulator does not play it."""
    try:
        module = importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":
            raise
        raise ValueError(f"the simulator does not play the {name!r} family") from None
    found: type[Responder] = module.RESPONDER
    return found
