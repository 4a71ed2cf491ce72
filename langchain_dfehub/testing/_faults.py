"""Fault scripts: the ways a chat request can go wrong, on purpose.

A client's error handling is only as good as the failures it has been shown.
Each class here describes one failure of the DfeHub service or of the network
(a throttle, an HTTP error, a dropped connection, a stall, a malformed line, a
truncated stream), so a test can queue it and watch the client cope. They are
plain frozen dataclasses with no behaviour: the server decides how to play
them, and the control surface builds them from JSON with `fault_from_json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

ThrottleForm = Literal["status", "stream"]
_THROTTLE_FORMS: tuple[ThrottleForm, ...] = ("status", "stream")


def _check_count(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        kind = "None or an int" if optional else "an int"
        msg = f"{name} must be {kind} >= 0, got {value!r}"
        raise ValueError(msg)


def _check_seconds(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value >= 0  # also rejects NaN
    ):
        kind = "None or a number" if optional else "a number"
        msg = f"{name} must be {kind} >= 0, got {value!r}"
        raise ValueError(msg)


@dataclass(frozen=True)
class Throttle:
    """The service's throttle answer: `{"detail": "Request was throttled. ..."}`.

    `as_="status"` sends it as the body of an HTTP 429 (with a `Retry-After`
    header only when `retry_after` is given); `as_="stream"` sends HTTP 200, the
    role chunk and `after_chunks` answer chunks, then the detail as a bare JSON
    line inside the stream, then ends the body cleanly, which is how the real
    service did it. `wait=None` writes a detail text with no number at all.
    """

    wait: float | None = 1.0
    as_: ThrottleForm = "status"
    after_chunks: int = 0
    retry_after: str | None = None

    def __post_init__(self) -> None:
        _check_seconds("wait", self.wait, optional=True)
        if self.as_ not in _THROTTLE_FORMS:
            msg = f"as_ must be 'status' or 'stream', got {self.as_!r}"
            raise ValueError(msg)
        _check_count("after_chunks", self.after_chunks)
        if self.retry_after is not None and (
            not isinstance(self.retry_after, str)
            or "\r" in self.retry_after
            or "\n" in self.retry_after
        ):
            msg = "retry_after must be None or a one-line string"
            raise ValueError(msg)


@dataclass(frozen=True)
class ErrorStatus:
    """Reply with exactly this status, body, content type and extra headers.

    For an HTML 502 page from a proxy, an OpenAI-style 401, a bare 500, ...
    """

    status: int
    body: str = ""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            msg = f"status must be an int, got {self.status!r}"
            raise TypeError(msg)
        if not 200 <= self.status <= 599:
            msg = f"status must be between 200 and 599, got {self.status}"
            raise ValueError(msg)
        texts = [self.body, self.content_type, *self.headers, *self.headers.values()]
        if not all(isinstance(text, str) for text in texts):
            msg = "body, content_type and headers must be strings"
            raise TypeError(msg)
        if any("\r" in text or "\n" in text for text in texts[1:]):
            msg = "content_type and headers must not contain CR or LF"
            raise ValueError(msg)


@dataclass(frozen=True)
class Drop:
    """Lose the connection.

    `after_chunks=None` closes it without sending any response. A number sends
    the headers, the role chunk and that many answer chunks, then aborts the
    connection without the chunked-encoding terminator: the client sees an
    incomplete body, not a clean end.
    """

    after_chunks: int | None = None

    def __post_init__(self) -> None:
        _check_count("after_chunks", self.after_chunks, optional=True)


@dataclass(frozen=True)
class Stall:
    """Go silent for `seconds`, then carry on as if nothing happened.

    The pause comes after `after_chunks` answer chunks, or before the response
    headers when `after_chunks` is None. A client whose read timeout is shorter
    will have given up by then.
    """

    seconds: float
    after_chunks: int | None = 0

    def __post_init__(self) -> None:
        _check_seconds("seconds", self.seconds)
        _check_count("after_chunks", self.after_chunks, optional=True)


@dataclass(frozen=True)
class Malformed:
    """Put a raw line (and a blank line) into the stream, then carry on."""

    line: str = "data: {this is not json"
    after_chunks: int = 0

    def __post_init__(self) -> None:
        line: object = self.line  # may come from JSON
        if not isinstance(line, str):
            msg = f"line must be a string, got {line!r}"
            raise TypeError(msg)
        if "\n" in line or "\r" in line:
            msg = "line must be a single line (no CR or LF)"
            raise ValueError(msg)
        _check_count("after_chunks", self.after_chunks)


@dataclass(frozen=True)
class Truncate:
    """End the body cleanly after `after_chunks` answer chunks, with no `[DONE]`.

    With `finish=True` the finish_reason chunk (and the usage chunk, when asked
    for) comes first: a complete answer whose server forgot `[DONE]`. With
    `finish=False` the answer simply stops: a truncated answer.
    """

    after_chunks: int
    finish: bool = False

    def __post_init__(self) -> None:
        _check_count("after_chunks", self.after_chunks)


Fault: TypeAlias = Throttle | ErrorStatus | Drop | Stall | Malformed | Truncate

_KINDS: dict[str, type[Fault]] = {
    "throttle": Throttle,
    "error_status": ErrorStatus,
    "drop": Drop,
    "stall": Stall,
    "malformed": Malformed,
    "truncate": Truncate,
}
# JSON names that differ from the dataclass field names.
_JSON_ALIASES = {"as": "as_"}


def throttle_detail(wait: float | None) -> str:
    """Return the service's throttle text; the wait is written as given.

    The words are Django REST Framework's, singular for exactly 1 ("in 1
    second."), as DRF writes its whole seconds.
    """
    if wait is None:
        return "Request was throttled."
    unit = "second" if wait == 1 and isinstance(wait, int) else "seconds"
    return f"Request was throttled. Expected available in {wait} {unit}."


def throttle_body(wait: float | None) -> str:
    """Return the `{"detail": ...}` JSON the service sent when it throttled."""
    return json.dumps({"detail": throttle_detail(wait)})


def fault_from_json(item: Any) -> Fault:
    """Build a fault from its JSON form, e.g. `{"kind": "drop", "after_chunks": 2}`.

    Raises ValueError with a message fit for the HTTP client that sent it.
    """
    if not isinstance(item, dict):
        msg = "each fault must be a JSON object with a 'kind'"
        raise ValueError(msg)
    fields = dict(item)
    kind = fields.pop("kind", None)
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        msg = f"unknown fault kind {kind!r}; expected one of {sorted(_KINDS)}"
        raise ValueError(msg)
    arguments = {_JSON_ALIASES.get(name, name): value for name, value in fields.items()}
    try:
        return cls(**arguments)
    except (TypeError, AttributeError) as exc:
        msg = f"bad fields for fault kind {kind!r}: {exc}"
        raise ValueError(msg) from exc
