"""The asynchronous DfeHub transport, on `httpx.AsyncClient`.

The twin of `_transport.SyncTransport`: the same `Request`, the same
`ReplyStream` decisions, the same `Connection` settings, the same retry
policy; only the I/O differs. Calls run truly concurrently on the event loop,
with no thread per call.

An `httpx.AsyncClient` belongs to the event loop it first ran on, and a model
instance may be used from several loops (one `asyncio.run` after another, or
one loop per test), so the transport keeps one pooled client per loop, and
closes it when its loop shuts down: `asyncio.run` (and any runner that shuts
down async generators) ends each loop by closing the async generators started
on it, and each client is tied to such a generator. So
`asyncio.run(model.ainvoke(...))` in a loop holds no sockets or loops from the
runs before, without the caller closing anything.
This module imports httpx; the package imports it only when async is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from langchain_dfehub import _fork
from langchain_dfehub._chunk_framing import ChunkFraming
from langchain_dfehub._connection import Connection, cookie_jar
from langchain_dfehub._errors import (
    DfeHubError,
    DfeHubRateLimitError,
    error_from_status,
)
from langchain_dfehub._failures import Failure, network_error
from langchain_dfehub._stream_state import (
    ERROR_BODY_LIMIT,
    JsonReply,
    ReplyStream,
    Request,
    StreamItem,
    enough_of_error_body,
    head_problem,
)
from langchain_dfehub._urls import display_url, is_tls_failure

# A chunked body's end: the last (empty) chunk, with no trailer.
_LAST_CHUNK = b"0\r\n\r\n"
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


@dataclass
class _LoopClient:
    """A pooled client of one event loop, and the generator that closes it."""

    client: httpx.AsyncClient
    closer: AsyncGenerator[None, None]


# A client serves one event loop and one set of connection settings: models
# copied with other settings may share this transport.
_Key = tuple[asyncio.AbstractEventLoop, Connection]


class AsyncTransport:
    """Sends requests with one pooled `httpx.AsyncClient` per event loop."""

    def __init__(self) -> None:
        # Entries leave when their loop shuts down or closes (see `_client`):
        # a weak map would not do, since each client refers to its loop.
        self._clients: dict[_Key, _LoopClient] = {}
        _fork.track(self)

    def __getstate__(self) -> dict[str, Any]:
        # Clients belong to their event loops: a copy opens its own.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def forget_inherited(self) -> list[Any]:
        """In a forked child: drop the parent's clients (see `_fork`)."""
        inherited = list(self._clients.values())
        self._clients = {}
        return inherited

    async def _client(self, connection: Connection) -> httpx.AsyncClient:
        if connection.http_async_client is not None:
            return connection.http_async_client  # type: ignore[no-any-return]
        key = (asyncio.get_running_loop(), connection)
        entry = self._clients.get(key)
        if entry is not None and not entry.client.is_closed:
            return entry.client
        self._forget_closed_loops()
        client = httpx.AsyncClient(
            limits=_LIMITS,
            verify=connection.ssl_context,
            proxy=connection.proxy,
            cookies=cookie_jar(),
            follow_redirects=False,
            trust_env=False,  # the environment is read once, into `connection`
        )
        closer = self._close_with_loop(key, client)
        # Its first step registers it with the running loop, which closes it
        # (running the `finally` below) when the loop shuts down.
        await closer.__anext__()
        self._clients[key] = _LoopClient(client, closer)
        if entry is not None:
            await entry.closer.aclose()
        return client

    async def _close_with_loop(
        self, key: _Key, client: httpx.AsyncClient
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            entry = self._clients.get(key)
            if entry is not None and entry.client is client:
                del self._clients[key]
            if not key[0].is_closed():
                await client.aclose()

    def _forget_closed_loops(self) -> None:
        """Drop clients of loops closed without shutting down their generators."""
        # `list(...)` first: loops in other threads may add clients meanwhile.
        for key in [key for key in list(self._clients) if key[0].is_closed()]:
            entry = self._clients.pop(key, None)
            if entry is None:
                continue  # another thread dropped it first
            # Run the closer's `finally` now, while nothing awaits (its loop
            # is closed, so it awaits nothing); left to the garbage
            # collector, it would ask the closed loop to run it.
            with contextlib.suppress(StopIteration):  # it ended: as meant
                entry.closer.aclose().send(None)

    async def aclose(self) -> None:
        """Close the current loop's pooled connections."""
        loop = asyncio.get_running_loop()
        for key in [key for key in list(self._clients) if key[0] is loop]:
            entry = self._clients.pop(key, None)
            if entry is not None:
                await entry.closer.aclose()

    async def complete(self, request: Request) -> dict[str, Any]:
        """Send a non-streaming request; return the `chat.completion` dict."""
        reply: dict[str, Any] | None = None
        call = request.policy.start(request.deadline_at)
        async for attempt in call.async_retrying():
            with attempt:
                async with call.apassage():
                    reply = await self._complete_once(request)
        assert reply is not None
        return reply

    async def _complete_once(self, request: Request) -> dict[str, Any]:
        reply = JsonReply(request)
        try:
            response, cutoff = await self._send(request)
            try:
                await _raise_for_status(response, request)
                async for data in response.aiter_bytes():
                    reply.feed(data)
            finally:
                await _close(response, cutoff)
        except httpx.HTTPError as exc:
            raise _network_error(exc, request) from None
        return reply.result()

    async def stream(self, request: Request) -> AsyncIterator[StreamItem]:
        """Send a streaming request; yield its chunks as they arrive (`ReplyStream`)."""
        opened: tuple[
            httpx.Response, _Cutoff, AsyncIterator[bytes], ReplyStream, list[Any]
        ]
        opened = None  # type: ignore[assignment]
        call = request.policy.start(request.deadline_at)
        async for attempt in call.async_retrying():
            with attempt:
                async with call.apassage():
                    opened = await self._open(request)
        response, cutoff, received, reply, first = opened
        try:
            for chunk in first:
                yield chunk
            reply.check()
            try:
                async for data in _nothing() if reply.done else received:
                    for chunk in reply.feed(data):
                        yield chunk
                    reply.check()
                    if reply.done:
                        break
                if reply.done:
                    # `[DONE]` ends the answer, whatever the server does next.
                    await _finish(response, received)
            except httpx.HTTPError as exc:
                raise reply.fail(_network_error(exc, request)) from None
            for chunk in reply.close():
                yield chunk
            reply.check()
        except DfeHubRateLimitError as error:
            await call.athrottled_late(error)
            raise
        finally:
            await _close(response, cutoff)

    async def _open(
        self, request: Request
    ) -> tuple[httpx.Response, _Cutoff, AsyncIterator[bytes], ReplyStream, list[Any]]:
        """Send the request and read until the answer starts or ends."""
        reply = ReplyStream(request)
        sent = None
        try:
            sent = await self._send(request)
            response, cutoff = sent
            await _raise_for_status(response, request)
            received = response.aiter_bytes()
            first: list[Any] = []
            async for data in received:
                first += reply.feed(data)
                if reply.settled:
                    break
            else:
                first += reply.close()
            if reply.error is not None and not reply.answer_started:
                raise reply.error  # nothing delivered yet: the policy may retry
            return response, cutoff, received, reply, first
        except httpx.HTTPError as exc:
            if sent is not None:
                await _close(*sent)
            raise reply.fail(_network_error(exc, request)) from None
        except BaseException:
            if sent is not None:
                await _close(*sent)
            raise

    async def _send(self, request: Request) -> tuple[httpx.Response, _Cutoff]:
        """Send; return the response once its headers are in, and its cutoff.

        The headers must come within the time left (a server trickling them
        a byte at a time resets every read timeout); the body is cut at the
        deadline by a timer on the event loop (see `_cut_at_deadline`).
        """
        # Each wait is cut to the time left (raises once none is left).
        connect, read = request.waits()
        client = await self._client(request.connection)
        timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
        built = client.build_request(
            "POST",
            request.url,
            content=request.body,
            headers=request.headers,
            timeout=timeout,
        )
        # Never re-send a POST elsewhere: a 3xx is reported (see `_errors`).
        sending = client.send(built, stream=True, follow_redirects=False)
        at = request.deadline_at
        if at is None:
            return await sending, None
        try:
            response = await asyncio.wait_for(sending, at - time.monotonic())
        except asyncio.TimeoutError:
            raise request.deadline_error() from None
        return response, _cut_at_deadline(response, at)


# The timer that cuts a response at its call's deadline, if there is one.
_Cutoff = asyncio.TimerHandle | None


def _cut_at_deadline(response: httpx.Response, at: float) -> _Cutoff:
    """Shut the response's socket at `at` (monotonic), unless it is closed by then.

    The read waiting on it then fails at once, and the transport, past the
    deadline, raises the deadline error. No socket (another HTTP client's
    stream): the deadline is still checked as data arrives.
    """
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is None:
        return None
    loop = asyncio.get_running_loop()
    return loop.call_later(max(at - time.monotonic(), 0.0), _cut, response, sock)


def _cut(response: httpx.Response, sock: Any) -> None:
    # A closed response's connection may already serve another call.
    if not response.is_closed:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


async def _close(response: httpx.Response, cutoff: _Cutoff) -> None:
    if cutoff is not None:
        cutoff.cancel()
    await response.aclose()


async def _finish(response: httpx.Response, received: AsyncIterator[bytes]) -> None:
    """After `[DONE]`: read the end of the body only if it is already here.

    Then the connection goes back to the pool; else it is closed (when the
    response is), never waited on: a server may hold it open after `[DONE]`.
    """
    if not _ends_here(response):
        return
    with contextlib.suppress(httpx.HTTPError):  # the answer is whole anyway
        async for _ in received:  # the last chunk, already received: no wait
            break


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing


def _ends_here(response: httpx.Response) -> bool:
    """Whether the rest of the body is received: its last chunk, or nothing."""
    length = response.headers.get("content-length")
    if length is not None and length.isdigit():
        return response.num_bytes_downloaded >= int(length)
    # httpx does not say what its connection holds unread; h11 does, a few
    # private steps down. Another version or client: not known, so closed.
    try:
        stream: Any = response.stream
        core = stream._stream._httpcore_stream._stream
        unread, _ = core._connection._h11_state.trailing_data
    except AttributeError:
        return False
    return unread in (_LAST_CHUNK, b"\r\n" + _LAST_CHUNK)


async def _raise_for_status(response: httpx.Response, request: Request) -> None:
    problem = head_problem(
        response.http_version, response.reason_phrase, response.headers.multi_items()
    )
    if problem is not None:
        await response.aclose()
        # As the sync path's `FinalResponse` refuses it, and words it.
        raise httpx.RemoteProtocolError(problem)
    problem = _check_framing(response)
    if problem is not None:
        await response.aclose()
        raise httpx.RemoteProtocolError(problem)
    if response.status_code < 300:
        return
    body = b""
    try:
        async for data in response.aiter_bytes():
            body += data
            if enough_of_error_body(len(body), request):
                break
    finally:
        await response.aclose()
    raise error_from_status(
        response.status_code,
        response.headers,
        body[:ERROR_BODY_LIMIT],
        url=display_url(request.url),
        secret=request.secret,
    )


def _check_framing(response: httpx.Response) -> str | None:
    """Have a chunked body's framing checked as h11 receives it (`_chunk_framing`).

    What h11 has received past the head is checked now (the problem, if it
    shows one, is returned); what the connection receives later is checked
    as it is read, until the body's end. No h11 connection within reach
    (another HTTP client's stream): h11's own checks only.
    """
    if response.headers.get("transfer-encoding", "").strip().lower() != "chunked":
        return None
    stream = response.extensions.get("network_stream")
    try:
        body: Any = response.stream
        core = body._stream._httpcore_stream._stream
        received, _ = core._connection._h11_state.trailing_data
    except AttributeError:
        return None
    if stream is None or not hasattr(stream, "read"):
        return None
    framing = ChunkFraming()
    problem = framing.feed(bytes(received))
    if problem is not None or framing.complete:
        return problem
    original = stream.read

    async def read(max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = await original(max_bytes, timeout)
        problem = framing.feed(data)
        if problem is not None or framing.complete:
            # Judged: the connection may serve another reply, unchecked by this.
            del stream.read
        if problem is not None:
            raise httpcore.RemoteProtocolError(problem)
        return data

    stream.read = read
    return None


def _network_error(exc: httpx.HTTPError, request: Request) -> DfeHubError:
    """Classify an httpx failure; `_failures` words the error."""
    if is_tls_failure(exc):
        kind = Failure.TLS
    elif isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        kind = Failure.CONNECT_TIMEOUT
    elif isinstance(exc, httpx.TimeoutException):
        kind = Failure.READ_TIMEOUT
    elif isinstance(exc, httpx.RemoteProtocolError) and _ended_early(exc):
        kind = Failure.CUT
    elif isinstance(exc, (httpx.ProtocolError, httpx.DecodingError)):
        kind = Failure.BROKEN_REPLY
    elif isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        kind = Failure.INVALID_URL
    else:
        kind = Failure.UNREACHABLE
    return network_error(kind, exc, request)


# How httpcore and h11 say the connection ended before the reply did; their
# other protocol errors are the reply breaking HTTP.
_EARLY_END = (
    "peer closed connection",
    "peer unexpectedly closed connection",
    "server disconnected",
)


def _ended_early(exc: httpx.RemoteProtocolError) -> bool:
    return str(exc).lower().startswith(_EARLY_END)
