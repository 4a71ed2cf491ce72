"""Bounded memory and time, whatever the server sends.

One line or event of a stream may hold at most 16 MiB, a non-streamed body at
most 64 MiB; past that the reply is a `DfeHubProtocolError`, not a process
that grows until it dies. A call may last at most `deadline` seconds, so a
server trickling one byte at a time (each wait shorter than the read timeout)
cannot keep it running forever. Numbers that cannot be seconds or be sent as
JSON (NaN, infinity) are refused when the model is built.
"""

from __future__ import annotations

import asyncio
import math
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hostile_server import HostileServer, http_head, is_streaming, wait_for_hangup
from model_calls import EVERY_MODE, answer, call

from langchain_dfehub import (
    ChatDfeHub,
    DfeHubProtocolError,
    DfeHubServerError,
    DfeHubTimeoutError,
    _stream_state,
)
from langchain_dfehub._retry import RetryPolicy
from langchain_dfehub._sse import MAX_LINE_BYTES, Malformed, SSEDecoder
from langchain_dfehub._stream_state import Request

MODES = ["sync", "async"]
Start = Callable[..., HostileServer]


# --- the decoder's line limit ------------------------------------------------------


@pytest.mark.parametrize(
    "reads",
    [
        [b"data: " + b"a" * 200],  # one read, no line end
        [b"data: " + b"a" * 60] * 4,  # a line growing read by read
        [b"data: " + b"a" * 200 + b"\n\n"],  # a whole line, too long
        [b"data: " + b"a" * 40 + b"\n"] * 6,  # one event of many data lines
    ],
    ids=["one-read", "many-reads", "ended", "many-data-lines"],
)
def test_a_line_or_event_past_the_limit_ends_the_stream(reads: list[bytes]) -> None:
    decoder = SSEDecoder(max_line=100)
    events = [event for data in reads for event in decoder.feed(data)]
    assert len(events) == 1
    assert isinstance(events[0], Malformed)
    assert "longer than" in events[0].reason
    assert decoder.feed(b"data: {}\n\n") == []  # nothing more is decoded


def test_lines_within_the_limit_decode_as_usual() -> None:
    decoder = SSEDecoder(max_line=100)
    events = [event for _ in range(50) for event in decoder.feed(b'data: {"a": 1}\n\n')]
    assert len(events) == 50


@pytest.mark.parametrize("split", [1, 2])
def test_a_byte_order_mark_split_across_reads_is_skipped(split: int) -> None:
    decoder = SSEDecoder()
    stream = b'\xef\xbb\xbfdata: {"choices": []}\n\n'
    events = decoder.feed(stream[:split]) + decoder.feed(stream[split:])
    assert [type(e).__name__ for e in events] == ["Chunk"]


