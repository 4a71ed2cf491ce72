"""Standard content blocks of our messages: LangChain's reading, plus two fixes.

Messages we build name `model_provider="dfehub"`, so LangChain asks this
translator for their `content_blocks`. It returns LangChain's own best-effort
reading with two changes:

- A `refusal` (kept in `additional_kwargs["refusal"]`, see `_refusals`)
  becomes LangChain's standard `refusal` block, as core's OpenAI translator
  makes it, so `ModelRefusalMiddleware` and our structured-output parsers see
  it.
- With `output_version="v1"`, LangChain turns each streamed chunk into
  blocks and merges blocks that share an `index`. A tool-call chunk's block
  takes its index from the wire (0 for the first call), and the reasoning
  block built from `additional_kwargs["reasoning_content"]` would get a
  counter index that is 0 as well when the thinking comes first: the two
  would merge into one broken block and the tool call would be lost. Such a
  chunk (marked `output_version: "v1"` by the model's stream) gives its
  reasoning its own `"lc_reasoning"` index (LangChain merges string indexes
  that start with `lc_`). A v0 stream never shows that index.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages import content as types
from langchain_core.messages.block_translators import register_translator

PROVIDER = "dfehub"
REASONING_INDEX = "lc_reasoning"


def _with_refusal(
    message: AIMessage, blocks: list[types.ContentBlock]
) -> list[types.ContentBlock]:
    refusal = message.additional_kwargs.get("refusal")
    if isinstance(refusal, str) and refusal:
        blocks.append({"type": "refusal", "refusal": refusal})
    return blocks


def translate_content(message: AIMessage) -> list[types.ContentBlock]:
    """LangChain's reading of a whole message, with its refusal block."""
    plain = message.model_copy(update={"response_metadata": {}})
    return _with_refusal(message, plain.content_blocks)


def translate_content_chunk(message: AIMessageChunk) -> list[types.ContentBlock]:
    """LangChain's reading of a chunk; in v1 streams, reasoning under its index."""
    plain = message.model_copy(update={"response_metadata": {}})
    blocks = plain.content_blocks
    if message.response_metadata.get("output_version") == "v1":
        for block in blocks:
            if block["type"] == "reasoning" and "index" not in block:
                block["index"] = REASONING_INDEX
    return _with_refusal(message, blocks)


register_translator(PROVIDER, translate_content, translate_content_chunk)
