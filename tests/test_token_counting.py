"""Token counting works offline, approximately, and defers to a user's tokenizer."""

from __future__ import annotations

import sys

import pytest
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from langchain_core.tools import tool

from langchain_dfehub import ChatDfeHub
from langchain_dfehub._tokens import estimate_tokens


def words(text: str) -> list[int]:
    return list(range(len(text.split())))


@tool
def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return city


# Token counts of gpt-3.5-turbo's tokenizer (cl100k_base) for these texts.
CL100K_COUNTS = [
    ("Hello world, this is a test.", 8),
    ("The quick brown fox jumps over the lazy dog.", 10),
    ("def add(a: int, b: int) -> int:\n    return a + b\n", 19),
    ('{"name": "get_weather", "arguments": {"city": "Oslo"}}', 17),
]


@pytest.mark.parametrize(("text", "real"), CL100K_COUNTS)
def test_the_offline_count_is_close_to_gpt_3_5s_tokenizer(text: str, real: int) -> None:
    assert abs(estimate_tokens(text) - real) <= max(1, real * 0.2)


def test_counting_needs_no_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails
    model = ChatDfeHub()
    assert model.get_num_tokens("Hello world, this is a test.") == 8
    assert len(model.get_token_ids("Hello world")) == 2
    assert model.get_num_tokens("") == 0


def test_a_conversation_counts_text_plus_openais_overhead() -> None:
    model = ChatDfeHub(custom_get_token_ids=words)
    # 3 for the reply, then per message 3 plus its role and text.
    assert model.get_num_tokens_from_messages([HumanMessage("hi there")]) == 3 + 3 + 3
    named = HumanMessage("hi", name="ann")
    assert model.get_num_tokens_from_messages([named]) == 3 + 3 + 2 + 1 + 1


def test_tool_calls_results_and_tools_are_counted() -> None:
    model = ChatDfeHub()
    call = AIMessage(
        "", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1"}]
    )
    result = ToolMessage("sunny", tool_call_id="c1")
    bare = model.get_num_tokens_from_messages([HumanMessage("weather?")])
    with_calls = model.get_num_tokens_from_messages(
        [HumanMessage("weather?"), call, result]
    )
    with_tools = model.get_num_tokens_from_messages(
        [HumanMessage("weather?")], tools=[get_weather]
    )
    assert with_calls > bare + 2 * 3
    assert with_tools > bare + 10


def test_custom_get_token_ids_is_used_for_every_count() -> None:
    model = ChatDfeHub(custom_get_token_ids=words)
    assert model.get_num_tokens("one two three") == 3
    assert model.get_token_ids("a b") == [0, 1]


def test_trim_messages_can_count_with_the_model() -> None:
    model = ChatDfeHub()
    history = [
        SystemMessage("Be terse."),
        HumanMessage("tell me a long story " * 30),
        AIMessage("Once upon a time."),
        HumanMessage("And then?"),
    ]
    trimmed = trim_messages(
        history,
        max_tokens=40,
        token_counter=model,
        strategy="last",
        include_system=True,
    )
    assert [m.content for m in trimmed] == [
        "Be terse.",
        "Once upon a time.",
        "And then?",
    ]
    assert model.get_num_tokens_from_messages(trimmed) <= 40
