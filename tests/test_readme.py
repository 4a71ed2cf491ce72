"""Every Python example in README.md runs, as written, against the emulator.

Each ```python block is executed on its own, with `DFEHUB_BASE_URL` pointing
at a fresh emulator (the README says so too). A block that fails fails here, so
the README cannot drift from the code.
"""

from __future__ import annotations

import re
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


def test_the_readme_has_examples() -> None:
    assert len(_examples()) >= 5


@pytest.mark.parametrize(
    "source",
    [code for _, code in _examples()],
    ids=[f"line{n}" for n, _ in _examples()],
)
def test_readme_example_runs(
    source: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with DfeHubEmulator() as emulator:
        monkeypatch.setenv("DFEHUB_BASE_URL", emulator.base_url)
        monkeypatch.delenv("DFEHUB_API_KEY", raising=False)
        exec(compile(source, str(README), "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip(), "an example should show its result"
