"""A whole reply's LangChain objects, built without validating them again.

`invoke` turns a reply into an `AIMessage` per choice, a `ChatGeneration`
around each and one `ChatResult`. Through pydantic's validation (with
langchain-core's validators, which look for tool calls to convert and set
the generation's `text`) these three cost several times what reading the
reply does, on every call. What goes into them `_messages` has just built,
fresh, from a reply `_reply_shape` has checked. So, as `_chunk_objects` does
for a stream's chunks, they are made from a validated prototype's state: the
values validation would store, the fields-set it would record, and new
dicts and lists for each object, so that no two objects share one.

Only shapes for which validation would change nothing (but copy the
containers) take this way, and the fast constructors check them:

- a message without tool calls (valid or invalid; `_messages` builds one
  with them the validated way) with string content, no `tool_calls` in
  `additional_kwargs`, an `id` that is a string or None,
  and usage as `_messages.usage_from_dict` writes it (ints, keys in the
  order validation stores them);
- a generation of a message whose content is a string;
- a result of such generations.

Anything else (a reply with tool calls, a numeric `id` validation turns
into a string) is built the validated way. If the installed langchain-core
gives the prototypes a state this module does not expect, or a probe
reply's objects come out differently the two ways (its usage keys
reordered, say), every object is built the validated way.
`tests/test_result_objects.py` checks that both ways give equal objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel

from langchain_dfehub._chunk_objects import prototype_fits

_set = object.__setattr__
_new = object.__new__

_MESSAGE = AIMessage(content="")
_MESSAGE_STATE: dict[str, Any] = dict(_MESSAGE.__dict__)
_GENERATION_STATE: dict[str, Any] = dict(ChatGeneration(message=_MESSAGE).__dict__)
_RESULT_STATE: dict[str, Any] = dict(ChatResult(generations=[]).__dict__)
# The type of a message's `text` (langchain-core's `TextAccessor`, a `str`).
_TEXT = type(_MESSAGE.text)

# What validation records as set: every argument the callers pass. Each
# object gets its own copy (assigning to a field adds to it).
_MESSAGE_FIELDS_SET = frozenset(
    {
        "content",
        "additional_kwargs",
        "response_metadata",
        "id",
        "tool_calls",
        "invalid_tool_calls",
        "usage_metadata",
    }
)
_GENERATION_FIELDS_SET = frozenset({"message", "text", "generation_info"})
_RESULT_FIELDS_SET = frozenset({"generations", "llm_output"})


def _validated_reply_message(
    content: Any,
    additional_kwargs: dict[str, Any],
    response_metadata: dict[str, Any],
    usage_metadata: UsageMetadata | None,
    message_id: Any,
) -> AIMessage:
    return AIMessage(
        content=content,
        tool_calls=[],
        invalid_tool_calls=[],
        additional_kwargs=additional_kwargs,
        usage_metadata=usage_metadata,
        response_metadata=response_metadata,
        id=message_id,
    )


def _fast_reply_message(
    content: Any,
    additional_kwargs: dict[str, Any],
    response_metadata: dict[str, Any],
    usage_metadata: UsageMetadata | None,
    message_id: Any,
) -> AIMessage:
    if (
        type(content) is not str
        or (message_id is not None and type(message_id) is not str)
        or "tool_calls" in additional_kwargs  # the validator would parse them
    ):
        return _validated_reply_message(
            content, additional_kwargs, response_metadata, usage_metadata, message_id
        )
    state = _MESSAGE_STATE.copy()
    state["content"] = content
    state["additional_kwargs"] = additional_kwargs
    state["response_metadata"] = response_metadata
    state["id"] = message_id
    state["tool_calls"] = []
    state["invalid_tool_calls"] = []
    state["usage_metadata"] = usage_metadata
    message: AIMessage = _from_state(AIMessage, state, _MESSAGE_FIELDS_SET, {})
    return message


def _validated_reply_generation(
    message: AIMessage, generation_info: dict[str, Any]
) -> ChatGeneration:
    return ChatGeneration(message=message, generation_info=generation_info)


def _fast_reply_generation(
    message: AIMessage, generation_info: dict[str, Any]
) -> ChatGeneration:
    content = message.content
    if type(content) is not str:
        return _validated_reply_generation(message, generation_info)
    state = _GENERATION_STATE.copy()
    state["text"] = _TEXT(content)  # what the validator takes from `message.text`
    state["generation_info"] = generation_info
    state["message"] = message
    generation: ChatGeneration = _from_state(
        ChatGeneration, state, _GENERATION_FIELDS_SET, None
    )
    return generation


def _validated_reply_result(
    generations: list[ChatGeneration], llm_output: dict[str, Any]
) -> ChatResult:
    return ChatResult(generations=generations, llm_output=llm_output)


def _fast_reply_result(
    generations: list[ChatGeneration], llm_output: dict[str, Any]
) -> ChatResult:
    state = _RESULT_STATE.copy()
    state["generations"] = generations
    state["llm_output"] = llm_output
    result: ChatResult = _from_state(ChatResult, state, _RESULT_FIELDS_SET, None)
    return result


def _from_state(
    cls: type[Any],
    state: dict[str, Any],
    fields_set: Any,
    extra: dict[str, Any] | None,
) -> Any:
    """An instance of `cls` holding `state`, as pydantic's validation leaves one."""
    instance = _new(cls)
    _set(instance, "__dict__", state)
    _set(instance, "__pydantic_fields_set__", set(fields_set))
    _set(instance, "__pydantic_extra__", extra)
    _set(instance, "__pydantic_private__", None)
    return instance


