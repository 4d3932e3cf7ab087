"""Logging levels of pylonbus beyond the standard ones."""

from __future__ import annotations

import logging

#: Every frame sent and received, below DEBUG: shown by the programs at -v 3 (-vvv).
FRAME = 5
logging.addLevelName(FRAME, "FRAME")
