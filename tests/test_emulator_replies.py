"""The emulator's answers: request checks, wire shapes and the reply rules.

Spoken to over raw HTTP, as any OpenAI-compatible client would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from langchain_dfehub.testing import DfeHubEmulator
from langchain_dfehub.testing._media import b64, png_bytes

PNG = b64(png_bytes())

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with (
        DfeHubEmulator() as emulator,
        httpx.Client(base_url=emulator.base_url, timeout=5) as http,
    ):
        yield http


def _body(content: str | list[Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-3.5-turbo", **fields}
    if content is not None:
        body["messages"] = [{"role": "user", "content": content}]
    return body


def ask(client: httpx.Client, content: Any = None, **fields: Any) -> dict[str, Any]:
    response = client.post("/chat/completions", json=_body(content, fields))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def answer_of(client: httpx.Client, content: Any = None, **fields: Any) -> Any:
    return ask(client, content, **fields)["choices"][0]["message"]["content"]


def stream(client: httpx.Client, content: Any = None, **fields: Any) -> list[Any]:
    """The stream's events: chunk objects, then the string "[DONE]"."""
    body = _body(content, {**fields, "stream": True})
    response = client.post("/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = response.text.split("\n\n")
    assert blocks.pop() == ""  # the stream ends with a blank line
    events: list[Any] = []
    for block in blocks:
        assert block.startswith("data: ")
        payload = block.removeprefix("data: ")
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    assert events[-1] == "[DONE]"
    return events


def streamed_text(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events[:-1]
        if e["choices"]
    )


def tool(name: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def obj(required: bool = True, **properties: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(properties)
    return schema


def calls_of(
    client: httpx.Client, content: Any, **fields: Any
) -> list[tuple[str, Any]]:
    message = ask(client, content, **fields)["choices"][0]["message"]
    return [
        (call["function"]["name"], json.loads(call["function"]["arguments"]))
        for call in message.get("tool_calls") or []
    ]


def arguments(client: httpx.Client, text: str, schema: dict[str, Any]) -> Any:
    """The arguments the emulator synthesises for a forced call of one tool."""
    choice = {"type": "function", "function": {"name": "fill"}}
    [(_, args)] = calls_of(
        client, text, tools=[tool("fill", schema)], tool_choice=choice
    )
    return args


def error_of(client: httpx.Client, body: Any) -> dict[str, Any]:
    response = client.post("/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}
    return error  # type: ignore[no-any-return]


# --- request checks -----------------------------------------------------------

ADDER = tool("add", obj(a={"type": "integer"}, b={"type": "integer"}))


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(["not", "an", "object"], None, id="body-not-object"),
        pytest.param({}, "messages", id="messages-missing"),
        pytest.param({"messages": "Hello"}, "messages", id="messages-not-list"),
        pytest.param({"messages": []}, "messages", id="messages-empty"),
        pytest.param({"messages": ["Hello"]}, "messages[0]", id="message-not-object"),
        pytest.param(
            {"messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
            id="unknown-role",
        ),
        pytest.param(
            {"messages": [{"content": "x"}]}, "messages[0].role", id="no-role"
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            id="content-number",
        ),
        pytest.param(
            {"messages": [{"role": "user"}]}, "messages[0].content", id="no-content"
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages[0].content[0].type",
            id="part-without-type",
        ),
        pytest.param(
            {"messages": [{"role": "system", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
            id="image-in-system",
        ),
        pytest.param({"messages": HELLO, "stream": "yes"}, "stream", id="stream-str"),
        pytest.param({"messages": HELLO, "max_tokens": 0}, "max_tokens", id="max0"),
        pytest.param(
            {"messages": HELLO, "max_tokens": "5"}, "max_tokens", id="max-str"
        ),
        pytest.param(
            {"messages": HELLO, "max_completion_tokens": -1},
            "max_completion_tokens",
            id="max-completion-negative",
        ),
        pytest.param({"messages": HELLO, "n": 0}, "n", id="n-0"),
        pytest.param({"messages": HELLO, "n": 129}, "n", id="n-129"),
        pytest.param({"messages": HELLO, "logprobs": 1}, "logprobs", id="logprobs-int"),
        pytest.param(
            {"messages": HELLO, "top_logprobs": 2}, "top_logprobs", id="top-alone"
        ),
        pytest.param(
            {"messages": HELLO, "logprobs": True, "top_logprobs": 21},
            "top_logprobs",
            id="top-21",
        ),
        pytest.param({"messages": HELLO, "temperature": 3}, "temperature", id="temp"),
        pytest.param({"messages": HELLO, "stop": ["a"] * 5}, "stop", id="stop-5"),
        pytest.param({"messages": HELLO, "stop": 7}, "stop", id="stop-number"),
        pytest.param(
            {"messages": HELLO, "stream_options": {"include_usage": True}},
            "stream_options",
            id="stream-options-without-stream",
        ),
        pytest.param({"messages": HELLO, "tools": {}}, "tools", id="tools-not-list"),
        pytest.param({"messages": HELLO, "tools": []}, "tools", id="tools-empty"),
        pytest.param(
            {"messages": HELLO, "tools": [{"type": "retrieval"}]},
            "tools[0].type",
            id="tool-type",
        ),
        pytest.param(
            {"messages": HELLO, "tools": [{"type": "function"}]},
            "tools[0].function",
            id="tool-without-function",
        ),
        pytest.param(
            {"messages": HELLO, "tools": [tool("has space")]},
            "tools[0].function.name",
            id="tool-name",
        ),
        pytest.param(
            {
                "messages": HELLO,
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": []}}
                ],
            },
            "tools[0].function.parameters",
            id="tool-parameters",
        ),
        pytest.param(
            {
                "messages": HELLO,
                "tools": [ADDER],
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            "tool_choice",
            id="tool-choice-unknown-tool",
        ),
        pytest.param(
            {"messages": HELLO, "tools": [ADDER], "tool_choice": "sometimes"},
            "tool_choice",
            id="tool-choice-word",
        ),
        pytest.param(
            {"messages": HELLO, "tool_choice": "required"},
            "tool_choice",
            id="tool-choice-without-tools",
        ),
        pytest.param(
            {"messages": HELLO, "response_format": {"type": "xml"}},
            "response_format.type",
            id="format-type",
        ),
        pytest.param(
            {
                "messages": HELLO,
                "response_format": {"type": "json_schema", "json_schema": {}},
            },
            "response_format.json_schema.name",
            id="format-schema-name",
        ),
        pytest.param(
            {"messages": HELLO, "response_format": {"type": "json_object"}},
            "messages",
            id="json-mode-without-the-word-json",
        ),
        pytest.param(
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "content": "3", "tool_call_id": "abc"},
                ]
            },
            "messages[1].role",
            id="tool-result-without-call",
        ),
        pytest.param(
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "abc",
                                "type": "function",
                                "function": {"name": "add", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "user", "content": "y"},
                ]
            },
            "messages[2].role",
            id="tool-call-without-result",
        ),
    ],
)
def test_a_bad_request_gets_an_openai_style_400(
    client: httpx.Client, body: Any, param: str | None
) -> None:
    assert error_of(client, body)["param"] == param


def test_a_body_that_is_not_json_gets_a_400(client: httpx.Client) -> None:
    response = client.post("/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert "could not parse the JSON body" in response.json()["error"]["message"]


def test_null_optional_parameters_count_as_absent(client: httpx.Client) -> None:
    nulls = {"n": None, "stop": None, "tools": None, "stream": None}
    assert answer_of(client, "Hello", **nulls) == "Hello"


def test_a_valid_tool_conversation_is_accepted(client: httpx.Client) -> None:
    call = {
        "id": "abc",
        "type": "function",
        "function": {"name": "add", "arguments": "{}"},
    }
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "x", "name": "example_user"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "t"}],
            "tool_calls": [call],
        },
        {
            "role": "tool",
            "content": [{"type": "text", "text": "3"}],
            "tool_call_id": "abc",
        },
    ]
    assert answer_of(client, messages=messages, tools=[ADDER]) == "The tool returned: 3"


