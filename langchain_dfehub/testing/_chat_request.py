"""The chat-completions request body, checked the way OpenAI checks it.

A stand-in that accepts what the real server rejects hides client bugs until
production, so every body is checked here, before any reply is composed, and
a bad one is answered with the same kind of 400 OpenAI gives (message and
`param`). What passes is normalised into a `ChatRequest`, so the reply rules
never have to guess at shapes. Parameters that are not checked here are
accepted and ignored, as a server that does not use them would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._content_parts import check_media_part

DEFAULT_MODEL = "gpt-3.5-turbo"
MAX_STOP_SEQUENCES = 4
MAX_CHOICES = 128
MAX_TOP_LOGPROBS = 20

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_TEXT_ONLY = frozenset({"text"})
_PART_TYPES: dict[str, frozenset[str]] = {
    "system": _TEXT_ONLY,
    "developer": _TEXT_ONLY,
    "user": frozenset({"text", "image_url", "input_audio", "file"}),
    "assistant": frozenset({"text", "refusal"}),
    "tool": _TEXT_ONLY,
}
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_JSON_WORD = re.compile(r"json", re.IGNORECASE)
_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}

ToolChoice = Literal["none", "auto", "required"]
_TOOL_CHOICES: dict[str, ToolChoice] = {
    "none": "none",
    "auto": "auto",
    "required": "required",
}


class InvalidRequest(Exception):  # noqa: N818 - named after OpenAI's error type
    """The request breaks a rule OpenAI enforces; answered with HTTP 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class ToolSpec:
    """A function tool the client offered: its name and parameters schema."""

    name: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class ResponseFormat:
    """The requested answer format; `schema` only for `json_schema`."""

    kind: Literal["text", "json_object", "json_schema"]
    schema: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat request, reduced to what the reply rules use."""

    model: str
    messages: tuple[Mapping[str, Any], ...]
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "none"
    forced_tool: str | None = None
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    n: int = 1
    logprobs: int | None = None
    """`None` without `logprobs`, else how many `top_logprobs` per token."""


def _json_type(value: object) -> str:
    """Name a JSON value's type as OpenAI's error messages do."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _wrong_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, "
        f"but got {_json_type(value)} instead.",
        param,
    )


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param)


