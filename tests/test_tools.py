"""Tools, structured output and an agent loop, through ChatDfeHub and the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emulator_requests import last_body as body_of
from emulator_requests import merge_chunks as merge
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from langchain_dfehub import ChatDfeHub
from langchain_dfehub.testing import DfeHubEmulator, ErrorStatus


@tool
def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is sunny in {city}."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Joke(BaseModel):
    """A joke to tell the user."""

    setup: str = Field(description="The question of the joke")
    punchline: str = Field(description="The answer of the joke")


class JokeDict(TypedDict):
    """A joke to tell the user."""

    setup: str
    punchline: str


JOKE_SCHEMA = {
    "title": "Joke",
    "description": "A joke to tell the user.",
    "type": "object",
    "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
    "required": ["setup", "punchline"],
}


@pytest.fixture
def model(dfehub_emulator: DfeHubEmulator) -> ChatDfeHub:
    return ChatDfeHub(base_url=dfehub_emulator.base_url)


# --- bind_tools ------------------------------------------------------------------


def test_bound_tools_are_sent_as_openai_functions(
    model: ChatDfeHub, dfehub_emulator: DfeHubEmulator
) -> None:
    model.bind_tools([get_weather, add]).invoke("hello")
    tools = body_of(dfehub_emulator)["tools"]
    assert [t["type"] for t in tools] == ["function", "function"]
    assert tools[1]["function"]["name"] == "add"
    assert tools[1]["function"]["parameters"]["required"] == ["a", "b"]
    assert "tool_choice" not in body_of(dfehub_emulator)


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        ("add", {"type": "function", "function": {"name": "add"}}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice_spellings_reach_the_wire(
    model: ChatDfeHub, dfehub_emulator: DfeHubEmulator, given: Any, sent: Any
) -> None:
    model.bind_tools([get_weather, add], tool_choice=given).invoke("hello")
    assert body_of(dfehub_emulator)["tool_choice"] == sent


def test_tool_choice_true_with_one_tool_forces_it(
    model: ChatDfeHub, dfehub_emulator: DfeHubEmulator
) -> None:
    answer = model.bind_tools([add], tool_choice=True).invoke("just chatting")
    assert body_of(dfehub_emulator)["tool_choice"]["function"]["name"] == "add"
    assert [call["name"] for call in answer.tool_calls] == ["add"]


def test_a_tool_choice_naming_no_bound_tool_is_refused(model: ChatDfeHub) -> None:
    with pytest.raises(ValueError, match="names no bound tool"):
        model.bind_tools([add], tool_choice="subtract")


def test_invoke_returns_parsed_tool_calls(model: ChatDfeHub) -> None:
    answer = model.bind_tools([get_weather, add]).invoke("Please add(2, 40)")
    assert answer.tool_calls == [
        {
            "name": "add",
            "args": {"a": 2, "b": 40},
            "id": answer.tool_calls[0]["id"],
            "type": "tool_call",
        }
    ]
    assert answer.tool_calls[0]["id"]
    assert answer.response_metadata["finish_reason"] == "tool_calls"


def test_streamed_tool_calls_merge_into_the_same_calls(model: ChatDfeHub) -> None:
    bound = model.bind_tools([get_weather, add])
    prompt = 'Check the weather in "Lima", then add 3 and 4'
    invoked = bound.invoke(prompt)
    streamed = merge(list(bound.stream(prompt)))

    assert len(invoked.tool_calls) == 2
    strip = [{k: c[k] for k in ("name", "args")} for c in invoked.tool_calls]
    assert [{k: c[k] for k in ("name", "args")} for c in streamed.tool_calls] == strip
    assert strip == [
        {"name": "get_weather", "args": {"city": "Lima"}},
        {"name": "add", "args": {"a": 3, "b": 4}},
    ]
    assert streamed.invalid_tool_calls == []


async def test_async_tool_calls_match_the_sync_ones(model: ChatDfeHub) -> None:
    bound = model.bind_tools([add])
    answer = await bound.ainvoke("add(5, 6)")
    chunks = [chunk async for chunk in bound.astream("add(5, 6)")]
    assert answer.tool_calls[0]["args"] == {"a": 5, "b": 6}
    assert merge(chunks).tool_calls[0]["args"] == {"a": 5, "b": 6}


def _scripted_reply(message: dict[str, Any]) -> ErrorStatus:
    """A 200 reply with exactly this message, for shapes no rule produces."""
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-3.5-turbo",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return ErrorStatus(200, json.dumps(body))


def test_malformed_tool_arguments_become_invalid_tool_calls(
    model: ChatDfeHub, dfehub_emulator: DfeHubEmulator
) -> None:
    dfehub_emulator.add_faults(
        _scripted_reply(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_bad",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a": 1, "b":'},
                    }
                ],
            }
        )
    )
    answer = model.bind_tools([add]).invoke("add things")
    assert answer.tool_calls == []
    (invalid,) = answer.invalid_tool_calls
    assert invalid["name"] == "add"
    assert invalid["args"] == '{"a": 1, "b":'
    assert invalid["id"] == "call_bad"


def test_a_tool_history_round_trips_into_the_request(
    model: ChatDfeHub, dfehub_emulator: DfeHubEmulator
) -> None:
    bound = model.bind_tools([add])
    history: list[AnyMessage] = [HumanMessage("add(20, 22)")]
    call = bound.invoke(history)
    history.append(call)
    history.append(add.invoke(call.tool_calls[0]))
    final = bound.invoke(history)

    sent = body_of(dfehub_emulator)["messages"]
    assert sent[1]["role"] == "assistant"
    assert sent[1]["content"] is None
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {
        "a": 20,
        "b": 22,
    }
    assert sent[2] == {
        "role": "tool",
        "content": "42",
        "tool_call_id": call.tool_calls[0]["id"],
    }
    assert isinstance(history[2], ToolMessage)
    assert final.tool_calls == []
    assert "42" in str(final.content)


# --- structured output --------------------------------------------------------------


@pytest.mark.parametrize(
    "schema", [Joke, JokeDict, JOKE_SCHEMA], ids=["pydantic", "typeddict", "json"]
)
@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_follows_the_schema(
    model: ChatDfeHub, dfehub_emulator: DfeHubEmulator, schema: Any, method: str
) -> None:
    structured = model.with_structured_output(schema, method=method)  # type: ignore[arg-type]
    result = structured.invoke("Tell a joke as JSON with 'setup' and 'punchline'")

    joke = result.model_dump() if isinstance(result, BaseModel) else result
    assert isinstance(result, Joke) == (schema is Joke)
    assert set(joke) == {"setup", "punchline"}
    assert all(isinstance(value, str) and value for value in joke.values())
    body = body_of(dfehub_emulator)
    if method == "function_calling":
        assert (
            body["tool_choice"]["function"]["name"]
            == body["tools"][0]["function"]["name"]
        )
        assert "response_format" not in body
    elif method == "json_schema":
        sent = body["response_format"]["json_schema"]["schema"]
        assert set(sent["properties"]) == {"setup", "punchline"}
    else:
        assert body["response_format"] == {"type": "json_object"}


def test_structured_output_streams_partial_objects(model: ChatDfeHub) -> None:
    parts = list(model.with_structured_output(JOKE_SCHEMA).stream("a joke please"))
    assert parts[-1] == {"setup": "a joke please", "punchline": "a joke please"}


def test_include_raw_returns_the_message_and_the_parsed_value(
    model: ChatDfeHub,
) -> None:
    result = model.with_structured_output(Joke, include_raw=True).invoke("A joke")
    assert isinstance(result, dict)
    assert isinstance(result["raw"], AIMessage)
    assert isinstance(result["parsed"], Joke)
    assert result["parsing_error"] is None


def test_include_raw_keeps_a_parsing_error_instead_of_raising(
    model: ChatDfeHub, dfehub_emulator: DfeHubEmulator
) -> None:
    dfehub_emulator.add_faults(
        _scripted_reply({"role": "assistant", "content": "not JSON at all"})
    )
    structured = model.with_structured_output(
        Joke, method="json_schema", include_raw=True
    )
    result = structured.invoke("A joke")
    assert isinstance(result, dict)
    assert result["parsed"] is None
    assert result["parsing_error"] is not None
    assert result["raw"].content == "not JSON at all"


def test_structured_output_refuses_an_unknown_method(model: ChatDfeHub) -> None:
    with pytest.raises(ValueError, match="Unknown structured-output method"):
        model.with_structured_output(Joke, method="xml")  # type: ignore[arg-type]


def test_structured_output_refuses_unexpected_arguments(model: ChatDfeHub) -> None:
    with pytest.raises(ValueError, match="unexpected arguments"):
        model.with_structured_output(Joke, temperature=0)


# --- usage ---------------------------------------------------------------------------


def test_usage_comes_with_streamed_tool_calls(model: ChatDfeHub) -> None:
    merged = merge(list(model.bind_tools([add]).stream("add(1, 2)")))
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["output_tokens"] > 0
    assert merged.response_metadata["finish_reason"] == "tool_calls"


# --- an agent ------------------------------------------------------------------------


def test_a_langgraph_agent_runs_the_whole_loop(model: ChatDfeHub) -> None:
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    tools = [get_weather, add]
    bound = model.bind_tools(tools)

    def call_model(state: MessagesState) -> dict[str, list[AnyMessage]]:
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    agent = graph.compile()

    result = agent.invoke({"messages": [("human", 'What is the weather in "Paris"?')]})
    kinds = [message.type for message in result["messages"]]
    assert kinds == ["human", "ai", "tool", "ai"]
    call, observation, final = result["messages"][1:]
    assert call.tool_calls[0]["name"] == "get_weather"
    assert call.tool_calls[0]["args"] == {"city": "Paris"}
    assert observation.content == "It is sunny in Paris."
    assert "It is sunny in Paris." in final.content
    assert final.tool_calls == []
