"""The typed errors for network failures, worded once for both transports.

`requests` and `httpx` name their failures differently; each transport only
classifies its library's exception into one of the kinds below, and the words
the user reads come from here, so the sync and async paths say the same thing.
"""

from __future__ import annotations

from enum import Enum

from langchain_dfehub._errors import (
    DfeHubConnectionError,
    DfeHubError,
    DfeHubProtocolError,
    DfeHubTimeoutError,
)
from langchain_dfehub._stream_state import Request
from langchain_dfehub._urls import display_url, network_reason


class Failure(Enum):
    """What went wrong on the network, whatever the library called it."""

    CONNECT_TIMEOUT = "connect timeout"
    READ_TIMEOUT = "read timeout"
    CUT = "connection cut mid-reply"
    BROKEN_REPLY = "reply that breaks HTTP"
    INVALID_URL = "invalid URL"
    TLS = "TLS failure"
    UNREACHABLE = "unreachable"


def network_error(kind: Failure, exc: BaseException, request: Request) -> DfeHubError:
    """The typed error for a network failure, with what to do about it.

    A failure once the deadline has passed is the deadline's: its timer cuts
    the connection the call was waiting on, whatever the call was waiting for.
    """
    if request.out_of_time():
        return request.deadline_error()
    where = display_url(request.url)
    reason = network_reason(exc)
    if kind is Failure.CONNECT_TIMEOUT:
        return DfeHubTimeoutError(
            f"Could not connect to {where} within {request.connect_timeout} s"
            f" ({reason}). Check that the server is up, or raise the connect"
            " timeout (timeout=(connect, read)).",
            phase="connect",
        )
    if kind is Failure.READ_TIMEOUT:
        return DfeHubTimeoutError(
            f"{where} sent nothing for {request.read_timeout} s, so the request"
            " was abandoned. The server may be overloaded; retry later or raise"
            " the read timeout (timeout=(connect, read)).",
            phase="read",
        )
    if kind is Failure.CUT:
        return DfeHubConnectionError(
            f"The connection to {where} was cut before the reply was complete"
            f" ({reason}). Retry the request."
        )
    if kind is Failure.BROKEN_REPLY:
        # Not retried: a server (or proxy) that speaks broken HTTP does not
        # mend between attempts. The reply itself is not quoted: it may echo
        # the request's headers, key included.
        return DfeHubProtocolError(
            f"The reply from {where} is not valid HTTP/1.1 (its status line,"
            " headers, framing or content encoding are broken), so it was"
            " abandoned and not retried. Check that base_url points to the"
            " API's HTTP port (https:// for a TLS port), and any proxy between."
        )
    if kind is Failure.TLS:
        # Not retried: a certificate does not fix itself between attempts.
        error = DfeHubConnectionError(
            f"The TLS connection to {where} failed: {reason}. This is a"
            " certificate problem, not a network one. If the server uses a"
            " private or self-signed certificate, set verify= to its CA bundle"
            " (or SSL_CERT_FILE / REQUESTS_CA_BUNDLE); verify=False turns the"
            " check off, which is unsafe outside tests."
        )
        error.retryable = False
        return error
    if kind is Failure.INVALID_URL:
        error = DfeHubConnectionError(
            f"base_url gives an invalid URL ({where}). Set base_url (or"
            " DFEHUB_BASE_URL) to a URL like https://host/api/openai/v1."
        )
        error.retryable = False
        return error
    proxy = request.connection.proxy
    if proxy and request.connection.http_client is None:
        # The proxy may be what is unreachable: name it (never its password).
        return DfeHubConnectionError(
            f"Could not reach {where} through the proxy {display_url(proxy)}"
            f" ({reason}). Check that the proxy is running (proxy=, or"
            " HTTPS_PROXY / HTTP_PROXY / ALL_PROXY), and base_url (DFEHUB_BASE_URL)."
        )
    return DfeHubConnectionError(
        f"Could not reach {where} ({reason}). Check base_url (DFEHUB_BASE_URL)"
        " and that the server is running."
    )
