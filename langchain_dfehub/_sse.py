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

from dataclasses import dataclass
from typing import Any

from langchain_dfehub import _json

_DONE_PAYLOAD = "[DONE]"
_BOM = b"\xef\xbb\xbf"
# The most one line, or one event's data, may hold. A chunk carries a few
# tokens, and even a whole answer sent as one line by a server that ignored
# `"stream": true` is a few MiB at most; 16 MiB leaves room for huge tool-call
# arguments while bounding what a broken or hostile server can make us hold.
MAX_LINE_BYTES = 16 * 1024 * 1024
_EXCERPT_BYTES = 120
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
# What `SSEDecoder.feed_texts` returns: an event, or the text of one, which
# becomes an event when `classify` reads it.
Pending = str | Event


def classify(payload: str, read: _json.Reader = _json.loads) -> Event:
    """Turn one event's data text into an event, deciding on parsed JSON.

    `read` is the JSON reader the decoder chose for the bytes the payload
    came in (see `_json.reader_for`).
    """
    if payload == _DONE_PAYLOAD:
        return DONE
    try:
        data = read(payload)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return Malformed(payload, "it is not valid JSON")
    if type(data) is dict and "choices" in data:
        return Chunk(data)  # `classify_object`'s first case, without the call
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

    __slots__ = (
        "_at_start",
        "_data",
        "_failed",
        "_max_line",
        "_partial",
        "_partial_size",
        "_pending_cr",
        "_read",
    )

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        # The bytes of a line not yet ended, kept as pieces and joined only
        # once a line end arrives, so one long line fed in many small reads
        # costs linear, not quadratic, time.
        self._partial: list[bytes] = []
        self._partial_size = 0
        self._data: list[str] = []
        self._pending_cr = False
        self._max_line = max_line
        # The stream may open with a UTF-8 byte-order mark, which SSE ignores;
        # until the first bytes are seen, it may be part of what is buffered.
        self._at_start = True
        self._failed = False
        # orjson when installed, until the stream shows a number it may not
        # read as `json` does; `json` from then on (see `_json`).
        self._read = _json.fast_reader

    @property
    def reader(self) -> _json.Reader:
        """The JSON reader for the texts `feed_texts` returned so far."""
        return self._read

    def feed(self, received: bytes) -> list[Event]:
        """Decode `received`; return the events completed by it, in order.

        A line or event longer than the limit ends the stream with one
        `Malformed` event; nothing after it is decoded.
        """
        pending = self.feed_texts(received)
        read = self._read
        return [classify(i, read) if isinstance(i, str) else i for i in pending]

    def feed_texts(self, received: bytes) -> list[Pending]:
        """`feed`, but leaving each event's JSON text for the caller to read.

        The caller turns a text into its event with `classify(text,
        self.reader)` when it takes it. One read holds hundreds of chunks:
        read all at once, they would all be alive together, and the garbage
        collector, counting them, would run more often (and promote them
        towards its costly full collections); read one at a time, each is
        gone before the next is made.
        """
        if not received or self._failed:
            return []
        if self._at_start:
            received = self._skip_bom(received)
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
                self._partial_size += len(received)
                if self._partial_size > self._max_line:
                    return self._too_long(partial[0])
                return []
            partial.append(received)
            buffer = b"".join(partial)
            partial.clear()
            self._partial_size = 0
        else:
            buffer = received
        if self._read is not _json.read_with_json and _json.has_long_number(buffer):
            self._read = _json.read_with_json
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
        self._partial_size = len(partial[0]) if partial else 0
        if len(buffer) > self._max_line:
            too_long = [
                text for text in (*texts, *partial) if len(text) > self._max_line
            ]
            if too_long:
                return self._too_long(too_long[0])
        events: list[Pending] = []
        data = self._data
        for text in texts:
            # The two lines of nearly every event, handled inline: this loop
            # runs twice per streamed chunk.
            if text[:6] == b"data: ":
                data.append(text[6:].decode("utf-8", errors="replace"))
            elif not text:
                if len(data) == 1:  # `_dispatch`'s usual case, without the call
                    payload = data.pop()
                    if payload:  # an empty `data:` line makes no event
                        events.append(payload)
                elif data:
                    self._dispatch(events)
                    data = self._data
            else:
                self._line(text, events)
                data = self._data
        if len(data) > 1 and sum(map(len, data)) > self._max_line:
            # Many `data:` lines of one event, never ended by a blank line.
            return events + self._too_long(data[0].encode())
        return events

    def _skip_bom(self, received: bytes) -> bytes:
        head = b"".join(self._partial) + received if self._partial else received
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._partial = [head]  # perhaps a mark split across reads
            return b""
        self._partial = []
        self._at_start = False
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _too_long(self, start: bytes) -> list[Pending]:
        self._failed = True
        self._partial = []
        self._data = []
        excerpt = start[:_EXCERPT_BYTES].decode("utf-8", errors="replace")
        limit = self._max_line / (1024 * 1024)
        return [
            Malformed(
                excerpt,
                f"it is longer than {limit:g} MiB, the most one line or event may hold",
            )
        ]

    def close(self) -> list[Event]:
        """Flush what a clean end of the stream leaves: a last unended event."""
        events: list[Pending] = []
        if self._failed or self._at_start:
            self._partial = []  # nothing, or a lone byte-order mark
        if self._partial:
            last = b"".join(self._partial)
            if _json.has_long_number(last):
                self._read = _json.read_with_json
            self._line(last, events)
            self._partial = []
        self._pending_cr = False
        self._dispatch(events)
        read = self._read
        return [classify(i, read) if isinstance(i, str) else i for i in events]

    def _line(self, raw: bytes, events: list[Pending]) -> None:
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
            events.append(line)
            return
        field = line.split(":", 1)[0]
        if field in _IGNORED_FIELDS:
            return
        events.append(Malformed(line, "it is neither an SSE field nor JSON"))

    def _dispatch(self, events: list[Pending]) -> None:
        data = self._data
        if not data:
            return
        self._data = []
        if len(data) == 1:
            # An empty `data:` line makes no event, as the SSE format says.
            if data[0]:
                events.append(data[0])
            return
        read = self._read
        joined = classify("\n".join(data), read)
        if not isinstance(joined, Malformed):
            events.append(joined)
            return
        # Some servers send one `data:` line per event with no blank line
        # between them; read such lines one by one.
        events.extend(classify(item, read) for item in data if item)
