"""From a model's fields and a call's arguments to one `Request`.

Both transports send what this builds, so the body, the headers, the
timeouts, the retry policy and the connection settings of a call are decided
once, here, for the sync and the async path alike. What depends on the
model's settings only (URL, headers, connection) comes from the model's
`CallTarget` (`_call_target`), made once per setting.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_dfehub._arguments import (
    CALL_SETTINGS,
    SAMPLING_FIELDS,
    check_choices,
    merge_extra_body,
    sort_call_arguments,
    user_stacklevel,
)
from langchain_dfehub._connection import warn_unverified
from langchain_dfehub._gate import ServiceGate, gate_named
from langchain_dfehub._messages import messages_to_dicts
from langchain_dfehub._retry import RetryPolicy
from langchain_dfehub._settings import CallSettings
from langchain_dfehub._stream_state import Request

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from pydantic.fields import FieldInfo

    from langchain_dfehub._model_fields import ChatDfeHubFields

# What a call's arguments may set in the body under a field's name.
_BODY_FIELDS = ("model", "stop", *SAMPLING_FIELDS)


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
    own, fields = sort_call_arguments(kwargs, _fields_of(type(model)), _BODY_FIELDS)
    body.update(fields)
    settings = _call_settings(
        *[own.get(name, getattr(model, name)) for name in CALL_SETTINGS]
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
    # Not `model._targets`: pydantic's private-attribute lookup is slow.
    target = model.__pydantic_private__["_targets"].get(model)  # type: ignore[index]
    if model.verify is False and not model._unverified_warned:
        # Set on a copy or after the model was built: warned of now.
        model._unverified_warned = True
        warn_unverified(model.base_url, user_stacklevel())
    return Request(
        url=target.url,
        headers=dict(target.stream_headers if stream else target.headers),
        body=json_body(body),
        stream=stream,
        connect_timeout=connect,
        read_timeout=read,
        secret=target.secret,
        policy=_retry_policy(
            settings,
            gate_named(target.url, target.key_digest, target.store),
            body["model"] if isinstance(body.get("model"), str) else None,
            model.throttle_scope,
        ),
        connection=target.connection,
        deadline=settings.deadline,
    )


@functools.lru_cache(maxsize=32)
def _fields_of(cls: type[ChatDfeHubFields]) -> dict[str, FieldInfo]:
    """A model class's fields (pydantic builds the mapping on every read)."""
    return dict(cls.model_fields)


# Settings and policies are immutable, and the same for most calls of a
# model: they are kept rather than built per call. `typed`, so that a
# setting of 1 and one of 1.0 each keep the value given.
@functools.lru_cache(maxsize=256, typed=True)
def _call_settings(*values: Any) -> CallSettings:
    """The settings named by `CALL_SETTINGS`, given in that order."""
    return CallSettings(**dict(zip(CALL_SETTINGS, values, strict=True)))


@functools.lru_cache(maxsize=256, typed=True)
def _retry_policy(
    settings: CallSettings, gate: ServiceGate, model: str | None, scope: str
) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.max_retries,
        max_retry_wait=settings.max_retry_wait,
        throttle_budget=settings.throttle_budget,
        gate=gate,
        model=model,
        throttle_scope=scope,
    )


# `json.dumps` with these options makes a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def json_body(body: dict[str, Any]) -> bytes:
    """The request body as JSON, refusing numbers JSON cannot carry."""
    try:
        text = _ENCODER.encode(body)
    except ValueError:
        msg = (
            "A request parameter is NaN or infinite, which JSON cannot carry;"
            " check the numbers given to the model or the call."
        )
        raise ValueError(msg) from None
    return text.encode()
