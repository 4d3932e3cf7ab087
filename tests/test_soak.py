"""A short run of the unattended soak (benchmarks/soak.py, issue 19): pylon2influx with InfluxDB, MQTT, HTTP and a
spool while its gateway, the broker and influxd restart and a burst of signals arrives; every cycle it published
must be in influxd and at the broker. About 100 s: each kind of event once (seed 3), a signal burst twice."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from soak import KINDS, Soak

pytestmark = pytest.mark.server


def test_nothing_is_lost_while_everything_around_the_daemon_restarts(influxd, mosquitto, tmp_path: Path) -> None:
    report = Soak(minutes=1.5, seed=3, every=15.0, folder=tmp_path, influxd=influxd, broker=mosquitto).run()
    print(report.table())
    assert all(report.soak.events[kind] >= 1 for kind in KINDS), report.soak.events
    assert report.soak.outages, "the gateway was never away"
    assert report.offline_cycles > 0, "a gateway outage must show as modules offline"
    assert not report.failures, report.table()
