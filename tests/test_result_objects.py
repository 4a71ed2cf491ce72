"""A whole reply's objects built the fast way are the ones validation builds.

`_result_objects` skips pydantic's validation for the `AIMessage`,
`ChatGeneration` and `ChatResult` of a text answer. Each reply here is turned
into a result twice, once as `invoke` does and once with every object
validated, and the two must hold the same state everywhere.
"""

from __future__ import annotations

import asyncio
import copy
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.load import dumpd
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from model_state import containers, same_object, same_tree

from langchain_dfehub import ChatDfeHub, _messages, _result_objects, _results
from langchain_dfehub._messages import usage_from_dict
from langchain_dfehub._result_objects import (
    FAST,
    reply_generation,
    reply_message,
    reply_result,
)
from langchain_dfehub._results import chat_result
from langchain_dfehub.testing import DfeHubEmulator

Reply = dict[str, Any]


def reply(*messages: dict[str, Any] | None, **fields: Any) -> Reply:
    """A `chat.completion` with one choice per message (None: no `message`)."""
    choices = []
    for index, message in enumerate(messages):
        choice: dict[str, Any] = {"index": index, "finish_reason": "stop"}
        if message is not None:
            choice["message"] = {"role": "assistant", **message}
        choices.append(choice)
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-3.5-turbo",
        "choices": choices,
        **fields,
    }


USAGE = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
DETAILED_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 4},
    "completion_tokens_details": {
        "reasoning_tokens": 12,
        "audio_tokens": 3,
        "accepted_prediction_tokens": 1,
    },
}
LOGPROBS = {
    "content": [{"token": "hi", "logprob": -0.1, "bytes": [104, 105]}],
    "refusal": None,
}


def several_choices() -> Reply:
    data = reply(
        {"content": "first"},
        {"content": "second"},
        {"content": None},
        usage=USAGE,
    )
    data["choices"][1]["finish_reason"] = "length"
    data["choices"][1]["logprobs"] = LOGPROBS
    data["choices"].append("not a choice")  # left out, both ways
    return data


# Replies whose every object takes the fast way.
FAST_REPLIES: dict[str, Callable[[], Reply]] = {
    "text with usage": lambda: reply({"content": "hello there a b c"}, usage=USAGE),
    "text without usage": lambda: reply({"content": "hello"}),
    "null usage": lambda: reply({"content": "hello"}, usage=None),
    "usage with every detail": lambda: reply({"content": "hi"}, usage=DETAILED_USAGE),
    "usage without a total": lambda: reply(
        {"content": "hi"}, usage={"prompt_tokens": 3, "completion_tokens": 4}
    ),
    "deepseek's cache hits": lambda: reply(
        {"content": "hi"},
        usage={**USAGE, "prompt_cache_hit_tokens": 2, "prompt_cache_miss_tokens": 3},
    ),
    "zero details": lambda: reply(
        {"content": "hi"},
        usage={
            **USAGE,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    ),
    "several choices": several_choices,
    "empty content": lambda: reply({"content": ""}, usage=USAGE),
    "null content": lambda: reply({"content": None}),
    "no content": lambda: reply({}),
    "no message": lambda: reply(None),
    "logprobs": lambda: {
        **reply({"content": "hi"}),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi"},
                "finish_reason": "stop",
                "logprobs": LOGPROBS,
            }
        ],
    },
    "fingerprint, tier and timings": lambda: reply(
        {"content": "hi"},
        usage=USAGE,
        system_fingerprint="fp_1",
        service_tier="default",
        timings={"prompt_n": 3, "predicted_per_second": 40.5},
    ),
    "reasoning_content": lambda: reply(
        {"content": "42", "reasoning_content": "think"}, usage=USAGE
    ),
    "reasoning": lambda: reply({"content": "42", "reasoning": "think"}),
    "refusal": lambda: reply({"content": None, "refusal": "I can't."}),
    "no id and no model": lambda: {
        key: value
        for key, value in reply({"content": "hi"}).items()
        if key not in ("id", "model")
    },
    "unicode and newlines": lambda: reply({"content": " wörld ✓\n\nb"}),
    "empty tool calls": lambda: reply({"content": "hi", "tool_calls": []}),
    "null finish reason": lambda: {
        **reply({"content": "hi"}),
        "choices": [{"index": 0, "message": {"content": "hi"}}],
    },
}


