"""Reading a reply's JSON: with orjson where it is installed, else the standard library.

Decoding is the largest part of what a streamed chunk costs us, and orjson
reads a chunk in about half the time `json` takes. It is not a dependency:
langchain-core brings it (through langsmith), so it is nearly always there,
already imported; without it, `json` reads everything.

Whichever reads a text, the result is what `json.loads` returns, or the
failure is a `ValueError` (a `RecursionError` for absurd nesting), so that
callers word one error either way. orjson is stricter than `json` and reads
one thing differently, and both are handled:

- What orjson refuses and `json` reads (`NaN` and `Infinity`, a number past
  a double's range, an escaped lone surrogate) is read again by `json`: the
  same value, or the same refusal.
- An integer past 64 bits orjson reads as a float, silently. It takes 19
  digits in a row to write one, so a text with such a run is read by `json`
  (`reader_for` looks for the run in raw bytes, once per received read).

The one difference left is the depth of nesting each refuses: orjson past
1,024 levels, `json` past what the interpreter's recursion limit leaves
(about 1,000 levels less the caller's own depth), so a value nested some
950 to 1,024 deep may be read by one and refused by the other. No server
sends such a chunk; both refuse anything deeper.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Reader = Callable[[str], Any]

# `json.loads` minus its per-call checks for bytes and a byte-order mark: the
# texts here are always `str`, taken from inside a line or a decoded body.
read_with_json: Reader = json.JSONDecoder().decode

# Digits as "0", every other byte as " ": a run of 19 zeros in the
# translation is a run of 19 digits in the original.
_DIGIT_RUNS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_RUN = b"0" * 19


def _orjson_reader() -> Reader | None:
    try:
        import orjson
    except ImportError:
        return None
    orjson_loads = orjson.loads
    orjson_error = orjson.JSONDecodeError

    def read_with_orjson(text: str) -> Any:
        try:
            return orjson_loads(text)
        except orjson_error:
            pass
        # Out of the `except`: `json`'s own failure, if any, is raised without
        # orjson's as its context (whose `doc` is the whole text).
        return read_with_json(text)

    return read_with_orjson


# The reader used when a text may not need `json`; tests set it to
# `read_with_json` to run the standard library's path with orjson installed.
fast_reader: Reader = _orjson_reader() or read_with_json


def has_long_number(data: bytes) -> bool:
    """Whether `data` holds 19 digits in a row: a number orjson may not read exactly."""
    return _LONG_RUN in data.translate(_DIGIT_RUNS)


def reader_for(data: bytes) -> Reader:
    """The fastest reader that reads every JSON text within `data` as `json` does."""
    return read_with_json if has_long_number(data) else fast_reader


def loads(text: str) -> Any:
    """`json.loads(text)`, read by the fastest reader that agrees with it."""
    return reader_for(text.encode("utf-8", "surrogatepass"))(text)


def name() -> str:
    """Which library reads replies: `"orjson"` or `"json"`."""
    return "json" if fast_reader is read_with_json else "orjson"
