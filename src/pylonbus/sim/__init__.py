"""A Pylontech battery-stack simulator: model, bus responder, fault injection and front-ends."""

from .bus import Bus
from .model import PRESETS, Module, Preset, Stack
from .responder import Faults, Responder

URL_HANDLER_PACKAGE = "pylonbus.sim.urlhandler"


def register_url_handler() -> None:
    """Make `serial.serial_for_url("sim://…")` open an in-process simulator."""
    import serial

    if URL_HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(URL_HANDLER_PACKAGE)


__all__ = ["PRESETS", "Bus", "Faults", "Module", "Preset", "Responder", "Stack", "register_url_handler"]
