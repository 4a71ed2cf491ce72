"""The smoke script that `make dist` runs in a fresh venv works, and is strict.

`make dist` runs `scripts/smoke_installed.py` against a freshly installed
wheel. Here it runs against the package already installed in this
environment, so the script is covered on every test run without building a
wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import langchain_dfehub

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "smoke_installed.py"


def _run_script(*args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_smoke_script_passes_against_the_installed_package(tmp_path: Path):
    run = _run_script(cwd=tmp_path)

    assert run.returncode == 0, run.stdout + run.stderr
    checks = [line for line in run.stdout.splitlines() if line.startswith("ok  ")]
    assert [line.split(":")[0] for line in checks[1:]] == [
        "ok  metadata",
        "ok  python -m langchain_dfehub.testing",
        "ok  pytest plugin",
    ]
    assert "License-Expression MIT" in checks[1]
    assert "dist-info/licenses/LICENSE" in checks[1]
    assert run.stdout.rstrip().endswith("smoke test passed")


def test_the_smoke_script_refuses_a_package_imported_from_a_source_tree(
    tmp_path: Path,
):
    source_tree = tmp_path / "checkout"
    shutil.copytree(
        Path(langchain_dfehub.__file__).parent,
        source_tree / "langchain_dfehub",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    env = {**os.environ, "PYTHONPATH": str(source_tree)}

    run = _run_script("--require-installed", cwd=tmp_path, env=env)

    assert run.returncode == 1
    assert "smoke test FAILED" in run.stderr
    assert str(source_tree / "langchain_dfehub") in run.stderr
    assert "site-packages" in run.stderr