# --- wire shapes ---------------------------------------------------------------


def test_a_completion_has_openais_shape(client: httpx.Client) -> None:
    body = ask(client, "Hello there", model="my-model")
    assert set(body) == {
        "id",
        "object",
        "created",
        "model",
        "system_fingerprint",
        "service_tier",
        "choices",
        "usage",
    }
    assert body["object"] == "chat.completion"
    assert body["model"] == "my-model"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]


def test_every_answer_has_its_own_id(client: httpx.Client) -> None:
    assert ask(client, "a")["id"] != ask(client, "a")["id"]


def test_usage_counts_words_and_punctuation_in_and_pieces_out(
    client: httpx.Client,
) -> None:
    messages = [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hello, big world"},
    ]
    usage = ask(client, messages=messages)["usage"]
    assert usage["prompt_tokens"] == 3 + 4  # "Be kind ." + "Hello , big world"
    assert usage["completion_tokens"] == 3  # "Hello, " "big " "world"
    assert usage["total_tokens"] == 10
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_a_stream_has_openais_chunk_shape(client: httpx.Client) -> None:
    events = stream(client, "one two  three", model="my-model")
    chunks = events[:-1]
    assert {chunk["id"] for chunk in chunks} == {chunks[0]["id"]}
    for chunk in chunks:
        assert set(chunk) == {
            "id",
            "object",
            "created",
            "model",
            "system_fingerprint",
            "service_tier",
            "choices",
        }
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "my-model"
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "one "},
        {"content": "two  "},
        {"content": "three"},
        {},
    ]
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == [
        None,
        None,
        None,
        None,
        "stop",
    ]
    assert all(chunk["choices"][0]["logprobs"] is None for chunk in chunks)


