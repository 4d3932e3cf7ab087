"""Pylontech (US2000, US3000, US5000, UP2500, …): its commands and addressing (`codes`), reply layouts
(`layouts`), result types (`results`) and its `Family` with the request and decode functions (`family`).

A package rather than one module because its layouts and results are 500 lines; its names are imported on
first use, so that `codes` (the CLI's ranges) loads without building every layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....lazy import exports

if TYPE_CHECKING:
    from .family import FAMILY

__all__ = ["FAMILY"]

__getattr__ = exports(__name__, {"FAMILY": ".family"})
