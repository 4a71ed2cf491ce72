"""Specification of the pure message conversions in `langchain_dfehub._messages`."""

from __future__ import annotations

import asyncio
import json
from functools import reduce
from operator import add
from typing import Any, Literal

import pytest
from emulator_requests import last_body
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.tools import tool

from langchain_dfehub import ChatDfeHub
from langchain_dfehub._messages import (
    chunk_to_message,
    message_to_dict,
    messages_to_dicts,
    response_to_message,
    response_to_messages,
    usage_from_dict,
)
from langchain_dfehub.testing import DfeHubEmulator

# --- helpers: wire objects as an OpenAI-compatible server sends them ---------


def completion(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-3.5-turbo-0125",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": extra.pop("finish_reason", "stop"),
            }
        ],
    }
    body.update(extra)
    return body


def wire_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def chunk(
    delta: dict[str, Any] | None = None, finish_reason: str | None = None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-3.5-turbo-0125",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}],
    }


def usage_chunk(prompt: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-3.5-turbo-0125",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }


def tool_piece(
    index: int,
    arguments: str,
    call_id: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """One streamed piece of a tool call, as OpenAI splits them."""
    piece: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        piece["id"] = call_id
        piece["type"] = "function"
        piece["function"]["name"] = name
    return {"tool_calls": [piece]}


def merge(chunks: list[dict[str, Any]]) -> AIMessageChunk:
    """Sum the chunks as LangChain's `stream()` consumers do, ending with "last"."""
    messages = [chunk_to_message(c)[0] for c in chunks]
    messages.append(AIMessageChunk(content="", chunk_position="last"))
    merged: AIMessageChunk = reduce(add, messages)
    return merged


# --- request side: roles ------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "role"),
    [
        (SystemMessage("be brief"), "system"),
        (HumanMessage("hi"), "user"),
        (AIMessage("hello"), "assistant"),
        (ToolMessage("42", tool_call_id="call_1"), "tool"),
        (FunctionMessage(content="42", name="answer"), "function"),
        (ChatMessage(content="note", role="developer"), "developer"),
    ],
)
def test_each_message_type_gets_its_wire_role(message: BaseMessage, role: str) -> None:
    assert message_to_dict(message)["role"] == role


def test_streamed_chunk_classes_get_the_role_of_their_message_class() -> None:
    assert message_to_dict(AIMessageChunk(content="hi"))["role"] == "assistant"


def test_plain_messages_are_role_and_content_only() -> None:
    assert message_to_dict(HumanMessage("hi")) == {"role": "user", "content": "hi"}
    assert message_to_dict(SystemMessage("be brief")) == {
        "role": "system",
        "content": "be brief",
    }


@pytest.mark.parametrize(
    "message",
    [
        HumanMessage("hi", name="alice"),
        SystemMessage("be brief", name="rules"),
        AIMessage("hello", name="assistant_bot"),
        ChatMessage(content="note", role="user", name="alice"),
    ],
)
def test_name_is_passed_through(message: BaseMessage) -> None:
    assert message_to_dict(message)["name"] == message.name


def test_function_message_carries_its_function_name() -> None:
    assert message_to_dict(FunctionMessage(content="42", name="answer")) == {
        "role": "function",
        "content": "42",
        "name": "answer",
    }


def test_tool_message_carries_tool_call_id() -> None:
    assert message_to_dict(ToolMessage("42", tool_call_id="call_1")) == {
        "role": "tool",
        "content": "42",
        "tool_call_id": "call_1",
    }


def test_tool_message_name_is_not_sent_because_openai_tool_messages_have_none() -> None:
    # Tools invoked by LangChain set `name` on their ToolMessage; OpenAI's tool
    # message schema is role, content and tool_call_id only.
    message = ToolMessage("42", tool_call_id="call_1", name="answer")
    assert "name" not in message_to_dict(message)


def test_unsupported_message_type_raises_type_error_saying_what_to_do() -> None:
    class NoteMessage(BaseMessage):
        type: Literal["note"] = "note"

    with pytest.raises(TypeError, match="NoteMessage") as excinfo:
        message_to_dict(NoteMessage(content="remember this"))
    assert "Convert it to one of those" in str(excinfo.value)


# --- request side: tool calls -------------------------------------------------


def test_ai_tool_calls_become_wire_tool_calls_with_json_string_arguments() -> None:
    message = AIMessage(
        content="",
        tool_calls=[
            tool_call(name="get_weather", args={"city": "Zürich"}, id="call_1"),
            tool_call(name="get_time", args={}, id="call_2"),
        ],
    )
    result = message_to_dict(message)
    assert result["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'},
        },
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "get_time", "arguments": "{}"},
        },
    ]


