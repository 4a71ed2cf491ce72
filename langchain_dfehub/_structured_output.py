"""The runnable `with_structured_output` returns: the bound model and its parser.

Which request fields each method sends, and how its answer is parsed, is
`_tools`' business; this module puts the pieces together as `ChatOpenAI`
does: the parser checks for refusals, `tools=` lets the model call a tool
instead of answering, and `include_raw=True` keeps the raw message and any
parsing error instead of raising.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough

from langchain_dfehub._refusals import refusal_checked
from langchain_dfehub._tools import (
    StructuredMethod,
    ToolLike,
    parse_unless_tool_call,
    structured_output_parts,
    tools_to_wire,
)


def structured_output(
    model: BaseChatModel,
    schema: dict[str, Any] | type,
    method: StructuredMethod,
    *,
    include_raw: bool,
    strict: bool | None,
    tools: Sequence[ToolLike] | None,
) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
    """`model` bound for `method`, piped into the parser of `schema`."""
    bound_kwargs, parser = structured_output_parts(schema, method, strict)
    if tools:
        if method != "json_schema":
            msg = (
                f"with_structured_output(tools=...) needs method='json_schema',"
                f" not {method!r}: the other methods use tools themselves."
            )
            raise ValueError(msg)
        bound_kwargs["tools"] = tools_to_wire(tools, strict=strict)
        parser = parse_unless_tool_call(parser)
    parser = refusal_checked(parser)
    structured_format = {
        "kwargs": {"method": method, "strict": strict},
        "schema": schema,
    }
    bound = model.bind(ls_structured_output_format=structured_format, **bound_kwargs)
    if not include_raw:
        return bound | parser
    parse = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    keep_error = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | parse.with_fallbacks(
        [keep_error], exception_key="parsing_error"
    )