def call(name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": f"call_{name}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def list_content_second() -> Reply:
    data = reply({"content": "first"}, {"content": "x"})
    data["choices"][1]["message"]["content"] = [{"type": "text", "text": "x"}]
    return data


# Replies with a message that takes the validated way.
VALIDATED_REPLIES: dict[str, Callable[[], Reply]] = {
    "tool calls": lambda: reply(
        {"content": None, "tool_calls": [call("f", '{"a": 1}')]}, usage=USAGE
    ),
    "an invalid tool call": lambda: reply({"tool_calls": [call("f", '{"a": ')]}),
    "text and a tool call": lambda: reply(
        {"content": "calling", "tool_calls": [call("g", "")]}
    ),
    "a numeric id": lambda: {**reply({"content": "hi"}), "id": 12345},
    "list content in a second choice": list_content_second,
}


@pytest.fixture
def validated(monkeypatch: pytest.MonkeyPatch) -> Callable[[Reply], ChatResult]:
    """`chat_result` with every object built by its validating constructor."""

    def build(data: Reply) -> ChatResult:
        with monkeypatch.context() as patch:
            patch.setattr(
                _messages, "reply_message", _result_objects._validated_reply_message
            )
            patch.setattr(
                _results,
                "reply_generation",
                _result_objects._validated_reply_generation,
            )
            patch.setattr(
                _results, "reply_result", _result_objects._validated_reply_result
            )
            return chat_result(data)

    return build


@pytest.fixture
def built_fast(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The class of every object the fast constructors build, in order."""
    built: list[str] = []

    def new(cls: type[Any]) -> Any:
        built.append(cls.__name__)
        return object.__new__(cls)

    monkeypatch.setattr(_result_objects, "_new", new)
    return built


def test_the_fast_path_is_taken_with_the_installed_langchain_core() -> None:
    assert FAST
    assert reply_message is _result_objects._fast_reply_message
    assert reply_generation is _result_objects._fast_reply_generation
    assert reply_result is _result_objects._fast_reply_result


@pytest.mark.parametrize("make", FAST_REPLIES.values(), ids=FAST_REPLIES.keys())
def test_a_text_reply_becomes_the_validated_result_without_validation(
    make: Callable[[], Reply],
    validated: Callable[[Reply], ChatResult],
    built_fast: list[str],
) -> None:
    fast = chat_result(make())
    count = len(fast.generations)
    assert built_fast.count("AIMessage") == count
    assert built_fast.count("ChatGeneration") == count
    assert built_fast.count("ChatResult") == 1
    expected = validated(make())
    same_tree(fast, expected)
    assert fast.model_dump() == expected.model_dump()
    assert fast.model_dump_json() == expected.model_dump_json()
    for one, other in zip(fast.generations, expected.generations, strict=True):
        assert isinstance(one, ChatGeneration)
        assert isinstance(one.message, AIMessage)
        assert one.text == other.text
        assert type(one.text) is type(other.text)
        assert one.message.tool_calls == []
        assert one.message.invalid_tool_calls == []
        assert one.message.type == "ai"
        assert one.message.content_blocks == other.message.content_blocks
        assert dumpd(one.message) == dumpd(other.message)
        assert dumpd(one) == dumpd(other)
    assert pickle.loads(pickle.dumps(fast)) == expected
    same_tree(copy.deepcopy(fast), expected)


@pytest.mark.parametrize(
    "make", VALIDATED_REPLIES.values(), ids=VALIDATED_REPLIES.keys()
)
def test_any_other_reply_is_built_the_validated_way(
    make: Callable[[], Reply],
    validated: Callable[[Reply], ChatResult],
    built_fast: list[str],
) -> None:
    fast = chat_result(make())
    assert built_fast.count("AIMessage") < len(fast.generations)
    same_tree(fast, validated(make()))


def test_a_numeric_id_becomes_a_string_as_validation_makes_it() -> None:
    [found] = chat_result({**reply({"content": "hi"}), "id": 7}).generations
    assert found.message.id == "7"


def test_a_message_with_list_content_gets_a_validated_generation(
    built_fast: list[str],
) -> None:
    message = AIMessage(content=[{"type": "text", "text": "a"}, {"text": "b"}])
    found = reply_generation(message, {"finish_reason": "stop"})
    assert built_fast == []
    assert found.text == "ab"  # the validator's reading of legacy blocks


def test_tool_calls_in_additional_kwargs_are_parsed_as_validation_does(
    built_fast: list[str],
) -> None:
    raw = {"tool_calls": [call("f", '{"a": 1}')]}
    found = reply_message("", dict(raw), {}, None, None)
    assert built_fast == []
    assert found.tool_calls == [
        {"name": "f", "args": {"a": 1}, "id": "call_f", "type": "tool_call"}
    ]
    expected = AIMessage(
        content="",
        additional_kwargs=dict(raw),
        response_metadata={},
        usage_metadata=None,
        id=None,
        tool_calls=[],
        invalid_tool_calls=[],
    )
    same_object(found, expected)


@pytest.mark.parametrize(
    "usage",
    [
        USAGE,
        DETAILED_USAGE,
        {"prompt_tokens": 1},
        {**USAGE, "prompt_cache_hit_tokens": 1},
    ],
)
def test_usage_is_written_as_validation_stores_it(usage: dict[str, Any]) -> None:
    written = usage_from_dict(usage)
    stored = AIMessage(content="", usage_metadata=written).usage_metadata
    same_tree(written, stored)


def test_results_share_no_container_with_each_other(
    validated: Callable[[Reply], ChatResult],
) -> None:
    data = several_choices()
    from_reply = containers(data)
    first, second = chat_result(data), chat_result(data)
    ours = {key for key in containers(first) if key not in from_reply}
    assert ours
    assert ours.isdisjoint(containers(second))
    # What a result keeps of the reply itself (its usage in `llm_output`, a
    # choice's logprobs) is what the validated result keeps.
    kept = {key for key in containers(first) if key in from_reply}
    assert kept == {key for key in containers(validated(data)) if key in from_reply}
    assert kept


def test_changing_one_result_leaves_the_next_untouched() -> None:
    data = reply({"content": "hi"}, usage=USAGE)
    first = chat_result(data)
    message = first.generations[0].message
    assert isinstance(message, AIMessage)
    message.additional_kwargs["x"] = 1
    message.response_metadata["y"] = 2
    message.tool_calls.append({"name": "f", "args": {}, "id": "1", "type": "tool_call"})
    assert message.usage_metadata is not None
    message.usage_metadata["input_tokens"] = 99
    message.name = "renamed"  # recorded in the message's fields-set
    first.generations[0].generation_info = None
    first.generations.clear()
    assert first.llm_output is not None
    first.llm_output["extra"] = True

    second = chat_result(data)
    again = second.generations[0].message
    assert isinstance(again, AIMessage)
    assert again.additional_kwargs == {}
    assert "y" not in again.response_metadata
    assert again.tool_calls == []
    assert again.usage_metadata is not None
    assert again.usage_metadata["input_tokens"] == 5
    assert again.name is None
    assert "name" not in again.model_fields_set
    assert second.generations[0].generation_info == {"finish_reason": "stop"}
    assert second.llm_output is not None
    assert "extra" not in second.llm_output


def test_invoke_and_ainvoke_answer_as_the_validated_way_does(
    dfehub_emulator: DfeHubEmulator,
    validated: Callable[[Reply], ChatResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, n=2)
    results: list[ChatResult] = []
    replies: list[Reply] = []
    original = _results.chat_result

    def recorded(data: Reply) -> ChatResult:
        # LangChain goes on to change the result it is given; what is
        # compared is a second one, built from the same reply.
        replies.append(copy.deepcopy(data))
        results.append(original(copy.deepcopy(data)))
        return original(data)

    monkeypatch.setattr("langchain_dfehub._results.chat_result", recorded)
    answers = [
        model.generate([[HumanMessage("one two")]]),
        asyncio.run(model.agenerate([[HumanMessage("one two")]])),
    ]
    assert len(results) == 2
    for answer, result, data in zip(answers, results, replies, strict=True):
        same_tree(result, validated(data))
        [generations] = answer.generations
        assert len(generations) == 2
        for generation in generations:
            assert generation.text == "one two"
            assert isinstance(generation.message, AIMessage)
            assert generation.message.tool_calls == []
            assert generation.message.response_metadata["model_provider"] == "dfehub"
        assert generations[0].message.usage_metadata is not None
        assert generations[1].message.usage_metadata is None
