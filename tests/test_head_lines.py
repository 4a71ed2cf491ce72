"""The sync path's header lines are read as h11 (the async path) reads them."""

from __future__ import annotations

import http.client
import io

import h11
import pytest

from langchain_dfehub._head_lines import BrokenReply, read_fields, read_status

LINES = [
    b"Content-Type: application/json",
    b"X-A:a",
    b"X-A: one\r\n  two\r\n\tthree",
    b"X-A: a \t b \t ",
    b"X-A:",
    b"X-A: \t",
    b"X-A: caf\xe9\x7f\x01\x85\xa0",
    b"X-A: a\x00b",
    b"X-A: a\rb",
    b"X-A: a\x0bb",
    b"X-A: a\x0cb",
    b"X A: 1",
    b"X-A : 1",
    b": 1",
    b"no colon",
    b"X-\xe9: 1",
    b" X-A: 1",
    b"\tX-A: 1",
]


def h11_fields(head: bytes) -> list[tuple[str, str]] | None:
    """What h11 reads from a reply head: its fields, or None if it refuses it."""
    client = h11.Connection(our_role=h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.receive_data(b"HTTP/1.1 200 OK\r\n" + head)
    try:
        event = client.next_event()
    except h11.RemoteProtocolError:
        return None
    assert isinstance(event, h11.Response)
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in event.headers.raw_items()
    ]


def our_fields(head: bytes) -> list[tuple[str, str]] | None:
    try:
        return read_fields(io.BytesIO(head).readline)
    except BrokenReply:
        return None


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("ending", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_each_line_is_taken_or_refused_as_h11_does(line: bytes, ending: bytes) -> None:
    head = (b"Server: x\r\n" + line + b"\r\n\r\n").replace(b"\r\n", ending)

    assert our_fields(head) == h11_fields(head)


def test_a_continuation_line_before_any_header_is_refused() -> None:
    assert our_fields(b" X-A: 1\r\n\r\n") is None
    assert h11_fields(b" X-A: 1\r\n\r\n") is None


def test_the_limits_are_http_clients() -> None:
    hundred = b"".join(b"X-%d: v\r\n" % i for i in range(100))
    assert len(read_fields(io.BytesIO(hundred + b"\r\n").readline)) == 100
    with pytest.raises(http.client.HTTPException, match="more than 100"):
        read_fields(io.BytesIO(hundred + b"X-Z: v\r\n\r\n").readline)
    with pytest.raises(http.client.LineTooLong):
        read_fields(io.BytesIO(b"X-A: " + b"a" * 65536 + b"\r\n\r\n").readline)


@pytest.mark.parametrize(
    "head", [b"", b"X-A: 1\r\n", b"X-A: 1", b"X-A: 1\r\nX-B"], ids=repr
)
def test_a_head_the_connection_ended_inside_is_a_cut_reply(head: bytes) -> None:
    with pytest.raises(http.client.RemoteDisconnected):
        read_fields(io.BytesIO(head).readline)


STATUS_LINES = [
    b"HTTP/1.1 200 OK",
    b"HTTP/1.1 200",
    b"HTTP/1.1 200 ",
    b"HTTP/1.0 404 Not Found",
    b"HTTP/1.1 200 caf\xe9 \x01\tok",
    b"HTTP/1.1 0200 OK",
    b"HTTP/1.1  200 OK",
    b"HTTP/1.1 200  OK",
    b"HTTP/1.1 20 OK",
    b"HTTP/1.1 2000 OK",
    b"HTTP/1.1 200 O\x00K",
    b"HTTP/1.1 200 OK\r",
    b"HTTP/1.1 200 O\x0bK",
    b"HTTP/1.1\t200 OK",
    b"HTTP/11 200 OK",
    b"http/1.1 200 OK",
    b"HTTZ/1.1 200 OK",
    b"",
]


def h11_status(line: bytes) -> tuple[str, int, str] | None:
    """What h11 reads from a status line: (version, status, reason), or None."""
    client = h11.Connection(our_role=h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.receive_data(line + b"\r\n\r\n")
    try:
        event = client.next_event()
    except h11.RemoteProtocolError:
        return None
    assert isinstance(event, h11.Response)
    version = "HTTP/" + event.http_version.decode()
    return version, event.status_code, event.reason.decode("latin-1")


@pytest.mark.parametrize("line", STATUS_LINES, ids=repr)
def test_each_status_line_is_taken_or_refused_as_h11_does(line: bytes) -> None:
    try:
        ours: tuple[str, int, str] | None = read_status(
            io.BytesIO(line + b"\r\n").readline
        )
    except BrokenReply:
        ours = None

    assert ours == h11_status(line)


@pytest.mark.parametrize("line", [b"", b"HTTP/1.1 200 O"], ids=repr)
def test_a_status_line_the_connection_ended_inside_is_a_cut_reply(line: bytes) -> None:
    with pytest.raises(http.client.RemoteDisconnected):
        read_status(io.BytesIO(line).readline)
