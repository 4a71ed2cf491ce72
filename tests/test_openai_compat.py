"""What users of ChatOpenAI expect: n, logprobs, reply details, extra_body.

Against the emulator, sync and async: every choice of `n` becomes a
generation, logprobs and `service_tier` reach `response_metadata` (merged
across a stream), the usage details map to LangChain's names, and
`extra_body` lands at the top level of the request body.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import requests
from emulator_requests import last_body, merge_chunks
from langchain_core.load import dumpd
from langchain_core.messages import HumanMessage

from langchain_dfehub import ChatDfeHub
from langchain_dfehub.testing import DfeHubEmulator


@pytest.fixture
def model(dfehub_emulator: DfeHubEmulator) -> ChatDfeHub:
    return ChatDfeHub(base_url=dfehub_emulator.base_url)


# --- n > 1 ----------------------------------------------------------------------


def test_every_choice_becomes_a_generation(dfehub_emulator: DfeHubEmulator) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, n=3)
    result = model.generate([[HumanMessage("one two")]])

    generations = result.generations[0]
    assert [g.message.content for g in generations] == ["one two"] * 3
    assert [g.generation_info for g in generations] == [{"finish_reason": "stop"}] * 3
    assert last_body(dfehub_emulator)["n"] == 3


def test_the_request_usage_rides_on_the_first_choice_only(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    first, second = model.generate([[HumanMessage("a b c")]], n=2).generations[0]
    usage = first.message.usage_metadata  # type: ignore[attr-defined]
    assert usage["output_tokens"] == 6  # both choices
    assert second.message.usage_metadata is None  # type: ignore[attr-defined]


async def test_agenerate_returns_every_choice(model: ChatDfeHub) -> None:
    result = await model.agenerate([[HumanMessage("hi")]], n=2)
    assert [g.message.content for g in result.generations[0]] == ["hi", "hi"]


def test_invoke_with_n_returns_the_first_choice(model: ChatDfeHub) -> None:
    assert model.invoke("first", n=2).content == "first"


def test_a_stream_with_n_above_1_is_refused_before_any_request(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, n=2)
    with pytest.raises(ValueError, match=r"n=2 cannot be streamed"):
        list(model.stream("hi"))
    assert dfehub_emulator.requests == []


async def test_an_astream_with_n_above_1_is_refused(model: ChatDfeHub) -> None:
    with pytest.raises(ValueError, match=r"cannot be streamed"):
        async for _ in model.astream("hi", n=3):
            pass


def test_streaming_true_with_n_above_1_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="n must be 1 with streaming=True"):
        ChatDfeHub(streaming=True, n=2)


def test_n_below_1_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        ChatDfeHub(n=0)


# --- logprobs -------------------------------------------------------------------


def test_invoke_returns_logprobs_when_asked(dfehub_emulator: DfeHubEmulator) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, logprobs=True, top_logprobs=2)
    answer = model.invoke("red green blue")

    entries = answer.response_metadata["logprobs"]["content"]
    assert "".join(entry["token"] for entry in entries) == "red green blue"
    assert [len(entry["top_logprobs"]) for entry in entries] == [2, 2, 2]
    body = last_body(dfehub_emulator)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)


def test_no_logprobs_key_unless_asked(model: ChatDfeHub) -> None:
    assert "logprobs" not in model.invoke("plain").response_metadata


def test_a_merged_stream_has_the_logprobs_of_every_token(model: ChatDfeHub) -> None:
    chunks = list(model.stream("red green blue", logprobs=True))
    merged = merge_chunks(chunks)

    entries = merged.response_metadata["logprobs"]["content"]
    assert "".join(entry["token"] for entry in entries) == merged.content
    assert len(entries) == 3


async def test_an_async_merged_stream_has_the_logprobs_too(model: ChatDfeHub) -> None:
    chunks = [chunk async for chunk in model.astream("a b c d", logprobs=True)]
    entries = merge_chunks(chunks).response_metadata["logprobs"]["content"]
    assert [entry["token"] for entry in entries] == ["a ", "b ", "c ", "d"]


def test_streaming_invoke_keeps_the_logprobs(dfehub_emulator: DfeHubEmulator) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, streaming=True)
    answer = model.invoke("x y", logprobs=True)
    tokens = [e["token"] for e in answer.response_metadata["logprobs"]["content"]]
    assert tokens == ["x ", "y"]


# --- service tier, fingerprint and usage details ------------------------------------


def test_invoke_keeps_service_tier_fingerprint_and_usage_details(
    model: ChatDfeHub,
) -> None:
    answer = model.invoke("details")
    assert answer.response_metadata["service_tier"] == "default"
    assert answer.response_metadata["system_fingerprint"] == "fp_dfehub_emulator"
    usage = answer.usage_metadata
    assert usage is not None
    assert usage.get("input_token_details") == {"cache_read": 0, "audio": 0}
    assert usage.get("output_token_details") == {"reasoning": 0, "audio": 0}


async def test_a_merged_stream_keeps_them_once(model: ChatDfeHub) -> None:
    merged = merge_chunks([chunk async for chunk in model.astream("details")])
    assert merged.response_metadata["service_tier"] == "default"
    assert merged.response_metadata["system_fingerprint"] == "fp_dfehub_emulator"
    usage = merged.usage_metadata
    assert usage is not None
    assert usage.get("input_token_details") == {"cache_read": 0, "audio": 0}


# --- extra_body -----------------------------------------------------------------


def test_extra_body_is_merged_at_the_top_level(dfehub_emulator: DfeHubEmulator) -> None:
    model = ChatDfeHub(
        base_url=dfehub_emulator.base_url,
        extra_body={"top_k": 40, "chat_template_kwargs": {"enable_thinking": False}},
    )
    model.invoke("hi")
    body = last_body(dfehub_emulator)
    assert body["top_k"] == 40
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "extra_body" not in body


async def test_a_calls_extra_body_is_merged_over_the_models(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(
        base_url=dfehub_emulator.base_url, extra_body={"top_k": 40, "min_p": 0.1}
    )
    async for _ in model.astream("hi", extra_body={"top_k": 5}):
        pass
    body = last_body(dfehub_emulator)
    assert (body["top_k"], body["min_p"]) == (5, 0.1)
    assert "extra_body" not in body


def test_extra_body_may_not_replace_the_messages(model: ChatDfeHub) -> None:
    with pytest.raises(ValueError, match=r"extra_body may not set \['messages'\]"):
        model.invoke("hi", extra_body={"messages": []})


# --- constructor names from ChatOpenAI ----------------------------------------------

SECRET = "sk-test-2b9d4e7a1c"


def test_chatopenai_spellings_set_our_fields(dfehub_emulator: DfeHubEmulator) -> None:
    model = ChatDfeHub(
        model_name="my-model",
        openai_api_key=SECRET,
        openai_api_base=dfehub_emulator.base_url,
        request_timeout=7.5,
        max_completion_tokens=3,
    )
    assert model.model == "my-model"
    assert model.api_key is not None
    assert model.api_key.get_secret_value() == SECRET
    assert model.base_url == dfehub_emulator.base_url
    assert model.timeout == 7.5
    assert model.max_tokens == 3
    assert model.model_kwargs == {}

    model.invoke("a b c d e")
    request = dfehub_emulator.requests[-1]
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(request.body)
    assert SECRET not in repr(model)
    assert SECRET not in str(dumpd(model))


def test_an_alias_and_its_field_together_are_refused() -> None:
    with pytest.raises(ValueError, match="give only model="):
        ChatDfeHub(model="a", model_name="b")


@pytest.mark.parametrize(
    ("name", "value", "advice"),
    [
        ("openai_organization", "org-1", "OpenAI-Organization"),
        ("async_client", object(), "http_async_client="),
        ("default_query", {"a": "b"}, "into base_url"),
        ("extra_headers", {"X-Key": "sk-x"}, "default_headers="),
        ("extra_query", {"a": "b"}, "into base_url"),
        ("tiktoken_model_name", "gpt-4", "custom_get_token_ids"),
        ("anthropic_api_key", "sk-x", "looks like a secret"),
        ("access_token", "t", "looks like a secret"),
        ("top_k", httpx.Timeout(1.0), "is a Timeout"),
    ],
)
def test_client_settings_secrets_and_objects_are_refused(
    name: str, value: Any, advice: str
) -> None:
    with pytest.raises(ValueError, match=advice) as caught:
        ChatDfeHub(**{name: value})
    assert "sk-x" not in str(caught.value)


# The openai SDK takes these per call too; ChatOpenAI users pass them to
# invoke. Sent as body fields they would carry header values to the server.
@pytest.mark.parametrize("name", ["extra_headers", "extra_query"])
def test_a_calls_client_settings_are_refused_before_any_request(
    name: str, model: ChatDfeHub, dfehub_emulator: DfeHubEmulator
) -> None:
    with pytest.raises(ValueError, match=f"no setting {name!r}") as caught:
        model.invoke("hi", **{name: {"X-Key": "sk-x"}})
    assert "sk-x" not in str(caught.value)
    assert dfehub_emulator.requests == []


@pytest.mark.parametrize("name", ["extra_headers", "extra_query"])
async def test_an_async_calls_client_settings_are_refused_too(
    name: str, model: ChatDfeHub, dfehub_emulator: DfeHubEmulator
) -> None:
    with pytest.raises(ValueError, match=f"no setting {name!r}"):
        async for _ in model.astream("hi", **{name: {"X-Key": "sk-x"}}):
            pass
    assert dfehub_emulator.requests == []


def test_an_unknown_plain_value_goes_to_the_body_with_a_warning(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    with pytest.warns(
        UserWarning, match=r"\['top_k'\] not default parameters"
    ) as caught:
        model = ChatDfeHub(base_url=dfehub_emulator.base_url, top_k=40)
    assert caught[0].filename == __file__  # points at the caller's line
    assert model.model_kwargs == {"top_k": 40}
    model.invoke("hi")
    assert last_body(dfehub_emulator)["top_k"] == 40


def test_a_known_api_parameter_goes_to_the_body_silently(
    recwarn: pytest.WarningsRecorder,
) -> None:
    model = ChatDfeHub(seed=7, logit_bias={"50256": -100})
    assert model.model_kwargs == {"seed": 7, "logit_bias": {"50256": -100}}
    assert not [w for w in recwarn if "model_kwargs" in str(w.message)]


# --- profile --------------------------------------------------------------------


def test_the_services_model_has_a_profile() -> None:
    profile = ChatDfeHub().profile
    assert profile is not None
    assert profile["max_input_tokens"] == 16385
    assert profile["tool_calling"] is True
    assert profile["structured_output"] is False
    assert profile["reasoning_output"] is False


def test_an_unknown_model_has_no_profile_unless_given() -> None:
    assert ChatDfeHub(model="my-finetune").profile is None
    given = ChatDfeHub(model="my-finetune", profile={"max_input_tokens": 4096})
    assert given.profile == {"max_input_tokens": 4096}


def test_each_model_owns_its_profile() -> None:
    first, second = ChatDfeHub(), ChatDfeHub()
    assert first.profile is not None
    first.profile["max_input_tokens"] = 1
    assert second.profile is not None
    assert second.profile["max_input_tokens"] == 16385
    assert "profile" not in str(dumpd(second))


def test_names_that_are_fields_of_the_model_are_taken_as_fields() -> None:
    with requests.Session() as client:
        model = ChatDfeHub(openai_proxy="http://proxy:3128", http_client=client)
    assert model.proxy == "http://proxy:3128"
    assert model.http_client is client
    assert model.model_kwargs == {}
