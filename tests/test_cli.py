"""`pylontech` against the simulator over a real pseudo-terminal and TCP: every flag, JSON field by field."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import SEED, STACK
from pylonbus import as_dict
from pylonbus.protocol.families.pylontech.codes import address
from pylonbus.sim import Stack

MODEL = Stack.parse(STACK, seed=int(SEED), frozen=True)


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylontech", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def run_json(*args: str) -> dict:
    done = run(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


COMMANDS = {
    "-P": lambda m: m.analog(),
    "-l": lambda m: m.alarm(),
    "-y": lambda m: m.parameters(),
    "-m": lambda m: m.manufacturer(),
    "-S": lambda m: m.serial_number(),
    "-c": lambda m: m.charge_discharge(),
    "-F": lambda m: m.firmware(),
}


@pytest.mark.parametrize("flag", sorted(COMMANDS))
def test_every_command_flag_matches_the_simulator(sim_port: str, flag: str) -> None:
    for group, module in ((0, 1), (0, 3), (0, 4), (1, 1), (1, 2)):
        document = run_json("-d", sim_port, "-g", str(group), "-a", str(module), flag)
        expected = COMMANDS[flag](MODEL.modules[address(group, module)])
        assert document["result"] == as_dict(expected), (flag, group, module)


def test_long_flags_and_several_commands_run_in_turn(sim_port: str) -> None:
    document = run_json("--device", sim_port, "--group", "1", "--adr", "1", "--serial", "--packdata")
    assert list(document["results"]) == ["serial", "packdata"]
    assert len(document["results"]["packdata"]["result"]["cell_voltages"]) == 8  # UP2500
    assert document["results"]["serial"]["result"]["serial"] == MODEL.modules[0x12].serial
    text = run("-d", sim_port, "-g", "1", "-P", "-l", "-S").stdout
    assert "analog data:" in text and "alarms:" in text and "serial number:" in text


def test_summary_lists_every_module_with_totals(sim_port: str) -> None:
    document = run_json("-d", sim_port)
    rows = document["modules"]
    assert [r["module"] for r in rows] == [1, 2, 3, 4]
    for row in rows:
        pack = MODEL.modules[row["module"] + 1].pack()
        assert row["voltage"] == pack.voltage
        assert row["current"] == pack.current
        assert row["soc"] == pack.soc
        assert row["min_cell_voltage"] == min(pack.cell_voltages)
        assert row["max_temperature"] == max(pack.temperatures)
    assert document["total"]["total_capacity"] == 74 + 74 + 50 + 100
    assert document["total"]["state"] == "ok" and all(r["alarms"] == [] for r in rows)
    text = run("-d", sim_port).stdout
    assert "US3000C" in text and "total capacity 298.0 Ah" in text
    assert text.splitlines()[0] == "stack OK: 4 module(s), no alarm"


def test_summary_shows_each_modules_alarms_and_the_stacks_worst_state_first(sim_process) -> None:
    import csv
    import io

    port = sim_process(
        "--pty",
        "--stack",
        "US3000C*3",
        "--frozen",
        "--alarm",
        "2:charge_over_temperature",
        "--alarm",
        "3:cell_voltage_high",
    ).port
    lines = run("-d", port).stdout.splitlines()
    assert lines[0] == "stack PROTECTION: module 2: CHARGE_OVER_TEMPERATURE; module 3: cell 1 ABOVE_UPPER_LIMIT"
    assert lines[1].endswith(" alarms") and lines[2].endswith(" -")
    assert lines[3].endswith(" CHARGE_OVER_TEMPERATURE") and lines[4].endswith(" cell 1 ABOVE_UPPER_LIMIT")
    document = run_json("-d", port)
    assert [(r["state"], r["alarms"]) for r in document["modules"]] == [
        ("ok", []),
        ("protection", ["CHARGE_OVER_TEMPERATURE"]),
        ("alarm", ["cell 1 ABOVE_UPPER_LIMIT"]),
    ]
    assert document["total"]["state"] == "protection"
    rows = list(csv.DictReader(io.StringIO(run("-d", port, "--csv").stdout)))
    assert [(r["state"], r["alarms"]) for r in rows] == [
        ("ok", ""),
        ("protection", "CHARGE_OVER_TEMPERATURE"),
        ("alarm", "cell 1 ABOVE_UPPER_LIMIT"),
    ]


def test_scan_lists_modules_with_name_firmware_and_serial(sim_port: str) -> None:
    document = run_json("-d", sim_port, "-g", "1", "-s")
    assert [m["module"] for m in document["modules"]] == [1, 2]
    assert document["modules"][0]["model"] == "UP2500"
    assert document["modules"][1]["serial"] == MODEL.modules[0x13].serial
    text = run("-d", sim_port, "--scan").stdout
    assert "4 module(s) found in group 0" in text and "US5000 V1.6" in text


def test_temperatures_have_tenths_and_current_limits_are_signed(sim_port: str) -> None:
    params = run_json("-d", sim_port, "-a", "1", "-y")["result"]
    assert params["discharge_current_limit"] == -102.0 and params["charge_current_limit"] == 102.0
    text = run("-d", sim_port, "-a", "1", "-P").stdout
    assert any(f"{t:.1f}" in text for t in MODEL.modules[2].pack().temperatures)


def test_absent_module_exits_2_with_a_clear_message(sim_port: str) -> None:
    done = run("-d", sim_port, "-a", "9", "-P")
    assert done.returncode == 2
    assert "no reply from module 9 (ADR 0x0A)" in done.stderr and "DIP switches" in done.stderr
    assert "Traceback" not in done.stderr


def test_empty_group_exits_2(sim_port: str) -> None:
    done = run("-d", sim_port, "-g", "5")
    assert done.returncode == 2 and "no module answered in group 5" in done.stderr


def test_port_that_cannot_be_opened_exits_1() -> None:
    done = run("-d", "/dev/ttyUSB_does_not_exist", "-P")
    assert done.returncode == 1
    assert "cannot open /dev/ttyUSB_does_not_exist" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [["-a", "15"], ["-g", "16"], ["-b", "300"], ["--bogus"]])
def test_invalid_options_exit_1_with_the_reason(args: list[str]) -> None:
    done = run(*args)
    assert done.returncode == 1 and "error:" in done.stderr


def test_baud_rate_is_honoured(sim_process) -> None:
    sim = sim_process("--pty", "--modules", "1", "--frozen", "--baud", "9600")
    document = run_json("-d", sim.port, "-b", "9600", "-a", "1", "-P")
    assert document["result"]["command_value"] == 2


def test_version_and_help_exit_0() -> None:
    assert run("--version").returncode == 0
    assert "--packdata" in run("--help").stdout


def test_decode_infers_commands_and_keeps_going_after_a_bad_frame() -> None:
    frames = [
        "~20024647E00202FD2C",  # unknown-layout request is still named
        "~20024692E00202FD2E",
        "~20024600B01402D002B79800FAFF06C0F92D",
        "~20024600B032110E420BEA0B540D0D0A3D03FCD2F0B3B0ADD40D0D0A3DFC18F23E",  # checksum off by one
        "~20024600C0405553324B42504C000000020350796C6F6E2D2D2D2D2D2D2D2D2D2D2D2D2D2D2DEF98",
    ]
    done = run("--decode", "-", "--json", stdin="\n".join(frames) + "\n")
    assert done.returncode == 1
    out = json.loads(done.stdout)
    lines = run("--decode", "--jsonl", stdin="\n".join(frames) + "\n").stdout.splitlines()
    assert [json.loads(line) for line in lines] == out
    assert out[1]["direction"] == "request" and out[1]["command"] == "CHARGE_DISCHARGE"
    assert out[2]["command"] == "CHARGE_DISCHARGE" and out[2]["result"]["discharge_current_limit"] == -25.0
    assert out[3]["error"].startswith("ChecksumError")
    assert out[4]["command"] == "MANUFACTURER" and out[4]["result"]["model"] == "US2KBPL"


def test_decode_with_explicit_command() -> None:
    done = run(
        "--decode",
        "~2002460010F011020F0CCD0CCE0CCC0CCE0CCB0CCC0CCD0CCC0CCD0CCB0CCC0CCD0CCD0CCE0CCC050BE10BCD"
        "0BCD0BD70BCDFFC3BFFDFFFF04FFFF0234007F300121100F0CCA0CCA0CCB0CCC0CCA0CCC0CCB0CCB0CCB0CCB0CCB0CCA0CCC"
        "0CCC0CCB050BEB0BCD0BCD0BCD0BC3FFD1BFE5FFFF04FFFF0292005FB400C350C4A7",
    )
    assert done.returncode == 0 and "ANALOG fan-out" in done.stdout and "module 2:" in done.stdout


def test_a_command_without_a_module_reads_every_module_in_one_document(sim_port: str) -> None:
    document = run_json("-d", sim_port, "-S")
    assert document["command"] == "serial"
    assert [(e["module"], e["result"]["serial"]) for e in document["modules"]] == [
        (n, MODEL.modules[n + 1].serial) for n in (1, 2, 3, 4)
    ]
    assert run_json("-d", sim_port, "-a", "all", "-g", "1", "-F")["modules"][1]["module"] == 2
    text = run("-d", sim_port, "-P").stdout.splitlines()
    assert text[0] == "group 0, analog data:" and text[1].split() == ["module", "1", "2", "3", "4"]
    sixteenth = next(line for line in text if "cell voltage 16 V" in line).split()
    assert sixteenth[-4:-1] == ["-", "-", "-"]  # only the US5000 has a 16th cell
    assert text.index(next(line for line in text if "cell voltage 16 V" in line)) == 17  # after the 15th


def test_csv_has_a_header_with_units_and_a_row_a_module(sim_port: str) -> None:
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(run("-d", sim_port, "--csv").stdout)))
    assert [row["module"] for row in rows] == ["1", "2", "3", "4"]
    assert float(rows[3]["voltage V"]) == MODEL.modules[5].pack().voltage
    assert rows[0]["total capacity Ah"] == "74.0"
    analog = list(csv.DictReader(io.StringIO(run("-d", sim_port, "-P", "--csv").stdout)))
    assert float(analog[0]["cell voltage 1 V"]) == MODEL.modules[2].pack().cell_voltages[0]
    assert analog[0]["cell voltage 16 V"] == "" and analog[3]["cell voltage 16 V"] != ""
    assert float(analog[1]["current A"]) == MODEL.modules[3].pack().current


def watched(sim_process, *args: str, seconds: float = 2.5) -> str:
    """What `pylontech --watch 0.5` on two modules prints until Ctrl-C, which must end it with status 0."""
    import signal
    import time

    port = sim_process("--pty", "--stack", "US2000B*2", "--frozen").port
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.pylontech", "-d", port, *args, "--watch", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a run started in the background of a script (`.ci/run &`) inherits SIGINT ignored,
        # and Python then leaves it ignored, rightly.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out


def test_watch_repeats_until_ctrl_c_and_exits_0(sim_process) -> None:
    documents = [json.loads(line) for line in watched(sim_process, "-a", "2", "-P", "--json").splitlines()]
    assert len(documents) >= 3 and all(d["module"] == 2 for d in documents)


def test_csv_watch_is_one_table_a_header_then_a_row_a_module_a_round(sim_process) -> None:
    import csv
    import io

    out = watched(sim_process, "--csv", seconds=3)
    assert out.count("module,") == 1 and out.startswith("time,module,")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) >= 4 and [r["module"] for r in rows[:4]] == ["1", "2", "1", "2"]
    assert rows[0]["time"] == rows[1]["time"] and all(r["time"][:2] == "20" for r in rows)


def test_a_spy_trace_decodes_as_pyserial_wrote_it(sim_process, tmp_path) -> None:
    sim = sim_process("--pty", "--modules", "2", "--frozen")
    trace = tmp_path / "trace.txt"
    queried = run_json("-d", f"spy://{sim.port}?file={trace}", "-P")  # the frames of this query, as users attach
    assert " RX   0010  " in trace.read_text()  # a reply spans several lines of the hex dump
    for source in ([str(trace)], ["-"]):
        done = run("--decode", *source, "--json", stdin=trace.read_text())
        assert done.returncode == 0, done.stderr
        decoded = json.loads(done.stdout)
        assert all(d["spy"] == ("TX" if d["direction"] == "request" else "RX") for d in decoded)
        replies = [d for d in decoded if d["spy"] == "RX" and d["command"] == "ANALOG"]
        assert [(d["module"], d["result"]) for d in replies] == [(m["module"], m["result"]) for m in queried["modules"]]
    text = run("--decode", str(trace)).stdout
    assert "TX ~20024642E00202FD33\n  request ANALOG, ADR 0x02" in text
