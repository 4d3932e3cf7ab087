"""From a download to a running service: the sdist and wheel `python -m build` makes from this tree, part of the
test suite run from the unpacked sdist, and contrib/install.sh into a temporary root (never into this machine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import ROOT

INSTALL = ROOT / "contrib" / "install.sh"
#: What the sdist's own test run takes: the frame codec against the captured vectors, the README's schema table
#: against the daemon, and the example config against the simulator (it needs contrib/): fast, and no server.
SDIST_SUBSET = [
    "tests/test_frame.py",
    "tests/test_vectors.py",
    "tests/test_schema_doc.py",
    "tests/test_daemon.py::test_the_example_config_runs_as_shipped_and_its_commented_sinks_are_valid",
]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sdist, and a wheel built from that sdist (what `python -m build` does without options)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]


def test_the_sdist_holds_what_its_tests_need_and_they_pass_from_it(dist: Path, tmp_path: Path) -> None:
    (sdist,) = dist.glob("pylonbus-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (tree,) = tmp_path.glob("pylonbus-*")
    for needed in ("tests/conftest.py", "tests/servers.py", "tests/vectors/frames.json", "contrib/install.sh"):
        assert (tree / needed).is_file(), needed
    assert not list(tree.rglob("__pycache__"))
    env = os.environ | {"PYTHONPATH": str(tree / "src")}
    where = run(sys.executable, "-c", "import pylonbus; print(pylonbus.__file__)", env=env)
    assert where.stdout.startswith(str(tree)), where.stdout  # the sdist's code, not this tree's
    done = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SDIST_SUBSET, cwd=tree, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout.splitlines()[-1] and "failed" not in done.stdout.splitlines()[-1]


def test_the_wheel_and_pyproject_pass_their_checkers(dist: Path) -> None:
    (wheel,) = dist.glob("pylonbus-*.whl")
    bin_dir = Path(sys.executable).parent
    contents = run(bin_dir / "check-wheel-contents", wheel)
    assert contents.returncode == 0, contents.stdout + contents.stderr
    validated = run(bin_dir / "validate-pyproject", ROOT / "pyproject.toml")
    assert validated.returncode == 0, validated.stdout + validated.stderr


def fresh_root(path: Path) -> Path:
    """A folder standing for /: the account files useradd edits, and the targets the unit names, for
    systemd-analyze to load it there."""
    (path / "etc").mkdir(parents=True)
    (path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (path / "etc" / "group").write_text("root:x:0:\ndialout:x:20:\n")
    for name in ("shadow", "gshadow"):
        (path / "etc" / name).write_text("")
    units = path / "usr" / "lib" / "systemd" / "system"
    units.mkdir(parents=True)
    for target in ("sysinit", "basic", "shutdown", "network-online", "multi-user"):
        (units / f"{target}.target").write_text(f"[Unit]\nDescription={target}\n")
    return path


def install(root: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run("sh", INSTALL, "--root", root, "--python", sys.executable, *args)


def test_install_script_into_a_temporary_root_and_out_again(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("pylonbus-*.whl")
    root = fresh_root(tmp_path / "root")
    done = install(root, "--source", wheel)
    assert done.returncode == 0, done.stdout + done.stderr
    program = root / "opt" / "pylonbus" / "bin" / "pylon2influx"
    unit = (root / "etc" / "systemd" / "system" / "pylon2influx.service").read_text()
    assert "ExecStart=/opt/pylonbus/bin/pylon2influx --config /etc/pylon2influx.toml\n" in unit
    assert "User=pylon2influx\n" in unit and "SupplementaryGroups=dialout\n" in unit
    assert "pylon2influx:x:" in (root / "etc" / "passwd").read_text()
    assert "dialout:x:20:pylon2influx\n" in (root / "etc" / "group").read_text()
    assert 'SYMLINK+="ttyUSB_pylontech"' in (root / "etc" / "udev" / "rules.d" / "99-pylontech.rules").read_text()
    config = root / "etc" / "pylon2influx.toml"
    assert 'device = "auto"' in config.read_text()  # the rule's serial is a placeholder: the port is searched
    assert run(program, "--version").stdout.startswith("pylon2influx (pylonbus) ")
    printed = run(program, "--config", config, "--print-config")
    assert printed.returncode == 0 and 'device = "auto"' in printed.stdout, printed.stderr
    polled = run(program, "--config", config, "-d", "sim://?modules=1&frozen=1", "--once")
    assert polled.returncode == 0 and polled.stdout.startswith("Battery,Module=1 "), polled.stderr
    analyze = shutil.which("systemd-analyze")
    if analyze:
        verified = run(analyze, "verify", f"--root={root}", "pylon2influx.service")
        assert verified.returncode == 0 and not verified.stdout + verified.stderr, verified.stderr

    config.write_text(config.read_text() + "# the user's own\n")
    again = install(root, "--source", wheel)  # an update keeps what the user has
    assert again.returncode == 0, again.stderr
    assert f"kept {config}" in again.stdout and "user pylon2influx exists" in again.stdout
    assert config.read_text().endswith("# the user's own\n")

    removed = install(root, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not (root / "opt" / "pylonbus").exists()
    assert not (root / "etc" / "systemd" / "system" / "pylon2influx.service").exists()
    assert not (root / "etc" / "udev" / "rules.d" / "99-pylontech.rules").exists()
    assert "pylon2influx" not in (root / "etc" / "passwd").read_text()
    assert config.is_file() and "are kept" in removed.stdout


def test_install_script_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    for args, message in (
        (["--bogus"], "unknown option --bogus"),
        (["--prefix"], "--prefix needs a value"),
        (["--prefix", "opt"], "give an absolute path"),
        (["--source", tmp_path / "none.whl"], "no such file or directory"),
    ):
        done = install(tmp_path / "root", *args)
        assert done.returncode == 1 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "root").exists()
