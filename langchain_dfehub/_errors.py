"""The exceptions ChatDfeHub raises, and the mapping from HTTP replies to them.

One base class, `DfeHubError`, so that callers can catch everything from this
package in one clause; subclasses say what happened. Every message says what to
do next and never contains a key, a header value or a request body.

Each class is also the matching `langchain_core.exceptions` type (`ModelError`
and its subclasses), so LangChain's agent middleware, which decides on those
types, treats our errors as it treats any provider's: its retry middleware
reads `is_retryable`, its summarisation middleware reacts to
`ContextOverflowError` (by shortening the summary it asked for).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelRefusalError,
    ModelTimeoutError,
)

from langchain_dfehub._error_kinds import Kind, kind_of
from langchain_dfehub._throttle import (
    is_throttle_text,
    read_throttle,
    wait_from_retry_after,
)
from langchain_dfehub._urls import display_url, server_name

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

_EXCERPT_CHARS = 200
# How much of a non-JSON body is read for its excerpt: enough for any error
# page's first words, and a bound on the work a huge body can cause.
_SCAN_CHARS = 65536
# `[^<>]`, not `[^>]`: a body full of unclosed "<" stays linear to strip.
_TAG = re.compile(r"<[^<>]*>")
# Script and style bodies are not text a reader wants; an unclosed one runs
# to the end of the page.
_HIDDEN_BLOCK = re.compile(
    r"<(script|style)\b.*?(?:</\1\s*>|\Z)", re.DOTALL | re.IGNORECASE
)
_SPACE = re.compile(r"\s+")

# What to blank out of a message: a key, or every form of the credentials.
Secret = str | tuple[str, ...] | None


class DfeHubError(ModelError):
    """Base class of every error raised by ChatDfeHub; a LangChain `ModelError`.

    Attributes:
        status_code: The HTTP status of the reply, or None when the failure
            happened without one (network, malformed stream).
        received_chars: How many characters of the answer had already been
            delivered to the caller when the failure happened. A failure after
            text was delivered is never retried, so the caller never receives
            the same text twice.
        attempts: How many requests were made before giving up.
        retry_after: Seconds the server asked us to wait before trying again
            (from a `detail` text or a `Retry-After` header), or None.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.received_chars = 0
        self.attempts = 1

    @property
    def is_retryable(self) -> bool:
        """LangChain's name for `retryable`: whether trying again may succeed.

        Follows `retryable`, so a failure after text was delivered, or a read
        timeout, is not retried by LangChain's middleware either.
        """
        return self.retryable

    @is_retryable.setter
    def is_retryable(self, value: bool) -> None:
        self.retryable = value

    def __str__(self) -> str:
        text = self.message
        if self.received_chars:
            text += (
                f" The stream failed after {self.received_chars} characters of the"
                " answer had been delivered; it was not retried, so that the text"
                " is not repeated."
            )
        if self.attempts > 1:
            text += f" (Gave up after {self.attempts} attempts.)"
        return text


class DfeHubAPIError(DfeHubError):
    """The server answered with an HTTP error status (other than 429).

    Attributes:
        server_message: The server's own explanation, as it gave it (trimmed).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        server_message: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, retry_after=retry_after)
        self.server_message = server_message


class DfeHubInvalidRequestError(DfeHubAPIError, ModelInvalidRequestError):
    """The server rejected the request as invalid (400, 413, 422 and most 4xx)."""


class DfeHubContextOverflowError(DfeHubInvalidRequestError, ContextOverflowError):
    """The prompt is longer than the model's context size.

    Servers say it with a 400 and their own wording (llama.cpp, vLLM, OpenAI
    and others are recognised); send fewer or shorter messages, or summarise.
    """


class DfeHubNotFoundError(DfeHubAPIError, ModelNotFoundError):
    """The model (or the endpoint) does not exist on the server (404)."""


class DfeHubAuthenticationError(DfeHubAPIError, ModelAuthenticationError):
    """The server refused the credentials (401) or the permission (403)."""


class DfeHubPermissionDeniedError(
    DfeHubAuthenticationError, ModelPermissionDeniedError
):
    """The key is valid but not allowed this model or endpoint (403).

    A `DfeHubAuthenticationError` too, as 403 always was here.
    """


class DfeHubServerError(DfeHubAPIError, ModelAPIError):
    """The server failed (5xx); retried, since such failures are often passing."""

    retryable = True


class DfeHubRateLimitError(DfeHubError, ModelRateLimitError):
    """The server throttled the request (a 429 or a `detail` line).

    Attributes:
        detail: The server's throttle text.
        waited: Seconds the call spent waiting at the service's gate before
            this error ended it.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message, status_code=status_code, retry_after=retry_after)
        self.detail = detail
        self.waited = 0.0


class DfeHubTimeoutError(DfeHubError, ModelTimeoutError, TimeoutError):
    """The server did not connect, or went silent mid-reply, for too long.

    Attributes:
        phase: `"connect"` (retried: the request never reached the server) or
            `"read"` (not retried: the server may still be working on it).
    """

    def __init__(self, message: str, *, phase: str) -> None:
        super().__init__(message)
        self.phase = phase
        self.retryable = phase == "connect"


