"""`-d auto` and serial-starter's locks, on a folder of candidate ports: a pseudo-terminal with nothing behind
it, a regular file, a simulator whose port a live process has locked, and a free simulator; and the Venus OS
service script under a supervise-like loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pylonbus.link.autoport import PortLock, candidates, kernel_name

ROOT = Path(__file__).resolve().parent.parent
VENUS = ROOT / "contrib" / "venus"
PYLON2INFLUX = (sys.executable, "-m", "pylonbus.cli.pylon2influx")


@pytest.fixture
def ports(tmp_path: Path, sim_process):
    """tmp/ports/{a_silent,b_file,c_locked,d_free} and tmp/locks, with c_locked's device locked by a live PID."""
    folder, locks = tmp_path / "ports", tmp_path / "locks"
    folder.mkdir()
    locks.mkdir()
    master, slave = os.openpty()
    (folder / "a_silent").symlink_to(os.ttyname(slave))
    (folder / "b_file").write_text("not a port\n")
    locked = sim_process("--pty", "--modules", "1", "--frozen").port
    (folder / "c_locked").symlink_to(locked)
    free = sim_process("--pty", "--modules", "2", "--frozen").port
    (folder / "d_free").symlink_to(free)
    holder = subprocess.Popen(["sleep", "600"])
    (locks / kernel_name(locked)).symlink_to(str(holder.pid))
    yield folder, locks, free
    holder.kill()
    holder.wait()
    os.close(master)
    os.close(slave)


def test_candidates_name_each_device_once(tmp_path: Path) -> None:
    target = tmp_path / "tty"
    target.write_text("")
    (tmp_path / "by-id-1").symlink_to(target)
    found = candidates(f"{tmp_path}/by-id-*:{tmp_path}/tty:{tmp_path}/none*")
    assert found == [tmp_path / "by-id-1"]