def test_tool_call_arguments_keep_unicode_unescaped() -> None:
    message = AIMessage(
        content="",
        tool_calls=[tool_call(name="say", args={"text": "日本語 ✓"}, id="call_1")],
    )
    arguments = message_to_dict(message)["tool_calls"][0]["function"]["arguments"]
    assert "日本語 ✓" in arguments
    assert "\\u" not in arguments
    assert json.loads(arguments) == {"text": "日本語 ✓"}


def test_ai_message_with_only_tool_calls_has_null_content() -> None:
    message = AIMessage(
        content="", tool_calls=[tool_call(name="f", args={}, id="call_1")]
    )
    assert message_to_dict(message)["content"] is None


def test_ai_message_with_text_and_tool_calls_keeps_its_text() -> None:
    message = AIMessage(
        content="Let me check.",
        tool_calls=[tool_call(name="f", args={}, id="call_1")],
    )
    assert message_to_dict(message)["content"] == "Let me check."


def test_ai_message_without_tool_calls_keeps_empty_string_content() -> None:
    result = message_to_dict(AIMessage(content=""))
    assert result == {"role": "assistant", "content": ""}


def test_invalid_tool_calls_are_sent_back_with_their_raw_arguments() -> None:
    message = AIMessage(
        content="",
        invalid_tool_calls=[
            invalid_tool_call(
                name="get_weather", args='{"city": "Par', id="call_1", error="bad"
            )
        ],
    )
    result = message_to_dict(message)
    assert result["content"] is None
    assert result["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Par'},
        }
    ]


def test_invalid_tool_call_without_arguments_sends_an_empty_string() -> None:
    message = AIMessage(
        content="",
        invalid_tool_calls=[
            invalid_tool_call(name="f", args=None, id="call_1", error="bad")
        ],
    )
    function = message_to_dict(message)["tool_calls"][0]["function"]
    assert function["arguments"] == ""


# --- request side: list content -----------------------------------------------


def test_text_blocks_are_joined_into_a_plain_string() -> None:
    message = HumanMessage(
        content=[{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}]
    )
    assert message_to_dict(message)["content"] == "Hello, world"


CACHED = {
    "type": "text",
    "text": "A long shared prefix.",
    "cache_control": {"type": "ephemeral"},
}


def test_a_text_part_with_more_than_its_text_is_sent_as_given() -> None:
    message = SystemMessage(content=[CACHED, {"type": "text", "text": " Be brief."}])
    assert message_to_dict(message)["content"] == [
        CACHED,
        {"type": "text", "text": " Be brief."},
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_cache_control_reaches_the_server_on_both_paths(
    dfehub_emulator_session: DfeHubEmulator, mode: str
) -> None:
    emulator = dfehub_emulator_session
    emulator.reset()
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)
    messages = [SystemMessage(content=[CACHED]), HumanMessage("hi")]
    if mode == "sync":
        model.invoke(messages)
    else:
        asyncio.run(model.ainvoke(messages))
    assert last_body(emulator)["messages"][0]["content"] == [CACHED]


