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

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
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
    _raise_missing(generation.text)


def _raise_missing(text: str) -> None:
    text = text.strip()
    excerpt = f" It answered: {text[:120]!r}." if text else ""
    msg = (
        "The model answered without calling the tool that"
        " with_structured_output(method='function_calling') forces; the server"
        " may ignore a forced tool_choice (llama.cpp does)."
        f"{excerpt} Use method='json_schema', which such servers enforce."
    )
    raise OutputParserException(msg, llm_output=text)


class _Watch:
    """Sees a stream pass: whether a tool call came, and the text if not."""

    def __init__(self) -> None:
        self.called = False
        self.text: list[str] = []

    def see(self, chunk: str | BaseMessage) -> str | BaseMessage:
        if (isinstance(chunk, AIMessageChunk) and chunk.tool_call_chunks) or (
            isinstance(chunk, AIMessage) and chunk.tool_calls
        ):
            self.called = True
        elif isinstance(chunk, BaseMessage):
            self.text.append(chunk.text)
        return chunk

    def check(self) -> None:
        if not self.called:
            _raise_missing("".join(self.text))


class _RequireCall:
    """Mixed into a tool parser: a missing forced call raises, also in streams.

    LangChain's streaming parsers only ever parse partially, so the stream
    methods check the call themselves once the input has ended.
    """

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        """Parse the forced call's arguments; raise if there is no call."""
        _check_called(result, partial)
        return super().parse_result(result, partial=partial)  # type: ignore[misc]

    def _transform(self, input: Iterator[str | BaseMessage]) -> Iterator[Any]:
        watch = _Watch()
        yield from super()._transform(map(watch.see, input))  # type: ignore[misc]
        watch.check()

    async def _atransform(
        self, input: AsyncIterator[str | BaseMessage]
    ) -> AsyncIterator[Any]:
        watch = _Watch()

        async def seen() -> AsyncIterator[str | BaseMessage]:
            async for chunk in input:
                yield watch.see(chunk)

        async for parsed in super()._atransform(seen()):  # type: ignore[misc]
            yield parsed
        watch.check()


class ForcedJsonToolParser(_RequireCall, JsonOutputKeyToolsParser):
    """`JsonOutputKeyToolsParser` that raises when the forced call is missing."""


class ForcedPydanticToolParser(_RequireCall, PydanticToolsParser):
    """`PydanticToolsParser` that raises when the forced call is missing."""
