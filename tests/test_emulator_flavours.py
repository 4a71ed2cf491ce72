"""The emulator's flavours: each copies one server's habits on the wire.

Spoken to over raw HTTP, as any client would; what each server does is
documented in `langchain_dfehub/testing/_flavours.py` with its sources.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from langchain_dfehub.testing import DfeHubEmulator
from langchain_dfehub.testing import __main__ as cli
from langchain_dfehub.testing._flavours import LLAMA_CPP_ALIAS

HELLO = [{"role": "user", "content": "Hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A client of an emulator built with the test's `served` parameters."""
    options: dict[str, Any] = request.param
    with (
        DfeHubEmulator(**options) as emulator,
        httpx.Client(base_url=emulator.base_url, timeout=5) as http,
    ):
        yield http


def post(http: httpx.Client, **fields: Any) -> httpx.Response:
    return http.post("/chat/completions", json={"model": "my-model", **fields})


def events(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    blocks = [b for b in response.text.split("\n\n") if b]
    assert blocks[-1] == "data: [DONE]"
    return [json.loads(b.removeprefix("data: ")) for b in blocks[:-1]]


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


@pytest.mark.parametrize(
    ("served", "field"),
    [
        ({"flavour": "llama.cpp", "reasoning": True}, "reasoning_content"),
        ({"flavour": "deepseek", "reasoning": True}, "reasoning_content"),
        ({"flavour": "vllm", "reasoning": True}, "reasoning"),
    ],
    indirect=["served"],
)
def test_a_reasoning_flavour_streams_its_thinking_before_the_content(served, field):
    chunks = events(post(served, messages=HELLO, stream=True))
    kinds = [
        "reasoning" if field in d else "content"
        for d in deltas(chunks)
        if d.get(field) or d.get("content")
    ]
    assert kinds[0] == "reasoning"
    assert "reasoning" not in kinds[kinds.index("content") :]
    thinking = "".join(d.get(field) or "" for d in deltas(chunks))
    assert thinking == "Let me think. I will answer in 2 words."


@pytest.mark.parametrize(
    ("served", "field"),
    [
        ({"flavour": "llama.cpp", "reasoning": True}, "reasoning_content"),
        ({"flavour": "vllm", "reasoning": True}, "reasoning"),
    ],
    indirect=["served"],
)
def test_a_reasoning_flavour_puts_its_thinking_on_the_whole_message(served, field):
    message = post(served, messages=HELLO).json()["choices"][0]["message"]
    assert message[field] == "Let me think. I will answer in 2 words."
    assert message["content"] == "Hello there"


@pytest.mark.parametrize("served", [{"reasoning": True}], indirect=True)
def test_the_openai_flavour_sends_no_thinking_in_chat_completions(served):
    message = post(served, messages=HELLO).json()["choices"][0]["message"]
    assert "reasoning_content" not in message
    assert "reasoning" not in message


@pytest.mark.parametrize("served", [{"flavour": "llama.cpp"}], indirect=True)
def test_llama_cpp_ignores_a_forced_tool_object_and_acts_as_auto(served):
    forced = {"type": "function", "function": {"name": "get_weather"}}
    reply = post(
        served,
        messages=[{"role": "user", "content": "Tell me a joke"}],
        tools=[WEATHER_TOOL],
        tool_choice=forced,
    ).json()
    message = reply["choices"][0]["message"]
    assert message.get("tool_calls") is None
    assert message["content"] == "Tell me a joke"


@pytest.mark.parametrize("served", [{"flavour": "deepseek"}], indirect=True)
def test_deepseek_refuses_a_json_schema_response_format(served):
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    response = post(
        served,
        messages=HELLO,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema},
        },
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "This response_format type is unavailable now"
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("served", [{}], indirect=True)
def test_the_openai_flavour_honours_a_forced_tool_object(served):
    forced = {"type": "function", "function": {"name": "get_weather"}}
    reply = post(
        served,
        messages=[{"role": "user", "content": "Tell me a joke"}],
        tools=[WEATHER_TOOL],
        tool_choice=forced,
    ).json()
    assert reply["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
        "get_weather"
    )


@pytest.mark.parametrize("served", [{"flavour": "llama.cpp"}], indirect=True)
def test_llama_cpp_names_its_alias_and_sends_timings_last(served):
    whole = post(served, messages=HELLO).json()
    assert whole["model"] == LLAMA_CPP_ALIAS
    assert whole["timings"]["predicted_n"] == whole["usage"]["completion_tokens"]
    for usage in (False, True):
        options = {"stream_options": {"include_usage": True}} if usage else {}
        chunks = events(post(served, messages=HELLO, stream=True, **options))
        assert {c["model"] for c in chunks} == {LLAMA_CPP_ALIAS}
        assert [i for i, c in enumerate(chunks) if "timings" in c] == [len(chunks) - 1]


