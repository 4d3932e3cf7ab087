"""The collector service: a Poller reads every module of every group each cycle and hands on one typed Reading."""

from .poller import Poller
from .reading import Identity, ModuleReading, Reading, StackReading

__all__ = ["Identity", "ModuleReading", "Poller", "Reading", "StackReading"]
