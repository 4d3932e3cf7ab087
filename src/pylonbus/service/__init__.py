"""The collector service: a Poller reads every module of every group each cycle and hands on one typed Reading."""

from ..readings import Identity, ModuleReading, Reading, StackReading
from .poller import Poller

__all__ = ["Identity", "ModuleReading", "Poller", "Reading", "StackReading"]
