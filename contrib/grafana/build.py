"""Writes the Grafana dashboards of this folder from one description, so that the three agree:

- pylontech-influxql-c-schema.json: the C program's `Battery,Module=N` lines in InfluxDB 1.x (InfluxQL);
- pylontech-influxql-full-schema.json: the `--schema full` measurements `pylontech_module`/`pylontech_stack`;
- pylontech-prometheus.json: the `/metrics` of `pylon2influx --http`.

Run `python contrib/grafana/build.py` after a change; `--check` exits 1 when a file differs (the tests run it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TIME = "$timeFilter"
EVERY = "$__interval"


def panel(title: str, unit: str, targets: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if "thresholds" in extra:
        steps = [{"color": "green", "value": None}]
        steps += [{"color": color, "value": value} for value, color in extra.pop("thresholds")]
        defaults["thresholds"] = {"mode": "absolute", "steps": steps}
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "type": extra.pop("kind", "timeseries"),
        "title": title,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": targets,
        **extra,
    }


def influx(*queries: str) -> list[dict[str, Any]]:
    return [
        {
            "refId": chr(65 + n),
            "query": q,
            "rawQuery": True,
            "resultFormat": "time_series",
            "datasource": {"type": "influxdb", "uid": "${datasource}"},
        }
        for n, q in enumerate(queries)
    ]


def prom(*queries: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "refId": chr(65 + n),
            "expr": expr,
            "legendFormat": legend,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
        }
        for n, (expr, legend) in enumerate(queries)
    ]


def per_module(field: str, measurement: str, tag: str, scale: str = "") -> str:
    """The last value of each module in each interval: a subquery, so that a sum over modules counts each once."""
    return f'SELECT last("{field}"){scale} AS "v" FROM "{measurement}" WHERE {TIME} GROUP BY time({EVERY}), "{tag}"'


def stack_sum(field: str, measurement: str, tag: str, scale: str = "") -> str:
    return f'SELECT sum("v") FROM ({per_module(field, measurement, tag, scale)}) WHERE {TIME} GROUP BY time({EVERY})'


# A row's highest minus lowest cell, computed by Grafana (InfluxQL has no maximum across fields).
CELL_RANGE = [
    {
        "id": "calculateField",
        "options": {"mode": "reduceRow", "reduce": {"reducer": "range"}, "alias": "cell delta", "replaceFields": False},
    }
]
DELTA_LIMITS = [(0.03, "orange"), (0.05, "red")]


def c_schema() -> list[dict[str, Any]]:
    module = '"Module" =~ /^$module$/'
    return [
        panel("Stack remaining capacity", "Ah", influx(stack_sum("AH", "Battery", "Module", " / 1000"))),
        panel("Stack voltage", "volt", influx(f'SELECT mean("u") FROM "Battery" WHERE {TIME} GROUP BY time({EVERY})')),
        panel("Stack current", "amp", influx(stack_sum("i", "Battery", "Module"))),
        panel(
            "Stack power",
            "watt",
            influx(
                f'SELECT sum("p") FROM (SELECT last("u") * last("i") AS "p" FROM "Battery" WHERE {TIME} '
                f'GROUP BY time({EVERY}), "Module") WHERE {TIME} GROUP BY time({EVERY})'
            ),
        ),
        panel("Remaining capacity per module", "Ah", influx(per_module("AH", "Battery", "Module", " / 1000"))),
        panel("Current share per module", "amp", influx(per_module("i", "Battery", "Module")), kind="barchart"),
        panel(
            "Cell voltages, module $module",
            "volt",
            influx(f'SELECT last(/^u[0-9]+$/) FROM "Battery" WHERE {module} AND {TIME} GROUP BY time({EVERY})'),
            repeat="module",
            transformations=CELL_RANGE,
            thresholds=DELTA_LIMITS,
        ),
        panel(
            "Temperatures",
            "celsius",
            influx(
                f'SELECT last("temp_bms"), last(/^temp_[0-9]+$/) FROM "Battery" WHERE {TIME} '
                f'GROUP BY time({EVERY}), "Module"'
            ),
        ),
        panel("Cycles", "none", influx(per_module("CycleCount", "Battery", "Module")), kind="stat"),
    ]


def full_schema() -> list[dict[str, Any]]:
    stack = f'FROM "pylontech_stack" WHERE {TIME} GROUP BY time({EVERY}), "group"'
    module = f'FROM "pylontech_module" WHERE {TIME} GROUP BY time({EVERY}), "group", "module"'
    one = '"module" =~ /^$module$/'
    return [
        panel("Stack state of charge", "percent", influx(f'SELECT last("soc") {stack}')),
        panel("Stack voltage", "volt", influx(f'SELECT last("voltage") {stack}')),
        panel("Stack current", "amp", influx(f'SELECT last("current") {stack}')),
        panel("Stack power", "watt", influx(f'SELECT last("power") {stack}')),
        panel("State of charge per module", "percent", influx(f'SELECT last("soc") {module}')),
        panel("Current share per module", "amp", influx(f'SELECT last("current") {module}'), kind="barchart"),
        panel("Cell voltage delta", "volt", influx(f'SELECT max("cell_delta") {module}'), thresholds=DELTA_LIMITS),
        panel(
            "Cell voltages, module $module",
            "volt",
            influx(
                f'SELECT last(/^cell_[0-9]+$/) FROM "pylontech_module" WHERE {one} AND {TIME} GROUP BY time({EVERY})'
            ),
            repeat="module",
        ),
        panel(
            "Temperatures", "celsius", influx(f'SELECT last("temperature_bms"), last(/^temperature_[0-9]+$/) {module}')
        ),
        panel("Cycles", "none", influx(f'SELECT last("cycles") {module}'), kind="stat"),
        panel(
            "Alarms",
            "none",
            influx(f'SELECT last(/^alarm_/) FROM "pylontech_module" WHERE {TIME} GROUP BY time({EVERY}), "module"'),
            kind="state-timeline",
        ),
        panel(
            "Energy charged / discharged", "kwatth", influx(f'SELECT last("charge_kwh"), last("discharge_kwh") {stack}')
        ),
        panel("Data freshness: modules online", "none", influx(f'SELECT last("modules_online") {stack}')),
    ]


def prometheus() -> list[dict[str, Any]]:
    return [
        panel(
            "Stack state of charge", "percentunit", prom(("pylontech_stack_state_of_charge_ratio", "group {{group}}"))
        ),
        panel("Stack voltage", "volt", prom(("pylontech_stack_voltage_volts", "group {{group}}"))),
        panel("Stack current", "amp", prom(("pylontech_stack_current_amperes", "group {{group}}"))),
        panel("Stack power", "watt", prom(("pylontech_stack_power_watts", "group {{group}}"))),
        panel(
            "State of charge per module",
            "percentunit",
            prom(("pylontech_state_of_charge_ratio", "{{group}}/{{module}}")),
        ),
        panel(
            "Current share per module",
            "amp",
            prom(("pylontech_module_current_amperes", "{{group}}/{{module}}")),
            kind="barchart",
        ),
        panel(
            "Cell voltage delta",
            "volt",
            prom(("pylontech_cell_voltage_delta_volts", "{{group}}/{{module}}")),
            thresholds=DELTA_LIMITS,
        ),
        panel(
            "Cell voltages, module $module",
            "volt",
            prom(('pylontech_cell_voltage_volts{module=~"$module"}', "cell {{cell}}")),
            repeat="module",
        ),
        panel("Temperatures", "celsius", prom(("pylontech_temperature_celsius", "{{module}} {{sensor}}"))),
        panel(
            "Remaining capacity per module", "Ah", prom(("pylontech_remaining_capacity_coulombs / 3600", "{{module}}"))
        ),
        panel("Cycles", "none", prom(("pylontech_cycles", "{{group}}/{{module}}")), kind="stat"),
        panel("Alarms", "none", prom(("pylontech_alarm", "{{module}} {{type}}")), kind="state-timeline"),
        panel(
            "Energy charged / discharged per hour",
            "watth",
            prom(  # joules to Wh
                ("increase(pylontech_stack_charge_energy_joules_total[1h]) / 3600", "charged"),
                ("increase(pylontech_stack_discharge_energy_joules_total[1h]) / 3600", "discharged"),
            ),
        ),
        panel("Data freshness", "s", prom(("time() - pylontech_last_success_timestamp_seconds", "age"))),
        panel(
            "Spool backlog",
            "none",
            prom(
                ("pylontech_spool_pending_batches", "batches"),
                ("rate(pylontech_spool_dropped_batches_total[5m])", "dropped/s"),
            ),
        ),
        panel("Modules up", "none", prom(("pylontech_module_up", "{{group}}/{{module}}")), kind="state-timeline"),
    ]


def dashboard(title: str, uid: str, kind: str, panels: list[dict[str, Any]], modules: str) -> dict[str, Any]:
    for n, item in enumerate(panels):
        item["id"] = n + 1
        item["gridPos"] = {"h": 8, "w": 12, "x": 12 * (n % 2), "y": 8 * (n // 2)}
    module_variable: dict[str, Any] = {
        "name": "module",
        "type": "query",
        "datasource": {"type": kind, "uid": "${datasource}"},
        "query": modules,
        "includeAll": True,
        "multi": True,
        "refresh": 1,
    }
    return {
        "title": title,
        "uid": uid,
        "schemaVersion": 39,
        "tags": ["pylontech", "battery"],
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": kind}, module_variable]},
        "panels": panels,
    }


DASHBOARDS = {
    "pylontech-influxql-c-schema.json": dashboard(
        "Pylontech (InfluxDB, Battery schema)",
        "pylontech-c",
        "influxdb",
        c_schema(),
        'SHOW TAG VALUES FROM "Battery" WITH KEY = "Module"',
    ),
    "pylontech-influxql-full-schema.json": dashboard(
        "Pylontech (InfluxDB, full schema)",
        "pylontech-full",
        "influxdb",
        full_schema(),
        'SHOW TAG VALUES FROM "pylontech_module" WITH KEY = "module"',
    ),
    "pylontech-prometheus.json": dashboard(
        "Pylontech (Prometheus)",
        "pylontech-prom",
        "prometheus",
        prometheus(),
        "label_values(pylontech_module_up, module)",
    ),
}


def main() -> int:
    check = "--check" in sys.argv
    differ = []
    for name, content in DASHBOARDS.items():
        text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text:
                differ.append(name)
        else:
            path.write_text(text)
    if differ:
        print(f"out of date: {', '.join(differ)}; run python contrib/grafana/build.py", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
