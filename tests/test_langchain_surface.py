"""What a LangChain user meets: profiles, the structured-output default,
refusals, media inputs, tracing metadata and `llm_output`.

Each behaviour runs on the sync and the async path against a local server:
the emulator in the flavour that matters, or a raw server for replies the
emulator never gives (a refusal).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import socket
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest
from hostile_server import HostileServer, http_head
from langchain_core.exceptions import ModelRefusalError
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel

from langchain_dfehub import ChatDfeHub, DfeHubNotFoundError, DfeHubRefusalError
from langchain_dfehub._profiles import default_profile, family_source
from langchain_dfehub.testing import DfeHubEmulator
from langchain_dfehub.testing._media import b64, png_bytes, wav_bytes

MODES = ["sync", "async"]


class Joke(BaseModel):
    setup: str
    punchline: str


def run(mode: str, sync: Callable[[], Any], coro: Callable[[], Any]) -> Any:
    return sync() if mode == "sync" else asyncio.run(coro())


# --- profiles ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "context", "structured"),
    [
        ("gpt-3.5-turbo", 16385, False),
        ("gpt-4o-mini", 128000, True),
        ("openai/gpt-4.1", 1047576, True),
        ("meta-llama/Llama-3.1-8B-Instruct", 131072, True),
        ("llama3.2:3b", 131072, True),
        ("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", 131072, True),
        ("Qwen/Qwen2.5-7B-Instruct", 32768, True),
        ("qwen3:8b", 32768, True),
        ("deepseek-chat", 131072, False),
        ("deepseek-reasoner", 131072, False),
        ("google/gemma-3-27b-it", 131072, True),
        ("mistralai/Mistral-7B-Instruct-v0.3", 32768, True),
        ("mistral-nemo", 131072, True),
    ],
)
def test_common_model_families_have_a_profile_with_its_source(
    name: str, context: int, structured: bool
) -> None:
    profile = ChatDfeHub(model=name, base_url="http://127.0.0.1:9/v1").profile
    assert profile is not None
    assert profile["max_input_tokens"] == context
    assert profile["structured_output"] is structured
    assert family_source(name)


def test_an_unknown_model_has_no_profile() -> None:
    assert default_profile("my-finetune") is None
    assert (
        ChatDfeHub(model="my-finetune", base_url="http://127.0.0.1:9/v1").profile
        is None
    )


def test_a_profile_is_a_copy_the_user_may_change() -> None:
    first = default_profile("gpt-4o")
    assert first is not None
    first["max_input_tokens"] = 1
    assert default_profile("gpt-4o")["max_input_tokens"] == 128000  # type: ignore[index]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("flavour", "expected"),
    [
        ("vllm", {"max_input_tokens": 4096, "structured_output": True}),
        ("llama.cpp", {"max_input_tokens": 4096, "structured_output": True}),
    ],
)
def test_fetch_profile_reads_the_context_size_the_server_reports(
    mode: str, flavour: str, expected: dict[str, Any]
) -> None:
    with DfeHubEmulator(
        flavour=flavour, context_size=4096, models=["my-finetune"]
    ) as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, model="my-finetune")
        assert model.profile is None  # nothing is asked until told
        profile = run(mode, model.fetch_profile, model.afetch_profile)
        assert {key: profile[key] for key in expected} == expected
        assert model.profile == profile


@pytest.mark.parametrize("mode", MODES)
def test_fetch_profile_keeps_what_the_name_says_and_is_cached(mode: str) -> None:
    with DfeHubEmulator(
        flavour="vllm", context_size=8192, models=["Qwen/Qwen2.5-7B-Instruct"]
    ) as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, model="Qwen/Qwen2.5-7B-Instruct")
        profile = run(mode, model.fetch_profile, model.afetch_profile)
        assert profile["max_input_tokens"] == 8192  # the server's, not the card's
        assert profile["tool_calling"] is True  # from the known family
        base_url = emulator.base_url
        emulator.stop()  # a second call must not need the server
        other = ChatDfeHub(base_url=base_url, model="Qwen/Qwen2.5-7B-Instruct")
        again = run(mode, other.fetch_profile, other.afetch_profile)
        assert again == profile
        again["max_input_tokens"] = 1  # the caller's copy, not the cache
        assert other.fetch_profile()["max_input_tokens"] == 8192


@pytest.mark.parametrize("mode", MODES)
def test_fetch_profile_of_a_model_the_server_does_not_list_says_so(mode: str) -> None:
    with DfeHubEmulator(flavour="vllm", models=["served-one"]) as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, model="other")
        with pytest.raises(DfeHubNotFoundError, match="served-one"):
            run(mode, model.fetch_profile, model.afetch_profile)


# --- the default structured-output method ------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("flavour", "model_name", "sent"),
    [
        ("deepseek", "deepseek-chat", "tool_choice"),
        ("openai", "gpt-3.5-turbo", "tool_choice"),
        ("llama.cpp", "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", "response_format"),
        ("vllm", "my-finetune", "response_format"),
    ],
)
def test_the_default_structured_output_method_follows_the_profile(
    mode: str, flavour: str, model_name: str, sent: str
) -> None:
    with DfeHubEmulator(flavour=flavour) as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, model=model_name)
        structured = model.with_structured_output(Joke)
        joke = run(
            mode,
            lambda: structured.invoke("Tell a joke"),
            lambda: structured.ainvoke("Tell a joke"),
        )
        assert isinstance(joke, Joke)
        assert sent in emulator.requests[-1].body


@pytest.mark.parametrize("mode", MODES)
def test_a_fetched_server_profile_turns_json_schema_on(mode: str) -> None:
    with DfeHubEmulator(flavour="vllm") as emulator:
        model = ChatDfeHub(base_url=emulator.base_url)  # gpt-3.5-turbo: no json_schema
        run(mode, model.fetch_profile, model.afetch_profile)
        structured = model.with_structured_output(Joke)
        run(mode, lambda: structured.invoke("joke"), lambda: structured.ainvoke("joke"))
        assert emulator.requests[-1].body["response_format"]["type"] == "json_schema"


# --- refusals ----------------------------------------------------------------


REFUSAL = "I'm sorry, I can't help with that."


def _refusing(conn: socket.socket, request: bytes) -> None:
    body = json.loads(request.partition(b"\r\n\r\n")[2])
    if body.get("stream"):
        conn.sendall(http_head("200 OK", "text/event-stream"))
        for piece in ("I'm sorry, ", "I can't help with that."):
            delta = {"role": "assistant", "refusal": piece}
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
            conn.sendall(f"data: {json.dumps(chunk)}\n\n".encode())
        end = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        conn.sendall(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        return
    message = {"role": "assistant", "content": None, "refusal": REFUSAL}
    reply = {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12},
    }
    conn.sendall(http_head("200 OK", "application/json") + json.dumps(reply).encode())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True])
def test_a_refusal_is_a_standard_content_block(
    hostile_server: Callable[..., HostileServer], mode: str, streaming: bool
) -> None:
    server = hostile_server(_refusing)
    model = ChatDfeHub(base_url=server.base_url, max_retries=0, streaming=streaming)
    answer = run(mode, lambda: model.invoke("x"), lambda: model.ainvoke("x"))
    assert answer.additional_kwargs["refusal"] == REFUSAL
    assert {"type": "refusal", "refusal": REFUSAL} in answer.content_blocks


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_structured_output_raises_model_refusal_error(
    hostile_server: Callable[..., HostileServer], mode: str, method: str
) -> None:
    server = hostile_server(_refusing)
    model = ChatDfeHub(base_url=server.base_url, max_retries=0)
    structured = model.with_structured_output(Joke, method=method)  # type: ignore[arg-type]
    with pytest.raises(ModelRefusalError, match="can't help") as caught:
        run(mode, lambda: structured.invoke("json"), lambda: structured.ainvoke("json"))
    assert isinstance(caught.value, DfeHubRefusalError)
    assert isinstance(caught.value.raw_message, AIMessage)


@pytest.mark.parametrize("mode", MODES)
def test_refusal_middleware_sees_our_refusals(
    hostile_server: Callable[..., HostileServer], mode: str
) -> None:
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelRefusalMiddleware

    server = hostile_server(_refusing)
    model = ChatDfeHub(base_url=server.base_url, max_retries=0)
    agent = create_agent(model, middleware=[ModelRefusalMiddleware()])
    state = {"messages": [HumanMessage("x")]}
    with pytest.raises(ModelRefusalError):
        run(mode, lambda: agent.invoke(state), lambda: agent.ainvoke(state))


# --- media inputs --------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_anthropic_image_blocks_become_image_url_parts(mode: str) -> None:
    png = b64(png_bytes())
    message = HumanMessage(
        [
            {"type": "text", "text": "What is this?"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": png},
            },
            {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
        ]
    )
    with DfeHubEmulator() as emulator:
        model = ChatDfeHub(base_url=emulator.base_url)
        run(mode, lambda: model.invoke([message]), lambda: model.ainvoke([message]))
        parts = emulator.requests[-1].body["messages"][0]["content"]
    assert parts[1:] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("part", "wrong"),
    [
        (
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            "unsupported image",
        ),
        ({"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}, "image_url.url"),
        (
            {"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}},
            "'wav' and 'mp3'",
        ),
        ({"type": "file", "file": {"filename": "a.pdf"}}, "file_data"),
    ],
)
def test_the_emulator_refuses_media_parts_openai_refuses(
    mode: str, part: dict[str, Any], wrong: str
) -> None:
    from langchain_dfehub import DfeHubInvalidRequestError

    message = HumanMessage([{"type": "text", "text": "look"}, part])
    with DfeHubEmulator() as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)
        with pytest.raises(DfeHubInvalidRequestError, match=wrong):
            run(mode, lambda: model.invoke([message]), lambda: model.ainvoke([message]))


@pytest.mark.parametrize("mode", MODES)
def test_standard_audio_blocks_pass_the_emulator_checks(mode: str) -> None:
    message = HumanMessage(
        [
            {"type": "text", "text": "hear"},
            {"type": "audio", "base64": b64(wav_bytes()), "mime_type": "audio/wav"},
        ]
    )
    with DfeHubEmulator() as emulator:
        model = ChatDfeHub(base_url=emulator.base_url)
        answer = run(
            mode, lambda: model.invoke([message]), lambda: model.ainvoke([message])
        )
        assert answer.content == "hear"
        assert emulator.requests[-1].body["messages"][0]["content"][1]["type"] == (
            "input_audio"
        )


# --- tracing and outputs ------------------------------------------------------


def test_lc_versions_names_this_package() -> None:
    from langchain_dfehub import __version__

    model = ChatDfeHub(base_url="http://127.0.0.1:9/v1")
    assert model.metadata is not None
    versions = model.metadata["lc_versions"]
    assert versions["langchain-dfehub"] == __version__
    assert "langchain-core" in versions


@pytest.mark.parametrize("mode", MODES)
def test_generate_reports_summed_usage_and_the_model_in_llm_output(mode: str) -> None:
    prompts = [[HumanMessage("one two")], [HumanMessage("three four five")]]
    with DfeHubEmulator() as emulator:
        model = ChatDfeHub(base_url=emulator.base_url)
        result = run(
            mode, lambda: model.generate(prompts), lambda: model.agenerate(prompts)
        )
    usage = result.llm_output["token_usage"]
    each = [g[0].message.usage_metadata for g in result.generations]
    assert usage["prompt_tokens"] == sum(u["input_tokens"] for u in each)
    assert usage["total_tokens"] == sum(u["total_tokens"] for u in each)
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert result.llm_output["model_name"] == "gpt-3.5-turbo"
    assert result.llm_output["system_fingerprint"] == "fp_dfehub_emulator"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("output_version", ["v0", "v1"])
def test_streamed_reasoning_blocks_show_the_merge_index_only_in_v1(
    mode: str, output_version: str
) -> None:
    async def chunks_async(model: ChatDfeHub) -> list[Any]:
        return [chunk async for chunk in model.astream("Hello there")]

    with DfeHubEmulator(flavour="llama.cpp", reasoning=True) as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, output_version=output_version)
        chunks = run(
            mode, lambda: list(model.stream("Hello there")), lambda: chunks_async(model)
        )
    blocks = [
        block
        for chunk in chunks
        for block in (chunk.content if output_version == "v1" else chunk.content_blocks)
        if isinstance(block, dict) and block.get("type") == "reasoning"
    ]
    assert blocks
    indexes = {block.get("index") for block in blocks}
    assert indexes == ({"lc_reasoning"} if output_version == "v1" else {None})


def test_importing_and_building_a_model_loads_no_transport() -> None:
    """The transports, the gate and tenacity load on the first call, not before."""
    code = (
        "import sys\n"
        "from langchain_dfehub import ChatDfeHub\n"
        "model = ChatDfeHub(api_key='k', gate=None)\n"
        "heavy = ('langchain_dfehub._transport', 'langchain_dfehub._async_transport',\n"
        "    'langchain_dfehub._gate', 'langchain_dfehub._retry', 'tenacity')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
        "model._transport\n"
        "print('langchain_dfehub._transport' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DFEHUB_GATE_URL": ""},
    )
    assert result.stdout.split("\n")[:2] == ["[]", "True"]


@pytest.mark.parametrize("name", ["_generate", "_agenerate"])
def test_the_signature_langchain_reads_per_call_is_the_methods_own(name: str) -> None:
    """`__signature__` is kept on the methods; it must say what they take."""
    method = getattr(ChatDfeHub, name)
    bare = types.FunctionType(method.__code__, method.__globals__, name)
    bare.__defaults__ = method.__defaults__
    bare.__kwdefaults__ = method.__kwdefaults__
    bare.__annotations__ = method.__annotations__

    assert "__signature__" in vars(method)
    assert inspect.signature(method) == inspect.signature(bare)
    model = ChatDfeHub(api_key="k")
    assert "run_manager" in inspect.signature(getattr(model, name)).parameters
