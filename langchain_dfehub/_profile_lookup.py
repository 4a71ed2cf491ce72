"""`fetch_profile`: a model's profile asked of its server, once per process.

The request is built from the model's own settings (its headers, timeouts
and connection, as `_request_builder` builds a chat request's), sent by
`_server_profile`'s `fetch`/`afetch`, read by its `profile_from_reply`, and
kept in its cache. Here the pieces are put in order, for both paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from langchain_dfehub._call_target import connection_settings, request_headers
from langchain_dfehub._connection import Connection
from langchain_dfehub._server_profile import (
    afetch,
    cache_key,
    cached,
    fetch,
    models_url,
    profile_from_reply,
    remember,
)
from langchain_dfehub._settings import authorization

if TYPE_CHECKING:
    from langchain_core.language_models.model_profile import ModelProfile

    from langchain_dfehub._model_fields import ChatDfeHubFields


def fetch_profile(model: ChatDfeHubFields, *, refresh: bool) -> ModelProfile:
    """The server's profile of `model`, set as its `profile` (sync path)."""
    ask = profile_request(model)
    profile = None if refresh else cached(ask.key)
    if profile is None:
        session = model._transport.session(ask.connection)
        reply = fetch(session, ask.connection, ask.url, ask.headers, ask.timeout)
        profile = remember(ask.key, read_profile(model, *reply))
    model.profile = profile
    return profile


async def afetch_profile(model: ChatDfeHubFields, *, refresh: bool) -> ModelProfile:
    """The async twin of `fetch_profile` (httpx)."""
    ask = profile_request(model)
    profile = None if refresh else cached(ask.key)
    if profile is None:
        reply = await afetch(ask.connection, ask.url, ask.headers, ask.timeout)
        profile = remember(ask.key, read_profile(model, *reply))
    model.profile = profile
    return profile


class ProfileRequest(NamedTuple):
    """`GET {base_url}/models` as `fetch_profile` sends it, and its cache key."""

    url: str
    key: tuple[str, str, str]
    headers: dict[str, str]
    timeout: tuple[float | None, float | None]
    connection: Connection


def profile_request(model: ChatDfeHubFields) -> ProfileRequest:
    """The request that asks the server for the model's profile."""
    url = models_url(model.base_url)
    header, secret = authorization(model.api_key, model._url_credentials)
    headers = request_headers(model, stream=False, authorization=header)
    del headers["Content-Type"]  # a GET has no body
    connect, read = (
        model.timeout if isinstance(model.timeout, tuple) else (model.timeout,) * 2
    )
    key = cache_key(url, model.model, secret)
    return ProfileRequest(
        url, key, headers, (connect, read), connection_settings(model)
    )


def read_profile(
    model: ChatDfeHubFields, status: int, headers: Mapping[str, str], body: bytes
) -> ModelProfile:
    """The profile in the server's answer to `profile_request`."""
    _, secret = authorization(model.api_key, model._url_credentials)
    return profile_from_reply(
        status,
        headers,
        body,
        url=models_url(model.base_url),
        model=model.model,
        secret=secret,
    )
