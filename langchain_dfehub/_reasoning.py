"""The model's reasoning: read from replies, and optionally sent back.

Reasoning servers send their chain of thought beside the answer, under one
of two names: `reasoning_content` (DeepSeek, llama.cpp's `--reasoning-format
deepseek`, older vLLM) or `reasoning` (newer vLLM, OpenRouter). LangChain
keeps it where its other reasoning integrations do, in
`additional_kwargs["reasoning_content"]`, from which `content_blocks` builds a
`reasoning` block; streamed pieces merge by string concatenation.

Sending it back is a choice (`reasoning_in_history`): DeepSeek's thinking mode
with tool calls wants the reasoning of earlier turns back on the assistant
message, as `reasoning_content`, while stricter endpoints reject an unknown
field on a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage

REASONING_KEY = "reasoning_content"
# Read in this order: a server in transition that sends both repeats the text.
_WIRE_NAMES = ("reasoning_content", "reasoning")


def reasoning_text(message: Mapping[str, Any]) -> str | None:
    """The reasoning a reply message or stream delta carries, if any."""
    for name in _WIRE_NAMES:
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def reasoning_for_history(message: AIMessage) -> str | None:
    """The reasoning of an earlier answer, to send back with it.

    Taken from `additional_kwargs["reasoning_content"]`, else from the
    `reasoning` blocks of a list content.
    """
    kept = message.additional_kwargs.get(REASONING_KEY)
    if isinstance(kept, str) and kept:
        return kept
    if isinstance(message.content, list):
        pieces = [
            block["reasoning"]
            for block in message.content
            if isinstance(block, dict)
            and block.get("type") == "reasoning"
            and isinstance(block.get("reasoning"), str)
        ]
        if pieces:
            return "".join(pieces)
    return None
