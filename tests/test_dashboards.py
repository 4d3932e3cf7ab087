"""The Grafana dashboards and Prometheus alert rules of contrib/: up to date with their generator, and every
InfluxQL query answered with data by a real influxd that the daemon filled from the simulator."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servers import INFLUX_PASSWORD, INFLUX_PORT, INFLUX_USER, influx_query, need

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "contrib" / "grafana"


def queries(name: str) -> list[str]:
    """Every query of a dashboard, its panels' and its module variable's."""
    board = json.loads((GRAFANA / name).read_text())
    found = [t.get("query") or t["expr"] for p in board["panels"] for t in p["targets"]]
    return found + [v["query"] for v in board["templating"]["list"] if v["name"] == "module"]


def grafana_macros(query: str) -> str:
    """What Grafana puts in place of its variables: the last hour, 1 s buckets, every module."""
    return query.replace("$timeFilter", "time > now() - 1h").replace("$__interval", "1s").replace("$module", ".*")


def test_dashboards_are_up_to_date_with_their_generator() -> None:
    done = subprocess.run([sys.executable, str(GRAFANA / "build.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_alert_rules_pass_promtool() -> None:
    done = subprocess.run(
        [need("promtool"), "check", "rules", str(ROOT / "contrib" / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.server
def test_every_influxql_query_returns_data(influxd, tmp_path: Path) -> None:
    influx_query("CREATE DATABASE grafana")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", "sim://?stack=US3000C*2,US2000B&speed=60"),
            *("-q", "1", "--all", "--schema", "both", "--spool", str(tmp_path / "spool.sqlite")),
            *("-s", "127.0.0.1", "-o", str(INFLUX_PORT), "-n", "grafana", "-u", INFLUX_USER),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"INFLUX_PASSWORD": INFLUX_PASSWORD},
    )
    time.sleep(6)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.communicate()[1]
    for name in ("pylontech-influxql-c-schema.json", "pylontech-influxql-full-schema.json"):
        for query in queries(name):
            result = influx_query(grafana_macros(query), db="grafana")["results"][0]
            assert "error" not in result, (query, result)
            values = [
                v for series in result.get("series", []) for v in series["values"] if any(x is not None for x in v[1:])
            ]
            assert values, f"{name}: no data for {query}"


def prometheus_queries() -> list[str]:
    """The PromQL of the Prometheus dashboard; Grafana's `label_values(metric, label)` asks for `metric`."""
    return [
        re.sub(r"label_values\((\w+), \w+\)", r"\1", query).replace("$module", ".*")
        for query in queries("pylontech-prometheus.json")
    ]
