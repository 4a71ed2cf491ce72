"""Reasoning servers: thinking is surfaced, merged, delivered at once, never repeated.

Against the emulator's reasoning flavours (llama.cpp and DeepSeek send
`reasoning_content`, newer vLLM `reasoning`), on the sync and async paths.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.tools import tool

from langchain_dfehub import ChatDfeHub, DfeHubConnectionError
from langchain_dfehub.testing import DfeHubEmulator, Drop, Stall

THINKING = "Let me think. I will answer in 3 words."
PROMPT = "one two three"
FLAVOURS = ["llama.cpp", "vllm", "deepseek"]
MODES = ["sync", "async"]


def invoke(model: ChatDfeHub, mode: str, prompt: Any = PROMPT) -> AIMessage:
    if mode == "sync":
        return model.invoke(prompt)
    return asyncio.run(model.ainvoke(prompt))


def stream(model: ChatDfeHub, mode: str, into: list[AIMessageChunk]) -> None:
    """Stream into `into`, which keeps what arrived if the stream fails."""
    if mode == "sync":
        into.extend(model.stream(PROMPT))
        return

    async def consume() -> None:
        async for chunk in model.astream(PROMPT):
            into.append(chunk)

    asyncio.run(consume())


def merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_invoke_surfaces_the_thinking_as_langchain_does(flavour, mode):
    with DfeHubEmulator(flavour=flavour, reasoning=True) as emulator:
        answer = invoke(ChatDfeHub(base_url=emulator.base_url), mode)
    assert answer.content == PROMPT
    assert answer.additional_kwargs["reasoning_content"] == THINKING
    assert answer.content_blocks[0] == {"type": "reasoning", "reasoning": THINKING}
    assert answer.content_blocks[1]["type"] == "text"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_streamed_thinking_merges_into_one_reasoning_block(flavour, mode):
    chunks: list[AIMessageChunk] = []
    with DfeHubEmulator(flavour=flavour, reasoning=True) as emulator:
        stream(ChatDfeHub(base_url=emulator.base_url), mode, chunks)
    pieces = [
        c.additional_kwargs["reasoning_content"] for c in chunks if c.additional_kwargs
    ]
    assert len(pieces) > 1  # it really came in pieces
    whole = merged(chunks)
    assert whole.additional_kwargs["reasoning_content"] == THINKING
    assert whole.content == PROMPT
    assert [b["type"] for b in whole.content_blocks] == ["reasoning", "text"]
    assert whole.content_blocks[0]["reasoning"] == THINKING


@pytest.mark.parametrize("mode", MODES)
def test_a_server_without_thinking_adds_no_reasoning(mode):
    with DfeHubEmulator(reasoning=True) as emulator:  # the openai flavour
        answer = invoke(ChatDfeHub(base_url=emulator.base_url), mode)
    assert "reasoning_content" not in answer.additional_kwargs
    assert [b["type"] for b in answer.content_blocks] == ["text"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_first_thinking_chunk_arrives_while_the_server_is_still_silent(
    flavour, mode
):
    # The server sends one piece of thinking, then nothing for a minute. A
    # client that waited for the first text would hit its 3 s read timeout
    # before handing anything over; one that hands over each delta as it
    # arrives gives the thinking at once.
    with DfeHubEmulator(flavour=flavour, reasoning=True) as emulator:
        emulator.add_faults(Stall(60, after_chunks=1))
        model = ChatDfeHub(base_url=emulator.base_url, timeout=(5, 3))
        first = _first_thinking(model, mode)
    assert first == "Let ", "the first piece of thinking, alone"


def _first_thinking(model: ChatDfeHub, mode: str) -> str:
    """Read until the first chunk with thinking, then close the stream."""
    if mode == "sync":
        chunks = model.stream(PROMPT)
        try:
            for chunk in chunks:
                if chunk.additional_kwargs.get("reasoning_content"):
                    return str(chunk.additional_kwargs["reasoning_content"])
        finally:
            chunks.close()
        raise AssertionError("no thinking")

    async def first() -> str:
        chunks = model.astream(PROMPT)
        try:
            async for chunk in chunks:
                if chunk.additional_kwargs.get("reasoning_content"):
                    return str(chunk.additional_kwargs["reasoning_content"])
        finally:
            await chunks.aclose()
        raise AssertionError("no thinking")

    return asyncio.run(first())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_failure_after_thinking_was_delivered_is_not_retried(flavour, mode):
    chunks: list[AIMessageChunk] = []
    with DfeHubEmulator(flavour=flavour, reasoning=True) as emulator:
        emulator.add_faults(Drop(after_chunks=2))
        model = ChatDfeHub(base_url=emulator.base_url, max_retries=3)
        with pytest.raises(DfeHubConnectionError) as caught:
            stream(model, mode, chunks)
        requests = len(emulator.requests)
    assert requests == 1, "retrying would deliver the thinking twice"
    assert merged(chunks).additional_kwargs["reasoning_content"] == "Let me "
    assert not caught.value.retryable
    assert not caught.value.is_retryable
    assert caught.value.received_chars == len("Let me ")


@pytest.mark.parametrize("mode", MODES)
def test_streamed_thinking_and_a_tool_call_stay_two_blocks_in_v1_output(mode):
    # Both start at block index 0 on the wire (the first thinking piece, the
    # first tool call); merged into one block, the tool call would be lost.
    chunks: list[AIMessageChunk] = []
    with DfeHubEmulator(flavour="vllm", reasoning=True) as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, output_version="v1")

        @tool
        def get_weather(city: str) -> str:
            """Return the weather in a city."""
            return "sunny"

        bound = model.bind_tools([get_weather])
        prompt = 'What is the weather in "Oslo"?'
        if mode == "sync":
            chunks.extend(bound.stream(prompt))
        else:

            async def consume() -> None:
                async for chunk in bound.astream(prompt):
                    chunks.append(chunk)

            asyncio.run(consume())
    whole = merged(chunks)
    assert [b["type"] for b in whole.content] == ["reasoning", "tool_call"]
    assert whole.content[0]["reasoning"] == "Let me think. I will call get_weather."
    assert whole.content[1]["args"] == {"city": "Oslo"}
    assert whole.tool_calls[0]["args"] == {"city": "Oslo"}


# --- what goes back in the history ---

HISTORY = [
    HumanMessage("What is two plus two?"),
    AIMessage("Four.", additional_kwargs={"reasoning_content": "2 + 2 = 4."}),
    HumanMessage("And three plus three?"),
]


@pytest.mark.parametrize("mode", MODES)
def test_by_default_earlier_thinking_is_not_sent_back(mode):
    with DfeHubEmulator(flavour="deepseek") as emulator:
        invoke(ChatDfeHub(base_url=emulator.base_url), mode, HISTORY)
        sent = emulator.requests[0].body["messages"]
    assert sent[1] == {"role": "assistant", "content": "Four."}


@pytest.mark.parametrize("mode", MODES)
def test_reasoning_in_history_sends_earlier_thinking_back(mode):
    with DfeHubEmulator(flavour="deepseek") as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, reasoning_in_history=True)
        invoke(model, mode, HISTORY)
        sent = emulator.requests[0].body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": "Four.",
        "reasoning_content": "2 + 2 = 4.",
    }
    assert "reasoning_content" not in sent[0]


def test_reasoning_blocks_of_a_list_content_are_sent_back_too():
    earlier = AIMessage(
        [
            {"type": "reasoning", "reasoning": "Add them. "},
            {"type": "reasoning", "reasoning": "It is 4."},
            {"type": "text", "text": "Four."},
        ]
    )
    with DfeHubEmulator(flavour="deepseek") as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, reasoning_in_history=True)
        model.invoke([HumanMessage("2 + 2?"), earlier, HumanMessage("3 + 3?")])
        sent = emulator.requests[0].body["messages"][1]
    assert sent == {
        "role": "assistant",
        "content": "Four.",
        "reasoning_content": "Add them. It is 4.",
    }


@pytest.mark.parametrize("mode", MODES)
def test_a_thinking_answer_goes_back_as_received_in_a_conversation(mode):
    with DfeHubEmulator(flavour="llama.cpp", reasoning=True) as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, reasoning_in_history=True)
        first = invoke(model, mode)
        invoke(model, mode, [HumanMessage(PROMPT), first, HumanMessage("again")])
        sent = emulator.requests[1].body["messages"][1]
    assert sent["reasoning_content"] == THINKING


# --- reading the two wire names ---


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"content": "4", "reasoning_content": "2 + 2"}, "2 + 2"),
        ({"content": "4", "reasoning": "2 + 2"}, "2 + 2"),
        # A server in transition sends both with the same text: kept once.
        ({"content": "4", "reasoning_content": "2 + 2", "reasoning": "2 + 2"}, "2 + 2"),
        # OpenRouter's structured details are not text.
        ({"content": "4", "reasoning": None, "reasoning_details": [{}]}, None),
    ],
    ids=["reasoning_content", "reasoning", "both", "none"],
)
def test_both_wire_names_are_read_into_one_place(message, expected):
    from langchain_dfehub._messages import chunk_to_message, response_to_message

    whole = response_to_message(
        {"choices": [{"message": {"role": "assistant", **message}}]}
    )
    piece, _ = chunk_to_message({"choices": [{"delta": message}]})
    for result in (whole, piece):
        assert result.additional_kwargs.get("reasoning_content") == expected
        assert result.content == "4"
