"""Issue 25's figures, each beside its anchor and target: a benchmark reports each of its figures with
`report`, and `benchmarks/light.py`, which runs them all, prints them in one table at the end."""

from __future__ import annotations

import json
import os

#: The file `light.py` gathers the figures in (one JSON object a line); unset when a benchmark runs alone.
FIGURES = "PYLONBUS_FIGURES"


def report(figure: str, measured: str, anchor: str, target: str, met: bool) -> None:
    """Note one figure (`measured`, its `anchor` — the peer or the C daemon —, its `target`) for the table."""
    path = os.environ.get(FIGURES)
    if path:
        row = {"figure": figure, "measured": measured, "anchor": anchor, "target": target, "met": met}
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")
