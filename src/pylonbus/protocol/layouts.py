"""Kept for programs written against 0.2: the layouts are Pylontech's, in `families.pylontech.layouts` (the
field constructors they use are in `fields`)."""

from __future__ import annotations

from .families.pylontech.layouts import *  # noqa: F403
