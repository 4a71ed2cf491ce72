"""Every Python example in docs/*.md runs, as written, against the emulator.

As README.md's (see test_readme.py): each ```python block runs on its own,
with `DFEHUB_BASE_URL` at a fresh emulator, and must print what the ```text
block after it shows ("..." standing for any part of a line). A block whose
first line is `# needs: redis` runs with `REDIS_URL` at the tests' Redis
server, and is skipped where there is none.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from langchain_dfehub.testing import DfeHubEmulator

DOCS = Path(__file__).resolve().parent.parent / "docs"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _examples() -> list[tuple[str, str, str | None]]:
    """(where, source, printed) of every Python block of every page."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        fences = list(_FENCE.finditer(text))
        for block, following in itertools.zip_longest(fences, fences[1:]):
            if block.group(1) != "python":
                continue
            printed = None
            if following is not None and following.group(1) == "text":
                printed = following.group(2)
            line = text.count("\n", 0, block.start()) + 1
            found.append((f"{page.name}:{line}", block.group(2), printed))
    return found


_EXAMPLES = _examples()


def test_the_fleet_page_has_examples() -> None:
    assert sum(where.startswith("fleet.md") for where, _, _ in _EXAMPLES) >= 2


@pytest.mark.parametrize(
    ("source", "printed"),
    [(source, printed) for _, source, printed in _EXAMPLES],
    ids=[where for where, _, _ in _EXAMPLES],
)
def test_docs_example_runs(
    source: str,
    printed: str | None,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if source.startswith("# needs: redis"):
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_server"))
    with DfeHubEmulator() as emulator:
        monkeypatch.setenv("DFEHUB_BASE_URL", emulator.base_url)
        exec(compile(source, "docs", "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert out.strip(), "an example should show its result"
    if printed is not None:
        shown = ".*?".join(re.escape(part) for part in printed.split("..."))
        assert re.fullmatch(shown, out), "the page shows this output otherwise"
