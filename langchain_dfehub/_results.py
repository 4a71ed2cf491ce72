"""Replies, as the transports hand them over, to LangChain's result types.

A whole reply becomes a `ChatResult` (one generation per choice, with
`llm_output` as `ChatOpenAI` fills it); a stream's event becomes a
`ChatGenerationChunk`. The messages themselves are built by `_messages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.outputs import ChatGenerationChunk, ChatResult

from langchain_dfehub._chunk_objects import generation, text_generation
from langchain_dfehub._messages import chunk_to_message, response_to_messages
from langchain_dfehub._result_objects import reply_generation, reply_result


def chat_result(response: Mapping[str, Any]) -> ChatResult:
    """A whole `chat.completion` reply as LangChain's result.

    Its objects are built without validating them again where nothing
    would change (see `_result_objects`).
    """
    generations = [
        reply_generation(
            message, {"finish_reason": message.response_metadata.get("finish_reason")}
        )
        for message in response_to_messages(response)
    ]
    llm_output = {
        "model_name": response.get("model"),
        "token_usage": response.get("usage"),
        "id": response.get("id"),
        "system_fingerprint": response.get("system_fingerprint"),
    }
    return reply_result(generations, llm_output)


def generation_chunk(data: Mapping[str, Any] | str, v1: bool) -> ChatGenerationChunk:
    """One streamed chunk as LangChain's: its dict, or the text of a plain one.

    The text is what `ReplyStream` hands over for a chunk that carries only
    a piece of text (see `_reply_shape.plain_text`).
    """
    if isinstance(data, str):
        return text_generation(data)
    message, finish_reason = chunk_to_message(data)
    if v1 and message.response_metadata:
        # Tells our block translator (`_content_blocks`) the chunk's blocks
        # will be merged by index.
        message.response_metadata["output_version"] = "v1"
    if finish_reason is None:
        return generation(message)
    return generation(message, {"finish_reason": finish_reason})
