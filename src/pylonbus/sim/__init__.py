"""A Pylontech battery-stack simulator: model, bus responder, fault injection and front-ends."""

from .bus import Bus
from .model import PRESETS, Module, Preset, Stack
from .responder import Faults, Responder

__all__ = ["PRESETS", "Bus", "Faults", "Module", "Preset", "Responder", "Stack"]
