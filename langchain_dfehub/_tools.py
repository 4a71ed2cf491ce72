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

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableLambda

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]
ToolLike = Union[dict[str, Any], type, Callable[..., Any], "BaseTool"]

_PASS_THROUGH_CHOICES = frozenset({"auto", "none", "required"})


def default_method(profile: Mapping[str, Any] | None) -> StructuredMethod:
    """The structured-output method to use when the caller names none.

    `json_schema` (a `response_format` the server enforces while decoding)
    unless the profile says the model has no native structured output but
    does call tools: then a forced tool call, which such a server honours
    (DeepSeek's API refuses `json_schema` with a 400; OpenAI's gpt-3.5-turbo
    and gpt-4 predate it). With no profile, `json_schema`: what llama.cpp,
    vLLM, Ollama and LM Studio enforce for any model they serve.
    """
    if (
        profile is not None
        and profile.get("structured_output") is False
        and profile.get("tool_calling") is not False
    ):
        return "function_calling"
    return "json_schema"


def tools_to_wire(
    tools: Sequence[ToolLike], *, strict: bool | None = None
) -> list[dict[str, Any]]:
    """Convert tools of any LangChain form to OpenAI function specs.

    With `strict=True` each tool's parameters are made strict-mode compliant
    by `strict_json_schema`.
    """
    from langchain_core.utils.function_calling import convert_to_openai_tool

    if strict:
        return [_strict_tool(convert_to_openai_tool(tool)) for tool in tools]
    return [convert_to_openai_tool(tool, strict=strict) for tool in tools]


def _strict_tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = dict(tool["function"])
    function["parameters"] = strict_json_schema(function.get("parameters") or {})
    function["strict"] = True
    return {**tool, "function": function}


def strict_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the schema that OpenAI's strict mode accepts.

    Strict mode wants every property listed in `required` and
    `additionalProperties: false` on every object, at every level. A property
    that was optional (not required, and with no default other than null)
    becomes nullable instead, so the model can still leave it out by sending
    `null`; a property with a default keeps its type, and the model fills it.
    A `"default": null` is dropped: it says nothing nullability does not.
    """
    result = copy.deepcopy(dict(schema))
    _make_strict(result)
    return result


def _make_strict(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _make_strict(item)
        return
    if not isinstance(node, dict):
        return
    for key in ("$defs", "definitions"):
        if isinstance(node.get(key), dict):
            _make_strict(list(node[key].values()))
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = set(node.get("required") or ())
        for name, sub in properties.items():
            _make_strict(sub)
            optional = name not in required and isinstance(sub, dict)
            if optional and sub.get("default") is None:
                properties[name] = _nullable(sub)
        node["required"] = list(properties)
    if node.get("type") == "object" or isinstance(properties, dict):
        node["additionalProperties"] = False
    for key in ("anyOf", "oneOf", "allOf", "prefixItems", "items"):
        _make_strict(node.get(key))
    if "default" in node and node["default"] is None:
        del node["default"]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, also accepting null."""
    if _accepts_null(schema):
        return schema
    kind = schema.get("type")
    if isinstance(kind, (str, list)):
        kinds = [kind] if isinstance(kind, str) else list(kind)
        result = {**schema, "type": [*kinds, "null"]}
        if isinstance(schema.get("enum"), list):
            result["enum"] = [*schema["enum"], None]
        return result
    if isinstance(schema.get("anyOf"), list):
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    outer: dict[str, Any] = {
        key: schema[key] for key in ("title", "description") if key in schema
    }
    inner = {key: value for key, value in schema.items() if key not in outer}
    return {**outer, "anyOf": [inner, {"type": "null"}]}


def _accepts_null(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    branches = [*(schema.get("anyOf") or ()), *(schema.get("oneOf") or ())]
    return any(isinstance(b, Mapping) and _accepts_null(b) for b in branches)


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


def tool_fields(
    tools: Sequence[ToolLike],
    tool_choice: dict[str, Any] | str | bool | None,
    strict: bool | None,
    parallel_tool_calls: bool | None,
    response_format: dict[str, Any] | type | None,
) -> dict[str, Any]:
    """The request fields that `bind_tools` binds, in the wire format."""
    fields: dict[str, Any] = {}
    if response_format is not None:
        if strict is None:
            strict = True  # OpenAI requires strict tools beside a schema
        fields["response_format"] = response_format_to_wire(response_format, strict)
    wire_tools = tools_to_wire(tools, strict=strict)
    choice = tool_choice_to_wire(tool_choice, wire_tools)
    if choice is not None:
        fields["tool_choice"] = choice
    if parallel_tool_calls is not None:
        fields["parallel_tool_calls"] = parallel_tool_calls
    if wire_tools:  # OpenAI refuses an empty `tools` list
        fields["tools"] = wire_tools
    return fields


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

    pydantic = is_pydantic_class(schema)
    parser: Runnable[Any, Any]
    if method == "function_calling":
        from langchain_dfehub._forced_tool import (
            ForcedJsonToolParser,
            ForcedPydanticToolParser,
        )

        [tool] = tools_to_wire([schema], strict=strict)
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
        return {"response_format": response_format_to_wire(schema, strict)}, parser
    msg = (
        f"Unknown structured-output method {method!r}; use 'function_calling',"
        " 'json_schema' or 'json_mode'."
    )
    raise ValueError(msg)


def response_format_to_wire(
    response_format: dict[str, Any] | type, strict: bool | None = None
) -> dict[str, Any]:
    """A `response_format` request field for a schema of any LangChain form.

    Takes a pydantic class, a TypedDict, a JSON schema or an OpenAI function
    dict (sent as `json_schema`), a `{"name", "schema"}` dict, or a
    `response_format` dict as the wire has it, such as the one LangChain's
    agents pass (a `strict` in such a dict wins over the `strict` given here).
    """
    from langchain_core.utils.function_calling import convert_to_openai_tool

    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind in ("json_object", "text"):
            return dict(response_format)
        if kind == "json_schema" and isinstance(
            response_format.get("json_schema"), dict
        ):
            spec = dict(response_format["json_schema"])
            spec.setdefault("name", "response")
            return _json_schema_format(spec, spec.get("strict", strict))
        if "name" in response_format and "schema" in response_format:
            spec = dict(response_format)
            return _json_schema_format(spec, spec.get("strict", strict))
    function = convert_to_openai_tool(response_format)["function"]
    spec = {"name": function["name"], "schema": function.get("parameters", {})}
    if function.get("description"):
        spec["description"] = function["description"]
    return _json_schema_format(spec, strict)


def _json_schema_format(spec: dict[str, Any], strict: bool | None) -> dict[str, Any]:
    if strict:
        spec["schema"] = strict_json_schema(spec.get("schema") or {})
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def parse_unless_tool_call(parser: Runnable[Any, Any]) -> Runnable[AIMessage, Any]:
    """Parse an answer, or give None when the model called a tool instead.

    For structured output with tools: the model either calls one of the
    tools (the caller runs it and asks again) or answers in the schema.
    """

    def parse(message: AIMessage) -> Any:
        if message.tool_calls:
            return None
        return parser.invoke(message)

    async def aparse(message: AIMessage) -> Any:
        if message.tool_calls:
            return None
        return await parser.ainvoke(message)

    return RunnableLambda(parse, afunc=aparse)
