"""Streamed chunks built the fast way are the objects validation would build.

`_chunk_objects` skips pydantic's validation for the chunks of a stream, and
`ReplyStream` hands a chunk carrying only text over as that text; neither
may change what a user or LangChain finds in a chunk.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from model_state import same_object

from langchain_dfehub import ChatDfeHub
from langchain_dfehub._chunk_objects import (
    FAST,
    generation,
    text_generation,
    text_message,
)
from langchain_dfehub._messages import chunk_to_message
from langchain_dfehub._reply_shape import chunk_problem, plain_text
from langchain_dfehub._sse import SSEDecoder, classify
from langchain_dfehub._stream_state import ReplyStream
from langchain_dfehub.testing import DfeHubEmulator

TEXTS = ["", "Hello", " wörld ✓", "a\nb"]


def test_the_fast_path_is_taken_with_the_installed_langchain_core() -> None:
    assert FAST


@pytest.mark.parametrize("text", TEXTS)
def test_a_text_generation_is_the_validated_one(text: str) -> None:
    validated = ChatGenerationChunk(message=AIMessageChunk(content=text))
    fast = text_generation(text)
    same_object(fast, validated)
    same_object(fast.message, validated.message)


@pytest.mark.parametrize("text", TEXTS)
def test_a_text_message_with_metadata_is_the_validated_one(text: str) -> None:
    metadata = {"model_provider": "dfehub", "finish_reason": "stop"}
    same_object(
        text_message(text, dict(metadata)),
        AIMessageChunk(content=text, response_metadata=dict(metadata)),
    )
    same_object(text_message(text), AIMessageChunk(content=text))


def test_a_generation_with_its_finish_reason_is_the_validated_one() -> None:
    info = {"finish_reason": "stop"}
    same_object(
        generation(text_message("x"), dict(info)),
        ChatGenerationChunk(message=AIMessageChunk(content="x"), generation_info=info),
    )
    tools = AIMessageChunk(
        content="",
        tool_call_chunks=[{"name": "f", "args": "{}", "id": "c1", "index": 0}],
    )
    same_object(generation(tools), ChatGenerationChunk(message=tools))


def test_fast_chunks_share_no_list_or_dict() -> None:
    first, second = text_generation("a"), text_generation("b")
    containers: dict[str, Any] = {}
    for name, value in first.message.__dict__.items():
        if isinstance(value, list | dict):
            containers[name] = value
            assert value is not second.message.__dict__[name], name
    assert set(containers) >= {"tool_calls", "additional_kwargs", "response_metadata"}
    first.message.additional_kwargs["x"] = 1
    first.message.tool_call_chunks.append(
        {"name": "f", "args": "", "id": None, "index": 0, "type": "tool_call_chunk"}
    )
    assert second.message.additional_kwargs == {}
    assert second.message.tool_call_chunks == []
    assert text_generation("c").message.tool_call_chunks == []


def test_fast_chunks_merge_as_validated_ones_do() -> None:
    fast = text_generation("Hel") + text_generation("lo")
    validated = ChatGenerationChunk(
        message=AIMessageChunk(content="Hel")
    ) + ChatGenerationChunk(message=AIMessageChunk(content="lo"))
    same_object(fast, validated)


def delta_chunk(delta: Any, **choice: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None, **choice}],
    }


@pytest.mark.parametrize(
    "data",
    [
        delta_chunk({"content": "Hi"}),
        delta_chunk({"role": "assistant", "content": ""}),
        delta_chunk({"role": "assistant", "content": None}),
        delta_chunk({"content": "Hi"}, logprobs=None),
        {**delta_chunk({"content": "Hi"}), "usage": None},
    ],
)
def test_a_plain_chunk_is_its_text_and_becomes_the_same_message(
    data: dict[str, Any],
) -> None:
    text = plain_text(data)
    assert text == (data["choices"][0]["delta"].get("content") or "")
    assert chunk_problem(data) is None
    message, finish_reason = chunk_to_message(data)
    assert finish_reason is None
    same_object(text_generation(text).message, message)


@pytest.mark.parametrize(
    "data",
    [
        delta_chunk({"content": "Hi"}, finish_reason="stop"),
        delta_chunk({"content": "Hi"}, logprobs={"content": []}),
        {**delta_chunk({"content": "Hi"}), "usage": {"total_tokens": 1}},
        delta_chunk({"content": "Hi", "reasoning_content": "hm"}),
        delta_chunk({"content": "", "refusal": "no"}),
        delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}),
        delta_chunk({"content": 5}),
        delta_chunk({}),
        delta_chunk("text"),
        {"choices": []},
        {"choices": [{"delta": {"content": "a"}}, {"delta": {"content": "b"}}]},
        {"choices": "x"},
        {"choices": ["x"]},
    ],
)
def test_any_other_chunk_is_not_plain(data: dict[str, Any]) -> None:
    assert plain_text(data) is None


def test_the_reply_hands_plain_chunks_over_as_text_and_others_as_dicts() -> None:
    reply = ReplyStream()
    body = b"".join(
        b"data: " + line + b"\n\n"
        for line in (
            b'{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
            b'{"choices":[{"index":0,"delta":{"content":"Hi"}}]}',
            b'{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
            b"[DONE]",
        )
    )
    items = list(reply.feed(body))
    assert items[:2] == ["", "Hi"]
    assert isinstance(items[2], dict)
    assert items[2]["choices"][0]["finish_reason"] == "stop"
    assert reply.done
    assert reply.finished
    assert reply.received_chars == 2


def test_texts_fed_become_the_events_feed_returns() -> None:
    body = (
        b': keep-alive\n\ndata: {"choices":[]}\n\n{"detail":"slow down"}\n'
        b"data: [DONE]\n\nevent: x\nnonsense\n"
    )
    texts = SSEDecoder()
    pending = texts.feed_texts(body)
    read = texts.reader
    assert [classify(i, read) if isinstance(i, str) else i for i in pending] == (
        SSEDecoder().feed(body)
    )


def test_stream_and_astream_chunks_hold_every_field(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, stream_usage=True)
    chunks = list(model.stream("one two three"))

    async def collect() -> list[AIMessageChunk]:
        return [chunk async for chunk in model.astream("one two three")]

    for found in (chunks, asyncio.run(collect())):
        texts = [chunk for chunk in found if chunk.content]
        assert "".join(str(c.content) for c in texts) == "one two three"
        assert len(texts) == 3
        run_ids = {chunk.id for chunk in found}
        assert len(run_ids) == 1
        assert next(iter(run_ids)).startswith("lc_run")
        for chunk in texts:
            assert chunk.tool_call_chunks == []
            assert chunk.tool_calls == []
            assert chunk.response_metadata == {}  # as LangChain's stream sets it
        whole = found[0]
        for chunk in found[1:]:
            whole = whole + chunk
        assert whole.usage_metadata is not None
        assert whole.response_metadata["finish_reason"] == "stop"
        assert whole.chunk_position == "last"