@pytest.mark.parametrize("served", [{"flavour": "deepseek"}], indirect=True)
def test_deepseek_reports_prompt_cache_and_reasoning_tokens(served):
    usage = post(served, messages=HELLO).json()["usage"]
    assert usage["prompt_cache_hit_tokens"] == 0
    assert usage["prompt_cache_miss_tokens"] == usage["prompt_tokens"]
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 0}


@pytest.mark.parametrize(
    "served", [{"flavour": "deepseek", "reasoning": True}], indirect=True
)
def test_deepseek_counts_the_thinking_as_reasoning_tokens(served):
    usage = post(served, messages=HELLO).json()["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning == 9  # "Let me think. I will answer in 2 words."
    assert usage["completion_tokens"] == reasoning + 2


LONG = [{"role": "user", "content": "word " * 40}]


@pytest.mark.parametrize(
    ("served", "status", "expected"),
    [
        (
            {"context_size": 30},
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 30 tokens."
                    " However, your messages resulted in 40 tokens. Please reduce"
                    " the length of the messages.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
        ),
        (
            {"flavour": "llama.cpp", "context_size": 30},
            400,
            {
                "error": {
                    "code": 400,
                    "message": "request (40 tokens) exceeds the available context"
                    " size (30 tokens)",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": 40,
                    "n_ctx": 30,
                }
            },
        ),
        (
            {"flavour": "vllm", "context_size": 30},
            400,
            {
                "object": "error",
                "message": "This model's maximum context length is 30 tokens."
                " However, you requested 40 tokens in the messages. Please reduce"
                " the length of the messages.",
                "type": "BadRequestError",
                "param": "messages",
                "code": 400,
            },
        ),
    ],
    indirect=["served"],
)
def test_a_prompt_over_the_context_size_gets_the_flavours_error(
    served, status, expected
):
    response = post(served, messages=LONG)
    assert response.status_code == status
    assert response.json() == expected


@pytest.mark.parametrize("served", [{"context_size": 30}], indirect=True)
def test_a_prompt_within_the_context_size_is_answered(served):
    assert post(served, messages=HELLO).status_code == 200


@pytest.mark.parametrize(
    ("served", "status", "words"),
    [
        ({"models": ["served"]}, 404, "does not exist or you do not have access"),
        ({"flavour": "vllm", "models": ["served"]}, 404, "does not exist."),
        ({"flavour": "deepseek", "models": ["served"]}, 400, "Model Not Exist"),
    ],
    indirect=["served"],
)
def test_an_unknown_model_gets_the_flavours_error(served, status, words):
    response = post(served, messages=HELLO)
    assert response.status_code == status
    assert words in response.text
    assert served.post(
        "/chat/completions", json={"model": "served", "messages": HELLO}
    ).is_success


@pytest.mark.parametrize(
    "served", [{"flavour": "llama.cpp", "models": ["served"]}], indirect=True
)
def test_llama_cpp_answers_whatever_model_is_named(served):
    assert post(served, messages=HELLO).json()["model"] == LLAMA_CPP_ALIAS


@pytest.mark.parametrize("served", [{"flavour": "vllm"}], indirect=True)
def test_vllm_reports_a_bad_request_in_its_own_error_shape(served):
    response = post(served, messages=HELLO, temperature=9)
    assert response.status_code == 400
    body = response.json()
    assert body["object"] == "error"
    assert body["type"] == "BadRequestError"
    assert body["code"] == 400


def test_an_unknown_flavour_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"'llama\.cpp'"):
        DfeHubEmulator(flavour="ollama")


def test_the_cli_takes_a_flavour_and_its_options():
    options = cli._parser().parse_args(
        ["--flavour", "llama.cpp", "--reasoning", "--context-size", "4096"]
    )
    assert (options.flavour, options.reasoning, options.context_size) == (
        "llama.cpp",
        True,
        4096,
    )


def test_the_cli_refuses_an_unknown_flavour(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--flavour", "ollama"])
    assert exit_info.value.code == 2
    assert "--flavour" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("served", "names"),
    [
        ({}, ["gpt-3.5-turbo"]),
        ({"models": ["b", "a"]}, ["a", "b"]),
        ({"flavour": "llama.cpp", "models": ["a"]}, [LLAMA_CPP_ALIAS]),
    ],
    indirect=["served"],
)
def test_the_models_route_lists_what_the_server_serves(served, names):
    listed = served.get("/models").json()["data"]
    assert [model["id"] for model in listed] == names
