"""Shared fixtures: the captured frames, and simulators on a real pseudo-terminal and TCP port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The daemons the tests start keep their default spool and energy counters in a folder of this run, never in the
# machine's /var/lib/pylon2influx (nor share them with another run: each is locked to one process).
STATE = tempfile.TemporaryDirectory(prefix="pylonbus-state-")  # removed when the run ends
os.environ["STATE_DIRECTORY"] = STATE.name
ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "frames.json"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def load_vectors() -> list[dict]:
    """Frames captured from real batteries and printed in the specifications, each with its source."""
    return json.loads(VECTORS.read_text())


def stop_process(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """Terminate a child and wait for it (no zombie), killing it if it does not go in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class SimProcess:
    """`pylontech-sim` in a child process; `port` is what a client opens."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pylonbus.cli.sim", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not line:
            self.stop()
            raise RuntimeError(f"pylontech-sim {' '.join(args)} did not start: {self.proc.stderr.read()}")
        self.port = line

    def stop(self) -> None:
        stop_process(self.proc)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def sim_process() -> Iterator[type[SimProcess]]:
    started: list[SimProcess] = []

    def start(*args: str) -> SimProcess:
        sim = SimProcess(*args)
        started.append(sim)
        return sim

    yield start  # type: ignore[misc]
    for sim in started:
        sim.stop()


STACK = "US3000C*2,US2000B,US5000;UP2500,US2000C"
SEED = "7"


@pytest.fixture(params=["pty", "tcp", "rfc2217"])
def sim_port(request: pytest.FixtureRequest, sim_process) -> Iterator[str]:
    """A frozen two-group stack (8/15/16 cells, user-defined 2 and 4) over a real pty, a TCP socket, or an
    RFC 2217 server in front of that socket."""
    where = ["--pty"] if request.param == "pty" else ["--tcp", "127.0.0.1:0"]
    port = sim_process(*where, "--stack", STACK, "--seed", SEED, "--frozen").port
    if request.param != "rfc2217":
        yield port
        return
    from rfc2217 import Rfc2217Server

    server = Rfc2217Server(port)
    yield server.url
    server.stop()


def _session_server(starter: str):
    """A fixture that starts a server of tests/servers.py once for the whole session, in a folder of its own."""

    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory: pytest.TempPathFactory):
        import servers

        server = getattr(servers, starter)(tmp_path_factory.mktemp(starter))
        yield server
        server.stop()

    return fixture


influxd = _session_server("start_influxd")
victoria_metrics = _session_server("start_victoria_metrics")
mosquitto = _session_server("Mosquitto")
prometheus = _session_server("start_prometheus")


def pylontech_json(device: str, module: int, command: str = "-P") -> dict:
    """What `pylontech --json` reads of one module: the values a sink must agree with."""
    done = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylontech", "-d", device, "-a", str(module), command, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)["result"]