def endless_line(conn: socket.socket, request: bytes) -> None:
    conn.sendall(http_head("200 OK", "text/event-stream") + b"data: ")
    block = b"a" * 65536
    for _ in range(MAX_LINE_BYTES // len(block) + 64):
        conn.sendall(block)


@pytest.mark.parametrize("mode", MODES)
def test_an_endless_line_is_a_protocol_error_not_a_growing_process(
    hostile_server: Start, mode: str
) -> None:
    server = hostile_server(endless_line)
    model = ChatDfeHub(base_url=server.base_url, max_retries=0)

    with pytest.raises(DfeHubProtocolError, match="longer than 16 MiB"):
        call(model, mode, streaming=True)


@pytest.mark.parametrize("mode", MODES)
def test_a_body_past_the_limit_is_a_protocol_error(
    hostile_server: Start, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limit is lowered so that the test sends 2 MiB, not 64.
    monkeypatch.setattr(_stream_state, "MAX_BODY_BYTES", 1024 * 1024)

    def huge_body(conn: socket.socket, request: bytes) -> None:
        conn.sendall(http_head("200 OK", "application/json") + b'{"choices": "')
        for _ in range(32):
            conn.sendall(b"a" * 65536)

    server = hostile_server(huge_body)
    model = ChatDfeHub(base_url=server.base_url, max_retries=0)

    with pytest.raises(DfeHubProtocolError, match="larger than 1 MiB"):
        call(model, mode, streaming=False)


# --- the deadline ------------------------------------------------------------------


def trickle(conn: socket.socket, request: bytes) -> None:
    """One byte every 50 ms, for as long as the client listens (at most 20 s)."""
    streaming = b'"stream":true' in request.replace(b" ", b"")
    kind = "text/event-stream" if streaming else "application/json"
    conn.sendall(http_head("200 OK", kind))
    end = time.monotonic() + 20
    while time.monotonic() < end:
        conn.sendall(b":" if streaming else b" ")
        time.sleep(0.05)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_a_trickling_server_is_cut_off_at_the_deadline(
    hostile_server: Start, mode: str, streaming: bool
) -> None:
    server = hostile_server(trickle)
    # Each byte comes well within the read timeout; only the deadline ends it.
    model = ChatDfeHub(base_url=server.base_url, timeout=(5, 5), deadline=0.5)

    with pytest.raises(DfeHubTimeoutError) as caught:
        call(model, mode, streaming)

    assert caught.value.phase == "deadline"
    assert "deadline of 0.5 s" in str(caught.value)
    assert len(server.requests) == 1  # not retried


@pytest.mark.parametrize("mode", MODES)
def test_a_trickled_error_page_is_cut_at_the_deadline(
    hostile_server: Start, mode: str
) -> None:
    hung_up = threading.Event()

    def trickled_error(conn: socket.socket, request: bytes) -> None:
        """A 503 whose page comes a byte every 50 ms, until the client leaves."""
        conn.sendall(http_head("503 Service Unavailable", "text/html") + b"<p>down")
        end = time.monotonic() + 20
        try:
            while time.monotonic() < end:
                conn.sendall(b".")
                time.sleep(0.05)
        except OSError:
            hung_up.set()

    server = hostile_server(trickled_error)
    model = ChatDfeHub(
        base_url=server.base_url, timeout=(5, 5), deadline=0.5, max_retries=0
    )

    with pytest.raises(DfeHubServerError, match="HTTP 503") as caught:
        call(model, mode, streaming=False)

    assert "down" in str(caught.value)
    # The client left while the page was still coming, not at its end.
    assert hung_up.wait(timeout=10)


def test_the_deadline_defaults_to_ten_minutes_and_can_be_lifted() -> None:
    assert ChatDfeHub().deadline == 600.0
    assert ChatDfeHub(deadline=None).deadline is None


# --- numbers that are not numbers ----------------------------------------------------

NOT_FINITE = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize(
    "field",
    [
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "max_retry_wait",
        "timeout",
        "deadline",
    ],
)
def test_nan_and_infinity_are_refused_when_the_model_is_built(
    field: str, value: float
) -> None:
    with pytest.raises(ValueError, match=field):
        ChatDfeHub(**{field: value})


@pytest.mark.parametrize("value", NOT_FINITE)
def test_a_timeout_pair_with_nan_or_infinity_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        ChatDfeHub(timeout=(5.0, value))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("extra", [{"temperature": math.nan}, {"seed": math.inf}])
def test_a_call_argument_json_cannot_carry_is_a_clear_error(
    extra: dict[str, Any], mode: str
) -> None:
    model = ChatDfeHub(base_url="http://127.0.0.1:9/v1", max_retries=0)

    def call() -> Any:
        if mode == "sync":
            return model.invoke("hi", **extra)
        return asyncio.run(model.ainvoke("hi", **extra))

    with pytest.raises(ValueError, match="NaN or infinite"):
        call()


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"model_kwargs": {"seed": math.nan}}, "model_kwargs['seed']"),
        ({"seed": math.inf}, "model_kwargs['seed']"),
        ({"extra_body": {"top_k": [1.0, -math.inf]}}, "extra_body['top_k'][1]"),
    ],
)
def test_nan_or_infinity_in_the_body_fields_is_refused_when_the_model_is_built(
    settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        ChatDfeHub(**settings)


def silent(conn: socket.socket, request: bytes) -> None:
    """Never a byte of a reply, until the client hangs up."""
    wait_for_hangup(conn)


def head_then_silent(conn: socket.socket, request: bytes) -> None:
    kind = "text/event-stream" if is_streaming(request) else "application/json"
    conn.sendall(http_head("200 OK", kind))
    wait_for_hangup(conn)


def trickled_head(conn: socket.socket, request: bytes) -> None:
    """The status line and headers a byte every 50 ms (a header 20 s long)."""
    head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 400 + b"\r\n"
    for byte in head:
        conn.sendall(bytes([byte]))
        time.sleep(0.05)


@pytest.mark.parametrize("mode", EVERY_MODE)
@pytest.mark.parametrize(
    "reply", [silent, head_then_silent, trickled_head], ids=lambda r: r.__name__
)
@pytest.mark.parametrize("timeout", [None, 5.0], ids=["no-timeout", "timeout"])
def test_the_deadline_bounds_a_call_whatever_the_server_withholds(
    hostile_server: Start, mode: str, reply: Any, timeout: float | None
) -> None:
    server = hostile_server(reply)
    model = ChatDfeHub(base_url=server.base_url, timeout=timeout, deadline=0.5)

    with pytest.raises(DfeHubTimeoutError) as caught:
        answer(model, mode)

    assert caught.value.phase == "deadline"
    assert "deadline of 0.5 s" in str(caught.value)
    assert len(server.requests) == 1  # not retried


def test_each_wait_is_cut_to_the_time_left() -> None:
    request = Request(
        url="http://127.0.0.1:9/v1/chat/completions",
        headers={},
        body=b"{}",
        stream=False,
        connect_timeout=None,
        read_timeout=120.0,
        secret=None,
        policy=RetryPolicy(max_retries=0, max_retry_wait=0),
        deadline=30.0,
    )
    connect, read = request.waits()
    assert connect is not None
    assert 29 < connect <= 30
    assert read is not None
    assert 29 < read <= 30

    spent = replace(request, started=request.started - 31)
    with pytest.raises(DfeHubTimeoutError) as caught:
        spent.waits()
    assert caught.value.phase == "deadline"