def test_a_stream_ends_with_usage_when_asked(client: httpx.Client) -> None:
    events = stream(client, "Hello, world", stream_options={"include_usage": True})
    *chunks, usage_chunk, done = events
    assert done == "[DONE]"
    assert all(chunk["usage"] is None for chunk in chunks)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 3
    assert usage_chunk["usage"]["completion_tokens"] == 2
    assert usage_chunk["usage"]["total_tokens"] == 5


def test_stop_cuts_the_text_before_the_first_stop_string(client: httpx.Client) -> None:
    text = "Hello world, how are you? Fine."
    body = ask(client, text, stop=["you", "how"])
    assert body["choices"][0]["message"]["content"] == "Hello world, "
    assert body["choices"][0]["finish_reason"] == "stop"
    assert streamed_text(stream(client, text, stop="are")) == "Hello world, how "


def test_max_tokens_limits_the_pieces_and_says_length(client: httpx.Client) -> None:
    body = ask(client, "one two three four", max_tokens=2)
    assert body["choices"][0]["message"]["content"] == "one two "
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2
    events = stream(client, "one two three four", max_completion_tokens=3)
    assert streamed_text(events) == "one two three "
    assert events[-2]["choices"][0]["finish_reason"] == "length"


def test_a_tool_call_answer_has_openais_shape(client: httpx.Client) -> None:
    body = ask(client, "add(1, 2)", tools=[ADDER])
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    assert message["refusal"] is None
    [call] = message["tool_calls"]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"] == {"name": "add", "arguments": '{"a": 1, "b": 2}'}


