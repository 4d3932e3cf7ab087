"""Issue 25 in one run: every benchmark behind its figures (daemon CPU a cycle and RSS, start-up with a
million-batch spool, `/metrics` and `/api/state` requests/s, the MQTT day replay, decode against the peers),
each printing as it goes, then one table of every figure beside its anchor and target.

Run: python benchmarks/light.py [--seconds 120] [--batches 1000000] [--reuse FILE] [--base DIR] [--skip NAME]
(needs influxd and mosquitto, and PyPI the first time for the decode peers; about 25 minutes as given)"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from figures import FIGURES

HERE = Path(__file__).resolve().parent


def runs(args: argparse.Namespace) -> dict[str, list[str]]:
    """Each benchmark and its arguments, in the order they run."""
    spool = ["--batches", str(args.batches), "--runs", "1", *(["--reuse", str(args.reuse)] if args.reuse else [])]
    cpu = ["--seconds", str(args.seconds), *(["--base", str(args.base)] if args.base else [])]
    return {
        "daemon_cpu": cpu,
        "startup_spool": spool,
        "http_metrics": [],
        "mqtt": ["--replay-only"],
        "decode": [],
    }


def table(rows: list[dict[str, object]]) -> str:
    head = ("figure", "measured", "anchor", "target", "met")
    lines = [f"| {' | '.join(head)} |", f"|{'---|' * len(head)}"]
    for row in rows:
        cells = [str(row[key]) for key in head[:-1]] + ["yes" if row["met"] else "**no**"]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="daemon_cpu: watched period of a case (120)")
    parser.add_argument("--batches", type=int, default=1_000_000, help="startup_spool: batches (1,000,000)")
    parser.add_argument("--reuse", type=Path, help="startup_spool: a spool file built once and used again")
    parser.add_argument("--base", type=Path, help="daemon_cpu: a source tree run beside this one")
    parser.add_argument("--skip", action="append", default=[], help="leave this benchmark out")
    args = parser.parse_args()
    failed = []
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as gathered:
        env = os.environ | {FIGURES: gathered.name}
        for name, extra in runs(args).items():
            if name in args.skip:
                continue
            print(f"== {name} {' '.join(extra)}", flush=True)
            if subprocess.run([sys.executable, str(HERE / f"{name}.py"), *extra], env=env).returncode:
                failed.append(name)
        rows = [json.loads(line) for line in gathered.read().splitlines()]
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end\n{table(rows)}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
