"""Pure conversions between LangChain messages and chat-completions dicts.

Requests carry `{"role": ..., "content": ...}` dicts; replies carry a
`chat.completion` object or a stream of `chat.completion.chunk` objects. This
module translates in both directions and does nothing else: no I/O, no model
state, so it is tested on its own and shared by the sync and async paths.

`chunk_to_message` runs once per streamed chunk, so it is written for speed:
a plain text delta, by far the most common chunk, takes the shortest path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.content import is_data_content_block
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk

from langchain_dfehub import _content_blocks  # noqa: F401  (registers our blocks)
from langchain_dfehub._chunk_objects import text_message
from langchain_dfehub._reasoning import (
    REASONING_KEY,
    reasoning_for_history,
    reasoning_text,
)
from langchain_dfehub._result_objects import reply_message

PROVIDER = "dfehub"
# A delta with only these carries a piece of text and nothing else.
_PLAIN_DELTA = frozenset({"content", "role"})

_ROLES: dict[type[BaseMessage], str] = {
    SystemMessage: "system",
    HumanMessage: "user",
    AIMessage: "assistant",
    ToolMessage: "tool",
    FunctionMessage: "function",
}

_DROPPED_BLOCKS = frozenset(
    {
        "tool_use",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "reasoning",
        "thinking",
    }
)


# --- request side: LangChain message -> dict ---------------------------------


def messages_to_dicts(
    messages: Sequence[BaseMessage], *, reasoning_in_history: bool = False
) -> list[dict[str, Any]]:
    """Convert a conversation to the `messages` list of a request body."""
    return [
        message_to_dict(message, reasoning_in_history=reasoning_in_history)
        for message in messages
    ]


def message_to_dict(
    message: BaseMessage, *, reasoning_in_history: bool = False
) -> dict[str, Any]:
    """Convert one LangChain message to a chat-completions message dict.

    With `reasoning_in_history`, an AI message's reasoning goes back as
    `reasoning_content` (see `_reasoning`).

    Raises:
        TypeError: for a message type the wire format has no role for.
    """
    role = message.role if isinstance(message, ChatMessage) else _role_of(message)
    result: dict[str, Any] = {"role": role, "content": _content(message.content)}
    if isinstance(message, ToolMessage):
        # LangChain names a tool's result after the tool, but OpenAI's tool
        # message has no `name`, and strict servers reject one.
        result["tool_call_id"] = message.tool_call_id
        return result
    if message.name:
        result["name"] = message.name
    if isinstance(message, AIMessage):
        calls = [_tool_call_to_dict(call) for call in message.tool_calls]
        calls += [
            _invalid_tool_call_to_dict(call) for call in message.invalid_tool_calls
        ]
        if calls:
            result["tool_calls"] = calls
            if not result["content"]:
                # OpenAI's own shape for an answer that is only tool calls.
                result["content"] = None
        if reasoning_in_history:
            reasoning = reasoning_for_history(message)
            if reasoning is not None:
                result[REASONING_KEY] = reasoning
    return result


def _role_of(message: BaseMessage) -> str:
    for cls in type(message).__mro__:
        role = _ROLES.get(cls)
        if role is not None:
            return role
    msg = (
        f"ChatDfeHub cannot send a {type(message).__name__}: the chat-completions "
        "format has roles for system, human, AI, tool, function and ChatMessage "
        "only. Convert it to one of those first."
    )
    raise TypeError(msg)


def _content(content: str | list[str | dict[str, Any]]) -> str | list[Any]:
    """Pass text through; convert LangChain's standard data blocks in lists."""
    if isinstance(content, str):
        return content
    parts: list[Any] = []
    for block in content:
        if isinstance(block, str):
            parts.append({"type": "text", "text": block})
        elif is_data_content_block(block):
            # Imported here: only multimodal requests need the translator.
            from langchain_core.messages.block_translators.openai import (
                convert_to_openai_data_block,
            )

            parts.append(convert_to_openai_data_block(block))
        elif block.get("type") in _DROPPED_BLOCKS:
            # Carried in `tool_calls`, or meaningless to the server.
            continue
        elif block.get("type") == "image" and isinstance(block.get("source"), dict):
            image = _anthropic_image(block["source"])
            if image is not None:
                parts.append(image)
        else:
            parts.append(block)
    if all(_is_bare_text(part) for part in parts):
        # Plain text is the most portable form across compatible servers.
        return "".join(part["text"] for part in parts)
    return parts


