"""The code stays ruff-clean and formatted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IN_CI, ROOT


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command: list[str]) -> None:
    # The [test] extra installs ruff beside the interpreter running the tests, which need not be on PATH.
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        if IN_CI:
            pytest.fail("ruff is not installed; it is in the [test] extra")
        pytest.skip("ruff is not installed")
    done = subprocess.run([ruff, *command, "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
