"""Kept for programs written against 0.2: requests and replies are now worked out by `family.Family` for any
family; these are Pylontech's, from `families.pylontech.family`."""

from __future__ import annotations

from .families.pylontech.family import (
    ADDRESSED,
    DEFAULT_VER,
    WRITES,
    decode_reply,
    infer_command,
    request,
    set_charge_discharge_request,
)
from .family import command_names

__all__ = [
    "ADDRESSED",
    "DEFAULT_VER",
    "WRITES",
    "command_names",
    "decode_reply",
    "infer_command",
    "request",
    "set_charge_discharge_request",
]