def test_string_items_in_a_list_are_text() -> None:
    message = HumanMessage(content=["Hello, ", {"type": "text", "text": "world"}])
    assert message_to_dict(message)["content"] == "Hello, world"


def test_string_item_beside_an_image_becomes_a_text_part() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}
    message = HumanMessage(content=["What is this?", image])
    assert message_to_dict(message)["content"] == [
        {"type": "text", "text": "What is this?"},
        image,
    ]


def test_openai_image_url_part_is_passed_through_unchanged() -> None:
    image = {
        "type": "image_url",
        "image_url": {"url": "https://x.test/cat.png", "detail": "low"},
    }
    message = HumanMessage(content=[{"type": "text", "text": "Describe"}, image])
    assert message_to_dict(message)["content"] == [
        {"type": "text", "text": "Describe"},
        image,
    ]


def test_standard_image_url_block_becomes_an_image_url_part() -> None:
    message = HumanMessage(
        content=[
            {"type": "text", "text": "Describe"},
            {"type": "image", "url": "https://x.test/cat.png"},
        ]
    )
    assert message_to_dict(message)["content"] == [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
    ]


def test_standard_base64_image_block_becomes_a_data_url_part() -> None:
    message = HumanMessage(
        content=[{"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}]
    )
    assert message_to_dict(message)["content"] == [
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
        }
    ]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {}},
        {"type": "tool_call", "id": "call_1", "name": "f", "args": {}},
        {"type": "reasoning", "reasoning": "The user wants f."},
        {"type": "thinking", "thinking": "The user wants f.", "signature": "s"},
        {"type": "invalid_tool_call", "id": "call_9", "name": "g", "args": "{"},
    ],
)
def test_tool_and_reasoning_blocks_are_dropped_from_ai_content(
    block: dict[str, Any],
) -> None:
    message = AIMessage(
        content=[{"type": "text", "text": "Calling f."}, block],
        tool_calls=[tool_call(name="f", args={}, id="call_1")],
    )
    result = message_to_dict(message)
    assert result["content"] == "Calling f."
    assert [call["id"] for call in result["tool_calls"]] == ["call_1"]


def test_ai_content_of_only_tool_blocks_becomes_null_beside_tool_calls() -> None:
    message = AIMessage(
        content=[{"type": "tool_use", "id": "call_1", "name": "f", "input": {}}],
        tool_calls=[tool_call(name="f", args={}, id="call_1")],
    )
    assert message_to_dict(message)["content"] is None


# --- request side: a whole agent history ----------------------------------------


@tool
def get_weather(city: str) -> str:
    """Report the weather in a city."""
    return f"18°C and sunny in {city}"


def test_agent_history_round_trips_to_exactly_what_openai_expects() -> None:
    question = HumanMessage("What's the weather in Paris?")
    call_reply = response_to_message(
        completion(
            {
                "content": None,
                "tool_calls": [
                    wire_call("call_abc", "get_weather", '{"city":"Paris"}')
                ],
            },
            finish_reason="tool_calls",
        )
    )
    tool_result = get_weather.invoke(call_reply.tool_calls[0])
    answer = response_to_message(
        completion({"content": "It is 18°C and sunny in Paris."})
    )

    assert messages_to_dicts([question, call_reply, tool_result, answer]) == [
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Paris"}',
                    },
                }
            ],
        },
        {
            "role": "tool",
            "content": "18°C and sunny in Paris",
            "tool_call_id": "call_abc",
        },
        {"role": "assistant", "content": "It is 18°C and sunny in Paris."},
    ]


# --- reply side: chat.completion ------------------------------------------------


def test_text_answer_becomes_ai_message_with_id_and_metadata() -> None:
    message = response_to_message(
        completion({"content": "Hello!"}, system_fingerprint="fp_1")
    )
    assert message.content == "Hello!"
    assert message.id == "chatcmpl-123"
    assert message.response_metadata["model_name"] == "gpt-3.5-turbo-0125"
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["model_provider"] == "dfehub"
    assert message.response_metadata["system_fingerprint"] == "fp_1"
    assert message.tool_calls == []
    assert message.invalid_tool_calls == []


