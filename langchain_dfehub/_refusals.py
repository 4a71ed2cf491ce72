"""Refusals: the server's `refusal` field, seen the way LangChain looks for it.

OpenAI's Chat Completions (and servers copying it) answer a request the
model declines with a successful reply whose message has `refusal` text and
no content; streamed, the text comes in `delta.refusal` pieces. The field is
kept in `additional_kwargs["refusal"]`, where `ChatOpenAI` keeps it, and our
block translator (`_content_blocks`) turns it into LangChain's standard
`refusal` block, which `ModelRefusalMiddleware` reads.

`with_structured_output` needs the content the model withheld, so its parser
is preceded by a check that raises `DfeHubRefusalError` (a langchain-core
`ModelRefusalError`) instead of a parsing error; a reply stopped by a content
filter (`finish_reason: "content_filter"`) is a refusal too, as `ChatOpenAI`
treats it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableGenerator

from langchain_dfehub._errors import DfeHubRefusalError

REFUSAL_KEY = "refusal"


def raise_on_refusal(message: BaseMessage) -> None:
    """Raise `DfeHubRefusalError` when the message is a refusal.

    Raises:
        DfeHubRefusalError: for a refusal block or a content-filter stop.
    """
    for block in message.content_blocks:
        if block["type"] == "refusal":
            raise DfeHubRefusalError.from_refusal(block, raw_message=message)
    if message.response_metadata.get("finish_reason") == "content_filter":
        msg = (
            "Model output was stopped by the server's content filter"
            " (finish_reason='content_filter'); rephrase the request."
        )
        raise DfeHubRefusalError(msg, raw_message=message)


def _check(messages: Iterator[BaseMessage]) -> Iterator[BaseMessage]:
    for message in messages:
        raise_on_refusal(message)
        yield message


async def _acheck(messages: AsyncIterator[BaseMessage]) -> AsyncIterator[BaseMessage]:
    async for message in messages:
        raise_on_refusal(message)
        yield message


def refusal_checked(parser: Runnable[Any, Any]) -> Runnable[Any, Any]:
    """`parser`, after a check per message (or chunk, when streamed) for refusals."""
    return RunnableGenerator(_check, _acheck) | parser