def test_tool_calls_stream_as_openai_streams_them(client: httpx.Client) -> None:
    events = stream(
        client,
        "add(1, 2) then echo('hi')",
        tools=[ADDER, tool("echo", obj(text={"type": "string"}))],
    )
    deltas = [event["choices"][0]["delta"] for event in events[1:-2]]
    assert events[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    starts = [d["tool_calls"][0] for d in deltas if "id" in d["tool_calls"][0]]
    assert [(s["index"], s["type"], s["function"]) for s in starts] == [
        (0, "function", {"name": "add", "arguments": ""}),
        (1, "function", {"name": "echo", "arguments": ""}),
    ]
    assert starts[0]["id"] != starts[1]["id"]
    pieces: dict[int, list[str]] = {0: [], 1: []}
    for delta in deltas:
        [part] = delta["tool_calls"]
        if "id" not in part:
            assert set(part) == {"index", "function"}
            assert set(part["function"]) == {"arguments"}
            pieces[part["index"]].append(part["function"]["arguments"])
    assert len(pieces[0]) > 1  # arguments arrive in several pieces
    assert json.loads("".join(pieces[0])) == {"a": 1, "b": 2}
    assert json.loads("".join(pieces[1])) == {"text": "hi"}


# --- reply rules: text ------------------------------------------------------------


def test_the_answer_echoes_the_last_user_message(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
    ]
    assert answer_of(client, messages=messages) == "second"


def test_the_echo_takes_the_text_parts_of_multimodal_content(
    client: httpx.Client,
) -> None:
    content = [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "text", "text": "this"},
    ]
    assert answer_of(client, content) == "Describe\nthis"


def test_an_empty_prompt_gets_a_fixed_greeting(client: httpx.Client) -> None:
    assert answer_of(client, "   ") == "Hello! How can I help you today?"
    system_only = [{"role": "system", "content": "Be brief."}]
    assert answer_of(client, messages=system_only) == "Hello! How can I help you today?"


def test_the_answer_after_tool_results_reports_them(client: httpx.Client) -> None:
    calls = [
        {"id": i, "type": "function", "function": {"name": "add", "arguments": "{}"}}
        for i in ("c1", "c2")
    ]
    messages = [
        {"role": "user", "content": "add(1, 2) and add(3, 4)"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "content": '{"result": 3}', "tool_call_id": "c1"},
        {"role": "tool", "content": '{"result": 7}', "tool_call_id": "c2"},
    ]
    assert (
        answer_of(client, messages=messages, tools=[ADDER])
        == 'The tool returned: {"result": 3}; {"result": 7}'
    )


# --- reply rules: which tools are called -----------------------------------------

WEATHER = tool("get_weather", obj(location={"type": "string"}))
MAGIC = tool("magic_function", obj(input={"type": "integer"}))


def test_a_tool_named_with_call_syntax_is_called(client: httpx.Client) -> None:
    assert calls_of(client, "What is magic_function(3)?", tools=[WEATHER, MAGIC]) == [
        ("magic_function", {"input": 3})
    ]


def test_a_tool_named_by_a_word_of_its_name_is_called(client: httpx.Client) -> None:
    calls = calls_of(client, "What is the weather in Paris?", tools=[MAGIC, WEATHER])
    assert [name for name, _ in calls] == ["get_weather"]


def test_words_inside_another_tools_name_do_not_name_a_tool(
    client: httpx.Client,
) -> None:
    no_args = tool("magic_function_no_args")
    calls = calls_of(
        client, "What is magic_function_no_args()?", tools=[MAGIC, no_args]
    )
    assert calls == [("magic_function_no_args", {})]


def test_no_tool_is_called_when_none_is_named(client: httpx.Client) -> None:
    assert calls_of(client, "Use the tool, please.", tools=[WEATHER, MAGIC]) == []
    assert answer_of(client, "Hello", tools=[WEATHER]) == "Hello"


def test_tool_choice_none_never_calls(client: httpx.Client) -> None:
    assert (
        calls_of(client, "magic_function(3)", tools=[MAGIC], tool_choice="none") == []
    )


def test_required_calls_the_first_tool_when_none_is_named(client: httpx.Client) -> None:
    calls = calls_of(client, "Hello!", tools=[MAGIC, WEATHER], tool_choice="required")
    assert calls == [("magic_function", {"input": 0})]


def test_required_calls_the_named_tool(client: httpx.Client) -> None:
    calls = calls_of(
        client, "weather, please", tools=[MAGIC, WEATHER], tool_choice="required"
    )
    assert [name for name, _ in calls] == ["get_weather"]


