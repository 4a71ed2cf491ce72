"""What is known of a model's capabilities, as LangChain's `profile` says it.

LangChain reads `model.profile` to decide things for the user: the context
size (summarisation and trimming middleware), whether the model can call
tools, and whether to ask for native structured output or emulate it with a
tool call. A server may serve any model, so a profile is known here only for
the model the DfeHub service served; for any other name the profile is left
unset (`None`), and users set it with `ChatDfeHub(profile={...})`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_core.language_models.model_profile import ModelProfile

# OpenAI's published limits for gpt-3.5-turbo (the 0125 snapshot the name
# points to): a 16,385-token context, 4,096 tokens out, text only, function
# calling with `tool_choice`, no native `json_schema` structured output and
# no reasoning.
_PROFILES: Mapping[str, ModelProfile] = {
    "gpt-3.5-turbo": {
        "max_input_tokens": 16385,
        "max_output_tokens": 4096,
        "text_inputs": True,
        "image_inputs": False,
        "image_url_inputs": False,
        "pdf_inputs": False,
        "audio_inputs": False,
        "video_inputs": False,
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
        "structured_output": False,
        "temperature": True,
    },
}


def default_profile(model: str) -> ModelProfile | None:
    """A copy of the known profile of a model name, or None if unknown."""
    profile = _PROFILES.get(model)
    return copy.deepcopy(profile) if profile is not None else None
