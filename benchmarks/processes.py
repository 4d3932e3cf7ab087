"""The processes the benchmarks start, and what they read of them from /proc: CPU seconds and resident memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(proc: subprocess.Popen[bytes], seconds: float) -> float:
    """The highest resident memory of a running process, sampled every half second for `seconds`."""
    peak = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, proc_rss_mb(proc.pid))
        time.sleep(0.5)
    return peak


SIXTEEN_MODULES = "US3000C*8;US3000C*8"


def pylon2influx(*args: str) -> subprocess.Popen[bytes]:
    """The daemon polling 16 modules in two groups of the in-process simulator, with `args` added."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pylonbus.cli.pylon2influx",
            "-d",
            f"sim://?stack={SIXTEEN_MODULES}",
            "-g",
            "0,1",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
