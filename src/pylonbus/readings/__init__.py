"""What a poll cycle hands to every sink: the typed Reading, the documents made from it (the same keys in MQTT,
the full InfluxDB schema and the HTTP API) and the energy counters integrated across cycles. Below the service
and the sinks, so that each can use it without importing the other."""

from .energy import Energy
from .reading import Identity, ModuleReading, Reading, StackReading

__all__ = ["Energy", "Identity", "ModuleReading", "Reading", "StackReading"]
