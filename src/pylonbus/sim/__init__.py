"""A battery-stack simulator: model, bus responder (one per BMS family), fault injection and front-ends."""

from .bus import Bus
from .model import PRESETS, Module, Preset, Stack
from .responder import Faults
from .responders import responder_class
from .responders.pylontech import PylontechResponder as Responder  # the default family's, as 0.2 named it

__all__ = ["PRESETS", "Bus", "Faults", "Module", "Preset", "Responder", "Stack", "responder_class"]