def content_text(content: object) -> str:
    """Return the text of a message's content: the string, or its text parts.

    Text parts of a list are joined with newlines; other parts (images,
    audio, files) contribute nothing.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ]
        return "\n".join(texts)
    return ""


def parse_chat_request(body: object) -> ChatRequest:
    """Check a parsed JSON body and normalise it; raise InvalidRequest if bad."""
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"Invalid type for the request body: expected an object, "
            f"but got {_json_type(body)} instead."
        )
    given = {key: value for key, value in body.items() if value is not None}
    model = given.get("model", DEFAULT_MODEL)
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    messages = _check_messages(given.get("messages"))
    stream = given.get("stream", False)
    if not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    _check_ranges(given)
    n = _check_int_range(given, "n", 1, 1, MAX_CHOICES)
    tools = _check_tools(given.get("tools"))
    tool_choice, forced = _check_tool_choice(given.get("tool_choice"), tools)
    parallel = given.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise _wrong_type("parallel_tool_calls", "a boolean", parallel)
    response_format = _check_response_format(given.get("response_format"))
    if (
        response_format is not None
        and response_format.kind == "json_object"
        and not any(_JSON_WORD.search(content_text(m.get("content"))) for m in messages)
    ):
        raise InvalidRequest(
            "'messages' must contain the word 'json' in some form, to use "
            "'response_format' of type 'json_object'.",
            "messages",
        )
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=_check_stream_options(given.get("stream_options"), stream),
        stop=_check_stop(given.get("stop")),
        max_tokens=_check_max_tokens(given),
        tools=tools,
        tool_choice=tool_choice,
        forced_tool=forced,
        parallel_tool_calls=parallel,
        response_format=response_format,
        n=n,
        logprobs=_check_logprobs(given),
    )


def _check_int_range(
    given: Mapping[str, Any], name: str, default: int, low: int, high: int
) -> int:
    value = given.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(name, "an integer", value)
    _check_range(name, value, low, high, "an integer")
    return value


def _check_range(name: str, value: float, low: float, high: float, kind: str) -> None:
    if not low <= value <= high:
        raise InvalidRequest(
            f"Invalid '{name}': {value} is out of range; expected {kind} "
            f"from {low} to {high}.",
            name,
        )


def _check_logprobs(given: Mapping[str, Any]) -> int | None:
    """Return None when no logprobs are asked for, else the top count."""
    wanted = given.get("logprobs", False)
    if not isinstance(wanted, bool):
        raise _wrong_type("logprobs", "a boolean", wanted)
    top = _check_int_range(given, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS)
    if "top_logprobs" in given and not wanted:
        raise InvalidRequest(
            "'logprobs' must be set to true if 'top_logprobs' is used.",
            "top_logprobs",
        )
    return top if wanted else None


def _check_ranges(given: Mapping[str, Any]) -> None:
    for name, (low, high) in _RANGES.items():
        if name not in given:
            continue
        value = given[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(name, "a decimal", value)
        _check_range(name, value, low, high, "a value")


def _check_messages(messages: object) -> tuple[Mapping[str, Any], ...]:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array of objects", messages)
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum "
            "length 1, but got an empty array instead.",
            "messages",
        )
    for index, message in enumerate(messages):
        _check_message(message, f"messages[{index}]")
    _check_tool_replies(messages)
    return tuple(messages)


def _check_message(message: object, param: str) -> None:
    if not isinstance(message, dict):
        raise _wrong_type(param, "an object", message)
    role = message.get("role")
    if role is None:
        raise _missing(f"{param}.role")
    if role not in _ROLES:
        allowed = ", ".join(f"'{name}'" for name in _ROLES)
        raise InvalidRequest(
            f"Invalid value: {role!r}. Supported values are: {allowed}.",
            f"{param}.role",
        )
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        raise _wrong_type(f"{param}.name", "a string", name)
    content = message.get("content")
    if role == "function":
        if name is None:
            raise _missing(f"{param}.name")
        if content is not None and not isinstance(content, str):
            raise _wrong_type(f"{param}.content", "a string", content)
        return
    has_calls = role == "assistant" and _check_tool_calls(message, param)
    if content is None:
        if has_calls or (role == "assistant" and message.get("function_call")):
            return
        raise _missing(f"{param}.content")
    _check_content(content, role, f"{param}.content")
    if role == "tool":
        call_id = message.get("tool_call_id")
        if call_id is None:
            raise _missing(f"{param}.tool_call_id")
        if not isinstance(call_id, str):
            raise _wrong_type(f"{param}.tool_call_id", "a string", call_id)


def _check_content(content: object, role: str, param: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _wrong_type(param, "one of a string or array of objects", content)
    allowed = _PART_TYPES[role]
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        if not isinstance(part, dict):
            raise _wrong_type(where, "an object", part)
        kind = part.get("type")
        if kind is None:
            raise _missing(f"{where}.type")
        if kind not in allowed:
            names = ", ".join(f"'{name}'" for name in sorted(allowed))
            raise InvalidRequest(
                f"Invalid value: {kind!r}. Supported values are: {names}.",
                f"{where}.type",
            )
        if kind in ("text", "refusal") and not isinstance(part.get(kind), str):
            raise _wrong_type(f"{where}.{kind}", "a string", part.get(kind))
        if kind in ("image_url", "input_audio", "file"):
            media = part.get(kind)
            if not isinstance(media, dict):
                raise _wrong_type(f"{where}.{kind}", "an object", media)
            check_media_part(kind, media, where, InvalidRequest)


def _check_tool_calls(message: Mapping[str, Any], param: str) -> bool:
    """Check an assistant message's `tool_calls`; return whether it has any."""
    calls = message.get("tool_calls")
    if calls is None:
        return False
    if not isinstance(calls, list):
        raise _wrong_type(f"{param}.tool_calls", "an array of objects", calls)
    for index, call in enumerate(calls):
        where = f"{param}.tool_calls[{index}]"
        if not isinstance(call, dict):
            raise _wrong_type(where, "an object", call)
        if not isinstance(call.get("id"), str):
            raise _wrong_type(f"{where}.id", "a string", call.get("id"))
        if call.get("type") != "function":
            raise InvalidRequest(
                f"Invalid value: {call.get('type')!r}. Supported values are: "
                "'function'.",
                f"{where}.type",
            )
        function = call.get("function")
        if not isinstance(function, dict):
            raise _wrong_type(f"{where}.function", "an object", function)
        for key in ("name", "arguments"):
            if not isinstance(function.get(key), str):
                raise _wrong_type(
                    f"{where}.function.{key}", "a string", function.get(key)
                )
    return bool(calls)


def _check_tool_replies(messages: list[Any]) -> None:
    """Tool results must answer the calls of the assistant message before them.

    OpenAI rejects a tool message that answers no call, and an assistant's
    tool calls left without results; so does this server, since either means
    the client lost part of the conversation.
    """
    pending: list[str] = []
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            call_id = message["tool_call_id"]
            if call_id not in pending:
                raise InvalidRequest(
                    "Invalid parameter: messages with role 'tool' must be a "
                    "response to a preceding message with 'tool_calls'.",
                    f"messages[{index}].role",
                )
            pending.remove(call_id)
            continue
        if pending:
            raise _unanswered(pending, index)
        calls = message.get("tool_calls") if role == "assistant" else None
        pending = [call["id"] for call in calls] if calls else []
    if pending:
        raise _unanswered(pending, len(messages))


def _unanswered(pending: list[str], index: int) -> InvalidRequest:
    ids = ", ".join(pending)
    return InvalidRequest(
        "An assistant message with 'tool_calls' must be followed by tool "
        "messages responding to each 'tool_call_id'. The following "
        f"tool_call_ids did not have response messages: {ids}",
        f"messages[{index}].role",
    )


