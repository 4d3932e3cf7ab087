"""The HTTP sink's part of the configuration: the `[http]` table (also --http)."""

from __future__ import annotations

from ...options import Setting

SETTINGS = (Setting("listen", "http"),)
