"""From a model's fields and a call's arguments to one `Request`.

Both transports send what this builds, so the body, the headers, the
timeouts, the retry policy and the connection settings of a call are decided
once, here, for the sync and the async path alike. The `GET /models` request
of `fetch_profile` is built here too, from the same settings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_dfehub._arguments import (
    CALL_SETTINGS,
    check_choices,
    merge_extra_body,
    sort_call_arguments,
    user_stacklevel,
)
from langchain_dfehub._connection import Connection, warn_unverified
from langchain_dfehub._gate import gate_for
from langchain_dfehub._messages import messages_to_dicts
from langchain_dfehub._retry import RetryPolicy
from langchain_dfehub._settings import (
    CallSettings,
    authorization,
    check_headers,
    check_key,
    header_values,
    hide_credential_headers,
    secret_forms,
    split_credentials,
)
from langchain_dfehub._stream_state import Request
from langchain_dfehub._urls import chat_completions_url
from langchain_dfehub._version import __version__

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from langchain_dfehub._model_fields import ChatDfeHubFields

# Fields sent in the body when the user set them, under the same name.
SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "max_tokens",
    "n",
    "logprobs",
    "top_logprobs",
)
# What a call's arguments may set in the body under a field's name.
_BODY_FIELDS = ("model", "stop", *SAMPLING_FIELDS)
_USER_AGENT = f"langchain-dfehub/{__version__}"
_STREAM_ACCEPT = "text/event-stream, application/json"


def build_request(
    model: ChatDfeHubFields,
    messages: Sequence[BaseMessage],
    stop: list[str] | None,
    /,
    *,
    stream: bool,
    **kwargs: Any,
) -> Request:
    """The chat-completions request of one call, with its policy and settings.

    `model` is positional-only: a call's `model=` argument is in `kwargs`.
    """
    body: dict[str, Any] = {"model": model.model}
    for name in SAMPLING_FIELDS:
        value = getattr(model, name)
        if value is not None:
            body[name] = value
    stop = stop if stop is not None else model.stop
    if stop:
        body["stop"] = stop
    body.update(model.model_kwargs)
    stream_usage = kwargs.pop("stream_usage", model.stream_usage)
    call_extra_body = kwargs.pop("extra_body", None)
    own, fields = sort_call_arguments(kwargs, type(model).model_fields, _BODY_FIELDS)
    body.update(fields)
    settings = CallSettings(
        **{name: own.get(name, getattr(model, name)) for name in CALL_SETTINGS}
    )
    merge_extra_body(body, model.extra_body, call_extra_body)
    check_choices(body, stream=stream)
    body["messages"] = messages_to_dicts(
        messages, reasoning_in_history=model.reasoning_in_history
    )
    body["stream"] = stream
    if stream and stream_usage:
        body["stream_options"] = {"include_usage": True}
    connect, read = settings.connect_and_read
    url = chat_completions_url(model.base_url)
    header, secret = authorization(model.api_key, model._url_credentials)
    # A header set after the model was built is hidden now, as it is sent.
    credentials = hide_credential_headers(model.default_headers)
    if model.verify is False and not model._unverified_warned:
        # Set on a copy or after the model was built: warned of now.
        model._unverified_warned = True
        warn_unverified(model.base_url, user_stacklevel())
    return Request(
        url=url,
        headers=request_headers(model, stream, header),
        body=json_body(body),
        stream=stream,
        connect_timeout=connect,
        read_timeout=read,
        secret=secret_forms(header, credentials),
        policy=RetryPolicy(
            max_retries=settings.max_retries,
            max_retry_wait=settings.max_retry_wait,
            throttle_budget=settings.throttle_budget,
            gate=gate_for(url, secret, model._gate_store()),
            model=body["model"] if isinstance(body.get("model"), str) else None,
            throttle_scope=model.throttle_scope,
        ),
        connection=connection_settings(model),
        deadline=settings.deadline,
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


def json_body(body: dict[str, Any]) -> bytes:
    """The request body as JSON, refusing numbers JSON cannot carry."""
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False)
    except ValueError:
        msg = (
            "A request parameter is NaN or infinite, which JSON cannot carry;"
            " check the numbers given to the model or the call."
        )
        raise ValueError(msg) from None
    return text.encode()
