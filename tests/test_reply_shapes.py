"""Every reply that breaks the format ends in a typed error, on both paths.

A server may answer with valid JSON of the wrong shape. Each such reply is a
`DfeHubProtocolError` that names the field at fault, never a bare `TypeError`,
`AttributeError`, `KeyError` or `ValueError` from deep in the conversion.
Also here: a stream that opens with a UTF-8 byte-order mark is read as SSE
says (the mark ignored), and an HTTP 408 is retried like a 5xx.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from langchain_dfehub import ChatDfeHub, DfeHubProtocolError
from langchain_dfehub.testing import DfeHubEmulator, ErrorStatus, Malformed

MODES = ["sync", "async"]


def completion(message: Any = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return {"id": "c1", "object": "chat.completion", "choices": [choice], **extra}


def chunk(delta: Any = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [choice], **extra}


USAGE_AS_TEXT = {"prompt_tokens": "12", "completion_tokens": 3, "total_tokens": 15}

WRONG_COMPLETIONS = {
    "content is a number": (completion({"content": 5}), "message.content"),
    "message is text": (completion("hi"), "choices[0].message"),
    "choices is an object": ({"choices": {}}, "choices"),
    "choices holds text": ({"choices": ["x"]}, "choices[0]"),
    "usage counts are text": (
        completion({"content": "ok"}, usage=USAGE_AS_TEXT),
        "usage.prompt_tokens",
    ),
    "usage is a list": (completion({"content": "ok"}, usage=[1]), "usage"),
    "tool_calls is text": (
        completion({"content": None, "tool_calls": "x"}),
        "message.tool_calls",
    ),
    "a tool call's function is text": (
        completion({"tool_calls": [{"id": "a", "function": "f"}]}),
        "tool_calls[0].function",
    ),
    "finish_reason is a number": (
        {"choices": [{"message": {"content": "a"}, "finish_reason": 1}]},
        "finish_reason",
    ),
}

WRONG_CHUNKS = {
    "delta is text": (chunk("x"), "choices[0].delta"),
    "content is a number": (chunk({"content": 5}), "delta.content"),
    "choices is an object": ({"choices": {}}, "choices"),
    "usage counts are text": ({"choices": [], "usage": USAGE_AS_TEXT}, "usage"),
    "tool_calls is an object": (chunk({"tool_calls": {}}), "delta.tool_calls"),
    "a tool call's arguments are a number": (
        chunk(
            {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": 5}}]}
        ),
        "tool_calls[0].function.arguments",
    ),
    "a tool call's index is text": (
        chunk({"tool_calls": [{"index": "0", "function": {"name": "f"}}]}),
        "tool_calls[0].index",
    ),
    "details are a number": (
        {"choices": [], "usage": {"prompt_tokens_details": 3}},
        "usage.prompt_tokens_details",
    ),
}


@pytest.fixture
def emulator(dfehub_emulator_session: DfeHubEmulator) -> DfeHubEmulator:
    dfehub_emulator_session.reset()
    return dfehub_emulator_session


def invoke(model: ChatDfeHub, mode: str, prompt: str = "hello there") -> str:
    if mode == "sync":
        return str(model.invoke(prompt).content)
    return str(asyncio.run(model.ainvoke(prompt)).content)


def stream(model: ChatDfeHub, mode: str, prompt: str = "hello there") -> str:
    if mode == "sync":
        return "".join(str(c.content) for c in model.stream(prompt))

    async def consume() -> str:
        return "".join([str(c.content) async for c in model.astream(prompt)])

    return asyncio.run(consume())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(WRONG_COMPLETIONS))
def test_a_completion_of_the_wrong_shape_is_a_protocol_error_naming_the_field(
    emulator: DfeHubEmulator, mode: str, case: str
) -> None:
    body, field = WRONG_COMPLETIONS[case]
    emulator.add_faults(ErrorStatus(200, json.dumps(body)))
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)

    with pytest.raises(DfeHubProtocolError) as caught:
        invoke(model, mode)

    assert field in str(caught.value)
    assert "chat-completions format" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(WRONG_CHUNKS))
def test_a_chunk_of_the_wrong_shape_is_a_protocol_error_naming_the_field(
    emulator: DfeHubEmulator, mode: str, case: str
) -> None:
    body, field = WRONG_CHUNKS[case]
    emulator.add_faults(Malformed(line=f"data: {json.dumps(body)}"))
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)

    with pytest.raises(DfeHubProtocolError) as caught:
        stream(model, mode)

    assert field in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_opening_with_a_byte_order_mark_is_read(
    emulator: DfeHubEmulator, mode: str
) -> None:
    events = [
        chunk({"role": "assistant", "content": "marked "}),
        chunk({"content": "stream"}),
        {**chunk({}), "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    body = "\ufeff" + "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    emulator.add_faults(
        ErrorStatus(200, body + "data: [DONE]\n\n", content_type="text/event-stream")
    )
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)

    assert stream(model, mode) == "marked stream"


@pytest.mark.parametrize("mode", MODES)
def test_a_json_body_opening_with_a_byte_order_mark_is_read(
    emulator: DfeHubEmulator, mode: str
) -> None:
    body = "\ufeff" + json.dumps(completion({"content": "marked body"}))
    emulator.add_faults(ErrorStatus(200, body))
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)

    assert invoke(model, mode) == "marked body"


@pytest.mark.parametrize("mode", MODES)
def test_a_408_before_the_answer_is_retried(
    emulator: DfeHubEmulator, mode: str
) -> None:
    # Retry-After: 0 spares the test the backoff's sleep.
    now = {"Retry-After": "0"}
    emulator.add_faults(ErrorStatus(408, '{"error": "request timeout"}', headers=now))
    emulator.add_faults(ErrorStatus(408, "", headers=now))
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=2)

    assert invoke(model, mode, "after two timeouts") == "after two timeouts"
    assert len(emulator.requests) == 3