def _is_bare_text(part: Any) -> bool:
    """Whether a part is text and nothing else, so joining it loses nothing.

    A text part with more fields (`cache_control` for prompt caching, as
    OpenRouter and LiteLLM read it) is sent as the user built it.
    """
    return (
        isinstance(part, dict)
        and part.keys() == {"type", "text"}
        and part["type"] == "text"
        and isinstance(part["text"], str)
    )


def _anthropic_image(source: Mapping[str, Any]) -> dict[str, Any] | None:
    """An Anthropic-style image block's `source` as an `image_url` part.

    `{"type": "base64", "media_type", "data"}` becomes a data URL and
    `{"type": "url", "url"}` the URL, as `ChatOpenAI` converts them; a source
    of another kind (an Anthropic file id) has no Chat Completions form and is
    left out, as there.
    """
    kind = source.get("type")
    if kind == "base64" and source.get("media_type") and source.get("data"):
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif kind == "url" and source.get("url"):
        url = source["url"]
    else:
        return None
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_call_to_dict(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call["id"],
        "type": "function",
        "function": {
            "name": call["name"],
            "arguments": json.dumps(call["args"], ensure_ascii=False),
        },
    }


def _invalid_tool_call_to_dict(call: InvalidToolCall) -> dict[str, Any]:
    return {
        "id": call["id"],
        "type": "function",
        # An invalid call may lack a name or arguments; the wire wants strings.
        "function": {"name": call["name"] or "", "arguments": call["args"] or ""},
    }


# --- reply side: dict -> LangChain message ------------------------------------


def usage_from_dict(usage: Mapping[str, Any] | None) -> UsageMetadata | None:
    """Read a `usage` object into LangChain's usage metadata.

    Written as validation would store it (whole ints, keys in the order of
    `UsageMetadata` and its details), so `_result_objects` keeps it as it is.
    """
    if not usage:
        return None
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    total = usage.get("total_tokens")
    metadata: UsageMetadata = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": int(total)
        if total is not None
        else input_tokens + output_tokens,
    }
    if (
        usage.get("prompt_tokens_details")
        or usage.get("completion_tokens_details")
        or "prompt_cache_hit_tokens" in usage
    ):
        input_details, output_details = _token_details(usage)
        if input_details:
            metadata["input_token_details"] = input_details  # type: ignore[typeddict-item]
        if output_details:
            metadata["output_token_details"] = output_details  # type: ignore[typeddict-item]
    return metadata


# (details object, its field, LangChain's name for it), per side of the usage,
# in the order of LangChain's `InputTokenDetails` and `OutputTokenDetails`.
_INPUT_DETAILS = (
    ("prompt_tokens_details", "audio_tokens", "audio"),
    ("prompt_tokens_details", "cached_tokens", "cache_read"),
)
_OUTPUT_DETAILS = (
    ("completion_tokens_details", "audio_tokens", "audio"),
    ("completion_tokens_details", "reasoning_tokens", "reasoning"),
)


