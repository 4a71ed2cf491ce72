"""What both transports agree on about one reply, independent of any I/O.

`ReplyStream` sits between the sans-IO SSE decoder and a transport: it turns
decoder events into chunk dicts, raises the typed error an event calls for,
knows whether the answer has started (after which a failure must not be
retried, or the caller would get the text twice), and decides whether the end
of the body is a normal end or a truncated answer. `read_json_reply` does the
same for a non-streaming body. The `requests` and `httpx` transports only move
bytes; every decision about them is made here, once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_dfehub import _json
from langchain_dfehub._connection import DEFAULT_CONNECTION, Connection
from langchain_dfehub._error_kinds import Kind, kind_of
from langchain_dfehub._errors import (
    DfeHubAPIError,
    DfeHubConnectionError,
    DfeHubContextOverflowError,
    DfeHubError,
    DfeHubNotFoundError,
    DfeHubProtocolError,
    DfeHubServerError,
    DfeHubTimeoutError,
    Secret,
    _scrub,
    _status_class,
    detail_error,
    rate_limit_error,
)
from langchain_dfehub._reply_shape import chunk_problem, completion_problem, plain_text
from langchain_dfehub._retry import RetryPolicy
from langchain_dfehub._sse import (
    Chunk,
    Detail,
    Done,
    Malformed,
    Pending,
    ServerError,
    SSEDecoder,
    classify,
    classify_object,
)
from langchain_dfehub._urls import display_url, server_name

# The longest error body we read: enough for any message, bounded for HTML.
ERROR_BODY_LIMIT = 64 * 1024
# The longest non-streamed body we accept. A whole answer of 100k tokens,
# with log-probabilities, is some tens of MiB at most; past 64 MiB the reply
# is broken or hostile, and holding it (several times over, once parsed)
# would risk the process.
MAX_BODY_BYTES = 64 * 1024 * 1024
_LINE_EXCERPT = 120
_TIMER_LEEWAY = 0.001


@dataclass(frozen=True)
class Request:
    """Everything a transport needs to send one chat-completions request."""

    url: str
    # Not in the repr: it may carry the key, and a traceback that shows local
    # variables would print it.
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    stream: bool
    connect_timeout: float | None
    read_timeout: float | None
    secret: Secret = field(repr=False)
    policy: RetryPolicy
    connection: Connection = field(default=DEFAULT_CONNECTION, repr=False)
    # Seconds the whole call may take, counted from `started` (monotonic).
    deadline: float | None = None
    started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def deadline_at(self) -> float | None:
        """The monotonic moment the call must be over by, or None."""
        return None if self.deadline is None else self.started + self.deadline

    def past_deadline(self) -> DfeHubTimeoutError | None:
        """The error to raise if the call has run past its deadline, else None."""
        if self.deadline is None or time.monotonic() - self.started <= self.deadline:
            return None
        return self.deadline_error()

    def deadline_error(self) -> DfeHubTimeoutError:
        """The error of a call that ran out of time, whatever it was waiting for."""
        assert self.deadline is not None
        return DfeHubTimeoutError(
            f"The call to {display_url(self.url)} ran past its deadline of"
            f" {self.deadline:g} s before the server's reply was complete. Raise"
            " deadline= (None for no deadline) if answers this long are"
            " expected; otherwise the server is too slow.",
            phase="deadline",
        )

    def waits(self) -> tuple[float | None, float | None]:
        """The connect and read timeouts of the next send, cut to the time left.

        Raises:
            DfeHubTimeoutError: when no time is left (`phase="deadline"`).
        """
        if self.deadline is None:
            return self.connect_timeout, self.read_timeout
        left = self.started + self.deadline - time.monotonic()
        if left <= 0:
            raise self.deadline_error()
        return _least(self.connect_timeout, left), _least(self.read_timeout, left)

    def out_of_time(self) -> bool:
        """Whether a failure now is the deadline's doing (its timer cut the wait).

        A timer may fire a hair before the clock says so: a millisecond's
        leeway counts it as the deadline's.
        """
        if self.deadline is None:
            return False
        return time.monotonic() - self.started >= self.deadline - _TIMER_LEEWAY


def _least(timeout: float | None, left: float) -> float:
    return left if timeout is None else min(timeout, left)


def enough_of_error_body(size: int, request: Request) -> bool:
    """Whether to stop reading an error body: long enough, or out of time.

    The status already says what failed; a server trickling its error page
    must not hold the call past its deadline for the words.
    """
    return size >= ERROR_BODY_LIMIT or request.past_deadline() is not None


# The limits `http.client` puts on a reply's head, kept on both paths.
MAX_HEADERS = 100
MAX_HEADER_LINE = 65536
# The limits h11 puts on it under httpx: a head of at most 100 KiB (the bytes
# it keeps while a head is incomplete), a Content-Length of at most 20 digits.
MAX_HEAD = 100 * 1024
MAX_LENGTH_DIGITS = 20


def head_problem(
    version: str, reason: str, headers: Iterable[tuple[str, str]]
) -> str | None:
    """What makes a reply's head unusable, the same way on both paths; or None.

    `http.client` (under `requests`) and `h11` (under `httpx`) each refuse
    some broken heads the other accepts; these are refused on both, so a
    server gets the same answer from either path: an unknown HTTP version, too
    many or too long headers, a head over 100 KiB, a `Content-Length` that is
    not one number (of at most 20 digits), a transfer coding other than
    `chunked`.
    """
    if not (version.startswith("HTTP/1.") or version == "HTTP/2"):
        return "an unknown HTTP version"
    if len(reason) > MAX_HEADER_LINE:
        return "a status line longer than 64 KiB"
    count = 0
    size = len(version) + len(reason) + 7  # the status line, its CRLF
    lengths: set[str] = set()
    codings = 0
    for name, value in headers:
        count += 1
        line = len(name) + len(value) + 2
        if line > MAX_HEADER_LINE:
            return "a header line longer than 64 KiB"
        size += line + 2
        lowered = name.lower()
        if lowered == "content-length":
            lengths.update(part.strip() for part in value.split(","))
        elif lowered == "transfer-encoding":
            # Exactly one coding, chunked, once (in one header or over two).
            if value.strip().lower() != "chunked" or codings:
                return "a transfer coding other than chunked, once"
            codings += 1
    if count > MAX_HEADERS:
        return f"more than {MAX_HEADERS} headers"
    if size > MAX_HEAD:
        return "a head longer than 100 KiB"
    if lengths:
        length = next(iter(lengths))
        if len(lengths) > 1 or not (length.isascii() and length.isdigit()):
            return "a Content-Length that is not one number"
        if len(length) > MAX_LENGTH_DIGITS:
            return f"a Content-Length of more than {MAX_LENGTH_DIGITS} digits"
    return None


def interim_reply_error(status: int, url: str) -> DfeHubProtocolError:
    """The error for an interim (1xx) reply that a client library took as final.

    Its body is empty and the real reply follows on the same connection: the
    reply is refused, never read as the answer, and the connection closed.
    """
    return DfeHubProtocolError(
        f"{server_name(url)} sent an interim reply (HTTP {status}) where the"
        " reply was due, and the HTTP client in use took it as the reply; the"
        " connection was closed. Use ChatDfeHub's own HTTP client (no"
        " http_client=), which skips interim replies."
    )


StreamItem = dict[str, Any] | str
"""What a stream hands over per chunk: its dict, or the text of a plain one."""


class ReplyStream:
    """Follows one streamed reply from its first byte to its end.

    An error event does not raise inside `feed`: the chunks that arrived
    before it in the same read must reach the caller first, or they would be
    silently lost. `feed` and `close` return those chunks and keep the error
    in `error`; the transport delivers the chunks, then calls `check`.

    `feed` reads each chunk's JSON as the transport takes it (see
    `SSEDecoder.feed_texts`); the transport takes them all before `check`.
    A chunk is handed over as its dict, or, when it carries only a piece of
    text (`plain_text`), as that text: nearly every chunk of a stream, and
    then nothing is checked or looked up twice.
    """

    __slots__ = (
        "_decoder",
        "_request",
        "answer_started",
        "done",
        "error",
        "finished",
        "received_chars",
        "url",
    )

    def __init__(self, request: Request | None = None) -> None:
        # Names the server in error messages.
        self.url = request.url if request is not None else None
        self._decoder = SSEDecoder()
        # For the deadline, and the key to blank out of errors.
        self._request = request
        self.answer_started = False
        self.finished = False
        self.done = False
        self.error: DfeHubError | None = None
        self.received_chars = 0

    @property
    def settled(self) -> bool:
        """Whether a retry is no longer possible or no longer needed."""
        return self.answer_started or self.done or self.error is not None

    def feed(self, data: bytes) -> Iterator[StreamItem]:
        """Decode received bytes into the chunk dicts they complete, one by one."""
        if self.done or self.error is not None:
            return iter(())  # nothing after `[DONE]` or an error is in the answer
        if self._request is not None and self._request.deadline is not None:
            late = self._request.past_deadline()
            if late is not None:
                self.error = self._fail(late)
                return iter(())
        return self._accept(self._decoder.feed_texts(data))

    def close(self) -> list[StreamItem]:
        """Handle a clean end of the body: a last event, or a truncated answer."""
        if self.done or self.error is not None:
            return []
        chunks = list(self._accept(self._decoder.close()))
        if self.done or self.finished or self.error is not None:
            return chunks
        request = self._request
        if request is not None and request.out_of_time():
            # The deadline's timer cut the connection: that is the "end".
            self.error = self._fail(request.deadline_error())
        else:
            self.error = self._fail(
                DfeHubConnectionError(
                    "The server closed the stream before the answer was finished"
                    " (no finish_reason and no [DONE]); the answer is truncated."
                    " Retry the request; if it keeps happening, the server or a"
                    " proxy is cutting long responses."
                )
            )
        return chunks

    def check(self) -> None:
        """Raise the error the reply ended with, once its chunks are delivered."""
        if self.error is not None:
            raise self.error

    def _accept(self, events: Iterable[Pending]) -> Iterator[StreamItem]:
        # Runs once per streamed chunk: the checks of `choices[0]` are inline.
        read = self._decoder.reader
        for item in events:
            event = classify(item, read) if isinstance(item, str) else item
            if isinstance(event, Chunk):
                data = event.data
                text = plain_text(data)
                if text is not None:
                    if text:
                        self.answer_started = True
                        self.received_chars += len(text)
                    yield text
                    continue
                problem = chunk_problem(data)
                if problem is not None:
                    self.error = self._fail(_shape_error(problem, self._secret))
                    return
                choices = data.get("choices")
                if not choices:
                    yield data  # the usage chunk
                    continue
                choice = choices[0]
                # `or message`: a server that ignored `"stream": true` sends
                # one whole `chat.completion`; its text must not be lost.
                delta = choice.get("delta") or choice.get("message")
                if delta:
                    content = delta.get("content")
                    if content:
                        self.answer_started = True
                        self.received_chars += len(content)
                    elif _carries_something(delta):
                        # Reasoning, tool calls, a refusal...: the caller gets
                        # it now, so from here on a retry would repeat it.
                        self.answer_started = True
                        self.received_chars += _text_length(delta)
                if choice.get("finish_reason") is not None:
                    self.finished = True
                yield data
            elif isinstance(event, Done):
                self.done = True
                return
            else:
                self.error = self._fail(_error_for_event(event, self.url, self._secret))
                return

    @property
    def _secret(self) -> Secret:
        return self._request.secret if self._request is not None else None

    def fail(self, error: DfeHubError) -> DfeHubError:
        """Record how much of the answer the caller had when `error` struck."""
        return self._fail(error)

    def _fail(self, error: DfeHubError) -> DfeHubError:
        error.received_chars = self.received_chars
        if self.answer_started:
            # Retrying now would send the caller the answer a second time.
            error.retryable = False
        return error


def _carries_something(delta: Mapping[str, Any]) -> bool:
    """Whether a delta holds anything for the caller besides its role."""
    return any(value for key, value in delta.items() if key != "role")


def _text_length(delta: Mapping[str, Any]) -> int:
    """The characters of text (reasoning, refusal) a delta delivers."""
    return sum(
        len(value)
        for key, value in delta.items()
        if key != "role" and isinstance(value, str)
    )


def _error_for_event(
    event: Detail | ServerError | Malformed,
    url: str | None = None,
    secret: Secret = None,
) -> DfeHubError:
    """The typed error an event calls for, with any echoed key blanked out.

    The key is blanked from the server's text before it is cut to an
    excerpt, so a cut cannot leave part of it behind.
    """
    if isinstance(event, Detail):
        return detail_error(_scrub(event.detail, secret), status_code=None, url=url)
    if isinstance(event, ServerError):
        return _in_band_error(event, url, secret)
    line = _scrub(event.line[: _LINE_EXCERPT * 4], secret)
    if len(line) > _LINE_EXCERPT:
        line = line[:_LINE_EXCERPT] + "…"
    return DfeHubProtocolError(
        f"The server sent a line that is not part of the chat-completions stream"
        f" format ({event.reason}): {line!r}. Check that base_url points to an"
        " OpenAI-compatible /chat/completions endpoint."
    )


# The codes an in-band error object names a throttle with: the status, as
# vLLM and llama.cpp write it, or OpenAI's `rate_limit_exceeded`.
_THROTTLE_CODES = frozenset({429, "429", "rate_limit_exceeded"})


def _in_band_error(event: ServerError, url: str | None, secret: Secret) -> DfeHubError:
    error = event.data.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) else None
    said = _scrub(event.message, secret)
    if isinstance(code, (int, str)) and code in _THROTTLE_CODES:
        # A throttle in disguise: waited out at the gate like a 429 status.
        status = 429 if code in (429, "429") else None
        return rate_limit_error(said or "(no message)", status_code=status, url=url)
    message = (
        f"{server_name(url)} reported an error inside the reply: {said!r}."
        " The request was not completed; check the server's logs or retry later."
    )
    cls: type[DfeHubAPIError] = DfeHubAPIError
    kind = kind_of(status, event.data, event.message)
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        # A client error code is the HTTP status the failure stands for: the
        # same class (and LangChain type) as that status would have raised.
        cls = _status_class(status, kind)
    elif kind is Kind.CONTEXT_OVERFLOW:
        cls = DfeHubContextOverflowError
    elif kind is Kind.MODEL_NOT_FOUND:
        cls = DfeHubNotFoundError
    elif status is not None and status >= 500:
        cls = DfeHubServerError
    return cls(message, status_code=status, server_message=said)


def _shape_error(problem: str, secret: Secret) -> DfeHubProtocolError:
    return DfeHubProtocolError(
        f"The server's reply does not follow the chat-completions format:"
        f" {_scrub(problem, secret)}. Check that base_url points to an"
        " OpenAI-compatible /chat/completions endpoint."
    )


class JsonReply:
    """Collects a non-streamed body, within the size and time limits."""

    __slots__ = ("_parts", "_request", "_size")

    def __init__(self, request: Request) -> None:
        self._request = request
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> None:
        """Keep received bytes; raise once the body or the call is too long."""
        self._size += len(data)
        if self._size > MAX_BODY_BYTES:
            self._parts = []
            msg = (
                f"The server's reply is larger than {MAX_BODY_BYTES // 2**20} MiB,"
                " the most ChatDfeHub accepts for one answer; it was abandoned."
                " Check that base_url points to a chat-completions API, or ask"
                " for a shorter answer (max_tokens)."
            )
            raise DfeHubProtocolError(msg)
        late = self._request.past_deadline()
        if late is not None:
            raise late
        self._parts.append(data)

    def result(self) -> dict[str, Any]:
        """The parsed `chat.completion`; raises the typed error it calls for."""
        request = self._request
        if request.out_of_time():
            # The deadline's timer may have cut a body that ends with the
            # connection: what arrived is not known to be whole.
            raise request.deadline_error()
        return read_json_reply(
            b"".join(self._parts), request.url, secret=request.secret
        )


_NOT_JSON = object()


def read_json_reply(
    body: bytes, url: str | None = None, *, secret: Secret = None
) -> dict[str, Any]:
    """Parse a non-streaming 2xx body into a `chat.completion` dict.

    A `{"detail": ...}` or `{"error": ...}` object with a 2xx status is the
    service's throttle or error in disguise, and raises as such; a reply of
    the wrong shape is a `DfeHubProtocolError` naming the field at fault.
    `url` names the server in messages; `secret` is blanked out of them.
    """
    text = body.decode("utf-8-sig", errors="replace")  # a BOM is not an error
    try:
        data = _json.reader_for(body)(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        data = _NOT_JSON
    if data is _NOT_JSON:
        # Raised out here, so that it does not hold the decoder's error (as
        # its `__context__`), whose `doc` is the whole body, key and all.
        raise _not_json(text, secret)
    event = classify_object(data, text)
    if type(event) is Chunk:
        problem = completion_problem(event.data)
        if problem is None:
            return event.data
        raise _shape_error(problem, secret)
    assert not isinstance(event, (Chunk, Done))
    raise _error_for_event(event, url, secret)


def _not_json(text: str, secret: Secret) -> DfeHubProtocolError:
    excerpt = _scrub(text.strip()[: _LINE_EXCERPT * 4], secret)[:_LINE_EXCERPT]
    return DfeHubProtocolError(
        f"The server's reply is not JSON: {excerpt!r}. Check that base_url points"
        " to an OpenAI-compatible chat-completions API."
    )
