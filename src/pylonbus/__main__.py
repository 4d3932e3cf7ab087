"""`python -m pylonbus`: what the package installs."""

from __future__ import annotations

from . import __version__

PROGRAMS = (
    ("pylontech", "query a stack: summary, scan, analog data, alarms, limits; --json; --decode frames from logs"),
    ("pylon2influx", "poll a stack and write every module to InfluxDB through a durable spool (or to stdout)"),
    ("pylontech-sim", "a simulated battery stack on a pseudo-terminal or TCP port, with faults"),
)


def main() -> None:
    print(f"pylonbus {__version__}: Pylontech low-voltage batteries on RS485. Programs:")
    for name, text in PROGRAMS:
        print(f"  {name:<14} {text}")
    print("Each has --help. The library: import pylonbus (see the README).")


main()
