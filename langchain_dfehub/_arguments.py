"""Where each constructor argument and request extra goes.

`ChatDfeHub` sends constructor arguments it does not know as request-body
fields (`model_kwargs`), as `ChatOpenAI` does. That is right for a server's own
sampling parameters (`top_k=40` for vLLM) and wrong for the names users bring
from `ChatOpenAI`: `openai_api_key="sk-..."` would put the key into every
request body, into `repr(model)` and into `dumpd(model)`. This module decides,
for every unknown argument, one of three fates:

- an alias of one of our fields (`model_name` is `model`), renamed;
- a client-side setting, an object or a secret, refused with a `ValueError`
  that names what to use instead;
- a plain JSON value, sent in the body; with a warning, unless it is a known
  chat-completions parameter (`seed`, `logit_bias`, ...).

Aliases apply only when their target is a field of the model, read from the
model's own fields, so a field added later (`proxy`, `http_client`) is taken
as itself and never refused here.

It also merges `extra_body` into a request body and checks the body's `n`,
the two request-time rules about what users pass.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import langchain_core
import pydantic
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from langchain_dfehub._settings import check_call_setting

# ChatOpenAI's spellings of our fields (its field names and their aliases).
ALIASES: Mapping[str, str] = {
    "model_name": "model",
    "openai_api_key": "api_key",
    "openai_api_base": "base_url",
    "request_timeout": "timeout",
    "max_completion_tokens": "max_tokens",
    "openai_proxy": "proxy",
}

_OWN_CONNECTIONS = (
    "ChatDfeHub opens its own connections (requests for sync calls, httpx for"
    " async ones), set with timeout=, verify=, cert= and proxy=; to bring"
    " your own, pass a requests.Session as http_client= or an"
    " httpx.AsyncClient as http_async_client=."
)

# Client-side settings of ChatOpenAI (or the openai SDK) that no server
# understands as a body field, with what to do instead.
REFUSED: Mapping[str, str] = {
    "openai_organization": (
        "Send it as a header: default_headers={'OpenAI-Organization': '...'}."
    ),
    "organization": (
        "Send it as a header: default_headers={'OpenAI-Organization': '...'}."
    ),
    "openai_proxy": (
        "Set HTTPS_PROXY (or HTTP_PROXY) in the environment; both transports honour it."
    ),
    "http_client": _OWN_CONNECTIONS,
    "http_async_client": _OWN_CONNECTIONS,
    "client": _OWN_CONNECTIONS,
    "async_client": _OWN_CONNECTIONS,
    "root_client": _OWN_CONNECTIONS,
    "root_async_client": _OWN_CONNECTIONS,
    "default_query": (
        "Put the query string into base_url (https://host/v1?name=value); it is"
        " kept on every request."
    ),
    "extra_headers": (
        "Set headers with default_headers={...}; they are sent on every request."
    ),
    "extra_query": (
        "Put the query string into base_url (https://host/v1?name=value); it is"
        " kept on every request."
    ),
    "tiktoken_model_name": (
        "Token counts are computed offline without tiktoken; pass"
        " custom_get_token_ids= with your tokenizer for exact counts."
    ),
    "tiktoken_enabled": (
        "Token counts are computed offline without tiktoken; pass"
        " custom_get_token_ids= with your tokenizer for exact counts."
    ),
    "stream_chunk_timeout": (
        "Use timeout=(connect, read): the read timeout bounds every wait for a chunk."
    ),
    "include_response_headers": "Response headers are not kept.",
    "disabled_params": "Leave out the parameters the server does not accept.",
    "use_responses_api": "Only the chat-completions API is supported.",
    "use_previous_response_id": "Only the chat-completions API is supported.",
    "openai_api_type": "Azure OpenAI is not supported; use base_url.",
    "openai_api_version": "Azure OpenAI is not supported; use base_url.",
    "azure_endpoint": "Azure OpenAI is not supported; use base_url.",
    "azure_deployment": "Azure OpenAI is not supported; use base_url.",
    "deployment_name": "Azure OpenAI is not supported; use base_url.",
}

# The model's client settings a call may change, for that call only.
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

CALL_SETTINGS = (
    "timeout",
    "max_retries",
    "deadline",
    "max_retry_wait",
    "throttle_budget",
)

# Chat-completions request parameters without a field of their own: sent as
# given, without a warning.
API_PARAMETERS = frozenset(
    {
        "seed",
        "logit_bias",
        "user",
        "service_tier",
        "reasoning_effort",
        "verbosity",
        "store",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "safety_identifier",
        "prompt_cache_key",
        "response_format",
        "parallel_tool_calls",
        "tools",
        "tool_choice",
    }
)

_SECRET_NAME = re.compile(
    r"(?:^|_)(?:api_?key|secret|password|passwd|token|access_token|auth"
    r"|authorization|credentials?|bearer)(?:_|$)",
    re.IGNORECASE,
)

# Fields of the model a request body must not redefine through extra_body.
_CLIENT_OWNED = ("messages", "stream", "stream_options")


def sort_init_arguments(
    values: dict[str, Any], fields: Mapping[str, FieldInfo]
) -> dict[str, Any]:
    """Rename aliases, refuse what cannot be sent, move the rest to the body.

    Args:
        values: The constructor's keyword arguments.
        fields: The model's fields, by name.

    Returns:
        The arguments with aliases renamed and unknown ones moved into
        `model_kwargs`.

    Raises:
        ValueError: for an argument that names a client-side setting, a secret
            or an object, for a field given twice (under two names, or as an
            argument and in `model_kwargs`).
    """
    known = set(fields)
    known.update(field.alias for field in fields.values() if field.alias)
    result: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in values.items():
        if name in known:
            result[name] = value
            continue
        target = ALIASES.get(name)
        if target is not None and target in fields:
            _set_once(result, values, fields, target, name, value)
            continue
        _check_body_field(name, value)
        extra[name] = value
    if not extra:
        return result
    model_kwargs = dict(result.get("model_kwargs") or {})
    clash = sorted(set(extra) & set(model_kwargs))
    if clash:
        msg = f"{clash} given both as arguments and in model_kwargs; give each once."
        raise ValueError(msg)
    unknown = sorted(name for name in extra if name not in API_PARAMETERS)
    if unknown:
        warnings.warn(
            f"{unknown} not default parameters of ChatDfeHub: transferred to"
            " model_kwargs and sent in every request body. Check that the server"
            " expects them.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    model_kwargs.update(extra)
    result["model_kwargs"] = model_kwargs
    return result


# Frames in these packages lie between the user's `ChatDfeHub(...)` and here.
_LIBRARY_DIRS = tuple(
    str(Path(module.__file__).parent)
    for module in (pydantic, langchain_core, sys.modules[__package__ or __name__])
    if module.__file__
)


def user_stacklevel() -> int:
    """The `stacklevel` that points a warning at the caller's own line."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(
        _LIBRARY_DIRS
    ):
        frame = frame.f_back
        level += 1
    return level