def test_a_forced_tool_is_called_whatever_is_named(client: httpx.Client) -> None:
    choice = {"type": "function", "function": {"name": "magic_function"}}
    calls = calls_of(client, "weather?", tools=[WEATHER, MAGIC], tool_choice=choice)
    assert calls == [("magic_function", {"input": 0})]


def test_several_named_tools_are_called_in_order_of_mention(
    client: httpx.Client,
) -> None:
    calls = calls_of(
        client, "weather in 'Oslo', then magic_function(5)", tools=[MAGIC, WEATHER]
    )
    assert calls == [
        ("get_weather", {"location": "Oslo"}),
        ("magic_function", {"input": 5}),
    ]
    single = calls_of(
        client,
        "weather, then magic_function(5)",
        tools=[MAGIC, WEATHER],
        parallel_tool_calls=False,
    )
    assert [name for name, _ in single] == ["get_weather"]


def test_after_tool_results_auto_answers_in_text(client: httpx.Client) -> None:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    messages = [
        {"role": "user", "content": "weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "Sunny.", "tool_call_id": "c1"},
    ]
    assert (
        answer_of(client, messages=messages, tools=[WEATHER])
        == "The tool returned: Sunny."
    )


# --- reply rules: argument values ------------------------------------------------


def test_call_syntax_gives_positional_and_keyword_values(client: httpx.Client) -> None:
    schema = obj(a={"type": "integer"}, b={"type": "string"}, c={"type": "boolean"})
    assert arguments(client, 'fill(1, c=true, b="x y")', schema) == {
        "a": 1,
        "b": "x y",
        "c": True,
    }
    assert arguments(client, "fill()", obj()) == {}
    assert arguments(client, "fill(Paris)", obj(city={"type": "string"})) == {
        "city": "Paris"
    }


def test_quoted_strings_fill_string_properties_in_order(client: httpx.Client) -> None:
    schema = obj(name={"type": "string"}, city={"type": "string"})
    text = "Create a customer named '你好啊集团' from \"Zürich\""
    assert arguments(client, text, schema) == {"name": "你好啊集团", "city": "Zürich"}


def test_numbers_fill_numeric_properties_in_order(client: httpx.Client) -> None:
    schema = obj(a={"type": "integer"}, b={"type": "number"})
    assert arguments(client, "What is 3 + 4.5?", schema) == {"a": 3, "b": 4.5}


def test_a_string_with_no_offered_value_gets_the_message_text(
    client: httpx.Client,
) -> None:
    schema = obj(style={"type": "string"}, when={"type": "string", "format": "date"})
    text = "Generate a Pirate greeting."
    assert arguments(client, text, schema) == {"style": text, "when": "1970-01-01"}


def test_typed_defaults_fill_what_the_message_does_not(client: httpx.Client) -> None:
    schema = obj(
        n={"type": "integer"},
        x={"type": "number"},
        flag={"type": "boolean"},
        items={"type": "array", "items": {"type": "object"}},
        nothing={"type": "null"},
        fixed={"const": "k"},
        preset={"type": "integer", "default": 7},
    )
    assert arguments(client, "go", schema) == {
        "n": 0,
        "x": 0.0,
        "flag": False,
        "items": [],
        "nothing": None,
        "fixed": "k",
        "preset": 7,
    }


def test_values_are_kept_within_the_schemas_bounds(client: httpx.Client) -> None:
    schema = obj(
        small={"type": "integer", "exclusiveMinimum": 10},
        big={"type": "integer", "maximum": 5},
        ratio={"type": "number", "minimum": 0.5, "maximum": 1},
        word={"type": "string", "minLength": 4, "maxLength": 6},
    )
    assert arguments(client, "'ab' 1 99 7", schema) == {
        "small": 11,
        "big": 5,
        "ratio": 1,
        "word": "abxx",
    }


def test_an_enum_takes_the_value_the_message_names(client: httpx.Client) -> None:
    schema = obj(unit={"enum": ["celsius", "fahrenheit"]})
    assert arguments(client, "in Fahrenheit, please", schema) == {"unit": "fahrenheit"}
    assert arguments(client, "any unit", schema) == {"unit": "celsius"}


def test_optional_properties_appear_only_when_given(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a"],
    }
    assert arguments(client, "3 and 4", schema) == {"a": 3}
    assert arguments(client, "fill(3, b=4)", schema) == {"a": 3, "b": 4}


def test_arrays_of_numbers_or_strings_take_all_offered(client: httpx.Client) -> None:
    schema = obj(
        numbers={"type": "array", "items": {"type": "integer"}},
        names={"type": "array", "items": {"type": "string"}, "maxItems": 2},
        pair={"type": "array", "items": {"type": "boolean"}, "minItems": 2},
    )
    text = "Sum 1, 2 and 3 for 'a', 'b' and 'c'"
    assert arguments(client, text, schema) == {
        "numbers": [1, 2, 3],
        "names": ["a", "b"],
        "pair": [False, False],
    }


def test_refs_nested_objects_and_unions_are_followed(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "$defs": {"Point": obj(x={"type": "integer"}, y={"type": "integer"})},
        "properties": {
            "start": {"$ref": "#/$defs/Point"},
            "label": {"anyOf": [{"type": "null"}, {"type": "string"}]},
            "only_null": {"anyOf": [{"type": "null"}]},
            "merged": {
                "allOf": [obj(p={"type": "boolean"}), obj(q={"type": "integer"})]
            },
        },
        "required": ["start", "label", "only_null", "merged"],
    }
    assert arguments(client, "from 1 to 2 'L'", schema) == {
        "start": {"x": 1, "y": 2},
        "label": "L",
        "only_null": None,
        "merged": {"p": False, "q": 0},
    }


def test_a_tool_without_parameters_gets_empty_arguments(client: httpx.Client) -> None:
    assert calls_of(client, "now() please", tools=[tool("now")]) == [("now", {})]


# --- reply rules: structured output --------------------------------------------

JOKE = obj(setup={"type": "string"}, punchline={"type": "string"})


def test_json_schema_output_is_json_that_fits_the_schema(client: httpx.Client) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "Joke", "schema": JOKE},
    }
    text = "Tell me a joke about cats."
    content = answer_of(client, text, response_format=response_format)
    assert json.loads(content) == {"setup": text, "punchline": text}
    streamed = streamed_text(stream(client, text, response_format=response_format))
    assert streamed == content


