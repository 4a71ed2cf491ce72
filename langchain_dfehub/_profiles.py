"""What is known of a model's capabilities, as LangChain's `profile` says it.

LangChain reads `model.profile` to decide things for the user: the context
size (summarisation and trimming middleware), whether the model can call
tools, and whether to ask for native structured output or emulate it with a
tool call (`ChatDfeHub.with_structured_output` reads the same answer, see
`_structured_method`).

An OpenAI-compatible server may serve any model under any name, so a profile
is found by the model family a name belongs to, the way servers spell it:
`gpt-4o-mini`, `meta-llama/Llama-3.1-8B-Instruct` (vLLM, Hugging Face ids),
`llama3.1:8b` (Ollama tags), `Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf`
(llama.cpp files). A name of no known family has no profile (`None`);
`ChatDfeHub.fetch_profile()` asks the server, or users pass `profile={...}`.

Each family's numbers come from its publisher, named beside it. Context
sizes are the model's own; a server may be started with less.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.language_models.model_profile import ModelProfile

# What every chat model here takes and gives unless its family says more.
_TEXT_MODEL: Mapping[str, Any] = {
    "text_inputs": True,
    "image_inputs": False,
    "image_url_inputs": False,
    "pdf_inputs": False,
    "audio_inputs": False,
    "video_inputs": False,
    # Chat Completions' tool messages carry text only.
    "image_tool_message": False,
    "pdf_tool_message": False,
    "text_outputs": True,
    "image_outputs": False,
    "audio_outputs": False,
    "video_outputs": False,
    "reasoning_output": False,
    "tool_calling": True,
    "tool_choice": True,
    "tool_call_streaming": True,
    # Open-weight models: the servers that serve them (vLLM's guided
    # decoding, llama.cpp's grammars, Ollama's `format`, LM Studio) constrain
    # the answer to a `json_schema` response format, whatever the model.
    "structured_output": True,
    "temperature": True,
}
_VISION = {"image_inputs": True, "image_url_inputs": True}
_OPENAI_VISION = {**_VISION, "pdf_inputs": True}
_NO_TOOLS = {"tool_calling": False, "tool_choice": False, "tool_call_streaming": False}


@dataclass(frozen=True)
class _Family:
    """Model names matching `pattern` (on the normalised name) share a profile."""

    pattern: str
    profile: Mapping[str, Any]
    source: str

    def matches(self, name: str) -> bool:
        return re.search(self.pattern, name) is not None


def _family(pattern: str, source: str, **fields: Any) -> _Family:
    return _Family(pattern, {**_TEXT_MODEL, **fields}, source)


_OPENAI_DOCS = "OpenAI's model pages, platform.openai.com/docs/models"
_OPENAI_NATIVE = {"open_weights": False}

# First match wins: the more specific patterns come first. A pattern sees the
# normalised name (see `_normalise`): lower case, the last path part, no
# `.gguf`, `:` and `_` as `-`.
_FAMILIES: tuple[_Family, ...] = (
    # --- OpenAI: the family the service exposed. Native structured output
    # (`json_schema`) only from gpt-4o-2024-08-06 and gpt-4o-mini on; PDF
    # `file` parts only for the vision models gpt-4o, gpt-4o-mini, gpt-4.1.
    _family(
        r"^gpt-3\.5-turbo(-16k|-\d{4})?$",
        _OPENAI_DOCS + " (gpt-3.5-turbo: the 0125 snapshot)",
        max_input_tokens=16385,
        max_output_tokens=4096,
        structured_output=False,
        **_OPENAI_NATIVE,
    ),
    _family(
        r"^gpt-4\.1(-mini|-nano)?(-\d{4}-\d\d-\d\d)?$",
        _OPENAI_DOCS + " (gpt-4.1, gpt-4.1-mini, gpt-4.1-nano)",
        max_input_tokens=1047576,
        max_output_tokens=32768,
        **_OPENAI_VISION,
        **_OPENAI_NATIVE,
    ),
    _family(
        r"^gpt-4o(-mini)?(-\d{4}-\d\d-\d\d)?$",
        _OPENAI_DOCS + " (gpt-4o, gpt-4o-mini)",
        max_input_tokens=128000,
        max_output_tokens=16384,
        **_OPENAI_VISION,
        **_OPENAI_NATIVE,
    ),
    _family(
        r"^gpt-4-turbo(-\d{4}-\d\d-\d\d)?$",
        _OPENAI_DOCS + " (gpt-4-turbo, with vision)",
        max_input_tokens=128000,
        max_output_tokens=4096,
        structured_output=False,
        **_VISION,
        **_OPENAI_NATIVE,
    ),
    _family(
        r"^gpt-4(-\d{4})?$",
        _OPENAI_DOCS + " (gpt-4)",
        max_input_tokens=8192,
        max_output_tokens=8192,
        structured_output=False,
        **_OPENAI_NATIVE,
    ),
    # --- DeepSeek's API: `json_object` but no `json_schema` response format,
    # 128K context (api-docs.deepseek.com, "Models & Pricing" and "JSON
    # Output"); the reasoner's thinking comes back as `reasoning_content`.
    _family(
        r"^deepseek-chat$",
        "DeepSeek API docs: Models & Pricing, JSON Output",
        max_input_tokens=131072,
        max_output_tokens=8192,
        structured_output=False,
        open_weights=True,
    ),
    _family(
        r"^deepseek-reasoner$",
        "DeepSeek API docs: Models & Pricing, Thinking Mode",
        max_input_tokens=131072,
        max_output_tokens=65536,
        structured_output=False,
        reasoning_output=True,
        open_weights=True,
    ),
    # --- Meta Llama 3.x (model cards at huggingface.co/meta-llama): 3.1, 3.2
    # and 3.3 have a 128K context and tool calling; 3.2 11B/90B Vision take
    # images; Llama 3 (3.0) has 8K and no tool-calling format.
    _family(
        r"llama-?3\.2-(11b|90b)|llama-?3\.2-vision",
        "Meta's Llama 3.2 Vision model card",
        max_input_tokens=131072,
        open_weights=True,
        **_VISION,
    ),
    _family(
        r"llama-?3\.[123](-|$)",
        "Meta's Llama 3.1, 3.2 and 3.3 model cards",
        max_input_tokens=131072,
        open_weights=True,
    ),
    _family(
        r"llama-?3(-|$)",
        "Meta's Llama 3 model card",
        max_input_tokens=8192,
        open_weights=True,
        **_NO_TOOLS,
    ),
    # --- Qwen (model cards at huggingface.co/Qwen): Qwen2.5 Instruct 32K
    # native context (128K only with YaRN enabled), 8K out; Qwen3 32K native
    # with a thinking mode; the 2507 releases 256K, thinking only in the
    # "Thinking" variants.
    _family(
        r"qwen-?3-.*2507.*thinking",
        "Qwen3-2507 Thinking model cards",
        max_input_tokens=262144,
        reasoning_output=True,
        open_weights=True,
    ),
    _family(
        r"qwen-?3-.*2507",
        "Qwen3-2507 Instruct model cards",
        max_input_tokens=262144,
        open_weights=True,
    ),
    _family(
        r"qwen-?3(-|$)",
        "Qwen3 model cards",
        max_input_tokens=32768,
        reasoning_output=True,
        open_weights=True,
    ),
    _family(
        r"qwen-?2\.5-vl",
        "Qwen2.5-VL model cards",
        max_input_tokens=32768,
        open_weights=True,
        **_VISION,
    ),
    _family(
        r"qwen-?2\.5(-|$)",
        "Qwen2.5 Instruct model cards",
        max_input_tokens=32768,
        max_output_tokens=8192,
        open_weights=True,
    ),
    # --- Gemma (ai.google.dev/gemma/docs): Gemma 3 4B/12B/27B 128K with
    # image input, Gemma 3 1B 32K text only, Gemma 2 8K; no tool-calling
    # format in their chat templates.
    _family(
        r"gemma-?3-1b",
        "Google's Gemma 3 model card",
        max_input_tokens=32768,
        open_weights=True,
        **_NO_TOOLS,
    ),
    _family(
        r"gemma-?3(-|$)",
        "Google's Gemma 3 model card",
        max_input_tokens=131072,
        max_output_tokens=8192,
        open_weights=True,
        **_VISION,
        **_NO_TOOLS,
    ),
    _family(
        r"gemma-?2(-|$)",
        "Google's Gemma 2 model card",
        max_input_tokens=8192,
        open_weights=True,
        **_NO_TOOLS,
    ),
    # --- Mistral (docs.mistral.ai, "Models", and the model cards at
    # huggingface.co/mistralai): Small 3.1 128K with images, Small 3 32K,
    # Nemo 128K, 7B Instruct v0.3 32K with function calling, Mixtral 8x7B
    # 32K without it, Mixtral 8x22B 64K with it.
    _family(
        r"mistral-small-(3\.1|2503)",
        "Mistral Small 3.1 model card",
        max_input_tokens=131072,
        open_weights=True,
        **_VISION,
    ),
    _family(
        r"mistral-small",
        "Mistral Small 3 model card",
        max_input_tokens=32768,
        open_weights=True,
    ),
    _family(
        r"mistral-nemo",
        "Mistral NeMo model card",
        max_input_tokens=131072,
        open_weights=True,
    ),
    _family(
        r"mixtral-8x22b",
        "Mixtral 8x22B model card",
        max_input_tokens=65536,
        open_weights=True,
    ),
    _family(
        r"mixtral-8x7b",
        "Mixtral 8x7B model card",
        max_input_tokens=32768,
        open_weights=True,
        **_NO_TOOLS,
    ),
    _family(
        r"mistral-7b|^mistral(-instruct)?(-v0\.3)?(-latest)?$",
        "Mistral 7B Instruct v0.3 model card",
        max_input_tokens=32768,
        open_weights=True,
    ),
)


def _normalise(model: str) -> str:
    """A model name as the patterns read it: `Org/Name:Tag.gguf` -> `name-tag`."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    name = name.removesuffix(".gguf")
    return name.replace(":", "-").replace("_", "-")


def family_source(model: str) -> str | None:
    """Where the profile of a model name comes from, or None if unknown."""
    name = _normalise(model)
    for family in _FAMILIES:
        if family.matches(name):
            return family.source
    return None


def default_profile(model: str) -> ModelProfile | None:
    """A copy of the known profile of a model name, or None if unknown."""
    name = _normalise(model)
    for family in _FAMILIES:
        if family.matches(name):
            return copy.deepcopy(dict(family.profile))  # type: ignore[return-value]
    return None
