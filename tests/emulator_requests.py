"""What tests read back: the body the emulator received, and a merged stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessageChunk

from langchain_dfehub.testing import DfeHubEmulator


def last_body(emulator: DfeHubEmulator) -> dict[str, Any]:
    """The JSON body of the last chat request the emulator received."""
    body = emulator.requests[-1].body
    assert isinstance(body, dict)
    return body


def merge_chunks(chunks: Sequence[BaseMessageChunk]) -> AIMessageChunk:
    """A stream's chunks added up, as LangChain merges them."""
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert isinstance(merged, AIMessageChunk)
    return merged
