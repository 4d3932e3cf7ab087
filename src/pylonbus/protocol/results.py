"""Kept for programs written against 0.2: the results are Pylontech's, in `families.pylontech.results`
(`AlarmState` and `flag_names` are shared, in `fields`; `ProtocolVersion` in `family`)."""

from __future__ import annotations

from .families.pylontech.results import *  # noqa: F403