def test_json_schema_output_honours_optional_fields(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "setup": {"type": "string"},
            "punchline": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "default": None,
            },
        },
        "required": ["setup"],
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "J", "schema": schema},
    }
    assert json.loads(answer_of(client, "cats", response_format=response_format)) == {
        "setup": "cats"
    }


def test_json_mode_keys_are_the_quoted_names(client: httpx.Client) -> None:
    text = "Return JSON with 'setup' and 'punchline' keys."
    content = answer_of(client, text, response_format={"type": "json_object"})
    assert json.loads(content) == {"setup": text, "punchline": text}
    plain = answer_of(
        client, "Answer in JSON.", response_format={"type": "json_object"}
    )
    assert json.loads(plain) == {"text": "Answer in JSON."}


def test_a_tool_call_wins_over_a_response_format(client: httpx.Client) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "Joke", "schema": JOKE},
    }
    calls = calls_of(
        client, "magic_function(1)", tools=[MAGIC], response_format=response_format
    )
    assert calls == [("magic_function", {"input": 1})]


# --- n and logprobs -------------------------------------------------------------


def test_n_gives_that_many_identical_choices(client: httpx.Client) -> None:
    answer = ask(client, "one two three", n=3)
    choices = answer["choices"]
    assert [choice["index"] for choice in choices] == [0, 1, 2]
    assert {choice["message"]["content"] for choice in choices} == {"one two three"}
    assert answer["usage"]["completion_tokens"] == 3 * 3  # every choice counts
    assert answer["usage"]["prompt_tokens"] == 3  # the prompt once


