"""Strict schemas, `bind_tools(response_format=...)` and structured output with tools.

OpenAI's strict mode wants every property required, `additionalProperties:
false` on every object, and optional fields nullable; ChatOpenAI users pass a
`response_format` to `bind_tools` and `tools` to `with_structured_output`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from emulator_requests import last_body
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_dfehub import ChatDfeHub
from langchain_dfehub._tools import response_format_to_wire, strict_json_schema
from langchain_dfehub.testing import DfeHubEmulator


class Address(BaseModel):
    """A postal address."""

    city: str
    street: str | None = None


class Person(BaseModel):
    """A person to remember."""

    name: str = Field(description="Full name")
    age: int = 30
    nickname: str | None = None
    address: Address


@tool
def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is sunny in {city}."


def objects_in(schema: Any) -> list[dict[str, Any]]:
    """Every object schema, at any depth."""
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            found.append(schema)
        for value in schema.values():
            found += objects_in(value)
    elif isinstance(schema, list):
        for item in schema:
            found += objects_in(item)
    return found


# --- the strict schema ------------------------------------------------------------


def test_a_strict_schema_requires_everything_and_closes_every_object() -> None:
    schema = strict_json_schema(
        {
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "integer"},
                "inner": {
                    "type": "object",
                    "properties": {"c": {"type": "boolean"}},
                },
                "list": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"d": {"type": "number"}},
                    },
                },
            },
            "required": ["a"],
        }
    )
    assert schema["required"] == ["a", "b", "inner", "list"]
    for obj in objects_in(schema):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    properties = schema["properties"]
    assert properties["a"] == {"type": "string"}  # was required: unchanged
    assert properties["b"] == {"type": ["integer", "null"]}  # optional: nullable
    assert properties["inner"]["type"] == ["object", "null"]
    assert properties["list"]["items"]["properties"]["d"] == {
        "type": ["number", "null"]
    }


def test_optional_fields_of_every_shape_become_nullable_once() -> None:
    schema = strict_json_schema(
        {
            "type": "object",
            "properties": {
                "colour": {"type": "string", "enum": ["red", "blue"]},
                "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "union": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "fixed": {"const": 1, "description": "one"},
                "preset": {"type": "integer", "default": 7},
            },
        }
    )
    properties = schema["properties"]
    assert properties["colour"] == {
        "type": ["string", "null"],
        "enum": ["red", "blue", None],
    }
    assert properties["maybe"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert properties["union"]["anyOf"][-1] == {"type": "null"}
    assert properties["fixed"] == {
        "description": "one",
        "anyOf": [{"const": 1}, {"type": "null"}],
    }
    assert properties["preset"] == {"type": "integer", "default": 7}  # filled in


def test_the_original_schema_is_left_alone() -> None:
    original = {"type": "object", "properties": {"a": {"type": "string"}}}
    strict_json_schema(original)
    assert original == {"type": "object", "properties": {"a": {"type": "string"}}}


def test_strict_tools_are_sent_compliant(dfehub_emulator: DfeHubEmulator) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    model.bind_tools([Person], strict=True).invoke("Person named 'Ann'")
    [spec] = last_body(dfehub_emulator)["tools"]
    assert spec["function"]["strict"] is True
    parameters = spec["function"]["parameters"]
    assert parameters["required"] == ["name", "age", "nickname", "address"]
    assert parameters["properties"]["age"]["type"] == "integer"  # has a default
    for obj in objects_in(parameters):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])


def test_strict_json_schema_structured_output_is_compliant_and_parses(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    structured = model.with_structured_output(Person, method="json_schema", strict=True)
    person = structured.invoke("Remember 'Ann'")
    assert isinstance(person, Person)
    assert person.name == "Ann"
    sent = last_body(dfehub_emulator)["response_format"]["json_schema"]
    assert sent["strict"] is True
    for obj in objects_in(sent["schema"]):
        assert obj["additionalProperties"] is False


# --- bind_tools(response_format=...) ----------------------------------------


def test_bind_tools_sends_a_response_format_and_strict_tools(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    bound = model.bind_tools([get_weather], response_format=Address)

    answer = bound.invoke("Where do you live? Say 'Oslo'.")
    # Strict mode made `street` required, so the emulator fills it too.
    assert Address.model_validate_json(answer.text).city == "Oslo"
    body = last_body(dfehub_emulator)
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Address"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["tools"][0]["function"]["strict"] is True

    called = bound.invoke('What is the weather in "Oslo"?')
    assert called.tool_calls[0]["name"] == "get_weather"


async def test_bind_tools_takes_the_agents_response_format_dict(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    agent_format = {
        "type": "json_schema",
        "json_schema": {
            "name": "Reply",
            "schema": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
            "strict": False,
        },
    }
    answer = await model.bind_tools([], response_format=agent_format).ainvoke("hey")
    assert json.loads(answer.text) == {"text": "hey"}
    sent = last_body(dfehub_emulator)["response_format"]["json_schema"]
    assert sent["strict"] is False  # the dict's own choice wins
    assert sent["schema"] == agent_format["json_schema"]["schema"]


def test_a_response_format_spelled_name_and_schema_is_wrapped() -> None:
    wire = response_format_to_wire({"name": "r", "schema": {"type": "object"}})
    assert wire == {
        "type": "json_schema",
        "json_schema": {"name": "r", "schema": {"type": "object"}},
    }


# --- with_structured_output(tools=...) -----------------------------------------------


def test_structured_output_with_tools_parses_or_gives_the_tool_call(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    structured = model.with_structured_output(
        Address, method="json_schema", tools=[get_weather], include_raw=True
    )

    answered = structured.invoke("I live in 'Bergen'")
    assert answered["parsed"] == Address(city="Bergen")
    assert last_body(dfehub_emulator)["tools"][0]["function"]["name"] == "get_weather"

    called = structured.invoke('What is the weather in "Oslo"?')
    assert called["parsed"] is None
    assert called["parsing_error"] is None
    assert called["raw"].tool_calls[0]["args"] == {"city": "Oslo"}


async def test_structured_output_with_tools_works_async(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    structured = model.with_structured_output(
        Address, method="json_schema", tools=[get_weather]
    )
    assert await structured.ainvoke("I live in 'Bergen'") == Address(city="Bergen")
    assert await structured.ainvoke('What is the weather in "Oslo"?') is None


@pytest.mark.parametrize("method", ["function_calling", "json_mode"])
def test_structured_output_with_tools_needs_json_schema(method: Any) -> None:
    with pytest.raises(ValueError, match="needs method='json_schema'"):
        ChatDfeHub().with_structured_output(Address, method=method, tools=[get_weather])


# --- LangChain's agents --------------------------------------------------------------


class Home(BaseModel):
    """Where the user lives."""

    city: str


def test_an_agent_asks_for_native_structured_output_when_the_profile_says_so(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    from langchain.agents import create_agent

    model = ChatDfeHub(
        base_url=dfehub_emulator.base_url,
        profile={"structured_output": True, "tool_calling": True},
    )
    agent = create_agent(model, tools=[get_weather], response_format=Home)
    result = agent.invoke({"messages": [("human", "I live in 'Oslo'")]})

    assert result["structured_response"] == Home(city="Oslo")
    body = last_body(dfehub_emulator)
    sent = body["response_format"]["json_schema"]
    assert sent["strict"] is True
    assert sent["schema"]["additionalProperties"] is False
    assert body["tools"][0]["function"]["strict"] is True


async def test_an_async_agent_gets_the_structured_response_too(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    from langchain.agents import create_agent

    model = ChatDfeHub(
        base_url=dfehub_emulator.base_url, profile={"structured_output": True}
    )
    agent = create_agent(model, tools=[get_weather], response_format=Home)
    result = await agent.ainvoke({"messages": [("human", "I live in 'Bergen'")]})
    assert result["structured_response"] == Home(city="Bergen")