def test_null_content_becomes_empty_string() -> None:
    assert response_to_message(completion({"content": None})).content == ""


def test_usage_becomes_usage_metadata_with_cache_and_reasoning_details() -> None:
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }
    message = response_to_message(completion({"content": "Hi"}, usage=usage))
    assert message.usage_metadata == {
        "input_tokens": 120,
        "output_tokens": 30,
        "total_tokens": 150,
        "input_token_details": {"cache_read": 100},
        "output_token_details": {"reasoning": 12},
    }


def test_audio_token_details_map_to_langchains_names_on_both_sides() -> None:
    usage = usage_from_dict(
        {
            "prompt_tokens": 50,
            "completion_tokens": 20,
            "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 30},
            "completion_tokens_details": {
                "reasoning_tokens": 5,
                "audio_tokens": 9,
                "accepted_prediction_tokens": 1,
            },
        }
    )
    assert usage is not None
    assert usage.get("input_token_details") == {"cache_read": 8, "audio": 30}
    assert usage.get("output_token_details") == {"reasoning": 5, "audio": 9}


def test_null_or_odd_details_are_left_out() -> None:
    usage = usage_from_dict(
        {
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "prompt_tokens_details": None,
            "completion_tokens_details": {
                "reasoning_tokens": None,
                "audio_tokens": "9",
            },
        }
    )
    assert usage is not None
    assert "input_token_details" not in usage
    assert "output_token_details" not in usage


def test_usage_without_total_is_summed_and_missing_usage_is_none() -> None:
    assert usage_from_dict({"prompt_tokens": 3, "completion_tokens": 4}) == {
        "input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 7,
    }
    assert usage_from_dict(None) is None
    assert response_to_message(completion({"content": "Hi"})).usage_metadata is None


def test_reply_tool_calls_are_parsed_with_args_and_ids() -> None:
    message = response_to_message(
        completion(
            {
                "content": None,
                "tool_calls": [
                    wire_call("call_1", "get_weather", '{"city": "Paris"}'),
                    wire_call("call_2", "get_time", '{"tz": "Europe/Paris"}'),
                ],
            },
            finish_reason="tool_calls",
        )
    )
    assert message.tool_calls == [
        tool_call(name="get_weather", args={"city": "Paris"}, id="call_1"),
        tool_call(name="get_time", args={"tz": "Europe/Paris"}, id="call_2"),
    ]
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert message.content == ""


@pytest.mark.parametrize("arguments", ["", None])
def test_empty_tool_call_arguments_become_empty_args(arguments: Any) -> None:
    message = response_to_message(
        completion({"tool_calls": [wire_call("call_1", "get_time", arguments)]})
    )
    assert message.tool_calls == [tool_call(name="get_time", args={}, id="call_1")]


def test_malformed_json_arguments_become_an_invalid_tool_call_not_an_error() -> None:
    message = response_to_message(
        completion(
            {
                "tool_calls": [
                    wire_call("call_1", "get_weather", '{"city": "Par'),
                    wire_call("call_2", "get_time", "{}"),
                ]
            }
        )
    )
    assert message.tool_calls == [tool_call(name="get_time", args={}, id="call_2")]
    [invalid] = message.invalid_tool_calls
    assert invalid["name"] == "get_weather"
    assert invalid["id"] == "call_1"
    assert invalid["args"] == '{"city": "Par'
    assert invalid["error"]
    assert "JSON" in invalid["error"]


