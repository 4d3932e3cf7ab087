"""Kept for programs written against 0.2: the protocol's numbers now live where they belong, the shared ones
in `frame` and `family`, Pylontech's in `families.pylontech.codes`."""

from __future__ import annotations

from .families.pylontech.codes import MAX_GROUP, MAX_MODULE, Command, address, info_addresses
from .family import FANOUT
from .frame import CID1_BATTERY, Rtn, rtn_meaning, split_address

__all__ = [
    "CID1_BATTERY",
    "FANOUT",
    "MAX_GROUP",
    "MAX_MODULE",
    "Command",
    "Rtn",
    "address",
    "info_addresses",
    "rtn_meaning",
    "split_address",
]
