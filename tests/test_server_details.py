"""What a server adds to a reply beside the answer is kept, not thrown away.

llama.cpp's server reports its `timings` (prompt and generation speed) on a
whole completion and on the last chunk of a stream; they land in
`response_metadata["timings"]`, once in a merged stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from langchain_dfehub import ChatDfeHub
from langchain_dfehub.testing import DfeHubEmulator, ErrorStatus

MODES = ["sync", "async"]


def answer(model: ChatDfeHub, mode: str, how: str) -> Any:
    if how == "invoke":
        if mode == "sync":
            return model.invoke("hello")
        return asyncio.run(model.ainvoke("hello"))

    async def consume() -> list[Any]:
        return [chunk async for chunk in model.astream("hello")]

    chunks = list(model.stream("hello")) if mode == "sync" else asyncio.run(consume())
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total


@pytest.mark.parametrize("how", ["invoke", "stream"])
@pytest.mark.parametrize("mode", MODES)
def test_llama_cpps_timings_are_kept_in_the_response_metadata(mode, how):
    with DfeHubEmulator(flavour="llama.cpp") as emulator:
        message = answer(ChatDfeHub(base_url=emulator.base_url), mode, how)
    timings = message.response_metadata["timings"]
    assert timings["predicted_n"] == message.usage_metadata["output_tokens"]
    assert timings["prompt_n"] == message.usage_metadata["input_tokens"]
    assert timings["predicted_per_second"] > 0


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_a_server_without_timings_adds_no_timings_key(how):
    with DfeHubEmulator() as emulator:
        message = answer(ChatDfeHub(base_url=emulator.base_url), "sync", how)
    assert "timings" not in message.response_metadata


# DeepSeek's own name for the prompt tokens read from its cache; its replies
# may carry OpenAI's `prompt_tokens_details` too, or not.
DEEPSEEK_REPLY = (
    '{"id": "c1", "object": "chat.completion", "model": "deepseek-chat",'
    ' "choices": [{"index": 0, "finish_reason": "stop",'
    ' "message": {"role": "assistant", "content": "Hi"}}],'
    ' "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,'
    ' "prompt_cache_hit_tokens": 6, "prompt_cache_miss_tokens": 4}}'
)


@pytest.mark.parametrize("mode", MODES)
def test_deepseeks_prompt_cache_hits_are_the_cache_read_tokens(mode):
    with DfeHubEmulator(flavour="deepseek") as emulator:
        emulator.add_faults(ErrorStatus(200, DEEPSEEK_REPLY))
        message = answer(ChatDfeHub(base_url=emulator.base_url), mode, "invoke")
    assert message.usage_metadata["input_token_details"] == {"cache_read": 6}