def test_auto_picks_the_free_simulator_and_says_why_others_were_skipped(ports) -> None:
    folder, locks, _ = ports
    done = subprocess.run(
        [
            *PYLON2INFLUX,
            "-d",
            "auto",
            "--auto-ports",
            f"{folder}/*",
            "--serial-starter-lock",
            str(locks),
            "--try",
            "-v",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    log = done.stderr
    assert f"skipping {folder}/a_silent: no Pylontech module 1 in group 0 answers at 115200 Bd" in log
    assert f"skipping {folder}/b_file: not a terminal" in log
    assert f"skipping {folder}/c_locked: locked by PID" in log
    assert f"a Pylontech stack answers on {folder}/d_free" in log


def test_pylontech_auto_try_prints_the_port(tmp_path: Path, sim_process) -> None:
    (tmp_path / "ttyX").symlink_to(sim_process("--pty", "--modules", "1").port)
    found = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylontech", "-d", "auto", "--auto-ports", f"{tmp_path}/tty*", "-t"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0 and f"answers on {tmp_path}/ttyX" in found.stdout, found.stderr
    (tmp_path / "ttyX").unlink()
    master, slave = os.openpty()  # a port with nothing behind it
    (tmp_path / "ttyY").symlink_to(os.ttyname(slave))
    none = subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylontech", "-d", "auto", "--auto-ports", f"{tmp_path}/tty*", "-t"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    os.close(master)
    os.close(slave)
    assert none.returncode == 2 and "-d auto: no Pylontech stack answers on" in none.stderr


def test_auto_port_with_auto_family_finds_a_seplos_pack_and_reads_it(tmp_path: Path, sim_process) -> None:
    (tmp_path / "ttyA").symlink_to(sim_process("--pty", "--modules", "1", "--bms", "seplos").port)
    pylontech = [sys.executable, "-m", "pylonbus.cli.pylontech", "-d", "auto", "--auto-ports", f"{tmp_path}/tty*"]
    found = subprocess.run([*pylontech, "--bms", "auto", "-t"], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert f"a Seplos battery answers on {tmp_path}/ttyA" in found.stdout and "(--bms seplos)" in found.stdout
    pylon_only = subprocess.run([*pylontech, "-t"], capture_output=True, text=True, timeout=60)
    assert pylon_only.returncode == 2 and pylon_only.stderr.count("\n") == 1, pylon_only.stderr
    assert "no Pylontech stack answers" in pylon_only.stderr and "--bms auto" in pylon_only.stderr
    once = ("--bms", "auto", "--schema", "full", "--once", "--stdout")
    polled = subprocess.run(
        [*PYLON2INFLUX, "-d", "auto", "--auto-ports", f"{tmp_path}/tty*", *once],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert polled.returncode == 0, polled.stderr
    assert "pylontech_module,bms=seplos,group=0,module=1 online=true,voltage=" in polled.stdout, polled.stdout


def daemon(folder: Path, locks: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PYLON2INFLUX, "-d", "auto", "--auto-ports", f"{folder}/*", "--serial-starter-lock", str(locks), "-q", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_line(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("Battery,Module=1 ")


def test_the_daemon_holds_the_lock_and_a_stale_one_is_removed(ports) -> None:
    folder, locks, free = ports
    lock = locks / kernel_name(free)
    proc = daemon(folder, locks)
    wait_line(proc)
    assert os.readlink(lock) == str(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert not os.path.lexists(lock)  # released on SIGTERM
    proc = daemon(folder, locks)
    wait_line(proc)
    proc.kill()  # kill -9: the lock stays, pointing to a PID that is gone
    proc.wait()
    assert os.readlink(lock) == str(proc.pid)
    again = daemon(folder, locks)
    try:
        wait_line(again)
        assert os.readlink(lock) == str(again.pid)
    finally:
        again.send_signal(signal.SIGTERM)
        _, err = again.communicate(timeout=30)
    assert f"removing the stale lock {lock}" in err


def test_a_live_holder_makes_the_daemon_wait_for_the_port(tmp_path: Path, sim_process) -> None:
    port = sim_process("--pty", "--modules", "1").port
    locks = tmp_path / "locks"
    locks.mkdir()
    holder = subprocess.Popen(["sleep", "600"])
    (locks / kernel_name(port)).symlink_to(str(holder.pid))
    proc = subprocess.Popen(
        [*PYLON2INFLUX, "-d", port, "--serial-starter-lock", str(locks), "-q", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    holder.kill()
    holder.wait()  # serial-starter lets go: the daemon takes the port
    wait_line(proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert f"is locked by PID {holder.pid}" in err and err.count("waiting") == 1


def test_lock_ignores_another_holders_lock_on_release(tmp_path: Path) -> None:
    lock = PortLock(tmp_path, "/dev/ttyUSB9")
    (tmp_path / "ttyUSB9").symlink_to("1")  # PID 1 is alive: not ours to remove
    lock.release()
    assert os.path.lexists(tmp_path / "ttyUSB9")


def read_until(stream: Any, start: str, limit: int = 50) -> str:
    for _ in range(limit):
        line = stream.readline()
        if line.startswith(start):
            return line
    raise AssertionError(f"no line starting with {start!r}")


def test_contrib_scripts_pass_shellcheck() -> None:
    from servers import need

    scripts = [VENUS / "run", VENUS / "log" / "run", VENUS / "setup.sh", ROOT / "contrib" / "install.sh"]
    done = subprocess.run([need("shellcheck"), *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_venus_run_script_under_a_supervise_loop(tmp_path: Path, sim_process) -> None:
    ports = tmp_path / "ports"
    ports.mkdir()
    (ports / "ttyUSB0").symlink_to(sim_process("--pty", "--modules", "1", "--frozen").port)
    config = tmp_path / "pylon2influx.toml"
    config.write_text(f'[battery]\nauto_ports = "{ports}/*"\ninterval = 1\nserial_starter_lock = "off"\n')
    env = os.environ | {
        "PYLON2INFLUX": str(Path(sys.executable).parent / "pylon2influx"),
        "PYLON2INFLUX_CONFIG": str(config),
        "PYLON2INFLUX_RESTART_DELAY": "1",
        "STATE_DIRECTORY": str(tmp_path / "state"),
    }
    supervise = subprocess.Popen(
        ["sh", "-c", f"while :; do sh {VENUS / 'run'}; done"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert supervise.stdout is not None
        read_until(supervise.stdout, "Battery,Module=1 ")  # the run script logs to its standard output too
        subprocess.run(["pkill", "-KILL", "-f", f"pylon2influx --config {config}"], check=True)
        assert "status 137" in read_until(supervise.stdout, "pylon2influx exited with status")
        read_until(supervise.stdout, "Battery,Module=1 ")  # started again by the loop
    finally:
        os.killpg(supervise.pid, signal.SIGKILL)
        supervise.wait()


def port_info(serial: str | None) -> Any:
    from serial.tools.list_ports_common import ListPortInfo

    info = ListPortInfo("/dev/ttyUSB0", skip_link_detection=True)
    info.vid, info.pid, info.serial_number = 0x0403, 0x6001, serial
    info.manufacturer, info.product = "FTDI", "FT232R USB UART"
    return info


def test_the_udev_rule_names_the_adapters_vendor_product_and_serial() -> None:
    from pylonbus.link.udev import render_rule

    lines = render_rule(port_info("A10K3XYZ")).splitlines()
    assert lines[0] == "# pylonbus: the adapter a Pylontech battery answered on (/dev/ttyUSB0: FT232R USB UART, FTDI)."
    assert lines[-1] == (
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001", ATTRS{serial}=="A10K3XYZ", '
        'SYMLINK+="ttyUSB_pylontech", MODE="0660", GROUP="dialout"'
    )
    assert all(line.startswith("#") for line in lines[:-1])  # the rest are comments: the file is the rule
    for serial in (None, "", 'A1"B', "A1\nB"):  # udev has no escapes: such a serial is left out, and said
        text = render_rule(port_info(serial))
        assert "ATTRS{serial}" not in text and "no serial number udev can match" in text
        assert text.splitlines()[-1].startswith('SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001"')


def pylontech(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pylonbus.cli.pylontech", *args], capture_output=True, text=True, timeout=60
    )


def test_a_pty_has_no_usb_identity_for_a_udev_rule(tmp_path: Path, sim_process) -> None:
    (tmp_path / "ttyX").symlink_to(sim_process("--pty", "--modules", "1", "--frozen").port)
    done = pylontech("-d", "auto", "--auto-ports", f"{tmp_path}/tty*", "--udev-rule")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"pylontech: {tmp_path}/ttyX (/dev/pts/") and done.stderr.count("\n") == 1
    assert "has no USB identity" in done.stderr and "Traceback" not in done.stderr
    network = pylontech("-d", "sim://?modules=1", "--udev-rule")
    assert network.returncode == 1 and "is a network port, not a USB adapter" in network.stderr
    assert pylontech("-d", "sim://?modules=1", "--udev-rule", "-P").returncode == 1  # a rule, or a command


def test_auto_without_any_serial_port_says_so_and_names_the_empty_globs(tmp_path: Path) -> None:
    globs = f"{tmp_path}/serial/by-id/*:{tmp_path}/ttyUSB*"
    done = pylontech("-d", "auto", "--auto-ports", globs, "-t", "-v", "1")
    assert done.returncode == 2
    assert "-d auto: no serial port exists" in done.stderr and "is the adapter plugged in?" in done.stderr
    assert "A/B wiring" not in done.stderr
    assert f"{tmp_path}/serial/by-id/* matches no device" in done.stderr
    assert f"{tmp_path}/ttyUSB* matches no device" in done.stderr


def read_containing(stream: Any, text: str, limit: int = 50) -> str:
    for _ in range(limit):
        line = stream.readline()
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r}")


def test_the_daemon_with_auto_and_no_port_keeps_probing_until_one_answers(tmp_path: Path, sim_process) -> None:
    port = sim_process("--pty", "--modules", "1", "--frozen").port
    proc = subprocess.Popen(
        [
            *PYLON2INFLUX,
            "-d",
            "auto",
            "--auto-ports",
            f"{tmp_path}/tty*",
            "--rescan",
            "1",
            "--serial-starter-lock",
            "off",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        said = read_containing(proc.stderr, "no serial port exists")
        assert "probing again every 1 s" in said
        assert proc.poll() is None  # waiting, not gone
        (tmp_path / "ttyUSB0").symlink_to(port)  # the adapter is plugged in
        wait_line(proc)
        assert "answers on" in read_containing(proc.stderr, "; starting")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    once = subprocess.run(
        [*PYLON2INFLUX, "-d", "auto", "--auto-ports", f"{tmp_path}/none*", "--once"], capture_output=True, text=True
    )
    assert once.returncode == 2 and "no serial port exists" in once.stderr  # --once and --try still end
