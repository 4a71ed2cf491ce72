"""The asynchronous DfeHub transport, on `httpx.AsyncClient`.

The twin of `_transport.SyncTransport`: the same `Request`, the same
`ReplyStream` decisions, the same retry policy; only the I/O differs. Calls run
truly concurrently on the event loop, with no thread per call.

An `httpx.AsyncClient` belongs to the event loop it first ran on, and a model
instance may be used from several loops (one `asyncio.run` after another, or
one loop per test), so the transport keeps one pooled client per loop.
This module imports httpx; the package imports it only when async is used.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

import httpx

from langchain_dfehub._errors import (
    DfeHubError,
    DfeHubRateLimitError,
    error_from_status,
)
from langchain_dfehub._failures import Failure, network_error
from langchain_dfehub._stream_state import (
    ERROR_BODY_LIMIT,
    ReplyStream,
    Request,
    read_json_reply,
)
from langchain_dfehub._urls import display_url

_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


class AsyncTransport:
    """Sends requests with one pooled `httpx.AsyncClient` per event loop."""

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncClient
        ] = weakref.WeakKeyDictionary()

    def __getstate__(self) -> dict[str, Any]:
        # Clients belong to their event loops: a copy opens its own.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            # trust_env keeps proxy and certificate settings from the environment.
            client = httpx.AsyncClient(limits=_LIMITS, trust_env=True)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the current loop's pooled connections."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    async def complete(self, request: Request) -> dict[str, Any]:
        """Send a non-streaming request; return the `chat.completion` dict."""
        reply: dict[str, Any] | None = None
        call = request.policy.start()
        async for attempt in call.async_retrying():
            with attempt:
                async with call.apassage():
                    reply = await self._complete_once(request)
        assert reply is not None
        return reply

    async def _complete_once(self, request: Request) -> dict[str, Any]:
        try:
            response = await self._send(request)
            try:
                await _raise_for_status(response, request)
                body = await response.aread()
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise _network_error(exc, request) from None
        return read_json_reply(body, request.url)

    async def stream(self, request: Request) -> AsyncIterator[dict[str, Any]]:
        """Send a streaming request; yield its chunk dicts as they arrive."""
        opened: tuple[httpx.Response, AsyncIterator[bytes], ReplyStream, list[Any]]
        opened = None  # type: ignore[assignment]
        call = request.policy.start()
        async for attempt in call.async_retrying():
            with attempt:
                async with call.apassage():
                    opened = await self._open(request)
        response, received, reply, first = opened
        try:
            for chunk in first:
                yield chunk
            reply.check()
            try:
                async for data in received:
                    for chunk in reply.feed(data):
                        yield chunk
                    reply.check()
            except httpx.HTTPError as exc:
                raise reply.fail(_network_error(exc, request)) from None
            for chunk in reply.close():
                yield chunk
            reply.check()
        except DfeHubRateLimitError as error:
            call.throttled_late(error)
            raise
        finally:
            await response.aclose()

    async def _open(
        self, request: Request
    ) -> tuple[httpx.Response, AsyncIterator[bytes], ReplyStream, list[Any]]:
        """Send the request and read until the answer starts or ends."""
        reply = ReplyStream(request.url)
        response = None
        try:
            response = await self._send(request)
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
            return response, received, reply, first
        except httpx.HTTPError as exc:
            if response is not None:
                await response.aclose()
            raise reply.fail(_network_error(exc, request)) from None
        except BaseException:
            if response is not None:
                await response.aclose()
            raise

    async def _send(self, request: Request) -> httpx.Response:
        client = self._client()
        timeout = httpx.Timeout(
            connect=request.connect_timeout,
            read=request.read_timeout,
            write=request.read_timeout,
            pool=request.connect_timeout,
        )
        built = client.build_request(
            "POST",
            request.url,
            content=request.body,
            headers=request.headers,
            timeout=timeout,
        )
        return await client.send(built, stream=True)


async def _raise_for_status(response: httpx.Response, request: Request) -> None:
    if response.status_code < 300:
        return
    body = b""
    async for data in response.aiter_bytes():
        body += data
        if len(body) >= ERROR_BODY_LIMIT:
            break
    await response.aclose()
    raise error_from_status(
        response.status_code,
        response.headers,
        body[:ERROR_BODY_LIMIT],
        url=display_url(request.url),
        secret=request.secret,
    )


def _network_error(exc: httpx.HTTPError, request: Request) -> DfeHubError:
    """Classify an httpx failure; `_failures` words the error."""
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        kind = Failure.CONNECT_TIMEOUT
    elif isinstance(exc, httpx.TimeoutException):
        kind = Failure.READ_TIMEOUT
    elif isinstance(exc, httpx.RemoteProtocolError):
        kind = Failure.CUT
    elif isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        kind = Failure.INVALID_URL
    else:
        kind = Failure.UNREACHABLE
    return network_error(kind, exc, request)
