"""Every Python example in README.md runs, as written, against the emulator.

Each ```python block is executed on its own, with `DFEHUB_BASE_URL` pointing
at a fresh emulator (the README says so too); where a ```text block follows
it, the example must print exactly that ("..." standing for any part of a
line). A block of pytest tests is run by
pytest itself, in a fresh process, so its fixtures come from the installed
plugin as a user's would. A block that fails fails here, so the README cannot
drift from the code. Its links, table of contents and Configuration table
are checked against its headings and `ChatDfeHub`'s fields.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel

from langchain_dfehub import ChatDfeHub
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


_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _printed_outputs() -> dict[int, str]:
    """A ```text block whose previous block is an example shows what it prints.

    Keyed by the example's line number.
    """
    text = README.read_text(encoding="utf-8")
    outputs = {}
    for example, shown in itertools.pairwise(_FENCE.finditer(text)):
        if example.group(1) == "python" and shown.group(1) == "text":
            outputs[text.count("\n", 0, example.start()) + 1] = shown.group(2)
    return outputs


_SCRIPTS = [(n, code) for n, code in _examples() if not _is_test_module(code)]
_TEST_MODULES = [(n, code) for n, code in _examples() if _is_test_module(code)]
_OUTPUTS = _printed_outputs()


def test_the_readme_has_examples() -> None:
    assert len(_examples()) >= 5


@pytest.mark.parametrize(
    ("source", "printed"),
    [(code, _OUTPUTS.get(n)) for n, code in _SCRIPTS],
    ids=[f"line{n}" for n, _ in _SCRIPTS],
)
def test_readme_example_runs(
    source: str,
    printed: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with DfeHubEmulator() as emulator:
        monkeypatch.setenv("DFEHUB_BASE_URL", emulator.base_url)
        monkeypatch.delenv("DFEHUB_API_KEY", raising=False)
        exec(compile(source, str(README), "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert out.strip(), "an example should show its result"
    if printed is not None:
        # "..." in the README stands for a part of a line that changes per run.
        shown = ".*?".join(re.escape(part) for part in printed.split("..."))
        assert re.fullmatch(shown, out), "the README shows this output otherwise"


def test_the_readme_shows_the_output_of_some_examples() -> None:
    assert len(_OUTPUTS) >= 2


def _anchor(heading: str) -> str:
    """GitHub's anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_every_link_within_the_readme_points_at_a_heading() -> None:
    text = _FENCE.sub("", README.read_text(encoding="utf-8"))
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    anchors = {_anchor(heading) for heading in headings}
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links
    assert sorted(set(links) - anchors) == []


def test_the_table_of_contents_lists_every_section_in_order() -> None:
    text = _FENCE.sub("", README.read_text(encoding="utf-8"))
    sections = re.findall(r"^## (.+)$", text, re.MULTILINE)
    contents = re.findall(r"^- \[.+?\]\(#(.+?)\)$", text.split("\n## ")[0], re.M)
    assert contents == [_anchor(section) for section in sections]


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


def _configuration_table() -> dict[str, str]:
    """The Configuration section's table: each field's name and default cell."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|[^|]*\| ([^|]*) \|", section, re.MULTILINE)
    return dict(rows)


def test_the_configuration_table_lists_every_field_of_chatdfehub() -> None:
    own = set(ChatDfeHub.model_fields) - set(BaseChatModel.model_fields)
    assert sorted(own - set(_configuration_table())) == []


def test_the_configuration_table_shows_each_literal_default() -> None:
    table = _configuration_table()
    shown = {}
    for name, field in ChatDfeHub.model_fields.items():
        default = field.default
        if name in table and isinstance(default, (bool, int, float, str, tuple)):
            literal = json.dumps(default) if isinstance(default, str) else default
            shown[name] = f"`{literal}`"
    assert shown
    assert {name: table[name] for name in shown} == shown
