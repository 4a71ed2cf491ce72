"""The synchronous DfeHub transport, on `requests`.

It only moves bytes: it sends a `Request`, hands what arrives to
`ReplyStream` / `JsonReply`, and maps `requests`' exceptions to our typed
errors. Retries wrap the part of a call that may safely be repeated: sending
the request and reading up to the first piece of the answer. Once the caller
has text, a failure is raised instead, with the count of characters received.

One `requests.Session` per model instance pools connections across calls; TLS,
proxy and client settings come from the request's `Connection`, shared with
the async transport. Redirects are never followed and cookies never kept.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Iterator
from typing import Any

import requests
import urllib3.exceptions

from langchain_dfehub import _fork, _sync_send
from langchain_dfehub._connection import Connection, NoCookies
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
    interim_reply_error,
)
from langchain_dfehub._sync_pools import (
    CheckedBody,
    DfeHubAdapter,
    FinalResponse,
    watching,
)
from langchain_dfehub._urls import display_url, linked_errors
from langchain_dfehub._watchdog import WATCHDOG, Watch

# Enough for `batch` with a generous max_concurrency without urllib3 dropping
# connections it cannot keep.
_POOL_SIZE = 64
# The most one receive of a body without chunks returns.
_READ_SIZE = 65536


class SyncTransport:
    """Sends requests with one pooled `requests.Session`."""

    def __init__(self) -> None:
        # One session per connection settings: models copied with other
        # settings may share this transport, and must not close each other's.
        self._sessions: dict[Connection, requests.Session] = {}
        self._lock = threading.Lock()
        _fork.track(self)

    def session(self, connection: Connection) -> requests.Session:
        """The session for `connection`: the user's own, or ours, pooled."""
        if connection.http_client is not None:
            return connection.http_client  # type: ignore[no-any-return]
        session = self._sessions.get(connection)
        if session is None:
            with self._lock:
                session = self._sessions.get(connection)
                if session is None:
                    session = self._sessions[connection] = _new_session(connection)
        return session

    def forget_inherited(self) -> list[Any]:
        """In a forked child: drop the parent's sessions and lock (see `_fork`)."""
        inherited = list(self._sessions.values())
        self._sessions = {}
        self._lock = threading.Lock()
        return inherited

    def __getstate__(self) -> dict[str, Any]:
        # Connections and locks belong to one process: a copy or an unpickled
        # model opens its own.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def close(self) -> None:
        """Close pooled connections; the transport reopens them if used again."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.close()

    def complete(self, request: Request) -> dict[str, Any]:
        """Send a non-streaming request; return the `chat.completion` dict."""
        reply: dict[str, Any] | None = None
        call = request.policy.start(request.deadline_at)
        watch = _arm(request)
        try:
            for attempt in call.retrying():
                with attempt, call.passage():
                    reply = self._complete_once(request, watch)
        finally:
            _disarm(watch)
        assert reply is not None
        return reply

    def _complete_once(self, request: Request, watch: Watch | None) -> dict[str, Any]:
        reply = JsonReply(request)
        try:
            with self._post(request, watch) as response:
                _raise_for_status(response, request)
                for data in _received(response):
                    reply.feed(data)
        except requests.RequestException as exc:
            raise _network_error(exc, request) from None
        return reply.result()

    def stream(self, request: Request) -> Iterator[StreamItem]:
        """Send a streaming request; yield its chunks as they arrive (`ReplyStream`)."""
        opened: tuple[requests.Response, Iterator[bytes], ReplyStream, list[Any]]
        opened = None  # type: ignore[assignment]
        call = request.policy.start(request.deadline_at)
        watch = _arm(request)
        try:
            for attempt in call.retrying():
                with attempt, call.passage():
                    opened = self._open(request, watch)
        except BaseException:
            _disarm(watch)
            raise
        response, received, reply, first = opened
        try:
            yield from first
            reply.check()
            try:
                for data in () if reply.done else received:
                    yield from reply.feed(data)
                    reply.check()
                    if reply.done:
                        break
                if reply.done:
                    # `[DONE]` ends the answer, whatever the server does next.
                    _finish(response, received)
            except requests.RequestException as exc:
                raise reply.fail(_network_error(exc, request)) from None
            yield from reply.close()
            reply.check()
        except DfeHubRateLimitError as error:
            call.throttled_late(error)
            raise
        finally:
            response.close()
            _disarm(watch)

    def _open(
        self, request: Request, watch: Watch | None
    ) -> tuple[requests.Response, Iterator[bytes], ReplyStream, list[Any]]:
        """Send the request and read until the answer starts or ends."""
        reply = ReplyStream(request)
        response = None
        try:
            response = self._post(request, watch)
            _raise_for_status(response, request)
            received = _received(response)
            first: list[Any] = []
            for data in received:
                first += reply.feed(data)
                if reply.settled:
                    break
            else:
                first += reply.close()
            if reply.error is not None and not reply.answer_started:
                raise reply.error  # nothing delivered yet: the policy may retry
            return response, received, reply, first
        except requests.RequestException as exc:
            if response is not None:
                response.close()
            raise reply.fail(_network_error(exc, request)) from None
        except BaseException:
            if response is not None:
                response.close()
            raise

    def _post(self, request: Request, watch: Watch | None) -> requests.Response:
        # Each wait is cut to the time left (raises once none is left).
        connect, read = request.waits()
        connection = request.connection
        session = self.session(connection)
        if connection.http_client is None:
            # Ours: straight to its adapter (see `_sync_send`).
            settings = connection.requests_settings()
            with watching(watch):
                return _sync_send.post(
                    session,
                    request.url,
                    request.body,
                    request.headers,
                    (connect, read),
                    settings,
                )
        # A user's own session keeps its own TLS and proxy settings, hooks
        # and cookies.
        with watching(watch):
            return session.post(
                request.url,
                data=request.body,
                headers=request.headers,
                stream=True,
                timeout=(connect, read),
                # Never re-send a POST elsewhere: a 3xx is reported (see `_errors`).
                allow_redirects=False,
            )


def _arm(request: Request) -> Watch | None:
    """Start the whole-exchange timer of a call with a deadline."""
    at = request.deadline_at
    return None if at is None else WATCHDOG.arm(at)


def _disarm(watch: Watch | None) -> None:
    if watch is not None:
        WATCHDOG.disarm(watch)


def _finish(response: requests.Response, received: Iterator[bytes]) -> None:
    """After `[DONE]`: read the end of the body only if it is already here.

    Then the connection goes back to the pool; else it is closed (when the
    response is), never waited on: a server may hold it open after `[DONE]`.
    """
    original = getattr(response.raw, "_original_response", None)
    if isinstance(original, FinalResponse) and original.ends_here():
        with contextlib.suppress(requests.RequestException):  # whole anyway
            for _ in received:  # the last chunk, already received: no wait
                break


def _received(response: requests.Response) -> Iterator[bytes]:
    """The body's bytes as they arrive.

    `iter_content(chunk_size=None)` yields each chunk of a chunked body as it
    comes, but reads a body without chunks (delimited by the connection's
    close, as some proxies stream) to its very end before yielding anything:
    no stream, and no deadline check. Such a body is read one receive at a
    time instead, with urllib3's failures mapped as `requests` maps them.
    """
    raw = response.raw
    try:
        if getattr(raw, "chunked", True) or not hasattr(raw, "read1"):
            try:
                yield from response.iter_content(chunk_size=None)
            except requests.exceptions.ChunkedEncodingError:
                # urllib3 hands a chunk over whole: what came of one cut
                # short is handed over first, as the async path's h11 does.
                arrived = _arrived_unread(response)
                if arrived:
                    yield arrived
                raise
            return
        while data := raw.read1(_READ_SIZE, decode_content=True):
            yield data
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.ConnectionError(exc) from None  # as requests wraps it
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from None
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from None
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from None
    except (urllib3.exceptions.HTTPError, http.client.HTTPException) as exc:
        raise requests.ConnectionError(exc) from None
    except OverflowError as exc:
        # urllib3 reads a chunk of the size the server names: a size past
        # any index is its chunked framing broken, not a failure of ours.
        raise requests.exceptions.ChunkedEncodingError(exc) from None


def _arrived_unread(response: requests.Response) -> bytes:
    """What came of a chunk cut short, read by our connections (`CheckedBody`)."""
    original = getattr(response.raw, "_original_response", None)
    checked = getattr(original, "checked_body", None)
    return checked.arrived_unread() if isinstance(checked, CheckedBody) else b""


def _new_session(connection: Connection) -> requests.Session:
    session = requests.Session()
    adapter = DfeHubAdapter(
        unchecked=connection.verify is False, pool_maxsize=_POOL_SIZE
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.cookies.set_policy(NoCookies())
    # The environment was read once, into the `Connection`; requests must not
    # read it again (proxies, CA bundle, netrc credentials) on every call.
    session.trust_env = False
    return session


def _raise_for_status(response: requests.Response, request: Request) -> None:
    if 200 <= response.status_code < 300:
        return
    if response.status_code < 200:  # only from a client other than ours
        response.raw.close()  # the real reply is still on the connection
        response.close()
        raise interim_reply_error(response.status_code, request.url)
    body = b""
    try:
        for data in _received(response):
            body += data
            if enough_of_error_body(len(body), request):
                break
    finally:
        response.close()
    raise error_from_status(
        response.status_code,
        response.headers,
        body[:ERROR_BODY_LIMIT],
        url=display_url(request.url),
        secret=request.secret,
    )


def _network_error(exc: requests.RequestException, request: Request) -> DfeHubError:
    """Classify a `requests` failure; `_failures` words the error."""
    if isinstance(exc, requests.exceptions.SSLError):
        kind = Failure.TLS
    elif isinstance(exc, requests.ConnectTimeout):
        kind = Failure.CONNECT_TIMEOUT
    elif isinstance(exc, requests.ReadTimeout) or _is_read_timeout(exc):
        kind = Failure.READ_TIMEOUT
    elif _breaks_http(exc):
        kind = Failure.BROKEN_REPLY
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError) or any(
        isinstance(e, http.client.RemoteDisconnected) for e in linked_errors(exc)
    ):
        kind = Failure.CUT
    elif isinstance(
        exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)
    ):
        kind = Failure.INVALID_URL
    else:
        kind = Failure.UNREACHABLE
    return network_error(kind, exc, request)


def _is_read_timeout(exc: BaseException) -> bool:
    # While a body streams, requests wraps urllib3's read timeout in a plain
    # ConnectionError; the original is its first argument.
    return any(isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args)


def _breaks_http(exc: BaseException) -> bool:
    """Whether a failure is the reply breaking HTTP, not the connection ending.

    `http.client` says both with `HTTPException`s; an early end is
    `RemoteDisconnected` (no reply) or `IncompleteRead` (part of one), whose
    urllib3 subclass `InvalidChunkLength` is a broken chunk size, though.
    """
    for current in linked_errors(exc):
        if isinstance(
            current,
            (
                urllib3.exceptions.InvalidChunkLength,
                urllib3.exceptions.DecodeError,
                urllib3.exceptions.InvalidHeader,
                requests.exceptions.InvalidHeader,
                OverflowError,
            ),
        ):
            return True
        if isinstance(current, urllib3.exceptions.ProtocolError) and (
            "exceeded maximum" in str(current)  # a chunk size line too long
        ):
            return True
        if isinstance(current, http.client.HTTPException) and not isinstance(
            current, (http.client.RemoteDisconnected, http.client.IncompleteRead)
        ):
            return True
    return False
