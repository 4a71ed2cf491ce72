"""Is a reply's JSON shaped as the chat-completions format says?

A server may send valid JSON of the wrong shape (`"content": 5`,
`"delta": "x"`, `"choices": {}`, token counts as strings). Converting such a
reply into LangChain messages would fail with a bare `TypeError` or
`AttributeError` somewhere deep in the conversion; checked here first, it
becomes a `DfeHubProtocolError` that names the field at fault. Only the fields
ChatDfeHub reads are checked, so extra or newer fields pass.

Each function returns None for a well-shaped object, else what is wrong.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any

# A delta with only these carries a piece of text and nothing else.
_PLAIN_DELTA = frozenset({"content", "role"})
_TOKEN_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
_TOKEN_DETAILS = {
    "prompt_tokens_details": "cached_tokens",
    "completion_tokens_details": "reasoning_tokens",
}


def plain_text(chunk: Mapping[str, Any]) -> str | None:
    """The text of a well-shaped chunk that carries nothing else, else None.

    Nearly every chunk of a stream is one: its only choice's delta holds a
    piece of text (and perhaps its role), with no finish reason, logprobs
    or usage. Such a chunk needs no other check (`chunk_problem` finds
    nothing in it) and becomes a message with that text and nothing more;
    the role chunk's text is "".
    """
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1 or chunk.get("usage"):
        return None
    choice = choices[0]
    if type(choice) is not dict:
        return None
    delta = choice.get("delta")
    if (
        type(delta) is not dict
        or not delta
        or choice.get("finish_reason") is not None
        or choice.get("logprobs")
        or not _PLAIN_DELTA.issuperset(delta)
    ):
        return None
    content = delta.get("content")
    if type(content) is str:
        return content
    return "" if content is None else None


def chunk_problem(chunk: Mapping[str, Any]) -> str | None:
    """What is wrong with a `chat.completion.chunk`, if anything."""
    # Runs once per streamed chunk: a well-shaped one costs no calls.
    choices = chunk.get("choices")
    if choices is not None and type(choices) is not list:
        return _wrong("choices", choices, "a list")
    usage = chunk.get("usage")
    if usage is not None:
        problem = _usage_problem(usage)
        if problem is not None:
            return problem
    if not choices:
        return None
    choice = choices[0]
    if type(choice) is not dict:
        return _wrong("choices[0]", choice, "an object")
    # A whole `chat.completion` sent to a stream request has `message`.
    name = "delta" if "delta" in choice else "message"
    return _choice_problem(choice, name)


def completion_problem(completion: Mapping[str, Any]) -> str | None:
    """What is wrong with a `chat.completion`, if anything."""
    choices = completion.get("choices")
    if type(choices) is not list or not choices:
        return _wrong("choices", choices, "a non-empty list")
    choice = choices[0]
    if type(choice) is not dict:
        return _wrong("choices[0]", choice, "an object")
    return _choice_problem(choice, "message") or _usage_problem(completion.get("usage"))


def _choice_problem(choice: dict[str, Any], name: str) -> str | None:
    finish_reason = choice.get("finish_reason")
    if finish_reason is not None and type(finish_reason) is not str:
        return _wrong("choices[0].finish_reason", finish_reason, "a string")
    message = choice.get(name)
    if message is None:
        return None
    if type(message) is not dict:
        return _wrong(f"choices[0].{name}", message, "an object")
    content = message.get("content")
    if content is not None and type(content) is not str:
        return _wrong(f"choices[0].{name}.content", content, "a string")
    refusal = message.get("refusal")
    if refusal is not None and type(refusal) is not str:
        return _wrong(f"choices[0].{name}.refusal", refusal, "a string")
    calls = message.get("tool_calls")
    if calls is None:
        return None
    where = f"choices[0].{name}"
    if type(calls) is not list:
        return _wrong(f"{where}.tool_calls", calls, "a list")
    for index, call in enumerate(calls):
        problem = _tool_call_problem(
            call, f"{where}.tool_calls[{index}]", streamed=name == "delta"
        )
        if problem is not None:
            return problem
    return None


def _tool_call_problem(call: Any, where: str, *, streamed: bool) -> str | None:
    if type(call) is not dict:
        return _wrong(where, call, "an object")
    for key in ("id", "type"):
        value = call.get(key)
        if value is not None and type(value) is not str:
            return _wrong(f"{where}.{key}", value, "a string")
    index = call.get("index")
    if index is not None and type(index) is not int:
        return _wrong(f"{where}.index", index, "an integer")
    function = call.get("function")
    if function is None:
        return None
    if type(function) is not dict:
        return _wrong(f"{where}.function", function, "an object")
    name = function.get("name")
    if name is not None and type(name) is not str:
        return _wrong(f"{where}.function.name", name, "a string")
    arguments = function.get("arguments")
    if streamed and arguments is not None and type(arguments) is not str:
        # Streamed arguments are pieces of one JSON text, joined as strings.
        return _wrong(f"{where}.function.arguments", arguments, "a string")
    return None  # whole arguments that are not a JSON string become invalid calls


def _usage_problem(usage: Any) -> str | None:
    if usage is None:
        return None
    if type(usage) is not dict:
        return _wrong("usage", usage, "an object")
    for key in _TOKEN_COUNTS:
        value = usage.get(key)
        if value is not None and type(value) is not int:
            return _wrong(f"usage.{key}", value, "an integer")
    for key, count in _TOKEN_DETAILS.items():
        details = usage.get(key)
        if details is None:
            continue
        if type(details) is not dict:
            return _wrong(f"usage.{key}", details, "an object")
        value = details.get(count)
        if value is not None and type(value) is not int:
            return _wrong(f"usage.{key}.{count}", value, "an integer")
    return None


def _wrong(where: str, value: Any, expected: str) -> str:
    shown = reprlib.repr(value)  # bounded work, however large the value
    if len(shown) > 40:
        shown = shown[:39] + "…"
    return f"{where} is {shown} ({type(value).__name__}), not {expected}"
