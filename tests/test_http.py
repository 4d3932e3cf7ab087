"""The HTTP endpoint of the daemon: Prometheus metrics checked by promtool and scraped by a real Prometheus,
/api/state and /healthz, and the live page in a real browser (Debian's chromium)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import pylontech_json
from servers import HTTP_SINK_PORT, free_port, need, prometheus_query

SIM = "sim://?stack=US3000C*2&frozen=1"
BASE = f"http://127.0.0.1:{HTTP_SINK_PORT}"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


def serve(device: str = SIM, *args: str, ready: bytes = b'"stacks": [{') -> subprocess.Popen[str]:
    """The daemon with its HTTP endpoint, once /api/state holds `ready`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", device, "-q", "1", "--http", BASE[7:], *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if ready in get("/api/state")[1]:
                return proc
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no reading served within 20 s: {proc.communicate()[1]}")


def get(path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(BASE + path, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


@pytest.fixture
def daemon():
    proc = serve(device=SIM + "&alarm=2:cell_voltage_high")
    yield proc
    stop(proc)


def test_metrics_pass_promtool_and_name_every_cell(daemon) -> None:
    status, body = get("/metrics")
    assert status == 200
    check = subprocess.run([need("promtool"), "check", "metrics"], input=body, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    text = body.decode()
    assert text.count("pylontech_cell_voltage_volts{") == 30
    assert 'pylontech_alarm{group="0",module="2",serial="' in text
    assert '",type="cell_voltage_high"} 1' in text
    assert 'pylontech_read_errors_total{reason="timeout"} 0' in text


def test_prometheus_scrapes_one_series_per_cell(prometheus, daemon) -> None:
    packs = {module: pylontech_json(SIM, module) for module in (1, 2)}
    deadline = time.monotonic() + 30
    series: list[dict] = []
    while time.monotonic() < deadline and len(series) < 30:
        series = prometheus_query("pylontech_cell_voltage_volts")
        time.sleep(0.5)
    assert len(series) == 30
    for entry in series:
        labels = entry["metric"]
        expected = packs[int(labels["module"])]["cell_voltages"][int(labels["cell"]) - 1]
        assert float(entry["value"][1]) == expected
    up = prometheus_query("pylontech_module_up")
    assert sorted(float(e["value"][1]) for e in up) == [1.0, 1.0]


def test_every_promql_query_of_the_dashboard_returns_data(prometheus, tmp_path: Path) -> None:
    from test_dashboards import prometheus_queries

    # A database that does not answer: the readings wait in the spool, whose backlog the dashboard shows.
    database = ("-s", "127.0.0.1", "-o", "9", "-n", "battery", "--spool", str(tmp_path / "spool.sqlite"))
    proc = serve(SIM + "&alarm=1:charge_over_temperature", *database)
    try:
        for query in prometheus_queries():
            deadline = time.monotonic() + 30
            while not (result := prometheus_query(query)) and time.monotonic() < deadline:
                time.sleep(1)  # increase() and rate() need two scrapes
            assert result, query
    finally:
        stop(proc)


def test_api_state_and_health(daemon) -> None:
    status, body = get("/api/state")
    state = json.loads(body)
    assert status == 200 and state["stale"] is False and state["interval"] == 1.0
    (stack,) = state["stacks"]
    assert stack["modules_known"] == 2 and [m["module"] for m in stack["modules"]] == [1, 2]
    assert stack["modules"][1]["alarms"]["cell_voltage_high"] is True
    assert get("/healthz") == (200, b"ok\n")
    assert get("/nothing")[0] == 404


def test_health_is_503_while_no_module_answers() -> None:
    proc = serve("sim://?modules=1&group=1", ready=b'"stacks"')  # nothing in group 0
    try:
        assert get("/healthz") == (503, b"stale\n")
        assert json.loads(get("/api/state")[1])["stale"] is True
    finally:
        stop(proc)


def test_an_address_in_use_is_one_line(daemon, tmp_path: Path) -> None:
    own = ["--energy-state", str(tmp_path / "energy.sqlite")]  # the running one holds the default file
    done = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", SIM, "--http", f"127.0.0.1:{HTTP_SINK_PORT}", *own],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert f"--http 127.0.0.1:{HTTP_SINK_PORT}: Address already in use; choose another" in done.stderr
    assert "Traceback" not in done.stderr


def chromium(width: int, height: int) -> Any:
    """Debian's chromium, headless, driven by its chromedriver, with a window of that size."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = need("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(executable_path=need("chromedriver")))


def test_live_page_in_a_browser(daemon) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium(420, 900)
    try:
        browser.get(BASE + "/")
        wait = WebDriverWait(browser, 15)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".cell")) == 30)
        modules = browser.find_elements(By.CSS_SELECTOR, ".module")
        assert [m.get_attribute("data-module") for m in modules] == ["0/1", "0/2"]
        alarms = modules[1].find_elements(By.CSS_SELECTOR, ".alarm")
        assert [a.text for a in alarms] == ["cell voltage high"]
        assert alarms[0].value_of_css_property("background-color") == "rgba(198, 40, 40, 1)"
        assert not modules[0].find_elements(By.CSS_SELECTOR, ".alarm")
        assert len(browser.find_elements(By.CSS_SELECTOR, ".cell.min")) == 2
        assert not browser.find_element(By.ID, "banner").is_displayed()
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "live-page.png"))
        stop(daemon)  # the collector is gone: the page says its data is stale
        wait.until(lambda b: b.find_element(By.ID, "banner").is_displayed())
        assert "Stale data" in browser.find_element(By.ID, "banner").text
        browser.save_screenshot(str(ARTIFACTS / "live-page-stale.png"))
    finally:
        browser.quit()


#: JavaScript: each module's bars (cell, marked, top border style, label) and the balancing lines shown.
BALANCING = """
const out = {};
for (const box of document.querySelectorAll(".module")) {
  const bars = [...box.querySelectorAll(".cell")].map(bar => ({
    cell: Number(bar.dataset.cell), marked: bar.classList.contains("balancing"),
    border: getComputedStyle(bar).borderTopStyle, label: bar.getAttribute("aria-label")}));
  const listed = [...box.querySelectorAll(".balancing-cells")].filter(e => e.offsetParent).map(e => e.textContent);
  out[box.dataset.module] = {bars, listed};
}
return out;
"""


def test_live_page_marks_the_cells_the_console_says_balance(sim_process) -> None:
    """The daemon on RS485 and the console of one simulated stack: the page marks exactly the cells whose `bat N`
    BAL is Y (a dashed top, the balancing named in the bar's label, and a line of text that lists them)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from pylonbus.sim import Stack
    from pylonbus.sim.console import balancing

    stack, seed = "US3000C*2", "3"
    sim = sim_process("--pty", "--stack", stack, "--seed", seed, "--frozen", "--console-on", "pty")
    console = sim.proc.stdout.readline().strip()
    model = Stack.parse(stack, seed=int(seed), frozen=True)
    expected = {
        f"0/{module.number}": [n for n, on in enumerate(balancing(module), 1) if on]
        for module in model.modules.values()
    }
    assert all(0 < len(cells) < 15 for cells in expected.values())  # some cells balance, not all
    proc = serve(sim.port, "--console-device", console, ready=b'"balancing"')
    browser = chromium(1024, 900)
    try:
        browser.get(BASE + "/")
        WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".cell")) == 30)
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "live-page-balancing.png"))
        shown = browser.execute_script(BALANCING)  # at one instant: the page redraws every interval
        assert sorted(shown) == sorted(expected)
        for module, cells in expected.items():
            bars = shown[module]["bars"]
            assert [bar["cell"] for bar in bars if bar["marked"]] == cells
            assert [bar["cell"] for bar in bars if bar["border"] == "dashed"] == cells
            assert [bar["cell"] for bar in bars if bar["label"].endswith(", balancing")] == cells
            assert {bar["border"] for bar in bars if bar["cell"] not in cells} == {"none"}
            assert shown[module]["listed"] == ["Balancing: cells " + ", ".join(map(str, cells))]
    finally:
        browser.quit()
        stop(proc)