@pytest.mark.parametrize("arguments", ['["Paris"]', '"Paris"', "42", "null"])
def test_json_arguments_that_are_not_an_object_are_invalid(arguments: str) -> None:
    message = response_to_message(
        completion({"tool_calls": [wire_call("call_1", "get_weather", arguments)]})
    )
    assert message.tool_calls == []
    [invalid] = message.invalid_tool_calls
    assert invalid["args"] == arguments
    assert invalid["error"]


def test_refusal_goes_to_additional_kwargs() -> None:
    message = response_to_message(
        completion({"content": None, "refusal": "I can't help with that."})
    )
    assert message.additional_kwargs == {"refusal": "I can't help with that."}
    assert message.content == ""


def test_reply_without_refusal_has_no_additional_kwargs() -> None:
    message = response_to_message(completion({"content": "Hi", "refusal": None}))
    assert message.additional_kwargs == {}


def test_reply_without_choices_raises_for_the_transport_to_report() -> None:
    with pytest.raises(IndexError):
        response_to_message({"id": "x", "choices": []})


# --- reply side: chat.completion.chunk -------------------------------------------


def test_plain_text_delta_becomes_a_bare_text_chunk() -> None:
    message, finish_reason = chunk_to_message(chunk({"content": "Hel"}))
    assert isinstance(message, AIMessageChunk)
    assert message.content == "Hel"
    assert finish_reason is None
    assert message.tool_call_chunks == []
    assert message.usage_metadata is None


def test_role_chunk_becomes_an_empty_chunk() -> None:
    message, finish_reason = chunk_to_message(
        chunk({"role": "assistant", "content": ""})
    )
    assert message.content == ""
    assert finish_reason is None


def test_null_content_delta_becomes_empty_text() -> None:
    message, _ = chunk_to_message(chunk({"role": "assistant", "content": None}))
    assert message.content == ""


def test_finish_chunk_carries_finish_reason_and_model_name() -> None:
    message, finish_reason = chunk_to_message(chunk({}, finish_reason="stop"))
    assert finish_reason == "stop"
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["model_name"] == "gpt-3.5-turbo-0125"
    assert message.response_metadata["model_provider"] == "dfehub"


def test_finish_chunk_with_text_keeps_the_text() -> None:
    message, finish_reason = chunk_to_message(
        chunk({"content": "end."}, finish_reason="length")
    )
    assert message.content == "end."
    assert finish_reason == "length"


def test_usage_chunk_with_no_choices_becomes_usage_metadata() -> None:
    message, finish_reason = chunk_to_message(usage_chunk(9, 12))
    assert finish_reason is None
    assert message.content == ""
    assert message.usage_metadata == {
        "input_tokens": 9,
        "output_tokens": 12,
        "total_tokens": 21,
    }


def test_usage_riding_on_the_finish_chunk_is_read() -> None:
    data = chunk({}, finish_reason="stop")
    data["usage"] = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    message, _ = chunk_to_message(data)
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == 5


@pytest.mark.parametrize(
    "text",
    [
        "detail",
        '{"detail": "Too many requests"}',
        "content",
        '"content": null',
        "[DONE]",
        "data: [DONE]\n\n",
    ],
)
def test_protocol_like_text_in_a_delta_is_kept_intact(text: str) -> None:
    message, _ = chunk_to_message(chunk({"content": text}))
    assert message.content == text


def test_text_stream_merges_into_one_answer_with_usage_and_metadata() -> None:
    merged = merge(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hello"}),
            chunk({"content": ", world"}),
            chunk({}, finish_reason="stop"),
            usage_chunk(5, 2),
        ]
    )
    assert merged.content == "Hello, world"
    assert merged.usage_metadata == {
        "input_tokens": 5,
        "output_tokens": 2,
        "total_tokens": 7,
    }
    assert merged.response_metadata["finish_reason"] == "stop"
    assert merged.response_metadata["model_name"] == "gpt-3.5-turbo-0125"


