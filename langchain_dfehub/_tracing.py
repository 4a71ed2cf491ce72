"""What LangChain's tracers, callbacks and caches read about a model.

`_identifying_params` keys LangChain's response cache and names the model in
traces; `_get_ls_params` gives LangSmith the provider, model and sampling
settings of one call (a call's own arguments win over the model's).

`generate` asks the model to merge the `llm_output` of each prompt's result
(the base class returns `{}`); tracers and `on_llm_end` read token usage and
the model name there, so, as `ChatOpenAI` does, the usage counts are summed
(nested detail counts too) and the model and system fingerprint named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import LangSmithParams

from langchain_dfehub._arguments import SAMPLING_FIELDS
from langchain_dfehub._urls import display_url

if TYPE_CHECKING:
    from langchain_dfehub._model_fields import ChatDfeHubFields


def identifying_params(model: ChatDfeHubFields) -> dict[str, Any]:
    """The model, its server (without credentials) and the settings it sends."""
    params: dict[str, Any] = {
        "model": model.model,
        "base_url": display_url(model.base_url),
    }
    for name in (*SAMPLING_FIELDS, "stop"):
        value = getattr(model, name)
        if value is not None:
            params[name] = value
    return params


def langsmith_params(
    model: ChatDfeHubFields, stop: list[str] | None, kwargs: dict[str, Any]
) -> LangSmithParams:
    """LangSmith's description of one call to `model`."""
    params = LangSmithParams(
        ls_provider="dfehub",
        ls_model_name=kwargs.get("model") or model.model,
        ls_model_type="chat",
    )
    temperature = kwargs.get("temperature", model.temperature)
    if temperature is not None:
        params["ls_temperature"] = temperature
    max_tokens = kwargs.get("max_tokens", model.max_tokens)
    if max_tokens is not None:
        params["ls_max_tokens"] = max_tokens
    stop = stop or model.stop
    if stop:
        params["ls_stop"] = stop
    return params


def _add(total: Any, more: Any) -> Any:
    if isinstance(total, Mapping) and isinstance(more, Mapping):
        merged = dict(total)
        for key, value in more.items():
            if value is not None:
                merged[key] = _add(merged[key], value) if key in merged else value
        return merged
    if isinstance(total, (int, float)) and isinstance(more, (int, float)):
        return total + more
    return more


def combine_llm_outputs(
    llm_outputs: list[dict[str, Any] | None], model: str
) -> dict[str, Any]:
    """Sum the results' `token_usage`; name the model and fingerprint."""
    usage: dict[str, Any] = {}
    fingerprint = None
    for output in llm_outputs:
        if not output:
            continue  # a streamed result has none
        token_usage = output.get("token_usage")
        if isinstance(token_usage, Mapping):
            usage = _add(usage, token_usage)
        fingerprint = fingerprint or output.get("system_fingerprint")
    combined: dict[str, Any] = {"token_usage": usage, "model_name": model}
    if fingerprint:
        combined["system_fingerprint"] = fingerprint
    return combined
