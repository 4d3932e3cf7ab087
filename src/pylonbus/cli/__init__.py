"""Command-line programs: `pylontech`, `pylon2influx` and `pylontech-sim`."""
