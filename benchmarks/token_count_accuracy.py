"""How close the offline token estimate is to gpt-3.5-turbo's tokenizer.

Counts texts that are installed with the package's own dependencies (the
sources of langchain-core, httpx and requests, and this project's README
and guide pages) with
`ChatDfeHub().get_num_tokens` and with `cl100k_base`, and prints the error of
the whole text and over 400-character windows. `cl100k_base` comes from
`tiktoken` when it can load the encoding (it downloads it once), else from
`bpe-openai`, which ships the tables: `pip install bpe-openai` (or tiktoken)
first; neither is a dependency of the package.

Run it as `python -m benchmarks.token_count_accuracy`.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import langchain_core
import requests

from langchain_dfehub._tokens import estimate_tokens

_WINDOW = 400


def _cl100k() -> Callable[[str], int]:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base")
    except Exception:  # not installed, or no network to fetch the encoding
        try:
            import bpe_openai
        except ImportError:
            sys.exit("Install bpe-openai (or tiktoken with network access) first.")
        encoding = bpe_openai.get_encoding("cl100k_base")
    return lambda text: len(encoding.encode(text))


def _sources(package_file: str | None, pattern: str) -> str:
    assert package_file is not None
    folder = Path(package_file).parent
    return "".join(path.read_text() for path in sorted(folder.glob(pattern)))


def _texts() -> dict[str, str]:
    root = Path(__file__).resolve().parent.parent
    guide = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return {
        "langchain_core/messages source": _sources(
            langchain_core.__file__, "messages/*.py"
        ),
        "httpx source": _sources(httpx.__file__, "*.py"),
        "requests source": _sources(requests.__file__, "*.py"),
        "README.md and docs/": "".join(
            path.read_text(encoding="utf-8") for path in guide
        ),
    }


def main() -> None:
    """Print one line per text: real and estimated counts, and the errors."""
    count = _cl100k()
    for name, text in _texts().items():
        real, estimate = count(text), estimate_tokens(text)
        errors = []
        for start in range(0, len(text) - _WINDOW, _WINDOW):
            window = text[start : start + _WINDOW]
            if (window_real := count(window)) > 0:
                errors.append(abs(estimate_tokens(window) - window_real) / window_real)
        errors.sort()
        print(
            f"{name:32} cl100k {real:7,} estimate {estimate:7,}"
            f" ({estimate / real - 1:+.1%}); {_WINDOW}-char windows:"
            f" median |error| {statistics.median(errors):.1%},"
            f" 90th percentile {errors[int(len(errors) * 0.9)]:.1%}"
        )


if __name__ == "__main__":
    main()
