"""The README's schema table against what the daemon writes: every field of every measurement has a row, with
the type the line protocol gives it, so the table's units are those of real fields."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

TYPES = {"float": r"-?\d+(\.\d+)?", "integer": r"-?\d+i", "boolean": r"true|false"}


def documented() -> list[tuple[set[str], re.Pattern[str], str]]:
    """(measurements, field-name pattern, type) of each row of the schema table."""
    rows = []
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[2] not in TYPES:
            continue
        measurements = (
            {"pylontech_module", "pylontech_stack"} if cells[0] == "both measurements" else {cells[0].strip("`")}
        )
        names = []
        for name in re.findall(r"`([^`]+)`", cells[1]):
            name = re.escape(name).replace("<name>", r"[a-z_]+")
            names.append(re.sub(r"(?<=[a-z_])(N|\d+)$", r"\\d+", name))
        rows.append((measurements, re.compile("|".join(names)), cells[2]))
    return rows


def test_every_field_the_daemon_writes_is_in_the_readme_schema_table_with_its_type() -> None:
    device = "sim://?stack=US3000C,US2000B;US5000&seed=3"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pylonbus.cli.pylon2influx",
            "-d",
            device,
            "-g",
            "0,1",
            "--schema",
            "both",
            "--all",
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    table = documented()
    assert len(table) > 20
    seen = set()
    for line in done.stdout.splitlines():
        series, fields, _ = line.split(" ")
        measurement = series.split(",")[0]
        for field in fields.split(","):
            key, value = field.split("=")
            rows = [row for row in table if measurement in row[0] and row[1].fullmatch(key)]
            assert rows, f"{measurement} field {key} is not in the README's schema table"
            assert re.fullmatch(TYPES[rows[0][2]], value), f"{measurement} {key}={value} is not {rows[0][2]}"
            seen.add((measurement, key))
    assert ("Battery", "AH") in seen and ("pylontech_stack", "charge_kwh") in seen
