"""System calls a request costs on a local serial device: `strace -c -f` around a client that reads 0x42 and
0x44 from 8 modules through `pylontech-sim --pty` (the simulator in its own process), one module at a time and
as a fan-out of the group, less the same client making no request. With `--base DIR` (a source tree, e.g.
`git archive REV | tar -x -C DIR`) the same client runs on that code too, alternately, for a side by side.

Run: python benchmarks/syscalls.py [--rounds 20] [--base DIR]   (needs strace)"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from poll import BAUD, simulator

MODULES = 8
CLIENT = """
import sys
from pylonbus import Link, Stack
port, rounds, fanout = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "fanout"
with Link(port, 115200) as link:
    stack = Stack(link)
    stack.modules = list(range(1, 9))
    for _ in range(rounds):
        if fanout:
            stack.analog_all(); stack.alarm_all()
        else:
            for module in stack.modules:
                stack.analog(module); stack.alarm(module)
"""


def counts(src: Path, port: str, rounds: int, mode: str) -> Counter[str]:
    """Calls by system call name of the client on the code under `src`."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        env = {**os.environ, "PYTHONPATH": str(src)}
        subprocess.run(
            ["strace", "-f", "-c", "-o", out.name, sys.executable, "-c", CLIENT, port, str(rounds), mode],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        calls: Counter[str] = Counter()
        for line in Path(out.name).read_text().splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
                calls[fields[-1]] = int(fields[3])
        return calls


def per_request(src: Path, port: str, rounds: int, mode: str) -> tuple[float, Counter[str]]:
    requests = rounds * (2 if mode == "fanout" else 2 * MODULES)
    extra = counts(src, port, rounds, mode)
    extra.subtract(counts(src, port, 0, mode))
    return sum(extra.values()) / requests, Counter({k: v for k, v in extra.items() if v > 0})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--base", type=Path, help="another source tree to measure beside this one")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        print("strace is not installed")
        return 1
    trees = {"this tree": Path(__file__).resolve().parent.parent / "src"}
    if args.base is not None:
        trees = {f"base ({args.base})": args.base / "src", **trees}
    print(f"system calls a request, 0x42 + 0x44 from {MODULES} modules at {BAUD} Bd over a pty, {args.rounds} rounds")
    with simulator(f"US3000C*{MODULES}") as port:
        for mode in ("each", "fanout"):
            for name, src in trees.items():
                total, calls = per_request(src, port, args.rounds, mode)
                requests = args.rounds * (2 if mode == "fanout" else 2 * MODULES)
                top = ", ".join(f"{call} {n / requests:.1f}" for call, n in calls.most_common(8))
                print(f"  {mode:<7}{name:<34}{total:6.1f}   {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
