"""Parsers for `method="function_calling"` that refuse an answer without the call.

The method forces a tool with a `tool_choice` object. Some servers ignore that
object (llama.cpp logs "Wrong type supplied for parameter 'tool_choice'" and
falls back to `auto`), so the model may answer in prose; LangChain's tool
parsers then return `None`, and the caller gets `None` as if it were a result.
These parsers raise instead, naming the method that works on such servers.
Imported only by `with_structured_output`, so plain chat calls skip the
parser modules.
"""

from __future__ import annotations

from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, Generation


def _check_called(result: list[Generation], partial: bool) -> None:
    if partial or not result:
        return
    generation = result[0]
    if not isinstance(generation, ChatGeneration):
        return
    message = generation.message
    if isinstance(message, AIMessage) and (
        message.tool_calls or message.invalid_tool_calls
    ):
        return
    text = generation.text.strip()
    excerpt = f" It answered: {text[:120]!r}." if text else ""
    msg = (
        "The model answered without calling the tool that"
        " with_structured_output(method='function_calling') forces; the server"
        " may ignore a forced tool_choice (llama.cpp does)."
        f"{excerpt} Use method='json_schema', which such servers enforce."
    )
    raise OutputParserException(msg, llm_output=text)


class ForcedJsonToolParser(JsonOutputKeyToolsParser):
    """`JsonOutputKeyToolsParser` that raises when the forced call is missing."""

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        """Parse the forced call's arguments; raise if there is no call."""
        _check_called(result, partial)
        return super().parse_result(result, partial=partial)


class ForcedPydanticToolParser(PydanticToolsParser):
    """`PydanticToolsParser` that raises when the forced call is missing."""

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        """Parse the forced call into the schema; raise if there is no call."""
        _check_called(result, partial)
        return super().parse_result(result, partial=partial)