def _check_tools(tools: object) -> tuple[ToolSpec, ...]:
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise _wrong_type("tools", "an array of objects", tools)
    if not tools:
        raise InvalidRequest(
            "Invalid 'tools': empty array. Expected an array with minimum "
            "length 1, but got an empty array instead.",
            "tools",
        )
    specs: list[ToolSpec] = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise _wrong_type(where, "an object", tool)
        if tool.get("type") is None:
            raise _missing(f"{where}.type")
        if tool["type"] != "function":
            raise InvalidRequest(
                f"Invalid value: {tool['type']!r}. Supported values are: 'function'.",
                f"{where}.type",
            )
        function = tool.get("function")
        if function is None:
            raise _missing(f"{where}.function")
        if not isinstance(function, dict):
            raise _wrong_type(f"{where}.function", "an object", function)
        name = function.get("name")
        if name is None:
            raise _missing(f"{where}.function.name")
        if not isinstance(name, str):
            raise _wrong_type(f"{where}.function.name", "a string", name)
        if not _NAME.fullmatch(name):
            raise InvalidRequest(
                f"Invalid '{where}.function.name': string does not match "
                "pattern. Expected a string that matches the pattern "
                "'^[a-zA-Z0-9_-]{1,64}$'.",
                f"{where}.function.name",
            )
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise _wrong_type(f"{where}.function.description", "a string", description)
        parameters = function.get("parameters", {})
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, dict):
            raise _wrong_type(f"{where}.function.parameters", "an object", parameters)
        strict = function.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise _wrong_type(f"{where}.function.strict", "a boolean", strict)
        specs.append(ToolSpec(name, parameters))
    return tuple(specs)


def _check_tool_choice(
    choice: object, tools: tuple[ToolSpec, ...]
) -> tuple[ToolChoice, str | None]:
    if choice is None:
        return ("auto" if tools else "none"), None
    if not tools:
        raise InvalidRequest(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed "
            "when 'tools' are specified.",
            "tool_choice",
        )
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return _TOOL_CHOICES[choice], None
    if isinstance(choice, str):
        raise InvalidRequest(
            f"Invalid value: {choice!r}. Supported values are: 'none', 'auto', "
            "and 'required'.",
            "tool_choice",
        )
    if not isinstance(choice, dict):
        raise _wrong_type("tool_choice", "one of a string or object", choice)
    function = choice.get("function")
    if choice.get("type") != "function" or not isinstance(function, dict):
        raise InvalidRequest(
            "Invalid value for 'tool_choice': expected "
            '{"type": "function", "function": {"name": ...}}.',
            "tool_choice",
        )
    name = function.get("name")
    if not isinstance(name, str):
        raise _wrong_type("tool_choice.function.name", "a string", name)
    if name not in {tool.name for tool in tools}:
        raise InvalidRequest(
            f"Tool choice {name!r} not found in 'tools' parameter.",
            "tool_choice",
        )
    return "required", name


def _check_response_format(value: object) -> ResponseFormat | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _wrong_type("response_format", "an object", value)
    kind = value.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind != "json_schema":
        raise InvalidRequest(
            f"Invalid value: {kind!r}. Supported values are: 'text', "
            "'json_object', and 'json_schema'.",
            "response_format.type",
        )
    spec = value.get("json_schema")
    if spec is None:
        raise _missing("response_format.json_schema")
    if not isinstance(spec, dict):
        raise _wrong_type("response_format.json_schema", "an object", spec)
    name = spec.get("name")
    if name is None:
        raise _missing("response_format.json_schema.name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequest(
            "Invalid 'response_format.json_schema.name': expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
            "response_format.json_schema.name",
        )
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise _wrong_type("response_format.json_schema.schema", "an object", schema)
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _wrong_type("response_format.json_schema.strict", "a boolean", strict)
    return ResponseFormat("json_schema", schema)


def _check_stream_options(options: object, stream: bool) -> bool:
    """Return whether the client asked for a usage chunk at the end."""
    if options is None:
        return False
    if not stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    if not isinstance(options, dict):
        raise _wrong_type("stream_options", "an object", options)
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise _wrong_type("stream_options.include_usage", "a boolean", include)
    return include


def _check_stop(stop: object) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if not isinstance(stop, list):
        raise _wrong_type("stop", "one of a string or array of strings", stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(
            f"Invalid 'stop': array too long. Expected an array with maximum "
            f"length {MAX_STOP_SEQUENCES}, but got an array with length "
            f"{len(stop)} instead.",
            "stop",
        )
    for index, item in enumerate(stop):
        if not isinstance(item, str):
            raise _wrong_type(f"stop[{index}]", "a string", item)
    return tuple(item for item in stop if item)


def _check_max_tokens(given: Mapping[str, Any]) -> int | None:
    limit: int | None = None
    for name in ("max_tokens", "max_completion_tokens"):
        if name not in given:
            continue
        value = given[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(name, "an integer", value)
        if value < 1:
            raise InvalidRequest(
                f"Invalid '{name}': integer below minimum value. Expected a "
                f"value >= 1, but got {value} instead.",
                name,
            )
        limit = value if limit is None else min(limit, value)
    return limit
