"""Each library's network failures map to the same typed errors.

Connect timeouts cannot be provoked on loopback (a local connect either
succeeds or is refused at once), so the mapping is specified here on the
libraries' own exception objects; the failures a local server can cause are
exercised end to end in test_retries.py.
"""

from __future__ import annotations

import httpx
import pytest
import requests
import urllib3.exceptions

from langchain_dfehub import DfeHubConnectionError, DfeHubTimeoutError
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
        (httpx.RemoteProtocolError("cut"), "was cut"),
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
