"""Tools and structured output in the chat-completions request format.

`bind_tools` and `with_structured_output` on the model only wire LangChain's
surface; the translation lives here: tools to OpenAI function specs (with
LangChain's own converter), `tool_choice` spellings to the wire's, and a schema
to the request fields and the output parser of each structured-output method.

LangChain's converters and parsers are imported inside the functions: a plain
chat call never needs them, and importing them costs more than the rest of
this package together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

from langchain_core.runnables import Runnable

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]
ToolLike = Union[dict[str, Any], type, Callable[..., Any], "BaseTool"]

_PASS_THROUGH_CHOICES = frozenset({"auto", "none", "required"})


def tools_to_wire(
    tools: Sequence[ToolLike], *, strict: bool | None = None
) -> list[dict[str, Any]]:
    """Convert tools of any LangChain form to OpenAI function specs."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    return [convert_to_openai_tool(tool, strict=strict) for tool in tools]


def tool_choice_to_wire(
    tool_choice: dict[str, Any] | str | bool | None, tools: list[dict[str, Any]]
) -> dict[str, Any] | str | None:
    """Translate a `tool_choice` spelling to the wire's.

    `"any"` and `True` mean "call some tool" (`"required"`; with one tool, that
    tool); a tool's name forces that tool; a dict is sent as given.

    Raises:
        ValueError: when the choice names a tool that was not bound.
    """
    if tool_choice is None or tool_choice is False:
        return None
    names = [tool["function"]["name"] for tool in tools]
    if tool_choice is True:
        if len(names) == 1:
            return _force(names[0])
        return "required"
    if isinstance(tool_choice, dict):
        return tool_choice
    if tool_choice == "any":
        return "required"
    if tool_choice in _PASS_THROUGH_CHOICES:
        return tool_choice
    if tool_choice in names:
        return _force(tool_choice)
    msg = (
        f"tool_choice={tool_choice!r} names no bound tool; use 'auto', 'none',"
        f" 'required'/'any', or one of {names}."
    )
    raise ValueError(msg)


def _force(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def is_pydantic_class(schema: Any) -> bool:
    """Whether the schema is a pydantic model class (v1 or v2)."""
    from langchain_core.utils.pydantic import is_basemodel_subclass

    return isinstance(schema, type) and is_basemodel_subclass(schema)


def structured_output_parts(
    schema: dict[str, Any] | type,
    method: StructuredMethod,
    strict: bool | None,
) -> tuple[dict[str, Any], Runnable[Any, Any]]:
    """The model kwargs to bind and the parser to apply for one method.

    Raises:
        ValueError: for an unknown method.
    """
    from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
    from langchain_core.utils.function_calling import convert_to_openai_tool

    pydantic = is_pydantic_class(schema)
    parser: Runnable[Any, Any]
    if method == "function_calling":
        from langchain_dfehub._forced_tool import (
            ForcedJsonToolParser,
            ForcedPydanticToolParser,
        )

        tool = convert_to_openai_tool(schema, strict=strict)
        name = tool["function"]["name"]
        if pydantic:
            parser = ForcedPydanticToolParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
        else:
            parser = ForcedJsonToolParser(key_name=name, first_tool_only=True)
        return {"tools": [tool], "tool_choice": _force(name)}, parser
    if method in ("json_schema", "json_mode"):
        if pydantic:
            parser = PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
        else:
            parser = JsonOutputParser()
        if method == "json_mode":
            return {"response_format": {"type": "json_object"}}, parser
        function = convert_to_openai_tool(schema)["function"]
        json_schema: dict[str, Any] = {
            "name": function["name"],
            "schema": function.get("parameters", {}),
        }
        if function.get("description"):
            json_schema["description"] = function["description"]
        if strict is not None:
            json_schema["strict"] = strict
        return {
            "response_format": {"type": "json_schema", "json_schema": json_schema}
        }, parser
    msg = (
        f"Unknown structured-output method {method!r}; use 'function_calling',"
        " 'json_schema' or 'json_mode'."
    )
    raise ValueError(msg)
