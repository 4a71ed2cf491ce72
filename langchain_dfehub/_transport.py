"""The synchronous DfeHub transport, on `requests`.

It only moves bytes: it sends a `Request`, hands what arrives to
`ReplyStream` / `read_json_reply`, and maps `requests`' exceptions to our typed
errors. Retries wrap the part of a call that may safely be repeated: sending
the request and reading up to the first piece of the answer. Once the caller
has text, a failure is raised instead, with the count of characters received.

One `requests.Session` per model instance pools connections across calls.
"""

from __future__ import annotations

import http.cookiejar
import threading
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter

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

# Enough for `batch` with a generous max_concurrency without urllib3 dropping
# connections it cannot keep.
_POOL_SIZE = 64


class SyncTransport:
    """Sends requests with one pooled `requests.Session`."""

    def __init__(self) -> None:
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        self._environment: dict[str, dict[str, Any]] = {}

    @property
    def session(self) -> requests.Session:
        """The pooled session, created on first use."""
        session = self._session
        if session is None:
            with self._lock:
                session = self._session
                if session is None:
                    session = requests.Session()
                    adapter = HTTPAdapter(pool_maxsize=_POOL_SIZE)
                    session.mount("http://", adapter)
                    session.mount("https://", adapter)
                    # Cookies set by a server are not wanted between
                    # independent calls.
                    session.cookies.set_policy(_NoCookies())
                    session.trust_env = False  # read once per URL instead
                    self._session = session
        return session

    def __getstate__(self) -> dict[str, Any]:
        # Connections and locks belong to one process: a copy or an unpickled
        # model opens its own.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def close(self) -> None:
        """Close pooled connections; the transport reopens them if used again."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def complete(self, request: Request) -> dict[str, Any]:
        """Send a non-streaming request; return the `chat.completion` dict."""
        reply: dict[str, Any] | None = None
        call = request.policy.start()
        for attempt in call.retrying():
            with attempt, call.passage():
                reply = self._complete_once(request)
        assert reply is not None
        return reply

    def _complete_once(self, request: Request) -> dict[str, Any]:
        try:
            with self._post(request) as response:
                _raise_for_status(response, request)
                body = response.content
        except requests.RequestException as exc:
            raise _network_error(exc, request) from None
        return read_json_reply(body, request.url)

    def stream(self, request: Request) -> Iterator[dict[str, Any]]:
        """Send a streaming request; yield its chunk dicts as they arrive."""
        opened: tuple[requests.Response, Iterator[bytes], ReplyStream, list[Any]]
        opened = None  # type: ignore[assignment]
        call = request.policy.start()
        for attempt in call.retrying():
            with attempt, call.passage():
                opened = self._open(request)
        response, received, reply, first = opened
        try:
            yield from first
            reply.check()
            try:
                for data in received:
                    yield from reply.feed(data)
                    reply.check()
            except requests.RequestException as exc:
                raise reply.fail(_network_error(exc, request)) from None
            yield from reply.close()
            reply.check()
        except DfeHubRateLimitError as error:
            call.throttled_late(error)
            raise
        finally:
            response.close()

    def _open(
        self, request: Request
    ) -> tuple[requests.Response, Iterator[bytes], ReplyStream, list[Any]]:
        """Send the request and read until the answer starts or ends."""
        reply = ReplyStream(request.url)
        response = None
        try:
            response = self._post(request)
            _raise_for_status(response, request)
            received = response.iter_content(chunk_size=None)
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

    def _post(self, request: Request) -> requests.Response:
        session = self.session
        return session.post(
            request.url,
            data=request.body,
            headers=request.headers,
            stream=True,
            timeout=(request.connect_timeout, request.read_timeout),
            **self._settings_from_environment(session, request),
        )

    def _settings_from_environment(
        self, session: requests.Session, request: Request
    ) -> dict[str, Any]:
        """Proxies, certificates and netrc credentials from the environment.

        `requests` reads them on every call, scanning the whole process
        environment twice; that was a third of a small call's time. Here they
        are read on the first call to a URL and kept, so proxy and CA-bundle
        variables set later in the process do not apply to that URL.
        """
        settings = self._environment.get(request.url)
        if settings is None:
            with self._lock:
                session.trust_env = True
                try:
                    found = session.merge_environment_settings(
                        request.url, {}, None, None, None
                    )
                    auth = requests.utils.get_netrc_auth(request.url)
                finally:
                    session.trust_env = False
            settings = {
                "proxies": found["proxies"],
                "verify": found["verify"],
                "cert": found["cert"],
            }
            if auth is not None:
                settings["auth"] = auth
            self._environment[request.url] = settings
        if "auth" in settings and "Authorization" in request.headers:
            # A key given to the model wins over netrc credentials.
            return {key: settings[key] for key in ("proxies", "verify", "cert")}
        return settings


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Refuse all cookies: each call stands alone."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        """Reject every cookie a server sets."""
        return False


def _raise_for_status(response: requests.Response, request: Request) -> None:
    if response.status_code < 300:
        return
    body = response.raw.read(ERROR_BODY_LIMIT, decode_content=True) or b""
    response.close()
    raise error_from_status(
        response.status_code,
        response.headers,
        body,
        url=display_url(request.url),
        secret=request.secret,
    )


def _network_error(exc: requests.RequestException, request: Request) -> DfeHubError:
    """Classify a `requests` failure; `_failures` words the error."""
    if isinstance(exc, requests.ConnectTimeout):
        kind = Failure.CONNECT_TIMEOUT
    elif isinstance(exc, requests.ReadTimeout) or _is_read_timeout(exc):
        kind = Failure.READ_TIMEOUT
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
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
    import urllib3.exceptions

    return any(isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args)
