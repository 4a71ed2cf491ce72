"""Every Python example in README.md and docs/ runs, as written, against the emulator.

Each ```python block is executed on its own, with `DFEHUB_BASE_URL` pointing
at a fresh emulator (the pages say so too), and `REDIS_URL` at the tests'
Redis server when its first line is `# needs: redis`; where a ```text block follows
it, the example must print exactly that ("..." standing for any part of a
line). A block of pytest tests is run by pytest itself, in a fresh process,
so its fixtures come from the installed plugin as a user's would. A block
that fails fails here, so the pages cannot drift from the code.

Their links are checked too: within a page, to another page of the guide,
and from the README (the package's long description on an index, where
relative links break) to this repository's files by absolute URL. So are
the guide's contents (docs/index.md lists every page), each page's own
contents list, and the Configuration page's table against `ChatDfeHub`'s
fields.
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel

from langchain_dfehub import ChatDfeHub
from langchain_dfehub.testing import DfeHubEmulator

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
REPOSITORY = "https://github.com/langchain-dfehub/langchain-dfehub/blob/main/"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _examples(page: Path) -> list[tuple[int, str, str | None]]:
    """Each ```python block: its line, its code, and the output shown after it."""
    text = page.read_text(encoding="utf-8")
    blocks = list(_FENCE.finditer(text))
    examples = []
    for block, following in itertools.zip_longest(blocks, blocks[1:]):
        if block.group(1) != "python":
            continue
        shown = None
        if following is not None and following.group(1) == "text":
            shown = following.group(2)
        line = text.count("\n", 0, block.start()) + 1
        examples.append((line, block.group(2), shown))
    return examples


def _is_test_module(source: str) -> bool:
    return re.search(r"^def test_", source, re.MULTILINE) is not None


_ALL = [(page, *example) for page in PAGES for example in _examples(page)]
_SCRIPTS = [example for example in _ALL if not _is_test_module(example[2])]
_TEST_MODULES = [example for example in _ALL if _is_test_module(example[2])]


def test_the_readme_and_the_guide_have_examples() -> None:
    assert len(_examples(README)) >= 4
    assert len(_ALL) >= 30


@pytest.mark.parametrize(
    ("page", "source", "printed"),
    [(page, code, shown) for page, _, code, shown in _SCRIPTS],
    ids=[f"{_name(page)}:{line}" for page, line, _, _ in _SCRIPTS],
)
def test_example_runs(
    page: Path,
    source: str,
    printed: str | None,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if source.startswith("# needs: redis"):
        # The tests' own Redis server (skipped, with its reason, without one).
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_server"))
    with DfeHubEmulator() as emulator:
        monkeypatch.setenv("DFEHUB_BASE_URL", emulator.base_url)
        monkeypatch.delenv("DFEHUB_API_KEY", raising=False)
        exec(compile(source, str(page), "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert out.strip(), "an example should show its result"
    if printed is not None:
        # "..." on a page stands for a part of a line that changes per run.
        shown = ".*?".join(re.escape(part) for part in printed.split("..."))
        assert re.fullmatch(shown, out), "the page shows this output otherwise"


def test_some_examples_show_their_output() -> None:
    assert sum(1 for *_, shown in _SCRIPTS if shown is not None) >= 2


@pytest.mark.parametrize(
    "source",
    [code for _, _, code, _ in _TEST_MODULES],
    ids=[f"{_name(page)}:{line}" for page, line, _, _ in _TEST_MODULES],
)
def test_test_module_passes(source: str, tmp_path: Path) -> None:
    module = tmp_path / "test_from_docs.py"
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


def _anchor(heading: str) -> str:
    """GitHub's anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _prose(page: Path) -> str:
    return _FENCE.sub("", page.read_text(encoding="utf-8"))


def _anchors(page: Path) -> set[str]:
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", _prose(page), re.M)}


def _links(page: Path) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", _prose(page))


def _broken(page: Path, link: str) -> bool:
    """Whether a link of `page` misses its file or its heading."""
    if link.startswith(REPOSITORY):
        target = ROOT / link.removeprefix(REPOSITORY)
    elif re.match(r"^[a-z]+:", link):
        return False  # another site: not ours to check
    else:
        target = page.parent / link
    path, _, anchor = str(target).partition("#")
    if link.startswith("#"):
        path = str(page)
    if not Path(path).is_file():
        return True
    return bool(anchor) and anchor not in _anchors(Path(path))


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_link_points_at_a_file_and_heading_of_ours(page: Path) -> None:
    assert [link for link in _links(page) if _broken(page, link)] == []


def test_the_link_check_sees_links_and_would_see_a_broken_one() -> None:
    assert sum(len(_links(page)) for page in PAGES) >= 50
    assert _broken(README, f"{REPOSITORY}docs/no-such-page.md")
    assert _broken(DOCS / "index.md", "usage.md#no-such-heading")
    assert not _broken(DOCS / "index.md", "usage.md#token-counting")


def test_the_readme_links_to_files_only_by_absolute_url() -> None:
    # On a package index the README is shown without the repository around it.
    relative = [
        link
        for link in _links(README)
        if not link.startswith("#") and not re.match(r"^[a-z]+:", link)
    ]
    assert relative == []


def test_the_guide_index_lists_every_page_and_the_readme_links_each() -> None:
    pages = {page.name for page in DOCS.glob("*.md")} - {"index.md"}
    index = _prose(DOCS / "index.md")
    listed = re.findall(r"^- \[.+?\]\((\w[\w-]*\.md)\)$", index, re.M)
    assert sorted(listed) == sorted(pages)
    readme = {link.removeprefix(f"{REPOSITORY}docs/") for link in _links(README)}
    assert pages <= readme


def test_the_module_table_names_every_module_and_no_other() -> None:
    package = ROOT / "langchain_dfehub"
    modules = {
        path.name + ("/" if path.is_dir() else "")
        for path in package.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    table = re.findall(r"^\| (`.+?`) \|", _prose(DOCS / "development.md"), re.M)
    named = {name for row in table for name in re.findall(r"`([\w/.]+)`", row)}
    assert named - {"Module"} == modules


@pytest.mark.parametrize(
    "page",
    [page for page in PAGES if re.search(r"^- \[.+?\]\(#", _prose(page), re.M)],
    ids=_name,
)
def test_a_contents_list_names_every_section_in_order(page: Path) -> None:
    text = _prose(page)
    sections = re.findall(r"^## (.+)$", text, re.MULTILINE)
    contents = re.findall(r"^- \[.+?\]\(#(.+?)\)$", text.split("\n## ")[0], re.M)
    assert contents == [_anchor(section) for section in sections]


def test_the_long_pages_have_a_contents_list() -> None:
    for page in PAGES:
        if len(re.findall(r"^## ", _prose(page), re.M)) >= 3:
            assert re.search(r"^- \[.+?\]\(#", _prose(page), re.M), _name(page)


def _configuration_table() -> dict[str, str]:
    """The Configuration page's table: each field's name and default cell."""
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \|[^|]*\| ([^|]*) \|", text, re.MULTILINE)
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


def _docstring_examples() -> list[str]:
    doc = inspect.cleandoc(ChatDfeHub.__doc__ or "")
    return [
        textwrap.dedent(code)
        for code in re.findall(r"^ *```python\n(.*?)^ *```", doc, re.S | re.M)
    ]


def test_the_class_docstring_has_langchains_integration_sections() -> None:
    doc = ChatDfeHub.__doc__ or ""
    sections = re.findall(r"^    (\w[^:\n]*):$", doc, re.MULTILINE)
    assert sections[:11] == [
        "Setup",
        "Key init args — completion params",
        "Key init args — client params",
        "Instantiate",
        "Invoke",
        "Stream",
        "Async",
        "Tool calling",
        "Structured output",
        "Token usage",
        "Response metadata",
    ]


def test_the_class_docstrings_examples_run_in_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # One namespace: each section goes on from the model the first one built.
    examples = _docstring_examples()
    assert len(examples) >= 8
    namespace = {"__name__": "__docstring__"}
    with DfeHubEmulator() as emulator:
        monkeypatch.setenv("DFEHUB_BASE_URL", emulator.base_url)
        monkeypatch.delenv("DFEHUB_API_KEY", raising=False)
        for source in examples:
            exec(compile(source, "ChatDfeHub.__doc__", "exec"), namespace)
    out = capsys.readouterr().out
    assert "I love programming." in out
    assert "{'city': 'Paris'}" in out
    assert "gpt-3.5-turbo\nstop\n" in out