class DfeHubConnectionError(DfeHubError, ModelConnectionError, ConnectionError):
    """The connection could not be made, or was cut before the reply ended."""

    retryable = True


class DfeHubProtocolError(DfeHubError):
    """The server's reply does not follow the chat-completions wire format."""


class DfeHubRefusalError(DfeHubError, ModelRefusalError):
    """The model declined: a reply with `refusal` text, or a content-filter stop.

    Raised by `with_structured_output`, which needs the content the model
    withheld; a plain call returns the message, with its `refusal` block.
    Retrying the same request is unlikely to help: rephrase it.

    Attributes:
        raw_message: The reply that carried the refusal.
    """

    def __init__(self, message: str, *, raw_message: BaseMessage | None = None) -> None:
        super().__init__(message)
        self.raw_message = raw_message


def _excerpt(text: str, secret: Secret = None) -> str:
    """Return a short, single-line excerpt of a text, the key blanked out.

    The key is blanked before the text is cut, so a cut cannot leave part of
    it behind.
    """
    text = _scrub(_SPACE.sub(" ", text).strip(), secret)
    if len(text) > _EXCERPT_CHARS:
        text = text[: _EXCERPT_CHARS - 1] + "…"
    return text


def _page_text(text: str) -> str:
    """Return the readable text of a non-JSON body, such as a proxy's HTML page."""
    text = text[:_SCAN_CHARS]
    text = _HIDDEN_BLOCK.sub(" ", text)
    return html.unescape(_TAG.sub(" ", text))


def server_message(body: bytes, *, secret: Secret = None) -> tuple[str, Any]:
    """Return the server's own message from an error body, and the parsed JSON.

    Understands `{"detail": ...}` (the DfeHub service and FastAPI servers),
    `{"error": {"message": ...}}` (OpenAI-compatible servers), `{"error": "..."}`
    and `{"message": ...}`; anything else yields a short text excerpt, with
    HTML tags stripped. A `secret` the server echoes is blanked out.
    """
    text = body.decode("utf-8-sig", errors="replace")
    try:
        parsed: Any = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        # Blanked before the scan limit too, which could otherwise cut the key.
        return _excerpt(_page_text(_scrub(text, secret)), secret), None
    if isinstance(parsed, dict):
        for key in ("detail", "error", "message"):
            value = parsed.get(key)
            if isinstance(value, dict):
                value = value.get("message", value)
            if value:
                if not isinstance(value, str):
                    value = json.dumps(value, ensure_ascii=False)
                return _excerpt(value, secret), parsed
    return _excerpt(text, secret), parsed


def _scrub(text: str, secret: Secret) -> str:
    """Blank out the key, should a server echo it in a message.

    Only the key as a whole token is blanked: not where its text is part of
    a longer word or number. A placeholder key such as `"x"` or `"1"`, as
    local servers are used with, must not turn "exceeds" into "e***ceeds" or
    mangle an address. `secret` may be several: every form a credential
    travels in (see `_settings.secret_forms`).
    """
    for one in (secret,) if isinstance(secret, str) else secret or ():
        if one and one in text:
            text = _token_pattern(one).sub("***", text)
    return text


def _token_pattern(secret: str) -> re.Pattern[str]:
    # A token is bounded by characters that cannot continue it. A dot joins
    # tokens ("127.0.0.1", "3.5") when a token character is on its other
    # side, and ends one otherwise ("... key sk-abc." ends a sentence).
    return re.compile(rf"(?<![\w-])(?<![\w-]\.){re.escape(secret)}(?![\w-])(?!\.[\w-])")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Look a header up by name, whatever its case in `headers`."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


_ADVICE = {
    400: "The server rejected the request; check the messages and parameters.",
    408: "The server timed out waiting for the request; ChatDfeHub retries it"
    " up to max_retries times.",
    401: "Check the API key (DFEHUB_API_KEY or api_key=).",
    403: "The key is not allowed to use this model or endpoint.",
    404: "Check base_url (DFEHUB_BASE_URL) and the model name.",
    413: "The request is too large; send fewer or shorter messages.",
    422: "The server could not process the request body; check the parameters.",
}


# Advice for the kinds read from the words of a reply, whatever its status.
_KIND_ADVICE = {
    Kind.CONTEXT_OVERFLOW: (
        "The prompt is longer than the model's context size: send fewer or"
        " shorter messages (trim or summarise the history), lower max_tokens, or"
        " use a server or model with a larger context."
    ),
    Kind.MODEL_NOT_FOUND: (
        "Check the model name (model=) against the models the server serves,"
        " and base_url (DFEHUB_BASE_URL)."
    ),
}


def _status_class(status: int, kind: Kind) -> type[DfeHubAPIError]:
    """The class for an HTTP error status (other than 429) and its kind."""
    if kind is Kind.CONTEXT_OVERFLOW:
        return DfeHubContextOverflowError
    if kind is Kind.MODEL_NOT_FOUND or status == 404:
        return DfeHubNotFoundError
    if status == 401:
        return DfeHubAuthenticationError
    if status == 403:
        return DfeHubPermissionDeniedError
    if status >= 500 or status == 408:
        # 408: the server gave up waiting for the request, which it never
        # processed; as safe to send again as a 5xx.
        return DfeHubServerError
    if 400 <= status < 500:
        return DfeHubInvalidRequestError
    return DfeHubAPIError