def _token_details(usage: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """The usage's detail counts under LangChain's `UsageMetadata` names."""
    input_details = _details(usage, _INPUT_DETAILS)
    hits = usage.get("prompt_cache_hit_tokens")  # DeepSeek's own name
    if "cache_read" not in input_details and type(hits) is int:
        input_details["cache_read"] = hits  # last, as in `InputTokenDetails`
    return input_details, _details(usage, _OUTPUT_DETAILS)


def _details(
    usage: Mapping[str, Any], fields: tuple[tuple[str, str, str], ...]
) -> dict[str, int]:
    found: dict[str, int] = {}
    for group, field, name in fields:
        details = usage.get(group)
        value = details.get(field) if isinstance(details, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool):
            found[name] = int(value)  # a plain int, as validation stores it
    return found


def response_to_messages(response: Mapping[str, Any]) -> list[AIMessage]:
    """Convert every choice of a `chat.completion` object to an `AIMessage`.

    The usage counts the whole request, all choices together, so only the
    first message carries it: summing the messages' usage stays right.
    """
    choices = response["choices"]
    if len(choices) == 1 and type(choices[0]) is dict:  # nearly every reply
        return [response_to_message(response, choices[0])]
    choices = [c for c in choices if isinstance(c, Mapping)]
    return [
        response_to_message(response, choice, with_usage=index == 0)
        for index, choice in enumerate(choices)
    ]


def response_to_message(
    response: Mapping[str, Any],
    choice: Mapping[str, Any] | None = None,
    *,
    with_usage: bool = True,
) -> AIMessage:
    """Convert one choice (the first by default) of a `chat.completion` object.

    Tool calls whose arguments are not valid JSON become `invalid_tool_calls`
    rather than an exception, so an agent can show the model its mistake.

    Raises:
        KeyError, IndexError, TypeError: when the object lacks `choices[0]`;
            the transport turns these into a protocol error.
    """
    if choice is None:
        choice = response["choices"][0]
    message = choice.get("message") or {}
    tool_calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    raw_calls = message.get("tool_calls")
    if raw_calls:
        for raw in raw_calls:
            _parse_tool_call(raw, tool_calls, invalid)
    additional: dict[str, Any] = {}
    refusal = message.get("refusal")
    if refusal:
        additional["refusal"] = refusal
    reasoning = reasoning_text(message)
    if reasoning is not None:
        additional[REASONING_KEY] = reasoning
    content = message.get("content") or ""
    usage = usage_from_dict(response.get("usage")) if with_usage else None
    metadata = _response_metadata(response, choice)
    if not tool_calls and not invalid:
        # An answer without tool calls skips validation (see `_result_objects`).
        return reply_message(content, additional, metadata, usage, response.get("id"))
    return AIMessage(
        content=content,
        tool_calls=tool_calls,
        invalid_tool_calls=invalid,
        additional_kwargs=additional,
        usage_metadata=usage,
        response_metadata=metadata,
        id=response.get("id"),
    )


def _parse_tool_call(
    raw: Mapping[str, Any], valid: list[ToolCall], invalid: list[InvalidToolCall]
) -> None:
    function = raw.get("function") or {}
    name = function.get("name") or ""
    arguments = function.get("arguments")
    call_id = raw.get("id")
    if not arguments:
        valid.append(tool_call(name=name, args={}, id=call_id))
        return
    try:
        args = json.loads(arguments)
    except (TypeError, ValueError) as exc:
        invalid.append(
            invalid_tool_call(
                name=name,
                args=str(arguments),
                id=call_id,
                error=f"The arguments are not valid JSON: {exc}",
            )
        )
        return
    if not isinstance(args, dict):
        invalid.append(
            invalid_tool_call(
                name=name,
                args=arguments,
                id=call_id,
                error="The arguments are JSON but not a JSON object.",
            )
        )
        return
    valid.append(tool_call(name=name, args=args, id=call_id))


def _response_metadata(
    response: Mapping[str, Any], choice: Mapping[str, Any]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "model_name": response.get("model"),
        "finish_reason": choice.get("finish_reason"),
        "model_provider": PROVIDER,
    }
    if response.get("system_fingerprint"):
        metadata["system_fingerprint"] = response["system_fingerprint"]
    _add_reply_details(metadata, response, choice)
    return metadata


def _add_reply_details(
    metadata: dict[str, Any], reply: Mapping[str, Any], choice: Mapping[str, Any]
) -> None:
    """Copy `service_tier` and the choice's `logprobs`, when the server sent them.

    In a stream each content chunk carries the logprobs of its own tokens;
    LangChain's merge of chunks concatenates their `content` lists.
    """
    if reply.get("service_tier"):
        metadata["service_tier"] = reply["service_tier"]
    if choice.get("logprobs"):
        metadata["logprobs"] = choice["logprobs"]
    _add_timings(metadata, reply)


def _add_timings(metadata: dict[str, Any], reply: Mapping[str, Any]) -> None:
    """Copy llama.cpp's `timings` (prompt and generation speed), if sent.

    A stream carries them on its last chunk only (the usage chunk, or the
    finishing one without it), so a merged stream has them once.
    """
    timings = reply.get("timings")
    if isinstance(timings, dict) and timings:
        metadata["timings"] = timings


def chunk_to_message(chunk: Mapping[str, Any]) -> tuple[AIMessageChunk, str | None]:
    """Convert a `chat.completion.chunk` to an `AIMessageChunk`.

    Returns the message and the chunk's `finish_reason` (None until the last
    chunk of the choice). The model name and finish reason ride on the chunk
    that carries the finish reason, so a merged stream has them once.
    """
    choices = chunk.get("choices")
    usage = chunk.get("usage")
    if not choices:
        # The usage chunk that `stream_options.include_usage` asks for.
        details: dict[str, Any] = {"model_provider": PROVIDER}
        _add_timings(details, chunk)
        return (
            AIMessageChunk(
                content="",
                usage_metadata=usage_from_dict(usage),
                response_metadata=details,
            ),
            None,
        )
    choice = choices[0]
    # A whole `chat.completion` from a server that ignored `"stream": true`
    # carries `message` instead of `delta`.
    delta = choice.get("delta") or choice.get("message") or {}
    content = delta.get("content") or ""
    finish_reason = choice.get("finish_reason")
    if (
        finish_reason is None
        and _PLAIN_DELTA.issuperset(delta)
        and not usage
        and not choice.get("logprobs")
    ):
        # Nearly every chunk of a stream: a piece of text and nothing else.
        return text_message(content), None
    raw_calls = delta.get("tool_calls")
    logprobs = choice.get("logprobs")
    reasoning = reasoning_text(delta)
    refusal = delta.get("refusal")
    if refusal:
        # Pieces of a refusal merge by concatenation, like the content's.
        return _refusal_chunk(content, refusal, reasoning, finish_reason, chunk)
    if not raw_calls and finish_reason is None and not usage and not logprobs:
        if reasoning is None:
            return text_message(content), None
        return (
            AIMessageChunk(
                content=content,
                additional_kwargs={REASONING_KEY: reasoning},
                # Names the translator that keeps reasoning blocks apart.
                response_metadata={"model_provider": PROVIDER},
            ),
            None,
        )
    additional = {REASONING_KEY: reasoning} if reasoning is not None else {}
    calls: list[ToolCallChunk] = []
    for raw in raw_calls or ():
        function = raw.get("function") or {}
        calls.append(
            tool_call_chunk(
                name=function.get("name"),
                args=function.get("arguments"),
                id=raw.get("id"),
                index=raw.get("index"),
            )
        )
    metadata: dict[str, Any] = {"model_provider": PROVIDER}
    if finish_reason is not None:
        metadata["finish_reason"] = finish_reason
        metadata["model_name"] = chunk.get("model")
        if chunk.get("system_fingerprint"):
            metadata["system_fingerprint"] = chunk["system_fingerprint"]
        if chunk.get("service_tier"):
            metadata["service_tier"] = chunk["service_tier"]
        _add_timings(metadata, chunk)
    if logprobs:
        metadata["logprobs"] = logprobs
    return (
        AIMessageChunk(
            content=content,
            additional_kwargs=additional,
            tool_call_chunks=calls,
            usage_metadata=usage_from_dict(usage),
            response_metadata=metadata,
        ),
        finish_reason,
    )


def _refusal_chunk(
    content: str,
    refusal: str,
    reasoning: str | None,
    finish_reason: str | None,
    chunk: Mapping[str, Any],
) -> tuple[AIMessageChunk, str | None]:
    """A chunk carrying a piece of a refusal (`delta.refusal`), seldom seen."""
    additional: dict[str, Any] = {"refusal": refusal}
    if reasoning is not None:
        additional[REASONING_KEY] = reasoning
    metadata: dict[str, Any] = {"model_provider": PROVIDER}
    if finish_reason is not None:
        metadata["finish_reason"] = finish_reason
        metadata["model_name"] = chunk.get("model")
    return (
        AIMessageChunk(
            content=content,
            additional_kwargs=additional,
            usage_metadata=usage_from_dict(chunk.get("usage")),
            response_metadata=metadata,
        ),
        finish_reason,
    )
