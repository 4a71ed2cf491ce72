"""Structured output on servers that ignore a forced tool (llama.cpp).

The default method is `json_schema`, which such servers enforce; the
`function_calling` method, whose forced `tool_choice` object llama.cpp
ignores, raises a clear error instead of returning `None`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from pydantic import BaseModel

from langchain_dfehub import ChatDfeHub, DfeHubInvalidRequestError
from langchain_dfehub.testing import DfeHubEmulator

MODES = ["sync", "async"]
PROMPT = "Say something funny about cats"  # names no tool: auto calls none


class Joke(BaseModel):
    """A joke to tell the user."""

    setup: str
    punchline: str


JOKE_SCHEMA = {
    "title": "joke",
    "type": "object",
    "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
    "required": ["setup", "punchline"],
}


def run(runnable: Any, mode: str, how: str = "invoke") -> Any:
    if how == "stream":
        if mode == "sync":
            return list(runnable.stream(PROMPT))[-1]

        async def last() -> Any:
            return [part async for part in runnable.astream(PROMPT)][-1]

        return asyncio.run(last())
    if mode == "sync":
        return runnable.invoke(PROMPT)
    return asyncio.run(runnable.ainvoke(PROMPT))


LLAMA_FILE = "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"  # as a llama.cpp user names it


@pytest.mark.parametrize("how", ["invoke", "stream"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("schema", [Joke, JOKE_SCHEMA], ids=["pydantic", "json"])
def test_the_default_method_works_on_llama_cpp(schema, mode, how):
    with DfeHubEmulator(flavour="llama.cpp") as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, model=LLAMA_FILE)
        result = run(model.with_structured_output(schema), mode, how)
        sent = emulator.requests[0].body
    joke = result.model_dump() if isinstance(result, BaseModel) else result
    assert set(joke) == {"setup", "punchline"}
    assert sent["response_format"]["type"] == "json_schema"
    assert "tools" not in sent


@pytest.mark.parametrize("mode", MODES)
def test_on_llama_cpp_under_the_default_name_the_fetched_profile_picks_json_schema(
    mode,
):
    # gpt-3.5-turbo's profile says no native structured output, and llama.cpp
    # serves its model whatever the request names: the server's profile says
    # it enforces json_schema.
    with DfeHubEmulator(flavour="llama.cpp") as emulator:
        model = ChatDfeHub(base_url=emulator.base_url)
        if mode == "sync":
            model.fetch_profile()
        else:
            asyncio.run(model.afetch_profile())
        assert isinstance(run(model.with_structured_output(Joke), mode), Joke)
        assert emulator.requests[0].body["response_format"]["type"] == "json_schema"


@pytest.mark.parametrize("how", ["invoke", "stream"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("schema", [Joke, JOKE_SCHEMA], ids=["pydantic", "json"])
def test_a_forced_tool_the_server_ignored_raises_naming_json_schema(schema, mode, how):
    with DfeHubEmulator(flavour="llama.cpp") as emulator:
        model = ChatDfeHub(base_url=emulator.base_url)
        structured = model.with_structured_output(schema, method="function_calling")
        with pytest.raises(OutputParserException) as caught:
            run(structured, mode, how)
    assert "method='json_schema'" in str(caught.value)
    assert "function_calling" in str(caught.value)
    assert caught.value.llm_output == PROMPT  # the prose the model gave instead


@pytest.mark.parametrize("mode", MODES)
def test_include_raw_keeps_the_missing_tool_call_as_a_parsing_error(mode):
    with DfeHubEmulator(flavour="llama.cpp") as emulator:
        model = ChatDfeHub(base_url=emulator.base_url)
        structured = model.with_structured_output(
            Joke, method="function_calling", include_raw=True
        )
        result = run(structured, mode)
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert "method='json_schema'" in str(result["parsing_error"])
    assert result["raw"].content == PROMPT


@pytest.mark.parametrize("mode", MODES)
def test_a_forced_tool_the_server_honours_still_parses(mode):
    with DfeHubEmulator() as emulator:  # the openai flavour
        model = ChatDfeHub(base_url=emulator.base_url)
        structured = model.with_structured_output(Joke, method="function_calling")
        assert isinstance(run(structured, mode), Joke)


# DeepSeek's API has no json_schema response format (only `json_object`), and
# says so with a 400; its forced tool call works, and its models' profiles
# make that the default.
@pytest.mark.parametrize("how", ["invoke", "stream"])
@pytest.mark.parametrize("mode", MODES)
def test_deepseek_refuses_json_schema_and_the_default_method_works(mode, how):
    with DfeHubEmulator(flavour="deepseek") as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, model="deepseek-chat")
        model.max_retries = 3
        with pytest.raises(DfeHubInvalidRequestError) as caught:
            run(model.with_structured_output(Joke, method="json_schema"), mode, how)
        assert len(emulator.requests) == 1  # a 400 is not retried
        assert isinstance(run(model.with_structured_output(Joke), mode, how), Joke)
        assert "tool_choice" in emulator.requests[-1].body
    assert "response_format type is unavailable" in str(caught.value)