def _items(value: Any) -> Any:
    """A dict's items with their types, nested dicts' too.

    Two dicts give equal items only with the same keys in the same order
    and values of the same types.
    """
    if isinstance(value, dict):
        return [(key, type(item), _items(item)) for key, item in value.items()]
    return value


def _same(fast: BaseModel, validated: BaseModel) -> bool:
    """Whether two objects hold the same state, as far as pydantic keeps it."""
    return (
        type(fast) is type(validated)
        and _items(fast.__dict__) == _items(validated.__dict__)
        and fast.__pydantic_fields_set__ == validated.__pydantic_fields_set__
        and fast.__pydantic_extra__ == validated.__pydantic_extra__
        and fast.__pydantic_private__ == validated.__pydantic_private__
    )


def _both_ways_agree() -> bool:
    """Whether a probe reply's objects come out the same both ways.

    The probe's usage has every detail `_messages.usage_from_dict` writes,
    in the order it writes them: validation would reorder them otherwise.
    """

    def message_arguments() -> tuple[Any, ...]:
        usage: UsageMetadata = {
            "input_tokens": 3,
            "output_tokens": 2,
            "total_tokens": 5,
            "input_token_details": {"audio": 1, "cache_read": 1},
            "output_token_details": {"audio": 1, "reasoning": 1},
        }
        return ("probe", {"refusal": "r"}, {"model_name": "m"}, usage, "id")

    fast = _fast_reply_message(*message_arguments())
    validated = _validated_reply_message(*message_arguments())
    fast_generation = _fast_reply_generation(fast, {"finish_reason": "stop"})
    validated_generation = _validated_reply_generation(
        validated, {"finish_reason": "stop"}
    )
    return (
        _same(fast, validated)
        and _same(fast_generation, validated_generation)
        and _same(
            _fast_reply_result([fast_generation], {"id": "id"}),
            _validated_reply_result([validated_generation], {"id": "id"}),
        )
    )


FAST = (
    prototype_fits(
        AIMessage,
        _MESSAGE_STATE,
        ("additional_kwargs", "response_metadata", "tool_calls", "invalid_tool_calls"),
    )
    and prototype_fits(ChatGeneration, _GENERATION_STATE, ())
    and prototype_fits(ChatResult, _RESULT_STATE, ("generations",))
    and issubclass(_TEXT, str)
    and _both_ways_agree()
)

reply_message: Callable[..., AIMessage]
"""`AIMessage(content=..., additional_kwargs=..., response_metadata=...,
usage_metadata=..., id=..., tool_calls=[], invalid_tool_calls=[])`: an
answer without tool calls, from these arguments in this order. The dicts it
is given become the message's (the caller builds them fresh); the usage
must be as `_messages.usage_from_dict` writes it."""
reply_generation: Callable[[AIMessage, dict[str, Any]], ChatGeneration]
"""`ChatGeneration(message=..., generation_info=...)`, owning the info dict."""
reply_result: Callable[[list[ChatGeneration], dict[str, Any]], ChatResult]
"""`ChatResult(generations=..., llm_output=...)`, owning the list and the dict."""
if FAST:
    reply_message, reply_generation = _fast_reply_message, _fast_reply_generation
    reply_result = _fast_reply_result
else:  # pragma: no cover - a langchain-core whose objects hold other state
    reply_message, reply_generation = (
        _validated_reply_message,
        _validated_reply_generation,
    )
    reply_result = _validated_reply_result
