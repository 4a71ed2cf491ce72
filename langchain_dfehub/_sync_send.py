"""Sending one request on a session of our own, through its adapter.

`Session.request` does a round of work on every call that cannot change
anything for the sessions the sync transport makes (`_transport`): it merges
the session's settings and reads the environment (proxies, CA bundle,
netrc; these sessions have `trust_env` off, their settings were read once
into the `Connection`), builds a cookie jar (they keep no cookies:
`NoCookies`), runs response hooks (they have none) and looks for a redirect
to follow (a POST is never sent elsewhere). Together that is a good part of
a short call's time on the client.

So the request is prepared here as `Session.prepare_request` would prepare
it (the session's default headers merged in the same order, the URL and the
body prepared by `requests` itself) and handed to the session's own adapter,
with the same per-call settings: the same pools and connections, the same
bytes on the wire. A user's own session (`http_client=`) is not sent this
way: it goes through `Session.request`, with its hooks, cookies and
environment, as `requests` would use it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import requests
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict

from langchain_dfehub._sync_pools import DfeHubAdapter, keep


@functools.lru_cache(maxsize=64)
def _prepared_url(url: str) -> str:
    """The URL as `requests` prepares it (quoted, IDNA host), once per URL.

    A URL `requests` refuses raises here on every call (exceptions are not
    cached), as it would from `Session.request`.
    """
    prepared = PreparedRequest()
    prepared.prepare_url(url, None)
    assert prepared.url is not None
    return prepared.url


def _merged(
    headers: tuple[tuple[str, str], ...], defaults: tuple[tuple[str, str | bytes], ...]
) -> tuple[tuple[str, Any], ...]:
    """The session's headers, then the call's, as `requests` merges and checks them."""
    merged: CaseInsensitiveDict[str | bytes] = CaseInsensitiveDict(defaults)
    merged.update(headers)
    for name in [name for name, value in merged.items() if value is None]:
        del merged[name]  # a None value removes a session header
    checked = PreparedRequest()
    checked.prepare_headers(merged)
    return tuple(checked.headers.items())


def prepare(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    kept: dict[Any, Any] | None = None,
) -> PreparedRequest:
    """The POST as `session.prepare_request` prepares it for our sessions.

    `kept` keeps the merged and checked headers per distinct set (a model
    sends the same ones on every call). It is the session adapter's: the
    headers hold the key, which must live no longer than the model's
    session. Headers `requests` refuses raise on every call, never kept.
    """
    prepared = PreparedRequest()
    prepared.method = "POST"
    prepared.url = _prepared_url(url)
    key = (tuple(headers.items()), tuple(session.headers.items()))
    merged = None if kept is None else kept.get(key)
    if merged is None:
        merged = _merged(*key)
        if kept is not None:
            keep(kept, key, merged)
    prepared.headers = CaseInsensitiveDict(merged)
    prepared.headers["Content-Length"] = str(len(body))
    prepared.body = body
    return prepared


def post(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: tuple[float | None, float | None],
    settings: dict[str, Any],
) -> requests.Response:
    """POST `body` on our own `session`; the reply's body is left to stream.

    `settings` are the per-call `verify`, `cert` and `proxies`
    (`Connection.requests_settings`).
    """
    adapter = session.get_adapter(_prepared_url(url))
    kept = adapter.kept_headers if isinstance(adapter, DfeHubAdapter) else None
    prepared = prepare(session, url, body, headers, kept)
    start = time.perf_counter()
    response = adapter.send(
        prepared,
        stream=True,
        timeout=timeout,  # type: ignore[arg-type]  # (None, None) is accepted
        **settings,
    )
    response.elapsed = timedelta(seconds=time.perf_counter() - start)
    return response
