"""Each library's network failures map to the same typed errors.

Connect timeouts cannot be provoked on loopback (a local connect either
succeeds or is refused at once), so the mapping is specified here on the
libraries' own exception objects. What a hostile server or a broken proxy can
send (a head that breaks HTTP, framing that lies, JSON past the decoder's
limits) is sent here by a raw local server, to both paths: each must raise
the same typed error, retried only when the connection ended early.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import urllib3.exceptions
from hostile_server import LAST_CHUNK, answer_to, chunked, framed
from model_calls import call

from langchain_dfehub import (
    ChatDfeHub,
    DfeHubConnectionError,
    DfeHubProtocolError,
    DfeHubTimeoutError,
)
from langchain_dfehub._async_transport import _network_error as httpx_error
from langchain_dfehub._retry import RetryPolicy
from langchain_dfehub._stream_state import Request
from langchain_dfehub._transport import _network_error as requests_error

REQUEST = Request(
    url="http://user:pw@127.0.0.1:9/api/openai/v1/chat/completions?key=k",
    headers={},
    body=b"{}",
    stream=True,
    connect_timeout=3.0,
    read_timeout=7.0,
    secret="sk-hidden",
    policy=RetryPolicy(max_retries=2, max_retry_wait=60),
)
_POOL = urllib3.HTTPConnectionPool("127.0.0.1", 9)
MODES = ["sync", "async"]


def mapped_error(exc: Exception) -> Exception:
    if isinstance(exc, requests.RequestException):
        return requests_error(exc, REQUEST)
    assert isinstance(exc, httpx.HTTPError)
    return httpx_error(exc, REQUEST)


@pytest.mark.parametrize(
    "exc",
    [
        requests.ConnectTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.PoolTimeout("busy"),
    ],
)
def test_a_connect_timeout_is_retried(exc: Exception) -> None:
    mapped = mapped_error(exc)
    assert isinstance(mapped, DfeHubTimeoutError)
    assert mapped.phase == "connect"
    assert mapped.retryable
    assert "3.0 s" in str(mapped)


@pytest.mark.parametrize(
    "exc",
    [
        requests.ReadTimeout("slow"),
        # While a body streams, requests wraps urllib3's timeout in a
        # plain ConnectionError.
        requests.ConnectionError(urllib3.exceptions.ReadTimeoutError(_POOL, "/", "t")),
        httpx.ReadTimeout("slow"),
        httpx.WriteTimeout("slow"),
    ],
)
def test_a_read_timeout_is_not_retried(exc: Exception) -> None:
    mapped = mapped_error(exc)
    assert isinstance(mapped, DfeHubTimeoutError)
    assert mapped.phase == "read"
    assert not mapped.retryable
    assert "7.0 s" in str(mapped)


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (requests.exceptions.ChunkedEncodingError("cut"), "was cut"),
        (
            httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            ),
            "was cut",
        ),
        (
            httpx.RemoteProtocolError(
                "Server disconnected without sending a response."
            ),
            "was cut",
        ),
        (
            requests.ConnectionError(ConnectionRefusedError(111, "refused")),
            "Could not reach",
        ),
        (httpx.ConnectError("refused"), "Could not reach"),
    ],
)
def test_connection_failures_are_retryable_connection_errors(
    exc: Exception, words: str
) -> None:
    mapped = mapped_error(exc)
    assert isinstance(mapped, DfeHubConnectionError)
    assert mapped.retryable
    assert words in str(mapped)


@pytest.mark.parametrize(
    "exc", [requests.exceptions.InvalidURL("bad"), httpx.UnsupportedProtocol("bad")]
)
def test_an_invalid_url_is_not_retried(exc: Exception) -> None:
    mapped = mapped_error(exc)
    assert isinstance(mapped, DfeHubConnectionError)
    assert not mapped.retryable
    assert "base_url" in str(mapped)


def test_messages_name_the_endpoint_without_its_credentials() -> None:
    mapped = requests_error(requests.ConnectTimeout("slow"), REQUEST)
    text = str(mapped)
    assert "http://127.0.0.1:9/api/openai/v1/chat/completions" in text
    assert "pw" not in text
    assert "key=k" not in text


# --- what a hostile server or a broken proxy sends -------------------------------

KEY = "sk-hostile-0123456789abcdef"


def head(kind: bytes, *lines: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: "
        + kind
        + b"\r\n"
        + b"".join(line + b"\r\n" for line in lines)
    )


def status_line(line: bytes) -> Callable[..., None]:
    """A good answer after the status line `line`."""

    def build(kind: bytes, body: bytes) -> bytes:
        fields = b"Content-Type: %s\r\nContent-Length: %d\r\n\r\n" % (kind, len(body))
        return line + b"\r\n" + fields + body

    return replying(build)


def chunked_reply(*lines: bytes) -> Callable[..., None]:
    """A good answer as one chunk, after the header lines `lines`."""
    return replying(lambda k, b: head(k, *lines, b"") + chunked(b) + LAST_CHUNK)


def replying(build: Callable[[bytes, bytes], bytes]) -> Callable[..., None]:
    """A reply built from the request's content type and a good answer body."""

    def reply(conn: socket.socket, request: bytes) -> None:
        kind, body = answer_to(request)
        conn.sendall(build(kind.encode(), body))

    return reply