def rate_limit_error(
    detail: str,
    *,
    status_code: int | None,
    retry_after_header: str | None = None,
    url: str | None = None,
) -> DfeHubRateLimitError:
    """Build the error for a throttled request, reading the wait it asks for.

    The wait comes from the text's wait phrase ("Expected available in 3
    seconds."), else from the `Retry-After` header; a number elsewhere in
    the text is not a wait. `url` names the server in the message.
    """
    signal = read_throttle(detail, retry_after_header)
    return _throttled(detail, signal.wait, status_code, url)


def detail_error(
    detail: str, *, status_code: int | None, url: str | None = None
) -> DfeHubError:
    """The error for a `{"detail": ...}` object inside a 2xx reply or stream.

    The service sent its throttle this way; a `detail` that is no throttle
    (no wait phrase, not DRF's "Request was throttled") is the error it says
    it is: raised at once with the server's words, never slept on.
    """
    if is_throttle_text(detail):
        return rate_limit_error(detail, status_code=status_code, url=url)
    return DfeHubAPIError(
        f"{server_name(url)} answered with an error instead of a completion:"
        f" {_excerpt(detail)!r}. It is not a throttle, so it was not retried;"
        " check the request and the server's message.",
        status_code=status_code,
        server_message=_excerpt(detail),
    )


def _throttled(
    detail: str, wait: float | None, status_code: int | None, url: str | None = None
) -> DfeHubRateLimitError:
    if wait is None:
        asked = "it gave no usable wait"
    elif wait <= 0:
        asked = "it named a wait already over"
        wait = 0.0
    else:
        asked = f"it asked to wait {wait:g} s"
    message = (
        f"{server_name(url)} throttled the request ({asked}):"
        f" {_excerpt(detail)!r}. Retry later, or raise max_retry_wait /"
        " throttle_budget to let ChatDfeHub wait longer."
    )
    return DfeHubRateLimitError(
        message, status_code=status_code, retry_after=wait, detail=detail
    )


def error_from_status(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    url: str,
    secret: Secret = None,
) -> DfeHubError:
    """Map a non-2xx reply to the typed error that says what to do next.

    A `secret` (the API key) the server echoes is blanked out of the message,
    and `url` is shown without user info or query.
    """
    said, parsed = server_message(body, secret=secret)
    retry_after_header = _header(headers, "retry-after")
    if status == 429:
        # Whatever the words, a 429 is a throttle; the wait is read from a
        # wait phrase in them, else from the header ("Limit 10000 tokens per
        # min" names no wait).
        detail = parsed.get("detail") if isinstance(parsed, dict) else None
        text = _scrub(detail, secret) if isinstance(detail, str) else said
        return rate_limit_error(
            text or "(empty body)",
            status_code=status,
            retry_after_header=retry_after_header,
            url=url,
        )
    if 300 <= status < 400:
        return _redirect_error(status, headers, url, secret)
    advice = _ADVICE.get(status)
    if advice is None:
        advice = (
            "The server failed; try again later. ChatDfeHub retries such"
            " failures up to max_retries times."
            if status >= 500
            else "Check the request and the server's message."
        )
    kind = kind_of(status, parsed, said)
    cls = _status_class(status, kind)
    advice = _KIND_ADVICE.get(kind, advice)
    said_text = said or "(empty body)"
    stop = "" if said_text.endswith((".", "!", "?")) else "."
    message = (
        f"{server_name(url)} returned HTTP {status} for {display_url(url)}:"
        f" {said_text}{stop} {advice}"
    )
    message = _scrub(message, secret)
    # A 503 may say when to come back; the retry policy honours it like a
    # throttle wait.
    retry_after = None
    if retry_after_header is not None:
        retry_after = wait_from_retry_after(retry_after_header)
    return cls(
        message, status_code=status, server_message=said, retry_after=retry_after
    )


def _redirect_error(
    status: int, headers: Mapping[str, str], url: str, secret: Secret
) -> DfeHubAPIError:
    """A redirect, which ChatDfeHub does not follow: it says where to point.

    Following it would re-send the request, with its key, to wherever the
    server says (another host, or a GET without the body); a moved API is
    better fixed once in base_url. The target is shown without credentials
    or query, nor the key, should the server have put it in the path.
    """
    location = _header(headers, "location")
    target = _scrub(display_url(urljoin(url, location or "")), secret)
    where = f" to {target}" if location else " (no Location)"
    message = (
        f"{display_url(url)} answered HTTP {status}, a redirect{where}."
        " ChatDfeHub does not follow redirects, so that the request and its"
        " credentials go nowhere but base_url; if the API has moved, set"
        " base_url (or DFEHUB_BASE_URL) to its new address."
    )
    return DfeHubAPIError(message, status_code=status)
