"""Every Python example in README.md runs, as written, against the emulator.

Each ```python block is executed on its own, with `DFEHUB_BASE_URL` pointing
at a fresh emulator (the README says so too). A block of pytest tests is run by
pytest itself, in a fresh process, so its fixtures come from the installed
plugin as a user's would. A block that fails fails here, so the README cannot
drift from the code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_dfehub.testing import DfeHubEmulator

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _examples() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1))
        for match in _BLOCK.finditer(text)
    ]


def _is_test_module(source: str) -> bool:
    return re.search(r"^def test_", source, re.MULTILINE) is not None


_SCRIPTS = [(n, code) for n, code in _examples() if not _is_test_module(code)]
_TEST_MODULES = [(n, code) for n, code in _examples() if _is_test_module(code)]


def test_the_readme_has_examples() -> None:
    assert len(_examples()) >= 5


@pytest.mark.parametrize(
    "source", [code for _, code in _SCRIPTS], ids=[f"line{n}" for n, _ in _SCRIPTS]
)
def test_readme_example_runs(
    source: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with DfeHubEmulator() as emulator:
        monkeypatch.setenv("DFEHUB_BASE_URL", emulator.base_url)
        monkeypatch.delenv("DFEHUB_API_KEY", raising=False)
        exec(compile(source, str(README), "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip(), "an example should show its result"


@pytest.mark.parametrize(
    "source",
    [code for _, code in _TEST_MODULES],
    ids=[f"line{n}" for n, _ in _TEST_MODULES],
)
def test_readme_test_module_passes(source: str, tmp_path: Path) -> None:
    module = tmp_path / "test_from_readme.py"
    module.write_text(source, encoding="utf-8")
    expected = len(re.findall(r"^def test_", source, re.MULTILINE))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{expected} passed" in run.stdout
