"""A minimal HTTP/1.1 server side: read requests, write responses.

The standard library's `http.server` is thread-per-connection and cannot
stream from an event loop, and the emulator may add no dependencies; so this
is the small part of HTTP/1.1 the emulator needs, done correctly: request
line, headers, a body framed by Content-Length or chunked encoding,
`Expect: 100-continue`, keep-alive, and responses with Content-Length or
chunked bodies. Anything it cannot frame safely is a `BadRequest`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024
LAST_CHUNK = b"0\r\n\r\n"

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSION = re.compile(r"HTTP/1\.[01]")


class BadRequest(Exception):  # noqa: N818 - named after the status it causes
    """The bytes received are not a request this server can frame; answer 400."""


@dataclass(frozen=True)
class HttpRequest:
    """One request: header names are lower-case; repeated headers are joined."""

    method: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


async def read_request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    max_body: int = MAX_BODY_BYTES,
) -> HttpRequest | None:
    """Read the next request on a connection; None when the client hung up.

    The reader's buffer limit bounds the request head (see `start_server`).
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # closed between requests, or mid-head: nothing to answer
    except asyncio.LimitOverrunError as exc:
        msg = "the request head is too large"
        raise BadRequest(msg) from exc
    lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
    method, path, version = _request_line(lines[0])
    headers = _headers(lines[1:])
    connection = {
        token.strip().lower() for token in headers.get("connection", "").split(",")
    }
    if version == "HTTP/1.1":
        keep_alive = "close" not in connection
    else:
        keep_alive = "keep-alive" in connection
    body = await _body(reader, writer, headers, max_body)
    return HttpRequest(method, path, version, headers, body, keep_alive)


def _request_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ")
    if len(parts) != 3:
        msg = "malformed request line"
        raise BadRequest(msg)
    method, target, version = parts
    if not _TOKEN.fullmatch(method) or not _VERSION.fullmatch(version):
        msg = "malformed request line"
        raise BadRequest(msg)
    if target.startswith(("http://", "https://")):
        # Absolute form: keep the path only.
        slash = target.find("/", target.find("//") + 2)
        target = target[slash:] if slash >= 0 else "/"
    if not target.startswith("/"):
        msg = "the request target must be a path"
        raise BadRequest(msg)
    path = target.split("?", 1)[0].split("#", 1)[0]
    return method, path, version


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            msg = "malformed header line"
            raise BadRequest(msg)
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


async def _body(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    headers: dict[str, str],
    max_body: int,
) -> bytes:
    encoding = headers.get("transfer-encoding")
    length_text = headers.get("content-length")
    if encoding is not None:
        if length_text is not None:
            msg = "both Transfer-Encoding and Content-Length were sent"
            raise BadRequest(msg)
        if encoding.strip().lower() != "chunked":
            msg = "only the chunked transfer coding is supported"
            raise BadRequest(msg)
        _continue(writer, headers)
        return await _chunked_body(reader, max_body)
    if length_text is None:
        return b""
    lengths = {item.strip() for item in length_text.split(",")}
    if len(lengths) != 1 or not (length := lengths.pop()).isdigit():
        msg = "invalid Content-Length"
        raise BadRequest(msg)
    size = int(length)
    if size > max_body:
        msg = f"the request body is larger than {max_body} bytes"
        raise BadRequest(msg)
    if size == 0:
        return b""
    _continue(writer, headers)
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        msg = "the request body is shorter than its Content-Length"
        raise BadRequest(msg) from exc


def _continue(writer: asyncio.StreamWriter, headers: dict[str, str]) -> None:
    """Answer `Expect: 100-continue`, which curl sends for larger bodies."""
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def _chunked_body(reader: asyncio.StreamReader, max_body: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    try:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size_text = size_line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                msg = "malformed chunk size"
                raise BadRequest(msg) from exc
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailer fields, ignored
                return b"".join(parts)
            total += size
            if total > max_body:
                msg = f"the request body is larger than {max_body} bytes"
                raise BadRequest(msg)
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                msg = "malformed chunk"
                raise BadRequest(msg)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        msg = "malformed chunked body"
        raise BadRequest(msg) from exc


def response_head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    """The status line and headers of a response (with a Date header)."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", f"date: {formatdate(usegmt=True)}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")


def chunk_frame(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)