def test_streamed_tool_call_pieces_of_two_calls_merge_into_two_tool_calls() -> None:
    merged = merge(
        [
            chunk({"role": "assistant", "content": None}),
            chunk(tool_piece(0, "", call_id="call_a", name="get_weather")),
            chunk(tool_piece(0, '{"ci')),
            chunk(tool_piece(0, 'ty": "Par')),
            chunk(tool_piece(0, 'is"}')),
            chunk(tool_piece(1, "", call_id="call_b", name="get_time")),
            chunk(tool_piece(1, '{"tz": ')),
            chunk(tool_piece(1, '"Europe/Paris"}')),
            chunk({}, finish_reason="tool_calls"),
            usage_chunk(40, 25),
        ]
    )
    assert merged.chunk_position == "last"
    assert merged.tool_calls == [
        tool_call(name="get_weather", args={"city": "Paris"}, id="call_a"),
        tool_call(name="get_time", args={"tz": "Europe/Paris"}, id="call_b"),
    ]
    assert merged.invalid_tool_calls == []
    assert merged.content == ""
    assert merged.response_metadata["finish_reason"] == "tool_calls"


def test_first_tool_call_piece_carries_name_id_and_index() -> None:
    message, _ = chunk_to_message(
        chunk(tool_piece(1, "", call_id="call_b", name="get_time"))
    )
    [piece] = message.tool_call_chunks
    assert piece["name"] == "get_time"
    assert piece["id"] == "call_b"
    assert piece["index"] == 1
    assert piece["args"] == ""


def test_merging_many_chunks_does_not_concatenate_metadata_strings() -> None:
    pieces = [chunk({"content": "word "}) for _ in range(50)]
    pieces += [chunk(tool_piece(0, "{}", call_id="call_1", name="f"))]
    pieces += [chunk(tool_piece(0, "")) for _ in range(5)]
    pieces += [chunk({}, finish_reason="tool_calls"), usage_chunk(1, 1)]
    merged = merge(pieces)
    assert merged.response_metadata["model_provider"] == "dfehub"
    assert merged.response_metadata["model_name"] == "gpt-3.5-turbo-0125"
    assert merged.response_metadata["finish_reason"] == "tool_calls"


# --- several choices, logprobs, service tier -------------------------------------


def _logprobs(*tokens: str) -> dict[str, Any]:
    entries = [
        {"token": t, "logprob": -0.5, "bytes": [], "top_logprobs": []} for t in tokens
    ]
    return {"content": entries, "refusal": None}


def test_every_choice_becomes_a_message_and_only_the_first_has_the_usage() -> None:
    response = completion(
        {"content": "first"},
        usage={"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6},
        service_tier="flex",
    )
    response["choices"].append(
        {
            "index": 1,
            "message": {"role": "assistant", "content": "second"},
            "finish_reason": "length",
            "logprobs": _logprobs("second"),
        }
    )
    response["choices"].append(None)  # not a choice: left out
    first, second = response_to_messages(response)
    assert (first.content, second.content) == ("first", "second")
    assert first.usage_metadata is not None
    assert first.usage_metadata["output_tokens"] == 4
    assert second.usage_metadata is None
    assert second.response_metadata["finish_reason"] == "length"
    assert second.response_metadata["logprobs"] == _logprobs("second")
    assert "logprobs" not in first.response_metadata
    assert first.response_metadata["service_tier"] == "flex"


def test_streamed_logprobs_merge_in_order_and_the_tier_comes_once() -> None:
    pieces = [chunk({"content": "a "}), chunk({"content": "b"}), chunk({}, "stop")]
    pieces[0]["choices"][0]["logprobs"] = _logprobs("a ")
    pieces[1]["choices"][0]["logprobs"] = _logprobs("b")
    for piece in pieces:
        piece["service_tier"] = "default"
    merged = merge(pieces)
    assert merged.content == "a b"
    assert merged.response_metadata["logprobs"] == _logprobs("a ", "b")
    assert merged.response_metadata["service_tier"] == "default"
