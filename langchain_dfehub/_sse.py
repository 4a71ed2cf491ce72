"""A sans-IO decoder for the chat-completions event stream.

It turns the bytes a transport receives, in whatever pieces they arrive, into
events. It does no I/O, so the `requests` transport and the `httpx` one use it
unchanged (the h11/httpx split): a decoding bug fixed here is fixed for both.

Every decision is made on parsed JSON, never on a substring of the raw bytes,
so an answer whose text says "detail" or "content" comes through intact.

Besides standard server-sent events (`data: {...}` lines, events ended by a
blank line, `:` comments, `data: [DONE]`), it accepts a bare JSON object on a
line of its own, which is how the DfeHub service sent its `detail` throttle
text inside a stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_DONE_PAYLOAD = "[DONE]"
# Fields of the SSE format we recognise but have no use for.
_IGNORED_FIELDS = frozenset({"event", "id", "retry"})


@dataclass(slots=True)
class Chunk:
    """A `chat.completion.chunk` object.

    Not frozen, unlike the other events: one is made per streamed chunk, and a
    frozen dataclass's `__init__` costs several times as much.
    """

    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Done:
    """The `data: [DONE]` sentinel: the server says the stream is complete."""


@dataclass(frozen=True, slots=True)
class Detail:
    """A `{"detail": "..."}` object: the service's throttle, or another error.

    The reply state decides which, from the words (`_throttle`).
    """

    detail: str


@dataclass(frozen=True, slots=True)
class ServerError:
    """An `{"error": {...}}` object sent in place of a chunk."""

    message: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line that is not part of the format: the stream cannot be trusted."""

    line: str
    reason: str


Event = Chunk | Done | Detail | ServerError | Malformed
DONE = Done()
# `json.loads` minus its per-call checks for bytes and a byte-order mark: the
# payloads here are always `str` taken from inside a line.
_parse_json = json.JSONDecoder().decode


def classify(payload: str) -> Event:
    """Turn one event's data text into an event, deciding on parsed JSON."""
    if payload == _DONE_PAYLOAD:
        return DONE
    try:
        data = _parse_json(payload)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return Malformed(payload, "it is not valid JSON")
    return classify_object(data, payload)


def classify_object(data: Any, source: str) -> Event:
    """Classify an already parsed JSON value (also used for non-stream bodies)."""
    if not isinstance(data, dict):
        return Malformed(source, "it is not a JSON object")
    if "choices" in data:
        return Chunk(data)
    detail = data.get("detail")
    if isinstance(detail, str):
        return Detail(detail)
    error = data.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        return ServerError(str(message or error), data)
    return Malformed(source, "it is a JSON object with no 'choices'")


class SSEDecoder:
    """Feed it received bytes; it returns the events they complete.

    Lines may end in LF, CRLF or CR and may be split anywhere across reads,
    including inside a multi-byte character or between CR and LF.
    """

    __slots__ = ("_data", "_partial", "_pending_cr")

    def __init__(self) -> None:
        # The bytes of a line not yet ended, kept as pieces and joined only
        # once a line end arrives, so one long line fed in many small reads
        # costs linear, not quadratic, time.
        self._partial: list[bytes] = []
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, received: bytes) -> list[Event]:
        """Decode `received`; return the events completed by it, in order."""
        if not received:
            return []
        if self._pending_cr:
            self._pending_cr = False
            if received[:1] == b"\n":
                # The LF of a CRLF whose CR ended the previous read.
                received = received[1:]
        partial = self._partial
        if partial:
            if b"\n" not in received and b"\r" not in received:
                partial.append(received)
                return []
            partial.append(received)
            buffer = b"".join(partial)
            partial.clear()
        else:
            buffer = received
        if b"\r" in buffer:
            lines = buffer.splitlines(keepends=True)
            if lines[-1].endswith((b"\n", b"\r")):
                self._pending_cr = lines[-1].endswith(b"\r")
            else:
                partial.append(lines.pop())
            texts = [line.rstrip(b"\r\n") for line in lines]
        else:
            texts = buffer.split(b"\n")
            tail = texts.pop()
            if tail:
                partial.append(tail)
        events: list[Event] = []
        data = self._data
        for text in texts:
            # The two lines of nearly every event, handled inline: this loop
            # runs twice per streamed chunk.
            if text[:6] == b"data: ":
                data.append(text[6:].decode("utf-8", errors="replace"))
            elif not text:
                if data:
                    self._dispatch(events)
                    data = self._data
            else:
                self._line(text, events)
                data = self._data
        return events

    def close(self) -> list[Event]:
        """Flush what a clean end of the stream leaves: a last unended event."""
        events: list[Event] = []
        if self._partial:
            self._line(b"".join(self._partial), events)
            self._partial = []
        self._pending_cr = False
        self._dispatch(events)
        return events

    def _line(self, raw: bytes, events: list[Event]) -> None:
        if not raw:
            self._dispatch(events)
            return
        line = raw.decode("utf-8", errors="replace")
        if line.startswith("data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(" ") else value)
            return
        if line.startswith(":"):
            return  # an SSE comment, used as a keep-alive
        if line.startswith("{"):
            # A bare JSON line, as the service sent its throttle text.
            self._dispatch(events)
            events.append(classify(line))
            return
        field = line.split(":", 1)[0]
        if field in _IGNORED_FIELDS:
            return
        events.append(Malformed(line, "it is neither an SSE field nor JSON"))

    def _dispatch(self, events: list[Event]) -> None:
        data = self._data
        if not data:
            return
        self._data = []
        if len(data) == 1:
            # An empty `data:` line makes no event, as the SSE format says.
            if data[0]:
                events.append(classify(data[0]))
            return
        joined = classify("\n".join(data))
        if not isinstance(joined, Malformed):
            events.append(joined)
            return
        # Some servers send one `data:` line per event with no blank line
        # between them; read such lines one by one.
        events.extend(classify(item) for item in data if item)
