"""Where the spool and the energy counters live by default; apart from the spool, so that a program can name them
in its help without loading sqlite3."""

from __future__ import annotations

import os
from pathlib import Path


def default_path() -> Path:
    """$STATE_DIRECTORY (systemd), else /var/lib/pylon2influx as root, else ~/.local/state/pylon2influx."""
    if state := os.environ.get("STATE_DIRECTORY"):
        base = Path(state.split(":")[0])
    elif os.geteuid() == 0:
        base = Path("/var/lib/pylon2influx")
    else:
        base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "pylon2influx"
    return base / "spool.sqlite"


def default_energy_path() -> Path:
    """The energy counters' file where no sink spools: beside the default spool."""
    return default_path().with_name("energy.sqlite")
