"""`pylon2influx` placeholder until the daemon lands."""

import sys


def main() -> int:
    print("pylon2influx: not implemented yet", file=sys.stderr)
    return 1
