"""A model's profile as the server describes it, on request.

`GET {base_url}/models` lists what a server serves, and some servers say more
there than the model's name does:

- vLLM's entries carry `max_model_len`, the context size the server was
  started with (`--max-model-len`, else the model's own), and
  `"owned_by": "vllm"` (vLLM's `ModelCard` in
  `vllm/entrypoints/openai/protocol.py`).
- llama.cpp's `llama-server` answers with one entry, its alias, with
  `"owned_by": "llamacpp"` and a `meta` object whose `n_ctx_train` is the
  context the loaded model was trained for (`tools/server/server.cpp`,
  `handle_models`). The server may be started with less (`-c`).

Both constrain an answer to a `json_schema` response format while decoding,
whatever model they serve, so a profile read from them says
`structured_output: True`. What the server does not say is taken from the
known profile of the name (see `_profiles`).

The request is made only by `ChatDfeHub.fetch_profile()` / `afetch_profile()`,
never from a property, and its answer is kept per endpoint, model and key for
the life of the process.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from langchain_dfehub._errors import (
    DfeHubConnectionError,
    DfeHubNotFoundError,
    DfeHubProtocolError,
    error_from_status,
)
from langchain_dfehub._profiles import default_profile
from langchain_dfehub._urls import display_url

if TYPE_CHECKING:
    import requests
    from langchain_core.language_models.model_profile import ModelProfile

    from langchain_dfehub._connection import Connection

# The servers whose `/models` names them, and what each does for every model.
_SERVER_FACTS: Mapping[str, Mapping[str, Any]] = {
    "vllm": {"structured_output": True},
    "llamacpp": {"structured_output": True},
}

_cache: dict[tuple[str, str, str], ModelProfile] = {}
_cache_lock = threading.Lock()


def models_url(base_url: str) -> str:
    """`{base_url}/models`, as OpenAI's API and compatible servers place it."""
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    path = path.removesuffix("/chat/completions") + "/models"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def cache_key(url: str, model: str, secret: str | None) -> tuple[str, str, str]:
    """Where a fetched profile is kept: the key only as a digest."""
    digest = hashlib.sha256((secret or "").encode()).hexdigest()
    return url, model, digest


def cached(key: tuple[str, str, str]) -> ModelProfile | None:
    """A copy of the profile fetched before for this key, if any."""
    with _cache_lock:
        profile = _cache.get(key)
    return None if profile is None else _copy(profile)


def remember(key: tuple[str, str, str], profile: ModelProfile) -> ModelProfile:
    """Keep a fetched profile; return a copy for the caller to own."""
    with _cache_lock:
        _cache[key] = _copy(profile)
    return profile


def forget_profiles(base_url: str) -> None:
    """Forget the profiles fetched from a server (the emulator's, restarted)."""
    url = models_url(base_url)
    with _cache_lock:
        for key in [key for key in _cache if key[0] == url]:
            del _cache[key]


def _copy(profile: ModelProfile) -> ModelProfile:
    return json.loads(json.dumps(profile))  # type: ignore[no-any-return]


def profile_from_reply(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    url: str,
    model: str,
    secret: str | None,
) -> ModelProfile:
    """The profile of `model` from a `/models` reply.

    Raises:
        DfeHubAPIError: (a subclass) for a non-2xx reply.
        DfeHubProtocolError: when the reply is not a model list.
    """
    if not 200 <= status < 300:
        raise error_from_status(status, headers, body, url=url, secret=secret)
    try:
        listing = json.loads(body)
        entries = [e for e in listing["data"] if isinstance(e, Mapping)]
    except (ValueError, KeyError, TypeError):
        msg = (
            f"{display_url(url)} did not answer with a model list"
            ' ({"data": [...]}); this server does not describe its models, so'
            " pass profile={...} to ChatDfeHub instead."
        )
        raise DfeHubProtocolError(msg) from None
    return profile_from_models(entries, model)


def profile_from_models(entries: list[Mapping[str, Any]], model: str) -> ModelProfile:
    """Merge what the server says of `model` over its known profile.

    The entry named `model` is used; llama.cpp, which serves the one model it
    loaded whatever the request names, lists that one under its alias.

    Raises:
        DfeHubNotFoundError: when the server does not list `model`.
    """
    entry = next((e for e in entries if e.get("id") == model), None)
    if entry is None and len(entries) == 1 and entries[0].get("owned_by") == "llamacpp":
        entry = entries[0]
    if entry is None:
        listed = ", ".join(sorted(str(e.get("id")) for e in entries)) or "none"
        msg = (
            f"The server lists no model named {model!r} (it lists: {listed});"
            " set model= to one of them."
        )
        raise DfeHubNotFoundError(msg, status_code=200)
    served = entry.get("id")
    known = default_profile(model)
    if known is None and isinstance(served, str):
        known = default_profile(served)
    profile: dict[str, Any] = dict(known or {})
    profile.update(_SERVER_FACTS.get(str(entry.get("owned_by")), {}))
    context = _context_size(entry)
    if context is not None:
        profile["max_input_tokens"] = context
    return profile  # type: ignore[return-value]


def _context_size(entry: Mapping[str, Any]) -> int | None:
    size = entry.get("max_model_len")  # vLLM
    meta = entry.get("meta")
    if size is None and isinstance(meta, Mapping):
        size = meta.get("n_ctx_train")  # llama.cpp
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    return None


def unreachable(url: str, exc: BaseException) -> DfeHubConnectionError:
    """The error for a model list that could not be fetched at all."""
    msg = (
        f"Could not fetch the model list from {display_url(url)}"
        f" ({type(exc).__name__}); check base_url and that the server is up."
    )
    return DfeHubConnectionError(msg)


def fetch(
    session: requests.Session,
    connection: Connection,
    url: str,
    headers: Mapping[str, str],
    timeout: tuple[float | None, float | None],
) -> tuple[int, Mapping[str, str], bytes]:
    """GET the model list with `requests`: status, headers, body."""
    import requests

    # A user's own session keeps its own TLS and proxy settings.
    settings = connection.requests_settings() if connection.http_client is None else {}
    try:
        response = session.get(
            url,
            headers=dict(headers),
            timeout=timeout,
            allow_redirects=False,
            **settings,
        )
    except requests.RequestException as exc:
        raise unreachable(url, exc) from None
    with response:
        return response.status_code, response.headers, response.content


async def afetch(
    connection: Connection,
    url: str,
    headers: Mapping[str, str],
    timeout: tuple[float | None, float | None],
) -> tuple[int, Mapping[str, str], bytes]:
    """GET the model list with `httpx`: status, headers, body.

    A user's own client is used as it is; otherwise a client for this one
    request, with the same TLS and proxy settings the chat calls use.
    """
    import httpx

    limits = httpx.Timeout(timeout[1], connect=timeout[0])
    try:
        if connection.http_async_client is not None:
            response = await connection.http_async_client.get(
                url, headers=dict(headers), timeout=limits
            )
        else:
            async with httpx.AsyncClient(
                verify=connection.ssl_context,
                proxy=connection.proxy,
                trust_env=False,
                timeout=limits,
            ) as client:
                response = await client.get(url, headers=dict(headers))
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from None
    return response.status_code, response.headers, response.content
