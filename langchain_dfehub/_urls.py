"""Building the endpoint URL, and describing URLs and failures safely.

Error messages name the endpoint so the reader knows which server failed, but a
base URL may carry credentials (`https://user:token@host/...`) or a key in its
query string; `display_url` strips both. `network_reason` digs the operating
system's own words ("Connection refused") out of a library's nested exception,
instead of printing its whole chain.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

_CHAT_PATH = "/chat/completions"


# The URL functions are pure and run on every request with the same few
# URLs: a small cache takes them off the path of a call.
@functools.lru_cache(maxsize=64)
def chat_completions_url(base_url: str) -> str:
    """The chat-completions endpoint under a base URL.

    Raises:
        ValueError: when the base URL is not an http(s) URL with a host.
    """
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = (
            f"base_url must be an http:// or https:// URL with a host, got"
            f" {display_url(base_url)!r}; for example"
            " https://chat.dfehub.com/api/openai/v1."
        )
        raise ValueError(msg)
    path = parts.path.rstrip("/")
    if not path.endswith(_CHAT_PATH):
        path += _CHAT_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


@functools.lru_cache(maxsize=64)
def display_url(url: str) -> str:
    """The URL without user info, query or fragment: safe to print."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def service_name(url: str) -> str:
    """The host (and port) that names a service in messages: `127.0.0.1:8080`."""
    parts = urlsplit(display_url(url))
    return parts.netloc or "the server"


def network_reason(exc: BaseException) -> str:
    """The innermost operating-system reason for a network failure."""
    best: str | None = None
    for current in linked_errors(exc):
        if isinstance(current, ssl.SSLError):
            # Its errno is the library's code, not the system's: the errno's
            # words ("Operation not permitted") would mislead.
            return tls_reason(current)
        if isinstance(current, OSError) and (current.errno or current.strerror):
            # The errno's own words: asyncio puts the address in strerror.
            best = os.strerror(current.errno) if current.errno else current.strerror
    return best or type(exc).__name__


def is_tls_failure(exc: BaseException) -> bool:
    """Whether a library's network failure is, at heart, a TLS failure."""
    return any(isinstance(current, ssl.SSLError) for current in linked_errors(exc))


def tls_reason(exc: ssl.SSLError) -> str:
    """The words of a TLS failure: why a certificate was refused, if it was."""
    said = getattr(exc, "verify_message", None) or exc.reason or exc.strerror
    return str(said or type(exc).__name__)


def linked_errors(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps, whatever the library's way to wrap."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (current.__cause__, current.__context__, *current.args):
            if isinstance(linked, BaseException):
                pending.append(linked)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)


# The public service keeps its name in messages; any other server is named by
# its address, so a message about a local llama.cpp server does not blame DfeHub.
_SERVICE_HOST = "chat.dfehub.com"


def server_name(url: str | None) -> str:
    """How an error message names the server behind `url`.

    `"DfeHub (chat.dfehub.com)"` for the public service, `"The server at
    127.0.0.1:8080"` for any other, `"The server"` when the URL is unknown.
    """
    if not url:
        return "The server"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "The server"
    if not host:
        return "The server"
    if host == _SERVICE_HOST:
        return f"DfeHub ({host})"
    if ":" in host:
        host = f"[{host}]"
    return (
        f"The server at {host}:{port}" if port is not None else f"The server at {host}"
    )
