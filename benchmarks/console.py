"""The console's cost: wire time of one poll cycle at 115200 Bd (`pwr` every cycle, `bat`/`soh`/`stat` of each
module spread over --console-every) against the simulated console on a pseudo-terminal, and the parse cost
of each table of the captures.

Run: python benchmarks/console.py [--stack US3000C*4] [--period 10] [--every 60]"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

from pylonbus.console import decode, split_session
from pylonbus.link.console import ConsoleLink

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "console" / "transcripts.json"
TABLES = {  # a capture of each table, by (command, firmware)
    "pwr, 16 rows (US2000C B67.5.0)": ("pwr", "B67.5.0"),
    "pwr N (US2000C B67.5.0)": ("pwr 1", "B67.5.0"),
    "bat N, 15 cells (US2000C B67.5.0)": ("bat 1", "B67.5.0"),
    "soh N, 15 cells (US2000C B68.2)": ("soh 2", "B68.2"),
    "stat N (US2000C B68.2)": ("stat 2", "B68.2"),
    "info N (US2000C B67.5.0)": ("info 2", "B67.5.0"),
    "time (US2000B B66.6)": ("time", "B66.6"),
    "pwr, the tower (Force H2 B52.26)": ("pwr", "B52.26"),
    "unit, 4 units (Force H2 B52.26)": ("unit", "B52.26"),
    "bat, 120 cells (Force H2 B52.26)": ("bat", "B52.26"),
}


def parse_costs() -> None:
    entries = json.loads(TRANSCRIPTS.read_text())
    print("parse cost per reply (framing and decoding):")
    for label, (command, firmware) in TABLES.items():
        text = next(e["text"] for e in entries if e["command"] == command and firmware in e["firmware"])
        number, seconds = timeit.Timer(lambda text=text: [decode(r) for r in split_session(text)]).autorange()
        print(f"  {label:<36} {seconds / number * 1e6:8.0f} µs")


def wire_times(stack: str, period: float, every: float) -> None:
    sim = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.sim", "--pty", "--console", "--stack", stack, "--frozen"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = sim.stdout.readline().strip() if sim.stdout else ""
        with ConsoleLink(port) as link:
            modules = link.query("pwr").present  # type: ignore[union-attr]
            times: dict[str, list[float]] = {}
            for _ in range(5):
                for command in ("pwr", *(f"{c} {modules[0]}" for c in ("bat", "soh", "stat"))):
                    started = time.perf_counter()
                    link.query(command)
                    times.setdefault(command.split()[0], []).append(time.perf_counter() - started)
    finally:
        sim.terminate()
        sim.wait()
    median = {name: statistics.median(values) for name, values in times.items()}
    slow = sum(median[name] for name in ("bat", "soh", "stat")) * len(modules)
    cycles = max(every / period, 1)
    print(f"wire time at 115200 Bd, {len(modules)} modules ({stack}), median of 5:")
    for name, value in median.items():
        print(f"  {name:<5} {value * 1000:7.1f} ms" + ("" if name == "pwr" else " a module"))
    print(
        f"  a cycle every {period:g} s with bat/soh/stat every {every:g} s: pwr {median['pwr'] * 1000:.0f} ms + "
        f"{slow * 1000:.0f} ms spread over {cycles:g} cycles = {(median['pwr'] + slow / cycles) * 1000:.0f} ms a cycle"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="US3000C*4")
    parser.add_argument("--period", type=float, default=10.0, help="poll period, s")
    parser.add_argument("--every", type=float, default=60.0, help="--console-every, s")
    args = parser.parse_args()
    parse_costs()
    wire_times(args.stack, args.period, args.every)


if __name__ == "__main__":
    main()
