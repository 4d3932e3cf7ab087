"""What a user meets: every mistake answered in one line that names the option and the fix, never a traceback;
logs with every frame; --decode on real logs; text written for battery owners; one version format."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SIM = "sim://?stack=US3000C*2,US2000B&frozen=1&seed=5"
PROGRAMS = {"pylontech": "pylonbus.cli.pylontech", "pylon2influx": "pylonbus.cli.pylon2influx"}
PROGRAMS["pylontech-sim"] = "pylonbus.cli.sim"
ANALOG_REPLY = (
    "~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D220D220D21050BCD0BAF0BAF0BAF0BAF0015"
    "C4E88AAC02C350004FE594"
)
ANALOG_REQUEST = "~20024642E00202FD33"


def run(
    program: str, *args: str, stdin: str | None = None, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", PROGRAMS[program], *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        env=None if env is None else os.environ | env,
    )


@pytest.fixture(scope="module")
def pty_sim():
    from conftest import SimProcess

    sim = SimProcess("--pty", "--stack", "US3000C*2", "--frozen")
    yield sim.port
    sim.stop()


BAD_INPUTS = [
    ("pylontech", ["-d", "{pty}", "--command", "42"], "--command names the command of the frames given to --decode"),
    ("pylontech", ["--decode", ANALOG_REPLY, "-P"], "--decode decodes frames and sends nothing; drop -P"),
    ("pylontech", ["--decode", ANALOG_REPLY, "--command", "zz"], "unknown command 'zz'; known: 0x42 ANALOG"),
    ("pylontech", ["--decode", ANALOG_REPLY, "--command", "99"], "unknown command 0x99; known: 0x42 ANALOG, 0x44"),
    ("pylontech", ["-d", "{pty}", "--timeout", "-1"], "argument --timeout: -1 is out of range"),
    ("pylontech", ["-d", "/dev/null", "-P"], "/dev/null: not a serial port"),
    ("pylontech", ["-d", "socket://127.0.0.1", "-P"], "expected socket://HOST:PORT"),
    ("pylontech", ["-d", "rfc2217://", "-P"], "expected rfc2217://HOST:PORT"),
    ("pylontech", ["-d", "bogus://x", "-P"], "a port is a device path, socket://HOST:PORT"),
    ("pylontech", ["-d", "sim://?bogus=1", "-P"], "unknown parameter 'bogus'"),
    ("pylontech", ["-d", "sim://?stak=US2000B", "-P"], "unknown parameter 'stak'"),
    ("pylontech", ["-d", "sim://?no_reply=2", "-P"], "no_reply 2.0 is out of range 0-1"),
    ("pylontech", ["-d", "sim://?group=16", "-P"], "group 16 is out of range"),
    ("pylontech", ["-d", "sim://?stack=US2000B&group=1", "-P"], "give either stack=… or modules/model/group"),
    ("pylontech", ["-v", "x"], "verbosity is a number"),
    ("pylontech", ["stray"], "unexpected argument 'stray'; to decode frames, add --decode"),
    ("pylon2influx", ["-d", SIM, "--timeout", "-1"], "argument --timeout: -1 is out of range"),
    ("pylon2influx", ["-d", SIM, "-s", "x", "-n", "db", "--spool", "/tmp"], "/tmp: it is a directory"),
    # Read-only files, so that a regression could never rename a file of the system aside.
    ("pylon2influx", ["-d", SIM, "-s", "x", "-n", "db", "--spool", "/proc/version"], "it is not a spool"),
    ("pylon2influx", ["-d", SIM, "-s", "x", "-n", "db", "--spool", "/proc/version/spool.sqlite"], "--spool"),
    ("pylon2influx", ["-d", SIM, "-s", "x", "-B", "b", "-O", "o", "--token-file", "/nonexistent"], "--token-file"),
    ("pylon2influx", ["-d", SIM, "-s", "http://x:port"], "--server http://x:port"),
    ("pylon2influx", ["-d", SIM, "-g", ""], "argument -g/--group: give at least one number 0-15"),
    ("pylon2influx", ["-d", SIM, "-g", ","], "argument -g/--group: give at least one number 0-15"),
    ("pylon2influx", ["-d", SIM, "-s", "ftp://db.lan", "-n", "x"], "InfluxDB speaks http:// or https://, not ftp://"),
    ("pylon2influx", ["-d", SIM, "-s", "x", "-n", "db", "--password-file", "/dev/zero"], "/dev/zero: not a regular"),
    ("pylon2influx", ["-d", SIM, "-s", "x", "-n", "db", "--password-file", "/tmp"], "--password-file /tmp: Is a dir"),
    ("pylon2influx", ["-d", SIM, "-s", "x", "-B", "b", "-O", "o", "--token-file", "/dev/urandom"], "not a regular"),
    ("pylontech-sim", ["--pty", "-b", "0"], "argument -b/--baud: 0 is out of range"),
    ("pylontech-sim", ["--tcp", "127.0.0.1"], "expected HOST:PORT"),
    ("pylontech-sim", ["--pty", "--group", "16"], "argument --group: 16 is out of range (0-15)"),
    ("pylontech-sim", ["--pty", "--no-reply", "2"], "argument --no-reply: 2 is out of range (0-1)"),
    ("pylontech-sim", ["--pty", "--corrupt", "-1"], "argument --corrupt: -1 is out of range (0-1)"),
    ("pylontech-sim", ["--pty", "--delay", "-1"], "argument --delay: -1 is out of range (0-60)"),
    ("pylontech-sim", ["--pty", "--speed", "-5"], "argument --speed: -5 is out of range (at least 0)"),
    ("pylontech-sim", ["--pty", "--stack", ";" * 20 + "US3000C"], "a bus holds at most 16"),
    ("pylontech-sim", ["--pty", "--stack", "US3000C*15"], "a group holds at most 14"),
    ("pylontech-sim", ["--pty", "--stack", "US9000"], "unknown model 'US9000'"),
    ("pylontech-sim", [], "one of the arguments --pty --tcp is required"),
]


@pytest.mark.parametrize(
    ("program", "args", "message"), BAD_INPUTS, ids=lambda v: " ".join(v) if isinstance(v, list) else v
)
def test_a_mistake_gets_one_line_naming_the_fix_and_exit_1(pty_sim: str, program: str, args: list[str], message: str):
    done = run(program, *[a.replace("{pty}", pty_sim) for a in args], timeout=30)
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == 1, done.stderr
    assert message in done.stderr, done.stderr
    assert len([line for line in done.stderr.splitlines() if not line.startswith(("usage:", " "))]) == 1


@pytest.mark.parametrize(
    "args", [["--decode", "-"], ["-d", SIM, "--json", "-P"], ["--decode", "--json", "-"]], ids=" ".join
)
def test_a_closed_pipe_ends_the_program_quietly(args: list[str]) -> None:
    stdin = "\n".join([ANALOG_REQUEST, ANALOG_REPLY] * 2000) + "\n"
    command = [sys.executable, "-m", "pylonbus.cli.pylontech", *args]
    reader = subprocess.Popen(["head", "-1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    done = subprocess.run(command, input=stdin, stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=60)
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait()
    assert "Traceback" not in done.stderr and done.stderr == ""


def test_ctrl_c_during_the_daemon_start_up_scan_stops_it_cleanly(tmp_path: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylon2influx", "-d", "sim://?modules=1&group=1", "-v", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # every address of group 0 is silent: the scan takes seconds
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err
    assert "stopped during the start-up scan" in err


def test_permission_denied_names_the_dialout_group() -> None:
    import errno

    import serial

    from pylonbus.link.urls import port_error as _port_error

    denied = serial.SerialException(errno.EACCES, "could not open port /dev/ttyUSB0: [Errno 13] Permission denied")
    message = str(_port_error("/dev/ttyUSB0", denied))
    assert "'dialout' group" in message and "99-pylontech.rules" in message
    assert "plugged in" not in message


@pytest.mark.parametrize("program", ["pylontech", "pylon2influx"])
@pytest.mark.parametrize("flag", ["-v3", "-vvv", "--verbose=3"])
def test_verbosity_3_logs_every_frame_with_a_time(program: str, flag: str) -> None:
    args = ["-d", SIM, "-a", "1", "-P"] if program == "pylontech" else ["-d", SIM, "--once"]
    done = run(program, *args, flag)
    assert done.returncode == 0, done.stderr
    tx = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} FRAME .*TX (~[0-9A-F]+)$", done.stderr, re.M)
    rx = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} FRAME .*RX (~[0-9A-F]+)$", done.stderr, re.M)
    assert ANALOG_REQUEST in tx and rx


def test_the_simulator_logs_every_frame_at_verbosity_3() -> None:
    sim = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.sim", "--pty", "--modules", "1", "--frozen", "-vvv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        port = sim.stdout.readline().strip()
        assert run("pylontech", "-d", port, "-a", "1", "-P").returncode == 0
    finally:
        sim.terminate()
        _, err = sim.communicate(timeout=30)
    assert re.search(r"FRAME .*RX ~20024642E00202FD33$", err, re.M)
    assert re.search(r"FRAME .*TX ~20024600[0-9A-F]+$", err, re.M)


def test_decode_reads_frames_out_of_log_lines_and_counts_the_others() -> None:
    log = "\n".join(
        [
            f"2024-05-01 10:00:00 TX {ANALOG_REQUEST}",
            f"2024-05-01 10:00:00 RX {ANALOG_REPLY} (61 bytes)",
            "2024-05-01 10:00:01 something else entirely",
            "",
        ]
    )
    done = run("pylontech", "--decode", "-", stdin=log)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "request ANALOG" in done.stdout and "response ANALOG" in done.stdout
    assert "1 line(s) without a frame skipped" in done.stderr


@pytest.mark.parametrize(
    "args",
    [["--decode", "--json", ANALOG_REPLY], ["--json", "--decode", ANALOG_REPLY], [ANALOG_REPLY, "--json", "--decode"]],
    ids=" ".join,
)
def test_decode_options_in_any_order_give_one_json_array(args: list[str]) -> None:
    done = run("pylontech", *args)
    assert done.returncode == 0, done.stderr
    [document] = json.loads(done.stdout)
    assert document["command"] == "ANALOG" and document["result"]["cycles"] == 79


def test_a_fanout_reply_with_an_explicit_command_lists_every_module() -> None:
    from conftest import load_vectors

    vector = next(v for v in load_vectors() if v["info"].startswith("11030F0C"))
    done = run("pylontech", "--decode", vector["frame"], "--command", "0x42", "--json")
    [document] = json.loads(done.stdout)
    assert document["fanout"] is True and len(document["result"]["modules"]) == 3


def test_text_output_is_for_people(pty_sim: str) -> None:
    manufacturer = run("pylontech", "-d", pty_sim, "-a", "1", "-m").stdout
    assert "manufacturer: Pylon\n" in manufacturer and "---" not in manufacturer
    charge = run("pylontech", "-d", pty_sim, "-a", "1", "-c").stdout
    assert "charge enabled: yes" in charge and "True" not in charge
    alarms = run("pylontech", "-d", pty_sim, "-a", "1", "-l").stdout
    assert alarms.count("alarms: none") == 1 and "no alarms" not in alarms
    analog = run("pylontech", "-d", pty_sim, "-a", "1", "-P").stdout
    for internal in ("info flag", "command value", "user defined items"):
        assert internal not in analog
    assert "BMS temperature:" in analog and "cell temperatures:" in analog
    assert not re.search(r"^\s+temperatures:", analog, re.M)
    assert "info flag" in run("pylontech", "-d", pty_sim, "-a", "1", "-P", "-v", "2").stdout
    summary = run("pylontech", "-d", pty_sim).stdout
    assert "voltage V" in summary and "current A" in summary and "SOC %" in summary
    scan = json.loads(run("pylontech", "-d", pty_sim, "-s", "--json").stdout)
    assert scan["modules"][0]["model"] == "US3000C"


def test_the_summary_shows_every_module_that_answered_and_marks_the_others() -> None:
    # Seed 8 of this stack loses every reply to module 2's reads after the scan found all three.
    done = run("pylontech", "-d", "sim://?stack=US3000C*3&frozen=1&no_reply=0.45&pace=0&seed=8", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert ["error" in row for row in document["modules"]] == [False, True, False]
    assert document["total"]["modules"] == 2 and document["total"]["missing"] == 1
    assert "module 2 left out of the summary: no reply from module 2" in done.stderr
    text = run("pylontech", "-d", "sim://?stack=US3000C*3&frozen=1&no_reply=0.45&pace=0&seed=8").stdout
    assert " 2 !! no data: no reply" in text and "(1 module(s) missing)" in text


def test_the_summary_exits_2_when_no_module_gives_data() -> None:
    done = run("pylontech", "-d", "sim://?stack=US3000C*3&frozen=1&no_reply=0.45&pace=0&seed=2")
    assert done.returncode == 2 and "left out of the summary" in done.stderr


def test_every_program_prints_its_version_in_one_form() -> None:
    from pylonbus import __version__

    for program, flag in (("pylontech", "--version"), ("pylon2influx", "--version"), ("pylontech-sim", "--version")):
        done = run(program, flag)
        assert done.returncode == 0 and done.stdout.strip() == f"{program} (pylonbus) {__version__}"


def test_python_m_pylonbus_names_the_three_programs() -> None:
    done = subprocess.run([sys.executable, "-m", "pylonbus"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    for program in ("pylontech ", "pylon2influx ", "pylontech-sim "):
        assert program in done.stdout


def test_importing_pylonbus_loads_neither_pyserial_nor_the_simulator() -> None:
    code = "import sys, pylonbus.cli.pylontech; print(sorted(m for m in sys.modules if 'serial' in m or '.sim' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "[]"


def test_try_says_whether_a_battery_answers_on_the_port() -> None:
    done = run("pylontech", "-d", SIM, "-t")
    assert done.returncode == 0 and "a Pylontech battery answers on sim://" in done.stdout
    done = run("pylontech", "-d", SIM, "--try", "-g", "3")
    assert done.returncode == 2 and "no module answered in group 3" in done.stderr


def test_a_huge_or_binary_secret_file_is_refused_before_it_fills_the_memory(tmp_path: Path) -> None:
    huge, binary = tmp_path / "huge", tmp_path / "binary"
    huge.write_bytes(b"x" * 10_000_000)
    binary.write_bytes(b"\xff\xfe secret")
    for path, message in ((huge, "larger than 64 KiB"), (binary, "not UTF-8 text")):
        done = run("pylon2influx", "-d", SIM, "-s", "x", "-n", "db", "--password-file", str(path), "--once")
        assert done.returncode == 1 and f"--password-file {path}: {message}" in done.stderr, done.stderr


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "latin1.toml"
    config.write_bytes('[battery]\ndevice = "/dev/ttyUSB0"  # Keller, Gerät 1\n'.encode("latin-1"))
    done = run("pylon2influx", "--config", str(config), "--print-config")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{config}:2: byte 0xE4 is not UTF-8 text; save the file as UTF-8" in done.stderr


def test_a_token_in_the_environment_does_not_turn_a_v1_database_into_v2(tmp_path: Path) -> None:
    from servers import free_port

    server = f"127.0.0.1:{free_port()}"
    spool = str(tmp_path / "spool.sqlite")
    done = run(
        "pylon2influx",
        "-d",
        SIM,
        "-s",
        server,
        "-n",
        "db",
        "--once",
        "--spool",
        spool,
        "-v",
        "1",
        timeout=30,
        env={"INFLUX_TOKEN": "t0ken"},
    )
    assert "writing to InfluxDB v1 at http://127.0.0.1:" in done.stderr and "/write?db=db" in done.stderr, done.stderr
    assert "org=None" not in done.stderr


def test_once_with_the_database_down_spools_its_reading_and_ends_within_10_s(tmp_path: Path) -> None:
    from pylonbus.store.spool import Spool
    from servers import free_port

    spool = tmp_path / "spool.sqlite"
    done = run(
        "pylon2influx",
        "-d",
        SIM,
        "-s",
        f"127.0.0.1:{free_port()}",
        "-n",
        "db",
        "--once",
        "--spool",
        str(spool),
        timeout=10,
    )
    assert done.returncode == 1 and "stay in the spool" in done.stderr, done.stderr
    assert Spool(spool, 10).pending() == 1


def test_a_fatal_error_reaches_stderr_whatever_becomes_of_syslog() -> None:
    """With -y the log goes to syslog; what ends the program is on stderr too. Where there is no syslog socket
    (containers, this test machine), the log falls back to stderr with one warning instead of vanishing."""
    done = run("pylon2influx", "-y", "-d", "/dev/nonexistent-adapter")
    assert done.returncode == 1 and "Traceback" not in done.stderr and "Logging error" not in done.stderr
    assert "cannot open /dev/nonexistent-adapter: no such device" in done.stderr
    if not Path("/dev/log").exists():
        assert done.stderr.count("syslog is unreachable (/dev/log); logging to stderr") == 1
        assert "modules: group 0: []" in done.stderr  # the rest of the log, on stderr


def test_the_simulator_replaces_only_its_own_link(tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    done = run("pylontech-sim", "--pty", "--link", str(precious), timeout=10)
    assert done.returncode == 1 and "a file is there, not a simulator's link to a pseudo-terminal" in done.stderr
    assert precious.read_text() == "keep me"
    stale = tmp_path / "ttyPylon"
    stale.symlink_to("/dev/pts/999")  # what a killed simulator leaves
    from conftest import SimProcess

    sim = SimProcess("--pty", "--link", str(stale), "--modules", "1")
    try:
        assert sim.port == str(stale) and stale.resolve() != Path("/dev/pts/999")
    finally:
        sim.stop()
    assert not stale.is_symlink()  # removed on exit, being ours
