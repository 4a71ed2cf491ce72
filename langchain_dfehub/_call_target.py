"""Where a model's calls go and what they carry, worked out once per setting.

The URL, the headers, the forms of the credential to blank out of errors,
the name of the throttle gate and the connection settings depend on the
model's fields only, never on a call's arguments. Working them out (and
checking the key and the headers) on every call was a good part of what a
short call costs on the client. A model keeps them (`TargetCache`) with the
field values they were made from, and makes them again whenever one of
those values differs: a field set after the model was built, a header dict
changed in place, a copy with other values. So a value that must be refused
is refused on every call, as before, and never kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_dfehub._connection import Connection
from langchain_dfehub._settings import (
    authorization,
    check_headers,
    check_key,
    header_values,
    hide_credential_headers,
    secret_forms,
    split_credentials,
)
from langchain_dfehub._urls import chat_completions_url
from langchain_dfehub._version import __version__

if TYPE_CHECKING:
    from langchain_dfehub._model_fields import ChatDfeHubFields

_USER_AGENT = f"langchain-dfehub/{__version__}"
_STREAM_ACCEPT = "text/event-stream, application/json"


@dataclass(frozen=True, eq=False)
class CallTarget:
    """What every call of a model with given settings shares.

    Attributes:
        url: The chat-completions URL.
        headers: The headers of a call that does not stream.
        stream_headers: The headers of a call that streams.
        secret: Every form the credentials travel in, to blank from errors.
        key_digest: A digest of the key, naming the call's gate (never the key).
        store: The `gate` setting with its password: where the gate lives.
        connection: The connection settings.
    """

    url: str
    headers: dict[str, str]
    stream_headers: dict[str, str]
    secret: tuple[str, ...]
    key_digest: str
    store: str | None
    connection: Connection

    def __repr__(self) -> str:
        return f"CallTarget(url={self.url!r})"  # the headers carry the key


def _settings_of(model: ChatDfeHubFields) -> tuple[Any, ...]:
    """The field values a target is made from, as they are now.

    A header dict is copied: a change made in place to the model's dict
    then differs from the copy kept with the target.
    """
    private = model.__pydantic_private__ or {}
    headers = model.default_headers
    return (
        model.base_url,
        model.api_key,
        private.get("_url_credentials"),
        dict(headers) if headers is not None else None,
        model.gate,
        private.get("_gate_url"),
        model.proxy,
        private.get("_proxy_url"),
        model.verify,
        model.cert,
        model.http_client,
        model.http_async_client,
    )


class TargetCache:
    """A model's `CallTarget`, kept with the settings it was made from.

    Lock-free: the settings and their target are replaced as one tuple, so
    a thread reads either the old pair or the new one. Copies of a model
    may share the cache: each compares its own settings with the kept ones.
    """

    def __init__(self) -> None:
        self._kept: tuple[tuple[Any, ...], CallTarget] | None = None

    def get(self, model: ChatDfeHubFields) -> CallTarget:
        """The target for the model's settings now, made if they changed."""
        settings = _settings_of(model)
        kept = self._kept
        if kept is not None and kept[0] == settings:
            return kept[1]
        target = make_target(model)  # raises for a value that must be refused
        self._kept = (settings, target)
        return target

    def __deepcopy__(self, memo: dict[int, Any]) -> TargetCache:
        return TargetCache()

    def __getstate__(self) -> dict[str, Any]:
        return {}  # made again where the model lands

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]


def make_target(model: ChatDfeHubFields) -> CallTarget:
    """Work out a model's target from its fields (and the environment)."""
    from langchain_dfehub._gate import key_digest  # the gate loads on first call

    url = chat_completions_url(model.base_url)
    header, secret = authorization(model.api_key, model._url_credentials)
    # A header set after the model was built is hidden now, as it is sent.
    credentials = hide_credential_headers(model.default_headers)
    return CallTarget(
        url=url,
        headers=request_headers(model, False, header),
        stream_headers=request_headers(model, True, header),
        secret=secret_forms(header, credentials),
        key_digest=key_digest(secret),
        store=model._gate_store(),
        connection=connection_settings(model),
    )


def connection_settings(model: ChatDfeHubFields) -> Connection:
    """The model's connection settings, decided once and kept (`_connection`)."""
    return model._connections.get(
        chat_completions_url(model.base_url),
        verify=model.verify,
        cert=model.cert,
        proxy=proxy_to_use(model),
        http_client=model.http_client,
        http_async_client=model.http_async_client,
    )


def proxy_to_use(model: ChatDfeHubFields) -> str | None:
    """The proxy field, with the credentials taken out of it put back."""
    hidden = model._proxy_url
    if hidden is not None and model.proxy:
        full = hidden.get_secret_value()
        if split_credentials(full)[0] == model.proxy:
            return full
    return model.proxy


def request_headers(
    model: ChatDfeHubFields, stream: bool, authorization: str | None
) -> dict[str, str]:
    """The HTTP headers of a request: ours, the credential, the user's."""
    headers = {
        "Content-Type": "application/json",
        # Strict content negotiation (Django REST Framework and others)
        # answers 406 to a request that accepts only `text/event-stream`;
        # naming JSON too is accepted everywhere, as the openai SDK does.
        "Accept": _STREAM_ACCEPT if stream else "application/json",
        "User-Agent": _USER_AGENT,
    }
    # Checked again on each call: a copy with new values, or a field set
    # after the model was built, was not checked then; sent, such a value
    # would be reported as an unreachable server, and retried.
    if authorization:
        check_key(authorization)
        headers["Authorization"] = authorization
    if model.default_headers:
        check_headers(model.default_headers)
        headers.update(header_values(model.default_headers))
    return headers