def _set_once(
    result: dict[str, Any],
    values: Mapping[str, Any],
    fields: Mapping[str, FieldInfo],
    target: str,
    name: str,
    value: Any,
) -> None:
    spellings = {target, fields[target].alias} - {None}
    if any(spelling in values for spelling in spellings):
        msg = f"{name!r} and {target!r} name the same setting; give only {target}=."
        raise ValueError(msg)
    result[target] = value


def _check_body_field(
    name: str, value: Any, sent: str = "unknown arguments are"
) -> None:
    refuse_client_settings({name: value})
    if _SECRET_NAME.search(name) or isinstance(value, SecretStr):
        msg = (
            f"{name!r} looks like a secret, and {sent} sent in the request body."
            " Pass the key to the model as api_key= (sent as a Bearer header),"
            " or another credential in default_headers=."
        )
        raise ValueError(msg)
    if not _is_plain_json(value):
        msg = (
            f"{name!r} is a {type(value).__name__}, and {sent} sent in the JSON"
            " request body. Only plain values (strings, numbers, booleans, None,"
            " and lists and dicts of them) can be sent."
        )
        raise ValueError(msg)


def sort_call_arguments(
    kwargs: Mapping[str, Any],
    fields: Mapping[str, FieldInfo],
    body_fields: Collection[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a call's arguments into its own client settings and body fields.

    A call's arguments are request-body fields, as `ChatOpenAI`'s are, but
    for the client settings a user expects to work per call (`timeout`,
    `max_retries`, `deadline`, and the throttle waits), which apply to that
    call only. The model's other settings (`api_key`, `base_url`, ...) and
    anything that looks like a secret are refused, as the constructor
    refuses them: sent, a key would travel in the body, where servers log it.
    `ls_*` arguments are LangChain's tracing hints, for neither.

    Args:
        kwargs: The call's keyword arguments (bound ones included).
        fields: The model's fields, by name.
        body_fields: The fields a call may set in the body (`temperature`).

    Returns:
        The call's settings, checked, by field name; and the body fields.

    Raises:
        ValueError: for a setting of the model, a secret, a value that is not
            plain JSON, or a bad value of a call setting; never showing it.
    """
    settings: dict[str, Any] = {}
    body: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name.startswith("ls_"):
            continue
        refuse_client_settings({name: value})
        target = name if name in fields else _field_named(name, fields)
        if target in CALL_SETTINGS:
            if target in settings:
                msg = (
                    f"{name!r} and {target!r} name the same setting; give only"
                    f" {target}=."
                )
                raise ValueError(msg)
            settings[target] = check_call_setting(target, value)
        elif target is not None and target not in body_fields:
            msg = (
                f"{name!r} is a setting of the model, not of one call; only"
                f" {', '.join(CALL_SETTINGS)} can be given to a call. Build a model"
                f" with it instead: ChatDfeHub(..., {target}=...)."
            )
            raise ValueError(msg)
        else:
            _check_body_field(name, value, sent="a call's arguments are")
            body[name] = value
    return settings, body


def _field_named(name: str, fields: Mapping[str, FieldInfo]) -> str | None:
    """The field `name` stands for, by its alias or ChatOpenAI's spelling."""
    for field_name, field in fields.items():
        if field.alias == name:
            return field_name
    target = ALIASES.get(name)
    if target in fields and target not in ("model", "max_tokens"):
        # `model_name` and `max_completion_tokens` are request fields too.
        return target
    return None


def _is_plain_json(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain_json(item) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and _is_plain_json(item) for key, item in value.items()
        )
    return False


def refuse_client_settings(kwargs: Mapping[str, Any]) -> None:
    """Refuse a call's argument that names a client-side setting.

    A call's other arguments are request-body fields; these (the openai SDK's
    `extra_headers`, ...) would carry a header or a query into the body.

    Raises:
        ValueError: naming the setting and what to use instead.
    """
    for name in kwargs:
        advice = REFUSED.get(name)
        if advice is not None:
            msg = f"ChatDfeHub has no setting {name!r}. {advice}"
            raise ValueError(msg)


def merge_extra_body(body: dict[str, Any], *extras: Mapping[str, Any] | None) -> None:
    """Merge `extra_body` mappings into the body's top level, later ones winning.

    Raises:
        ValueError: for a key the client sets itself (`messages`, `stream`).
    """
    for extra in extras:
        if not extra:
            continue
        owned = sorted(set(extra) & set(_CLIENT_OWNED))
        if owned:
            msg = f"extra_body may not set {owned}: the model sets them for each call."
            raise ValueError(msg)
        body.update(extra)


def check_choices(body: Mapping[str, Any], *, stream: bool) -> None:
    """Refuse a stream that asks for several choices.

    LangChain merges a stream's chunks into one message, so the choices of
    `n > 1` would interleave into one garbled text; `ChatOpenAI` refuses the
    same. `invoke` returns every choice as its own generation.

    Raises:
        ValueError: when `n` is above 1 and the request streams.
    """
    n = body.get("n")
    if stream and isinstance(n, int) and n > 1:
        msg = (
            f"n={n} cannot be streamed: a stream delivers one message. Use"
            " generate/agenerate (every choice becomes a generation), or n=1."
        )
        raise ValueError(msg)