#: JavaScript: the pairs of text boxes that overlap on the page (neither inside the other), and how wide the
#: page is laid out; a label drawn over another is what a user could not read.
OVERLAPS = """
const boxes = [...document.querySelectorAll("#stacks span, #stacks b")].filter(e => e.textContent.trim());
const found = [];
for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
  const a = boxes[i], b = boxes[j];
  if (a.contains(b) || b.contains(a)) continue;
  const r = a.getBoundingClientRect(), q = b.getBoundingClientRect();
  if (r.left < q.right - 0.5 && q.left < r.right - 0.5 && r.top < q.bottom - 0.5 && q.top < r.bottom - 0.5)
    found.push(a.textContent + " / " + b.textContent);
}
return {overlaps: found, width: document.documentElement.scrollWidth};
"""


@pytest.mark.parametrize("width", [360, 768, 1280])
def test_live_page_is_readable_on_a_phone_a_tablet_and_a_desktop(width: int) -> None:
    """16-cell and 15-cell modules with an alarm: no label drawn over another, nothing wider than the screen."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    proc = serve("sim://?stack=US5000,US3000C*2&frozen=1&alarm=2:cell_voltage_high&alarm=3:charge_over_temperature")
    browser = chromium(width, 1400)
    try:
        metrics = {"width": width, "height": 1400, "deviceScaleFactor": 1, "mobile": width < 600}
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        browser.get(BASE + "/")
        WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".cell")) == 46)
        assert browser.execute_script("return window.innerWidth") == width
        layout = browser.execute_script(OVERLAPS)
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / f"live-page-{width}.png"))
        assert layout["overlaps"] == [], f"at {width} px"
        assert layout["width"] <= width
        label = browser.find_element(By.CSS_SELECTOR, ".cell span")
        assert float(label.value_of_css_property("font-size").removesuffix("px")) >= 9
    finally:
        browser.quit()
        stop(proc)


def test_a_silent_module_is_down_and_has_no_stale_values() -> None:
    from pylonbus import Link
    from pylonbus import Stack as Client
    from pylonbus.readings.documents import reading_state
    from pylonbus.service import Poller
    from pylonbus.sinks.http.metrics import exposition

    stack = Client(Link(SIM + "&pace=0", tries=1))
    stack.scan()
    poller = Poller([stack], 60)
    poller.cycle()
    stack.turn_off(2, allow_write=True)  # the simulator's module 2 is silent from now on
    text = exposition(reading_state(poller.cycle()), None, None)
    assert 'pylontech_module_up{group="0",module="2",serial="' in text and '"} 0\n' in text
    assert not [line for line in text.splitlines() if 'module="2"' in line and "_volts" in line]
    assert 'pylontech_read_errors_total{reason="timeout"} 1' in text
    assert not re.search(r"^pylontech_last_success_timestamp_seconds ", text, re.MULTILINE)  # no cycle succeeded


def test_a_client_that_left_before_the_answer_prints_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    """Found by benchmarks/soak.py: a client that timed out while the start-up scan kept the server from
    answering made socketserver print a BrokenPipeError traceback to stderr (past the log, and syslog)."""
    import socket

    from pylonbus.sinks.http.server import HttpSink

    port = free_port()
    sink = HttpSink(f"127.0.0.1:{port}", 1.0)
    for _ in range(4):  # requests queued (the listen backlog holds 5) before the server runs, as during the scan
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        client.close()  # gone: its kernel answers the server's first segment with a reset
    sink.start()
    time.sleep(1.0)
    sink.close(1.0)
    assert "Traceback" not in capfd.readouterr().err


def test_what_is_served_is_the_newest_reading() -> None:
    """A reading is rendered on the first request after it arrived: of two published unasked, the second is
    served (metrics and state alike); asked again without a new reading, the same bytes."""
    import http.client

    from pylonbus import Link
    from pylonbus import Stack as Client
    from pylonbus.service import Poller
    from pylonbus.sinks.http.server import HttpSink

    stack = Client(Link("sim://?stack=US3000C*2&pace=0"))
    stack.scan()
    poller = Poller([stack], 3600)
    port = free_port()
    sink = HttpSink(f"127.0.0.1:{port}", 1.0)
    sink.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

        def fetch(path: str) -> bytes:
            connection.request("GET", path)
            return connection.getresponse().read()

        assert fetch("/metrics") == b"# no cycle yet\n" and json.loads(fetch("/api/state"))["stacks"] == []
        first, second = poller.cycle(), poller.cycle()
        sink.publish(first)
        sink.publish(second)
        state = json.loads(fetch("/api/state"))
        assert state["time_ns"] == second.time_ns != first.time_ns and state["stale"] is False
        metrics = fetch("/metrics")
        success = re.search(rb"^pylontech_last_success_timestamp_seconds (\S+)$", metrics, re.MULTILINE)
        assert success is not None and float(success[1]) == pytest.approx(second.time_ns / 1e9)
        assert fetch("/metrics") == metrics  # no new reading: the same bytes
        connection.close()
    finally:
        sink.close(1.0)


def test_date_header_reads_as_email_utils_writes_it() -> None:
    """The Date header's own formatter (not email.utils: 0.4 MB of modules) gives the same text on every weekday
    and month, a leap day, the epoch and seconds at both ends of a minute."""
    from email.utils import formatdate

    from pylonbus.sinks.http.server import http_date

    times = [0, 951_782_400, 951_868_799, 4_102_444_799, *(n * 1_123_457 for n in range(400))]
    for seconds in times:
        assert http_date(seconds) == formatdate(seconds, usegmt=True), seconds
