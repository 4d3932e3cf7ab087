"""The console link, `pylontech --console` and the simulator's console, over a real pty and TCP socket."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pylonbus.console.results import (
    CellTable,
    ClockTime,
    ConsoleText,
    DeviceInfo,
    ModuleDetail,
    SohTable,
    StackSummary,
    Statistics,
    SystemSummary,
)
from pylonbus.errors import CommandFailedError, NoReplyError, UnknownCommandError
from pylonbus.link.console import ConsoleLink, check_command
from pylonbus.sim import Stack
from pylonbus.sim.console import FIRMWARES, balancing, state_of_health

STACK = "US3000C,US2000B,US5000,US2000C"
SEED = 11
MODEL = Stack.parse(STACK, seed=SEED, frozen=True)
TRANSCRIPTS = Path(__file__).parent / "vectors" / "console" / "transcripts.json"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylontech", *args], capture_output=True, text=True, timeout=60, input=stdin
    )


@pytest.fixture(params=["pty", "tcp"])
def where(request: pytest.FixtureRequest) -> list[str]:
    return ["--pty"] if request.param == "pty" else ["--tcp", "127.0.0.1:0"]


def console(sim_process, where: list[str], firmware: str = "us2000c", *faults: str) -> str:
    args = (*where, "--stack", STACK, "--seed", str(SEED), "--frozen", "--console", "--console-firmware", firmware)
    return sim_process(*args, *faults).port


MODULE_FIRMWARES = sorted(name for name, firmware in FIRMWARES.items() if not firmware.unit_header)


@pytest.mark.parametrize("firmware", MODULE_FIRMWARES)
def test_the_simulated_console_reads_back_to_its_model(sim_process, where: list[str], firmware: str) -> None:
    with ConsoleLink(console(sim_process, where, firmware)) as link:
        summary = link.query("pwr")
        assert isinstance(summary, StackSummary) and not summary.unreadable
        assert summary.present == (1, 2, 3, 4)
        assert len(summary.modules) == FIRMWARES[firmware].slots
        for row in summary.modules[:4]:
            module = MODEL.modules[row.module + 1]
            pack = module.pack()
            assert (row.voltage, row.current, row.temperature) == (pack.voltage, pack.current, pack.temperatures[0])
            assert (row.min_cell_voltage, row.max_cell_voltage) == (min(pack.cell_voltages), max(pack.cell_voltages))
            assert row.soc == round(100 * module.soc)
            if firmware == "pytes":
                assert (row.serial, row.model) == (module.serial, module.preset.device_name)
            if firmware == "us5000":
                cells = pack.cell_voltages
                assert row.min_cell_voltage_index == cells.index(min(cells))
            if firmware == "us2000c":  # the US5000 has a MOSFET sensor; the others print `-`
                expected = pack.temperatures[5] if len(pack.temperatures) > 5 else None
                assert row.mosfet_temperature == expected
            cells = link.query(f"bat {row.module}")
            assert isinstance(cells, CellTable) and cells.module == row.module and not cells.unreadable
            assert tuple(c.voltage for c in cells.cells) == pack.cell_voltages
            assert {c.remaining_capacity for c in cells.cells} == {pack.remaining_capacity}
            assert tuple(bool(c.balancing) for c in cells.cells) == (
                balancing(module) if "BAL" in FIRMWARES[firmware].bat_header else (False,) * len(cells.cells)
            )
            assert all(c.current == (pack.current if " Curr " in FIRMWARES[firmware].bat_header else None) for c in
                       cells.cells)  # fmt: skip
            soh = link.query(f"soh {row.module}")
            assert isinstance(soh, SohTable) and tuple(c.voltage for c in soh.cells) == pack.cell_voltages
            info = link.query(f"info {row.module}")
            assert isinstance(info, DeviceInfo)
            assert (info.serial, info.model, info.cell_count) == (module.serial, module.preset.device_name,
                                                                  module.preset.cells)  # fmt: skip
            detail = link.query(f"pwr {row.module}")
            assert isinstance(detail, ModuleDetail) and detail.module == row.module
            assert (detail.voltage, detail.current, detail.total_capacity) == (pack.voltage, pack.current,
                                                                                pack.total_capacity)  # fmt: skip
        if FIRMWARES[firmware].stat_of_module:
            stat = link.query("stat 3")
            assert isinstance(stat, Statistics) and stat.cycles == MODEL.modules[4].cycles
            assert stat.soh == (state_of_health(MODEL.modules[4]) if FIRMWARES[firmware].soh_label else None)
        else:
            with pytest.raises(CommandFailedError):
                link.query("stat 3")
            assert isinstance(link.query("stat"), Statistics)
        assert isinstance(link.query("time"), ClockTime)


def test_the_simulated_force_h2_reads_back_to_its_model(sim_process, where: list[str]) -> None:
    """The stack's modules as the units of one tower: `pwr` the tower, `unit` a row a unit, `bat` and `soh`
    every cell of the tower, numbered on from unit to unit."""
    units = list(MODEL.modules.values())
    packs = [unit.pack() for unit in units]
    cells = [v for pack in packs for v in pack.cell_voltages]
    with ConsoleLink(console(sim_process, where, "forceh2"), allow=frozenset({"unit"})) as link:
        tower = link.query("pwr")
        assert isinstance(tower, SystemSummary) and not tower.unreadable and tower.extra == {}
        assert tower.voltage == tower.dc_voltage == round(sum(p.voltage for p in packs), 3)
        assert tower.current == round(sum(p.current for p in packs) / len(packs), 3)
        assert tower.temperature == max(p.temperatures[0] for p in packs)
        assert tower.average_temperature == round(sum(p.temperatures[0] for p in packs) / len(packs), 3)
        assert (tower.min_cell_voltage, tower.max_cell_voltage) == (min(cells), max(cells))
        assert (tower.min_unit_voltage, tower.max_unit_voltage) == (
            min(p.voltage for p in packs),
            max(p.voltage for p in packs),
        )
        assert tower.min_temperature == min(t for p in packs for t in p.temperatures[1:5])
        energies = [round(p.remaining_capacity * p.voltage, 3) for p in packs]  # each unit's, at the console's mWh
        assert tower.remaining_energy == round(sum(energies), 3)
        assert tower.soc == round(sum(round(100 * u.soc) for u in units) / len(units))
        assert tower.error_code == 0 and tower.unit_voltage_state == "Normal"
        summary = link.query("unit")
        assert isinstance(summary, StackSummary) and not summary.unreadable
        assert summary.present == tuple(u.number for u in units)
        for row, unit, pack in zip(summary.modules, units, packs, strict=True):
            assert (row.voltage, row.current, row.temperature) == (pack.voltage, pack.current, pack.temperatures[0])
            assert (row.min_cell_voltage, row.max_cell_voltage) == (min(pack.cell_voltages), max(pack.cell_voltages))
            assert (row.soc, row.remaining_capacity) == (round(100 * unit.soc), pack.remaining_capacity)
        assert [row.remaining_energy for row in summary.modules] == energies
        bat = link.query("bat")
        assert isinstance(bat, CellTable) and not bat.unreadable
        assert [c.cell for c in bat.cells] == list(range(len(cells)))
        assert [c.voltage for c in bat.cells] == cells
        assert [bool(c.balancing) for c in bat.cells] == [on for unit in units for on in balancing(unit)]
        assert [c.remaining_capacity for c in bat.cells] == [
            p.remaining_capacity for p in packs for _ in p.cell_voltages
        ]
        soh = link.query("soh")
        assert isinstance(soh, SohTable) and [c.voltage for c in soh.cells] == cells
        stat = link.query("stat")
        assert isinstance(stat, Statistics) and (stat.cycles, stat.soh) == (units[0].cycles, state_of_health(units[0]))
        info = link.query("info")
        assert isinstance(info, DeviceInfo) and (info.model, info.cell_count) == ("Force_H2", len(cells))
        assert link.query("time") == ClockTime("2026-01-01 00:00:00")
        with pytest.raises(CommandFailedError):
            link.query("bat 1")  # what a tower answers with a number is not captured: refused
    with pytest.raises(PermissionError):
        check_command("unit")  # not in the read-only allowlist: CONSOLE.md does not say it only reads


def test_cli_on_a_force_h2_asks_the_tower(sim_process) -> None:
    port = console(sim_process, ["--pty"], "forceh2")
    done = run("--console", "-d", port, "--soh", "--stat", "--json")
    assert done.returncode == 0, done.stderr
    replies = json.loads(done.stdout)["replies"]
    assert [(r["command"], r["kind"]) for r in replies] == [("soh", "SohTable"), ("stat", "Statistics")]
    text = run("--console", "-d", port)
    assert text.returncode == 0 and "remaining energy Wh" in text.stdout and "Traceback" not in text.stderr
    captures = {t["command"]: t["text"] for t in json.loads(TRANSCRIPTS.read_text()) if "B52.26" in t["firmware"]}
    decoded = run("--decode", "--console", "-", stdin=captures["pwr"] + captures["unit"])
    assert decoded.returncode == 0, decoded.stderr
    assert "remaining energy Wh: 11903.1" in decoded.stdout and "average temperature °C: 21.75" in decoded.stdout


def test_help_is_read_through_its_pages(sim_process, where: list[str]) -> None:
    with ConsoleLink(console(sim_process, where)) as link:
        help_text = link.query("help")
        assert isinstance(help_text, ConsoleText)
        assert help_text.lines[0] == "Local command:" and help_text.lines[-1].startswith("stat")
        assert isinstance(link.query("pwr"), StackSummary)  # the console is back at its prompt


def test_the_allowlist_refuses_what_could_change_the_battery() -> None:
    for command in ("shut", "trst", "updata", "login debug", "time 2024 1 1 0 0 0", "bat 1 2", "pwr x", "getpwr"):
        with pytest.raises(PermissionError):
            check_command(command)
    assert check_command("login debug", frozenset({"login"})) == "login debug"
    assert [check_command(c) for c in ("pwr", "bat  3", "help pwr", "time")] == ["pwr", "bat 3", "help pwr", "time"]


def test_a_refusal_is_not_retried_and_a_silent_console_is_no_reply(sim_process) -> None:
    port = console(sim_process, ["--pty"])
    with ConsoleLink(port, allow=frozenset({"getpwr"})) as link:
        with pytest.raises(UnknownCommandError):
            link.query("getpwr")
        assert link.errors == 0
    silent = console(sim_process, ["--pty"], "us2000c", "--no-reply", "1")
    with ConsoleLink(silent, timeout=0.3) as link, pytest.raises(NoReplyError, match="RS232, not RS485"):
        link.query("pwr")


def test_cut_replies_and_cut_rows_are_asked_for_again(sim_process) -> None:
    port = console(sim_process, ["--tcp", "127.0.0.1:0"], "us2000c", "--truncate", "0.3", "--corrupt", "0.3")
    with ConsoleLink(port, timeout=0.3, tries=6) as link:
        for module in range(1, 5):
            cells = link.query(f"bat {module}")
            assert isinstance(cells, CellTable) and not cells.unreadable
            assert tuple(c.voltage for c in cells.cells) == MODEL.modules[module + 1].pack().cell_voltages
        assert link.errors > 0
    broken = console(sim_process, ["--pty"], "us2000b", "--corrupt", "1")
    with ConsoleLink(broken) as link:
        cells = link.query("bat 1")  # every try has a cut row: the last is shown, its cut row named
        assert isinstance(cells, CellTable) and len(cells.unreadable) == 1 and len(cells.cells) == 14
        assert "stops before column" in cells.unreadable[0] or "holds" in cells.unreadable[0]


def test_one_simulator_serves_rs485_and_the_console_of_one_stack(sim_process) -> None:
    sim = sim_process("--pty", "--stack", STACK, "--seed", str(SEED), "--frozen", "--console-on", "127.0.0.1:0")
    console_port = sim.proc.stdout.readline().strip()
    assert console_port.startswith("socket://")
    rs485 = json.loads(run("-d", sim.port, "-a", "3", "-P", "--json").stdout)["result"]
    serial = json.loads(run("-d", sim.port, "-a", "3", "-S", "--json").stdout)["result"]["serial"]
    document = json.loads(run("--console", "-d", console_port, "-a", "3", "-P", "--json").stdout)
    detail, cells = (reply["result"] for reply in document["replies"])
    assert [r["command"] for r in document["replies"]] == ["pwr 3", "bat 3"]
    assert (detail["voltage"], detail["current"]) == (rs485["voltage"], rs485["current"])
    assert [c["voltage"] for c in cells["cells"]] == rs485["cell_voltages"]
    info = json.loads(run("--console", "-d", console_port, "-a", "3", "-m", "--json").stdout)["replies"][0]
    assert info["result"]["serial"] == serial


def test_cli_text_json_and_csv(sim_process, where: list[str]) -> None:
    port = console(sim_process, where)
    text = run("--console", "-d", port)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "== pwr" and "voltage V" in lines[1] and len(lines) == 2 + 4
    pack = MODEL.modules[2].pack()
    assert f"{pack.voltage:g}" in lines[2]
    soh = run("--console", "-d", port, "--soh", "--json")
    assert [r["command"] for r in json.loads(soh.stdout)["replies"]] == ["soh 1", "soh 2", "soh 3", "soh 4"]
    stat = run("--console", "-d", port, "-a", "2", "--stat", "--csv")
    (row,) = csv.DictReader(io.StringIO(stat.stdout))
    assert row["command"] == "stat 2" and row["cycles"] == str(MODEL.modules[3].cycles)
    bat = run("--console", "-d", port, "-a", "1", "-P", "--csv")
    rows = list(csv.DictReader(io.StringIO(bat.stdout)))
    assert [r["command"] for r in rows] == ["pwr 1"] + ["bat 1"] * 15
    assert [float(r["voltage V"]) for r in rows[1:]] == list(MODEL.modules[2].pack().cell_voltages)


def test_cli_errors_are_one_line(sim_process) -> None:
    port = console(sim_process, ["--pty"])
    refused = run("--console", "-d", port, "--console-send", "shut")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "--console-allow shut" in refused.stderr
    unknown = run("--console", "-d", port, "--console-send", "login debug", "--console-allow", "login")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "Unknown command 'login'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    wrong = run("--console", "-d", port, "-s")
    assert wrong.returncode == 1 and "does not answer -s" in wrong.stderr
    decode = run("--decode", "--console", "--soh", "-")
    assert decode.returncode == 1 and "sends nothing; drop --soh" in decode.stderr
    rs485 = run("-d", port, "--stat")
    assert rs485.returncode == 1 and "--stat is a console option; add --console" in rs485.stderr
    missing = run("--console", "-d", "socket://127.0.0.1:9")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "connection refused" in missing.stderr


def test_a_command_the_console_refuses_is_shown_and_the_others_run(sim_process) -> None:
    done = run("--console", "-d", console(sim_process, ["--pty"], "pytes"), "--stat", "-m", "--json")
    assert done.returncode == 0 and done.stderr.count("Invalid command") == 4
    replies = json.loads(done.stdout)["replies"]
    assert [("error" in r, r["command"]) for r in replies] == [(True, f"stat {n}") for n in range(1, 5)] + [
        (False, f"info {n}") for n in range(1, 5)
    ]


def test_wake_up_frame_then_the_console_answers(sim_process, where: list[str]) -> None:
    with ConsoleLink(console(sim_process, where, "us2000b"), wake=True) as link:
        assert isinstance(link.query("time"), ClockTime)
        assert link.errors == 0


def test_decode_a_captured_session_from_a_file_and_stdin(tmp_path: Path) -> None:
    entries = json.loads(TRANSCRIPTS.read_text())
    session = "".join(e["text"] for e in entries if "B66.6" in e["firmware"])  # one US2000B Plus session
    capture = tmp_path / "console.txt"
    capture.write_text(session)
    done = run("--decode", "--console", str(capture))
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("==")] == [
        "== help", "== bat", "== pwr", "== stat", "== time"
    ]  # fmt: skip
    document = json.loads(run("--decode", "--console", "--json", stdin=session).stdout)
    kinds = [(r["command"], r["kind"]) for r in document["replies"]]
    assert kinds == [("help", "ConsoleText"), ("bat", "CellTable"), ("pwr", "StackSummary"), ("stat", "Statistics"),
                     ("time", "ClockTime")]  # fmt: skip
    assert document["replies"][3]["result"]["cycles"] == 430
    error = run("--decode", "--console", "--json", stdin=entries[63]["text"])
    assert json.loads(error.stdout)["replies"][0]["error"].startswith("the console answered: Unknown command")
