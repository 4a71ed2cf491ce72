"""ChatDfeHub against the bundled emulator: what a user sees, sync and async."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
from typing import Any

import pytest
from emulator_requests import last_body
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_dfehub import ChatDfeHub
from langchain_dfehub.testing import DfeHubEmulator, ErrorStatus

SECRET = "sk-test-7f3a9c0e5b1d"


@pytest.fixture
def model(dfehub_emulator: DfeHubEmulator) -> ChatDfeHub:
    return ChatDfeHub(base_url=dfehub_emulator.base_url)


class _TokenCounter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


# --- answers ------------------------------------------------------------------


def test_invoke_returns_the_answer_with_metadata_and_usage(model: ChatDfeHub) -> None:
    answer = model.invoke("Hello there, emulator")

    assert isinstance(answer, AIMessage)
    assert answer.content == "Hello there, emulator"
    assert answer.response_metadata["model_name"] == "gpt-3.5-turbo"
    assert answer.response_metadata["finish_reason"] == "stop"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] > 0
    assert answer.usage_metadata["total_tokens"] == (
        answer.usage_metadata["input_tokens"] + answer.usage_metadata["output_tokens"]
    )


def test_stream_delivers_the_same_text_in_several_chunks(model: ChatDfeHub) -> None:
    prompt = "one two three four five"
    chunks = list(model.stream(prompt))

    text_chunks = [c for c in chunks if c.content]
    assert len(text_chunks) == 5
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert isinstance(merged, AIMessageChunk)
    assert merged.content == model.invoke(prompt).content
    assert merged.response_metadata["finish_reason"] == "stop"
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["output_tokens"] == 5


def test_stream_usage_off_does_not_ask_for_usage(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, stream_usage=False)
    chunks = list(model.stream("no usage please"))

    assert "stream_options" not in last_body(dfehub_emulator)
    assert all(chunk.usage_metadata is None for chunk in chunks)


def test_text_that_mentions_protocol_words_arrives_intact(model: ChatDfeHub) -> None:
    tricky = 'the "detail": field, data: [DONE] and {"content": 1} in plain text'
    streamed = "".join(str(c.content) for c in model.stream(tricky))
    assert streamed == tricky
    assert model.invoke(tricky).content == tricky


def test_each_token_reaches_callbacks_exactly_once(model: ChatDfeHub) -> None:
    counter = _TokenCounter()
    texts = [
        str(c.content)
        for c in model.stream("alpha beta gamma", config={"callbacks": [counter]})
    ]
    assert "".join(counter.tokens) == "".join(texts) == "alpha beta gamma"


def test_streaming_true_makes_invoke_stream(dfehub_emulator: DfeHubEmulator) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, streaming=True)
    counter = _TokenCounter()
    answer = model.invoke("tokens one by one", config={"callbacks": [counter]})

    assert last_body(dfehub_emulator)["stream"] is True
    assert answer.content == "tokens one by one"
    assert len([t for t in counter.tokens if t]) == 4


def test_lcel_chain_invokes_and_streams(model: ChatDfeHub) -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "Say {word}")])
    chain = prompt | model | StrOutputParser()

    assert chain.invoke({"word": "cheese"}) == "Say cheese"
    assert "".join(chain.stream({"word": "again"})) == "Say again"


def test_batch_runs_every_input(model: ChatDfeHub) -> None:
    inputs = [f"number {i}" for i in range(12)]
    answers = model.batch(inputs, config={"max_concurrency": 6})
    assert [a.content for a in answers] == inputs


# --- the request -------------------------------------------------------------


def test_only_parameters_the_user_set_are_sent(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    ChatDfeHub(base_url=dfehub_emulator.base_url).invoke("hi")
    body = last_body(dfehub_emulator)
    assert set(body) == {"model", "messages", "stream"}

    ChatDfeHub(
        base_url=dfehub_emulator.base_url,
        temperature=0.5,
        top_p=0.9,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        max_tokens=50,
        stop=["zz"],
        model_kwargs={"seed": 7},
    ).invoke("hi")
    body = last_body(dfehub_emulator)
    assert body["temperature"] == 0.5
    assert body["top_p"] == 0.9
    assert body["presence_penalty"] == 0.1
    assert body["frequency_penalty"] == 0.2
    assert body["max_tokens"] == 50
    assert body["stop"] == ["zz"]
    assert body["seed"] == 7


def test_messages_are_sent_as_role_content_dicts(
    model: ChatDfeHub, dfehub_emulator: DfeHubEmulator
) -> None:
    model.invoke(
        [("system", "Be brief."), ("human", "Hi"), ("ai", "Hello"), ("human", "Bye")]
    )
    assert last_body(dfehub_emulator)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]


def test_call_arguments_override_the_model_and_stop(
    model: ChatDfeHub, dfehub_emulator: DfeHubEmulator
) -> None:
    answer = model.invoke("stop right here please", stop=["here"], model="other-model")
    body = last_body(dfehub_emulator)
    assert body["model"] == "other-model"
    assert body["stop"] == ["here"]
    assert answer.response_metadata["model_name"] == "other-model"
    assert answer.content == "stop right "


def test_unknown_init_arguments_become_body_fields(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, seed=3)
    assert model.model_kwargs == {"seed": 3}
    model.invoke("hi")
    assert last_body(dfehub_emulator)["seed"] == 3


def test_authorization_is_sent_only_when_a_key_is_set(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    ChatDfeHub(base_url=dfehub_emulator.base_url).invoke("no key")
    headers = dfehub_emulator.requests[-1].headers
    assert "authorization" not in headers
    assert headers["user-agent"].startswith("langchain-dfehub/")

    ChatDfeHub(
        base_url=dfehub_emulator.base_url,
        api_key=SECRET,
        default_headers={"X-Team": "blue"},
    ).invoke("with key")
    headers = dfehub_emulator.requests[-1].headers
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["x-team"] == "blue"


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, dfehub_emulator: DfeHubEmulator
) -> None:
    monkeypatch.setenv("DFEHUB_BASE_URL", dfehub_emulator.base_url)
    monkeypatch.setenv("DFEHUB_API_KEY", SECRET)
    model = ChatDfeHub()
    assert model.invoke("from env").content == "from env"
    assert dfehub_emulator.requests[-1].headers["authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    "base_url", ["chat.dfehub.com/api", "ftp://host/v1", "http://", ""]
)
def test_an_unusable_base_url_is_refused_at_construction(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        ChatDfeHub(base_url=base_url)


def test_the_key_appears_in_no_repr_dump_or_trace_parameter() -> None:
    model = ChatDfeHub(api_key=SECRET, base_url="http://u:pw@127.0.0.1:9/v1?k=q")
    places = [
        repr(model),
        str(model),
        str(model.model_dump()),
        json.dumps(model.model_dump(mode="json")),
        json.dumps(dumpd(model)),
        str(model._get_ls_params()),
        str(model._identifying_params),
        str(model._get_invocation_params()),
    ]
    for place in places:
        assert SECRET not in place
    assert "pw" not in str(model._identifying_params)


# --- async ---------------------------------------------------------------------


async def test_ainvoke_and_astream_match_the_sync_answers(model: ChatDfeHub) -> None:
    answer = await model.ainvoke("async hello world")
    assert answer.content == "async hello world"
    assert answer.usage_metadata is not None

    chunks = [chunk async for chunk in model.astream("async hello world")]
    assert "".join(str(c.content) for c in chunks) == "async hello world"
    assert len([c for c in chunks if c.content]) == 3


async def test_concurrent_astreams_stay_whole_and_separate(model: ChatDfeHub) -> None:
    async def one(i: int) -> str:
        parts = [str(c.content) async for c in model.astream(f"stream {i} " * 20)]
        return "".join(parts)

    results = await asyncio.gather(*(one(i) for i in range(40)))
    assert results == [f"stream {i} " * 20 for i in range(40)]


async def test_abatch_runs_every_input(model: ChatDfeHub) -> None:
    answers = await model.abatch([f"item {i}" for i in range(8)])
    assert [a.content for a in answers] == [f"item {i}" for i in range(8)]


def test_one_model_serves_several_event_loops(model: ChatDfeHub) -> None:
    first = asyncio.run(model.ainvoke("first loop"))
    second = asyncio.run(model.ainvoke("second loop"))
    assert (first.content, second.content) == ("first loop", "second loop")


def test_close_then_reuse_reopens_connections(model: ChatDfeHub) -> None:
    assert model.invoke("before").content == "before"
    model.close()
    assert model.invoke("after").content == "after"


async def test_aclose_then_reuse_reopens_connections(model: ChatDfeHub) -> None:
    assert (await model.ainvoke("before")).content == "before"
    await model.aclose()
    assert (await model.ainvoke("after")).content == "after"


def test_a_conversation_round_trips_through_the_server(model: ChatDfeHub) -> None:
    history = [HumanMessage("first question")]
    history.append(model.invoke(history))
    history.append(HumanMessage("second question"))
    answer = model.invoke(history)
    assert answer.content == "second question"


def test_proxy_settings_from_the_environment_are_honoured(
    monkeypatch: pytest.MonkeyPatch, dfehub_emulator: DfeHubEmulator
) -> None:
    # The emulator doubles as the proxy: the model's own host does not exist.
    proxy = dfehub_emulator.base_url.split("/api/")[0]
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    model = ChatDfeHub(base_url="http://dfehub.invalid/api/openai/v1", max_retries=0)
    assert model.invoke("through the proxy").content == "through the proxy"
    assert list(model.stream("streamed too"))
    assert asyncio.run(model.ainvoke("async too")).content == "async too"
    assert dfehub_emulator.requests[-1].headers["host"] == "dfehub.invalid"


def test_a_server_that_ignores_stream_true_still_delivers_its_answer(
    model: ChatDfeHub, dfehub_emulator: DfeHubEmulator
) -> None:
    whole = {
        "id": "chatcmpl-whole",
        "object": "chat.completion",
        "model": "gpt-3.5-turbo",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "all at once"},
                "finish_reason": "stop",
            }
        ],
    }
    dfehub_emulator.add_faults(ErrorStatus(200, json.dumps(whole)))
    chunks = list(model.stream("stream please"))
    assert "".join(str(c.content) for c in chunks) == "all at once"


def test_the_internal_request_repr_hides_the_key(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, api_key=SECRET)
    request = model._request([HumanMessage("hi")], None, stream=False)
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(request)


@pytest.mark.parametrize(
    "duplicate",
    [copy.copy, copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_a_copied_model_works_on_its_own_connections(
    model: ChatDfeHub, duplicate: Any
) -> None:
    assert model.invoke("warm the pools").content == "warm the pools"
    assert asyncio.run(model.ainvoke("async pool")).content == "async pool"
    twin = duplicate(model)
    assert twin.invoke("the copy answers").content == "the copy answers"
    assert asyncio.run(twin.ainvoke("async copy")).content == "async copy"
    assert model.invoke("the original too").content == "the original too"


def test_stop_accepts_one_string_or_a_list(dfehub_emulator: DfeHubEmulator) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, stop="three")
    assert model.stop == ["three"]
    assert model.invoke("one two three four").content == "one two "
    assert last_body(dfehub_emulator)["stop"] == ["three"]
    assert ChatDfeHub(stop_sequences=["x"]).stop == ["x"]
