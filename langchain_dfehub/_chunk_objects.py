"""LangChain's chunk objects for a stream, built without validating them again.

A streamed answer is made of thousands of chunks, and building each
`AIMessageChunk` and `ChatGenerationChunk` through pydantic's validation
(with langchain-core's validators, which look for tool calls to convert)
costs more than decoding the chunk did. What we put in them has already
been checked (`_reply_shape`): the content is a string, the metadata plain
dicts. So the common chunks are made as pydantic's `model_construct` makes
an object (its own is slower than validation: it inspects every default
factory on each call), from the state a validated prototype has, with fresh
empty lists and dicts for each object so that no two chunks share one.

Only shapes for which langchain-core's validators change nothing are built
this way: a message with string content and no tool calls, and a generation
of such a message. If an installed langchain-core gives the prototypes a
state this module does not expect (a new field holding a container, a
post-init hook, private attributes), every chunk is built the validated way
instead. `tests/test_chunk_objects.py` checks that both ways give equal objects.
`_result_objects` does the same for a whole reply's objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from pydantic import BaseModel

_set = object.__setattr__
_new = object.__new__

# What the validated prototypes hold, and which of their values are
# containers every object must get a fresh copy of.
_MESSAGE_STATE: dict[str, Any] = dict(AIMessageChunk(content="").__dict__)
_MESSAGE_LISTS = ("tool_calls", "invalid_tool_calls", "tool_call_chunks")
_MESSAGE_DICTS = ("additional_kwargs", "response_metadata")
_GENERATION_STATE: dict[str, Any] = dict(
    ChatGenerationChunk(message=AIMessageChunk(content="")).__dict__
)
# The type of a message's `text` (langchain-core's `TextAccessor`, a `str`).
_TEXT = type(AIMessageChunk(content="").text)


def prototype_fits(
    model: type[BaseModel], state: dict[str, Any], fresh: tuple[str, ...]
) -> bool:
    """Whether the prototype's state is what the fast constructors assume.

    That is: it holds every field and nothing else, its only containers are
    the `fresh` ones (empty, so each object gets new ones), and the model has
    no post-init hook or private attributes to set up.
    """
    containers = {key for key, value in state.items() if isinstance(value, list | dict)}
    return (
        set(state) == set(model.model_fields)
        and containers == set(fresh)
        and not any(state[key] for key in fresh)  # every container empty
        and model.__pydantic_post_init__ is None
        and not model.__private_attributes__
    )


def _text_is_plain() -> bool:
    """Whether a message's `text` is its string content, as `_TEXT` makes it."""
    probe = AIMessageChunk(content="probe")
    return (
        type(probe.text) is _TEXT and probe.text == "probe" and issubclass(_TEXT, str)
    )


FAST = (
    prototype_fits(AIMessageChunk, _MESSAGE_STATE, (*_MESSAGE_LISTS, *_MESSAGE_DICTS))
    and prototype_fits(ChatGenerationChunk, _GENERATION_STATE, ())
    and _text_is_plain()
)


def _fast_text_message(
    content: str, response_metadata: dict[str, Any] | None = None
) -> AIMessageChunk:
    state = _MESSAGE_STATE.copy()
    state["content"] = content
    state["additional_kwargs"] = {}
    state["tool_calls"] = []
    state["invalid_tool_calls"] = []
    state["tool_call_chunks"] = []
    if response_metadata is None:
        state["response_metadata"] = {}
        fields_set = {"content"}
    else:
        state["response_metadata"] = response_metadata
        fields_set = {"content", "response_metadata"}
    message: AIMessageChunk = _new(AIMessageChunk)
    _set(message, "__dict__", state)
    _set(message, "__pydantic_fields_set__", fields_set)
    _set(message, "__pydantic_extra__", {})
    _set(message, "__pydantic_private__", None)
    return message


def _validated_text_message(
    content: str, response_metadata: dict[str, Any] | None = None
) -> AIMessageChunk:
    if response_metadata is None:
        return AIMessageChunk(content=content)
    return AIMessageChunk(content=content, response_metadata=response_metadata)


def _fast_generation(
    message: AIMessageChunk, generation_info: dict[str, Any] | None = None
) -> ChatGenerationChunk:
    if type(message.content) is not str:
        return _validated_generation(message, generation_info)
    state = _GENERATION_STATE.copy()
    state["message"] = message
    state["text"] = message.text  # as the validator sets it
    if generation_info is None:
        fields_set = {"message", "text"}
    else:
        state["generation_info"] = generation_info
        fields_set = {"message", "text", "generation_info"}
    generation: ChatGenerationChunk = _new(ChatGenerationChunk)
    _set(generation, "__dict__", state)
    _set(generation, "__pydantic_fields_set__", fields_set)
    _set(generation, "__pydantic_extra__", None)
    _set(generation, "__pydantic_private__", None)
    return generation


def _fast_text_generation(content: str) -> ChatGenerationChunk:
    state = _GENERATION_STATE.copy()
    state["message"] = _fast_text_message(content)
    state["text"] = _TEXT(content)  # what `message.text` is for a string
    generation: ChatGenerationChunk = _new(ChatGenerationChunk)
    _set(generation, "__dict__", state)
    _set(generation, "__pydantic_fields_set__", {"message", "text"})
    _set(generation, "__pydantic_extra__", None)
    _set(generation, "__pydantic_private__", None)
    return generation


def _validated_text_generation(content: str) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(content=content))


def _validated_generation(
    message: AIMessageChunk, generation_info: dict[str, Any] | None = None
) -> ChatGenerationChunk:
    if generation_info is None:
        return ChatGenerationChunk(message=message)
    return ChatGenerationChunk(message=message, generation_info=generation_info)


text_message: Callable[..., AIMessageChunk]
"""`AIMessageChunk(content=..., response_metadata=...)`, for string content only."""
generation: Callable[..., ChatGenerationChunk]
"""`ChatGenerationChunk(message=..., generation_info=...)`."""
text_generation: Callable[[str], ChatGenerationChunk]
"""`ChatGenerationChunk(message=AIMessageChunk(content=...))`: a piece of text."""
if FAST:
    text_message, generation = _fast_text_message, _fast_generation
    text_generation = _fast_text_generation
else:  # pragma: no cover - a langchain-core whose objects hold other state
    text_message, generation = _validated_text_message, _validated_generation
    text_generation = _validated_text_generation
