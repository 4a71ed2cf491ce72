"""Content blocks of streamed reasoning, kept apart from tool-call blocks.

With `output_version="v1"`, LangChain turns each streamed chunk into content
blocks and merges blocks that share an `index`. A tool-call chunk's block
takes its index from the wire (0 for the first call), and the reasoning block
built from `additional_kwargs["reasoning_content"]` gets a counter index that
is 0 as well when the thinking comes first: the two would merge into one
broken block and the tool call would be lost. This translator, registered for
our `model_provider`, gives streamed reasoning its own `"lc_reasoning"` index
(LangChain merges string indexes that start with `lc_`); everything else is
LangChain's own best-effort reading.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages import content as types
from langchain_core.messages.block_translators import register_translator

PROVIDER = "dfehub"
REASONING_INDEX = "lc_reasoning"


def translate_content(message: AIMessage) -> list[types.ContentBlock]:
    """A whole message has no block indexes to clash: LangChain's own reading."""
    raise NotImplementedError


def translate_content_chunk(message: AIMessageChunk) -> list[types.ContentBlock]:
    """LangChain's reading of a chunk, with reasoning under its own index."""
    plain = message.model_copy(update={"response_metadata": {}})
    blocks = plain.content_blocks
    for block in blocks:
        if block["type"] == "reasoning" and "index" not in block:
            block["index"] = REASONING_INDEX
    return blocks


register_translator(PROVIDER, translate_content, translate_content_chunk)
