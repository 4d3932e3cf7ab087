"""How long a spool of many batches takes to open at start, its pages evicted from the page cache first
(`posix_fadvise(DONTNEED)` on the file, as after a reboot): after a clean close, after a crash (no clean-close
note: the integrity check reads every page), and with `--base DIR` on that source tree's code too. Each open
runs in a fresh process; the figures are medians of `--runs`.

Run: python benchmarks/startup_spool.py [--batches 1000000] [--base DIR] [--runs 3] [--reuse FILE]
(`--reuse`: the spool is built there once and used again by later runs: a million batches take minutes)"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = b"Battery,Module=1 Voltage=51.234,Current=-2.5,SOC=87,Temp=23.1 " * 4  # about a module's line
# The first poll's batch committed, then (where the code checks a crashed spool in the background) the check done.
OPEN = """
import sys, time
started = time.perf_counter()
from pylonbus.store.spool import Spool
spool = Spool(sys.argv[1], 10**8)
spool.add(b"first poll", 1)
first = time.perf_counter() - started
while getattr(spool._database, "check", None) is not None:
    time.sleep(0.01)
print(first, time.perf_counter() - started, spool.pending())
"""


def fill(path: Path, batches: int, src: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-c", OPEN, str(path)], check=True, env=env, stdout=subprocess.DEVNULL)
    db = sqlite3.connect(path)
    with db:
        now = time.time()
        db.executemany(
            "INSERT INTO batches (created, lines, body) VALUES (?, 1, ?)", ((now + n, BODY) for n in range(batches))
        )
    db.close()


def evict(path: Path) -> None:
    for name in (path, Path(f"{path}-journal"), Path(f"{path}-unchecked")):
        if name.exists():
            fd = os.open(name, os.O_RDONLY)
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def open_time(path: Path, src: Path, clean: bool) -> tuple[float, float]:
    """Seconds to import the spool, open it and commit a batch, in a new process, on a cold file; and until
    its integrity check is done."""
    note = Path(f"{path}-closed")
    if clean:
        close = OPEN + "spool.close()\n"  # a clean close of a checked spool
        env = os.environ | {"PYTHONPATH": str(src)}
        subprocess.run([sys.executable, "-c", close, str(path)], check=True, env=env, capture_output=True)
    else:
        note.unlink(missing_ok=True)
    evict(path)
    done = subprocess.run(
        [sys.executable, "-c", OPEN, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(src)},
    )
    first, checked, _ = done.stdout.split()
    return float(first), float(checked)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100_000)
    parser.add_argument("--base", type=Path, help="another source tree, measured alternately")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reuse", type=Path, help="a spool file built by an earlier run (built there if missing)")
    args = parser.parse_args()
    trees = {"this tree": ROOT / "src"}
    if args.base is not None:
        trees = {f"base {args.base.name}": args.base.resolve() / "src", **trees}
    with tempfile.TemporaryDirectory(dir=ROOT) as name:  # on the disk of the checkout, not a tmpfs
        path = args.reuse or Path(name) / "spool.sqlite"
        if not path.exists():
            fill(path, args.batches, ROOT / "src")
        if Path(f"{path}-unchecked").exists():  # left by a stopped run: checked and taken back first
            open_time(path, ROOT / "src", clean=False)
        size = path.stat().st_size / 1e6
        print(
            f"spool of {args.batches:,} batches ({size:,.0f} MB), pages evicted before each open; "
            "seconds to the first poll's batch committed (target <= 2 s), and to the integrity check done"
        )
        cases = [(label, src, clean) for label, src in trees.items() for clean in (False, True)]
        times: dict[tuple[str, bool], list[tuple[float, float]]] = {(label, clean): [] for label, _, clean in cases}
        for _ in range(args.runs):
            for label, src, clean in cases:
                times[(label, clean)].append(open_time(path, src, clean))
        for (label, clean), seconds in times.items():
            how = "after a clean close" if clean else "after a crash"
            first = statistics.median(s[0] for s in seconds)
            checked = statistics.median(s[1] for s in seconds)
            print(f"  {label:<20}{how:<22}first poll {first:7.2f} s   checked {checked:7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
