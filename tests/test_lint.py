"""The code stays ruff-clean and formatted, `src/` passes `mypy --strict`, and its imports keep the layers of
pyproject.toml's [tool.importlinter] (README: "How the code is laid out")."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IN_CI, ROOT


def tool(name: str) -> str:
    """A tool of the [test] extra: installed beside the interpreter running the tests, not always on PATH."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed; it is in the [test] extra")
        pytest.skip(f"{name} is not installed; pip install -e '.[test]'")
    return path


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command: list[str]) -> None:
    done = subprocess.run(
        [tool("ruff"), *command, "src", "tests", "benchmarks", "contrib"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict() -> None:
    done = subprocess.run(
        [tool("mypy"), "--strict", "--no-error-summary", "src"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_layers() -> None:
    """An upward import, one sink importing another or I/O in the protocol fails here, naming both modules."""
    done = subprocess.run([tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
