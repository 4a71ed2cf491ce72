"""`llm_output` of a `generate()` result, combined over its prompts.

LangChain's `generate` asks the model to merge the `llm_output` of each
prompt's result; the base class returns `{}`. Tracers and callbacks
(`on_llm_end`) read token usage and the model name from there, so, as
`ChatOpenAI` does, the usage counts are summed (nested detail counts too)
and the model and system fingerprint named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