def test_n_gives_each_choice_its_own_tool_call_ids(client: httpx.Client) -> None:
    choices = ask(client, "get_weather(Oslo)", tools=[tool("get_weather")], n=2)[
        "choices"
    ]
    ids = [choice["message"]["tool_calls"][0]["id"] for choice in choices]
    assert ids[0].endswith("_0")
    assert len(set(ids)) == 2


def test_a_stream_with_n_interleaves_one_choice_per_chunk(client: httpx.Client) -> None:
    events = stream(client, "a b c", n=2, stream_options={"include_usage": True})
    chunks = [e for e in events[:-1] if e["choices"]]
    assert all(len(e["choices"]) == 1 for e in chunks)
    indexes = [e["choices"][0]["index"] for e in chunks]
    assert indexes[:2] == [0, 1]  # the role chunks
    for index in (0, 1):
        mine = [e["choices"][0] for e in chunks if e["choices"][0]["index"] == index]
        text = "".join(c["delta"].get("content") or "" for c in mine)
        assert text == "a b c"
        assert mine[-1]["finish_reason"] == "stop"
    assert events[-2]["usage"]["completion_tokens"] == 6


def test_logprobs_cover_every_token_of_the_answer(client: httpx.Client) -> None:
    choice = ask(client, "red green blue", logprobs=True, top_logprobs=2)["choices"][0]
    entries = choice["logprobs"]["content"]
    assert "".join(entry["token"] for entry in entries) == "red green blue"
    first = entries[0]
    assert first["logprob"] == 0.0
    assert first["bytes"] == list(b"red ")
    assert [alt["token"] for alt in first["top_logprobs"]] == ["red ", "<alt1>"]
    assert [alt["logprob"] for alt in first["top_logprobs"]] == [0.0, -9999.0]


def test_no_logprobs_unless_asked(client: httpx.Client) -> None:
    assert ask(client, "plain")["choices"][0]["logprobs"] is None
    without_top = ask(client, "plain", logprobs=True)["choices"][0]["logprobs"]
    assert without_top["content"][0]["top_logprobs"] == []


def test_streamed_logprobs_ride_on_their_content_chunks(client: httpx.Client) -> None:
    events = stream(client, "red green blue", logprobs=True)
    chunks = [e["choices"][0] for e in events[:-1] if e["choices"]]
    for chunk in chunks:
        content = chunk["delta"].get("content")
        if content:
            assert [t["token"] for t in chunk["logprobs"]["content"]] == [content]
        else:
            assert chunk["logprobs"] is None


def test_choices_and_logprobs_keep_a_flavours_habits() -> None:
    with (
        DfeHubEmulator(flavour="vllm") as emulator,
        httpx.Client(base_url=emulator.base_url, timeout=5) as http,
    ):
        events = stream(http, "a b", n=2, logprobs=True)
        whole = ask(http, "a b", n=2)
    chunks = [e for e in events if isinstance(e, dict)]
    assert {c["choices"][0]["index"] for c in chunks if c["choices"]} == {0, 1}
    assert not any("service_tier" in c for c in chunks)
    assert [c["index"] for c in whole["choices"]] == [0, 1]
    assert "service_tier" not in whole


def test_llama_cpp_refuses_more_than_one_choice_as_it_does() -> None:
    with (
        DfeHubEmulator(flavour="llama.cpp") as emulator,
        httpx.Client(base_url=emulator.base_url, timeout=5) as http,
    ):
        refused = http.post("/chat/completions", json={"messages": HELLO, "n": 2})
        events = stream(http, "a b", logprobs=True)
    assert refused.status_code == 500
    assert refused.json() == {
        "error": {
            "code": 500,
            "message": "Only one completion choice is allowed",
            "type": "server_error",
        }
    }
    chunks = [e for e in events if isinstance(e, dict)]
    assert [i for i, c in enumerate(chunks) if "timings" in c] == [len(chunks) - 1]
    assert any(c["choices"] and c["choices"][0]["logprobs"] for c in chunks)