def reset_mid_headers(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Ty")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # a reset, not a clean close


def closed_without_reply(conn: socket.socket, request: bytes) -> None:
    pass


BROKEN = pytest.param  # a reply that breaks HTTP: refused, never retried
HOSTILE = [
    BROKEN(
        replying(lambda k, b: head(k, *(b"X-%d: v" % i for i in range(150)), b"") + b),
        id="more-than-100-headers",
    ),
    BROKEN(
        replying(lambda k, b: head(k, *(b"X-%d: v" % i for i in range(100)), b"") + b),
        id="101-headers",
    ),
    BROKEN(
        replying(lambda k, b: head(k, b"X-Long: " + b"a" * 70000, b"") + b),
        id="header-line-over-64KiB",
    ),
    BROKEN(replying(lambda k, b: b"HTTZ/1.1 OK fine\r\n\r\n" + b), id="garbage-status"),
    BROKEN(replying(lambda k, b: b"HTTP/1.1 1000 Big\r\n\r\n"), id="status-1000"),
    BROKEN(replying(lambda k, b: b"HTTP/2.0 200 OK\r\n\r\n" + b), id="http-2.0-line"),
    BROKEN(
        replying(lambda k, b: b"HTTP/1.1 200 " + b"O" * 70000 + b"\r\n\r\n"),
        id="status-line-over-64KiB",
    ),
    BROKEN(
        replying(lambda k, b: head(k, b"this is no header " + KEY.encode(), b"") + b),
        id="header-line-without-colon",
    ),
    BROKEN(
        replying(
            lambda k, b: head(k, b"Transfer-Encoding: chunked", b"") + b"zz\r\nhi\r\n"
        ),
        id="invalid-chunk-size",
    ),
    # Header lines h11 refuses; `http.client`'s email parser took the first.
    BROKEN(
        replying(lambda k, b: head(k, b"X-A: a\x00" + KEY.encode(), b"") + b),
        id="nul-in-a-value",
    ),
    BROKEN(replying(lambda k, b: head(k, b"X-A: a\rb", b"") + b), id="cr-in-a-value"),
    BROKEN(replying(lambda k, b: head(k, b"X A: 1", b"") + b), id="space-in-a-name"),
    BROKEN(replying(lambda k, b: head(k, b": 1", b"") + b), id="empty-name"),
    BROKEN(
        replying(
            lambda k, b: b"HTTP/1.1 200 OK\r\n X-A: 1\r\n" + head(k, b"")[17:] + b
        ),
        id="continuation-line-first",
    ),
    BROKEN(
        replying(lambda k, b: head(k, b"Content-Length: nope", b"") + b),
        id="content-length-not-a-number",
    ),
    BROKEN(
        replying(
            lambda k, b: head(k, b"Content-Length: 5", b"Content-Length: 7", b"") + b
        ),
        id="content-lengths-that-disagree",
    ),
    BROKEN(
        replying(lambda k, b: head(k, b"Transfer-Encoding: gzip, chunked2", b"") + b),
        id="unknown-transfer-coding",
    ),
    BROKEN(
        replying(
            lambda k, b: (
                head(k, b"Content-Encoding: gzip", b"Connection: close", b"")
                + b"\x1f\x8b\x08\x00not-gzip" * 10
            )
        ),
        id="corrupt-gzip",
    ),
    BROKEN(replying(lambda k, b: b"\r\n\r\n" + b), id="no-status-line"),
    # Status lines h11 refuses; `http.client` took them.
    BROKEN(status_line(b"HTTP/1.1 0200 OK"), id="status-of-four-digits"),
    BROKEN(status_line(b"HTTP/1.1  200 OK"), id="two-spaces-before-status"),
    BROKEN(status_line(b"HTTP/1.1 200 O\x00K"), id="nul-in-reason"),
    BROKEN(status_line(b"HTTP/1.1 200 OK\r"), id="cr-ending-reason"),
    BROKEN(status_line(b"HTTP/1.1 099 Low"), id="status-under-100"),
    # Heads h11 (under httpx) refuses; `http.client` took them.
    BROKEN(
        replying(lambda k, b: head(k, b"Content-Length: " + b"9" * 21, b"") + b),
        id="content-length-of-21-digits",
    ),
    BROKEN(
        replying(
            lambda k, b: (
                head(k, *(b"X-%d: " % i + b"a" * 1500 for i in range(70)), b"") + b
            )
        ),
        id="head-over-100KiB",
    ),
    BROKEN(
        chunked_reply(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
        id="chunked-twice",
    ),
    BROKEN(
        replying(lambda k, b: b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
        id="switching-protocols",
    ),
]


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (reset_mid_headers, "Could not reach"),
        (closed_without_reply, "was cut"),
        (
            replying(
                lambda k, b: head(k, b"Content-Length: %d" % (len(b) + 9), b"") + b
            ),
            "was cut",
        ),
        # No status line, and the connection closed: an HTTP/0.9-style reply.
        (replying(lambda k, b: b'{"id": "c"}'), "was cut"),
        # Closed inside the head: `http.client` took such a head as whole.
        (replying(lambda k, b: b"HTTP/1.1 200 OK\r\nContent-Type: app"), "was cut"),
        (replying(lambda k, b: head(k)), "was cut"),
    ],
    ids=[
        "reset-mid-headers",
        "closed-without-reply",
        "body-shorter",
        "http-0.9",
        "closed-mid-header-line",
        "closed-before-the-blank-line",
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_a_connection_that_ends_before_the_reply_does_is_retried(
    hostile_server: Any, reply: Any, words: str, mode: str
) -> None:
    server = hostile_server(reply)
    model = ChatDfeHub(
        base_url=server.base_url, api_key=KEY, timeout=5, max_retries=1
    ).model_copy(update={"max_retry_wait": 0})

    with pytest.raises(DfeHubConnectionError, match=words) as caught:
        call(model, mode, streaming=False)

    assert caught.value.attempts == 2
    assert len(server.requests) == 2
    assert KEY not in str(caught.value)


# --- chunked framing: judged alike on both paths (`_chunk_framing`) ---------------

DONE_EVENT = b"data: [DONE]\n\n"


def chunked_body(frame: Callable[[bytes], bytes]) -> Callable[..., None]:
    """A chunked reply of a good answer, whose body `frame` writes.

    The streamed answer has no `[DONE]`: the stream reads to the body's end,
    through everything `frame` puts there.
    """

    def reply(conn: socket.socket, request: bytes) -> None:
        kind, body = answer_to(request)
        conn.sendall(
            head(kind.encode(), b"Transfer-Encoding: chunked", b"")
            + frame(body.replace(DONE_EVENT, b""))
        )

    return reply


def sized(size: bytes) -> Callable[[bytes], bytes]:
    """The body as one chunk whose size line is `size` (`%x`: the body's length)."""

    def frame(body: bytes) -> bytes:
        line = size % len(body) if b"%" in size else size
        return line + b"\r\n" + body + b"\r\n" + LAST_CHUNK

    return frame


def trailed(*lines: bytes) -> Callable[[bytes], bytes]:
    """The body as one chunk, then the last chunk with `lines` as its trailer."""
    return lambda body: (
        chunked(body) + b"0\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    )


BROKEN_FRAMING = [
    # A size no server can mean: urllib3 overflowed on it, h11 waited for it.
    BROKEN(chunked_body(sized(b"f" * 32)), id="size-past-any-integer"),
    BROKEN(chunked_body(sized(b"f" * 20)), id="size-of-20-digits"),
    BROKEN(chunked_body(sized(b"f" * 16)), id="size-of-64-bits"),
    BROKEN(chunked_body(sized(b"4000001")), id="size-past-64MiB"),
    BROKEN(chunked_body(sized(b"0" * 17 + b"%x")), id="size-of-17-digits"),
    # Sizes urllib3 read as Python numbers, and h11 refused.
    BROKEN(chunked_body(sized(b"-%x")), id="negative-size"),
    BROKEN(chunked_body(sized(b"+%x")), id="signed-size"),
    BROKEN(chunked_body(sized(b" %x")), id="space-before-size"),
    BROKEN(chunked_body(sized(b"0x%x")), id="0x-size"),
    BROKEN(chunked_body(sized(b"%x_0")), id="underscore-in-size"),
    BROKEN(chunked_body(sized(b"%x\n")), id="size-line-ended-by-lf"),
    BROKEN(
        chunked_body(sized(b"%x;ext=" + KEY.encode() * 3000)),
        id="extension-over-64KiB",
    ),
    # urllib3 skipped the two bytes after a chunk's data, whatever they were.
    BROKEN(
        chunked_body(lambda body: chunked(body)[:-2] + LAST_CHUNK),
        id="no-crlf-after-chunk-data",
    ),
    BROKEN(
        chunked_body(lambda body: chunked(body)[:-2] + b"XX" + LAST_CHUNK),
        id="other-bytes-after-chunk-data",
    ),
    # urllib3 read trailer lines up to 64 KiB each, h11 up to its buffer's.
    BROKEN(
        chunked_body(trailed(b"X-Trailer: " + b"a" * 100 * 1024)),
        id="trailer-line-of-100KiB",
    ),
    BROKEN(
        chunked_body(
            trailed(*[b"X-Trailer-%d: " % i + b"a" * 1000 for i in range(70)])
        ),
        id="trailer-over-64KiB",
    ),
    BROKEN(
        chunked_body(trailed(b"no trailer " + KEY.encode())), id="trailer-not-a-header"
    ),
]


@pytest.mark.parametrize("reply", HOSTILE + BROKEN_FRAMING)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_a_reply_that_breaks_http_is_a_protocol_error_never_retried(
    hostile_server: Any, reply: Any, mode: str, streaming: bool
) -> None:
    server = hostile_server(reply)
    model = ChatDfeHub(base_url=server.base_url, api_key=KEY, timeout=5, max_retries=2)

    with pytest.raises(DfeHubProtocolError) as caught:
        call(model, mode, streaming)

    assert not caught.value.retryable
    assert len(server.requests) == 1
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)
    assert KEY not in repr(caught.value.args)
    if any(reply is framing.values[0] for framing in BROKEN_FRAMING):
        assert "not valid HTTP/1.1" in str(caught.value)


# Each cut before any of the answer is in.
CUT_FRAMING = [
    pytest.param(
        lambda body: b"%x\r\n" % (len(body) + 50) + body[:10], id="ends-mid-chunk"
    ),
    pytest.param(lambda body: chunked(body[:10]), id="ends-after-a-chunk"),
    pytest.param(lambda body: chunked(body[:10]) + b"1", id="ends-mid-size-line"),
    pytest.param(lambda body: chunked(body[:10])[:-1], id="ends-mid-crlf"),
    pytest.param(lambda body: chunked(body) + b"0\r\n", id="ends-before-final-crlf"),
    pytest.param(
        lambda body: chunked(body) + b"0\r\nX-Trailer: 1\r\n", id="ends-mid-trailer"
    ),
]
# Cut after the whole answer's data: a stream has delivered its text, and
# must not be retried (the caller would get it twice).
AFTER_THE_ANSWER = ("ends-before-final-crlf", "ends-mid-trailer")


@pytest.mark.parametrize("frame", CUT_FRAMING)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_a_chunked_body_cut_short_is_retried_until_the_answer_started(
    hostile_server: Any,
    frame: Any,
    mode: str,
    streaming: bool,
    request: pytest.FixtureRequest,
) -> None:
    server = hostile_server(chunked_body(frame))
    model = ChatDfeHub(
        base_url=server.base_url, api_key=KEY, timeout=5, max_retries=1
    ).model_copy(update={"max_retry_wait": 0})

    with pytest.raises(DfeHubConnectionError, match="was cut") as caught:
        call(model, mode, streaming)

    retried = not (streaming and request.node.callspec.id.endswith(AFTER_THE_ANSWER))
    assert caught.value.retryable is retried
    assert len(server.requests) == (2 if retried else 1)
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)


GOOD_FRAMING = [
    pytest.param(sized(b"%x;name=value"), id="short-extension"),
    pytest.param(sized(b'%x;a;b="quoted ; text"'), id="extensions"),
    pytest.param(sized(b"%x;ext=" + b"e" * 60000), id="extension-under-64KiB"),
    pytest.param(sized(b"%X"), id="upper-case-size"),
    pytest.param(sized(b"000%x"), id="leading-zeros"),
    pytest.param(sized(b"%x \t"), id="whitespace-after-size"),
    pytest.param(trailed(b"X-Checksum: abc", b"X-Other:1"), id="trailer"),
    pytest.param(
        lambda body: (
            b"".join(chunked(body[i : i + 7]) for i in range(0, len(body), 7))
            + LAST_CHUNK
        ),
        id="many-small-chunks",
    ),
]


@pytest.mark.parametrize("frame", GOOD_FRAMING)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_chunk_framing_the_rfc_allows_is_read_alike(
    hostile_server: Any, frame: Any, mode: str, streaming: bool
) -> None:
    server = hostile_server(chunked_body(frame))
    model = ChatDfeHub(base_url=server.base_url, api_key=KEY, timeout=5, max_retries=2)

    assert call(model, mode, streaming) == "hi"
    assert len(server.requests) == 1


def sized_reply(*lines: bytes, ending: bytes = b"\r\n") -> Callable[..., None]:
    """A good answer whose head has `lines` after its own, ended by `ending`."""

    def build(kind: bytes, body: bytes) -> bytes:
        whole = head(kind, *lines, b"Content-Length: %d" % len(body), b"")
        return whole.replace(b"\r\n", ending) + body

    return replying(build)


GOOD_HEADS = [
    pytest.param(sized_reply(b"X-A: a", ending=b"\n"), id="lines-ended-by-lf"),
    pytest.param(sized_reply(b"X-A: one", b" \t two"), id="folded-line"),
    pytest.param(sized_reply(b"X-A:", b"X-B:  \t"), id="empty-values"),
    pytest.param(sized_reply(b"X-A: a \t b  \t "), id="blanks-in-and-after"),
    pytest.param(sized_reply(b"X-A: caf\xe9\x7f\x01"), id="obs-text-and-controls"),
    pytest.param(sized_reply(*(b"X-%d: v" % i for i in range(98))), id="100-headers"),
    pytest.param(
        sized_reply(*(b"X-%d: " % i + b"a" * 1000 for i in range(90))), id="90KiB-head"
    ),
    pytest.param(status_line(b"HTTP/1.1 200"), id="no-reason"),
    pytest.param(status_line(b"HTTP/1.1 200 "), id="empty-reason"),
    pytest.param(status_line(b"HTTP/1.0 200 OK"), id="http-1.0"),
    pytest.param(status_line(b"HTTP/1.1 200 caf\xe9 \x01\tok"), id="reason-obs-text"),
    pytest.param(chunked_reply(b"Transfer-Encoding: Chunked"), id="chunked-any-case"),
    pytest.param(
        chunked_reply(b"Transfer-Encoding: chunked", b"Content-Length: 3"),
        id="chunked-over-a-length",
    ),
]


@pytest.mark.parametrize("reply", GOOD_HEADS)
@pytest.mark.parametrize("mode", MODES)
def test_header_lines_h11_takes_are_read_alike(
    hostile_server: Any, reply: Any, mode: str
) -> None:
    server = hostile_server(reply)
    model = ChatDfeHub(base_url=server.base_url, api_key=KEY, timeout=5, max_retries=2)

    assert call(model, mode, streaming=False) == "hi"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"choices": [], "usage": {"prompt_tokens": 1' + b"0" * 5000 + b"}}",
    ],
    ids=["deeply-nested", "huge-integer"],
)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_json_past_the_decoders_limits_is_a_protocol_error(
    hostile_server: Any, body: bytes, mode: str, streaming: bool
) -> None:
    def reply(conn: socket.socket, request: bytes) -> None:
        kind = "text/event-stream" if streaming else "application/json"
        data = b"data: " + body + b"\n\n" if streaming else body
        conn.sendall(framed("200 OK", kind, data))

    server = hostile_server(reply)
    model = ChatDfeHub(base_url=server.base_url, timeout=5, max_retries=2)

    with pytest.raises(DfeHubProtocolError):
        call(model, mode, streaming)
    assert len(server.requests) == 1


def cut_stream(frame: Callable[[bytes], bytes]) -> Callable[..., None]:
    """A chunked event stream, `[DONE]` included, whose body `frame` writes."""

    def reply(conn: socket.socket, request: bytes) -> None:
        kind, body = answer_to(request)
        conn.sendall(
            head(kind.encode(), b"Transfer-Encoding: chunked", b"") + frame(body)
        )

    return reply


def _text_events(body: bytes) -> bytes:
    """The first event of `body`: the one that carries the text."""
    return b"".join(event + b"\n\n" for event in body.split(b"\n\n")[:1])


@pytest.mark.parametrize(
    "frame",
    [
        # The chunk says more than comes: what came holds the whole answer.
        pytest.param(lambda body: b"%x\r\n" % (len(body) + 50) + body, id="mid-chunk"),
        # The chunk is whole, but its closing CRLF never comes.
        pytest.param(lambda body: chunked(body)[:-1], id="mid-crlf"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_a_stream_cut_after_its_done_arrived_is_answered_on_both_paths(
    hostile_server: Any, frame: Any, mode: str
) -> None:
    """What arrived before a cut is read on both paths, as h11 hands it over."""
    server = hostile_server(cut_stream(frame))
    model = ChatDfeHub(base_url=server.base_url, api_key=KEY, timeout=5, max_retries=1)

    assert call(model, mode, streaming=True) == "hi"
    assert len(server.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_cut_after_its_text_arrived_delivers_it_and_is_not_retried(
    hostile_server: Any, mode: str
) -> None:
    server = hostile_server(
        cut_stream(lambda body: b"%x\r\n" % len(body) + _text_events(body))
    )
    model = ChatDfeHub(base_url=server.base_url, api_key=KEY, timeout=5, max_retries=1)
    seen: list[str] = []

    async def astream() -> None:
        async for chunk in model.astream("hi"):
            seen.append(str(chunk.content))

    def read_all() -> None:
        if mode == "sync":
            seen.extend(str(chunk.content) for chunk in model.stream("hi"))
        else:
            asyncio.run(astream())

    with pytest.raises(DfeHubConnectionError, match="was cut") as caught:
        read_all()

    assert "".join(seen) == "hi"
    assert not caught.value.retryable
    assert len(server.requests) == 1
