"""The collector service: a Poller reads every module of every group each cycle and hands on one typed Reading.

Names are imported on first use: the settings and the config (`pylon2influx --help`) load without the poller."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from ..readings import Identity, ModuleReading, Reading, StackReading
    from .poller import Poller

__all__ = ["Identity", "ModuleReading", "Poller", "Reading", "StackReading"]

_READINGS = ("Identity", "ModuleReading", "Reading", "StackReading")
__getattr__ = exports(__name__, {"Poller": ".poller"} | dict.fromkeys(_READINGS, "..readings"))
