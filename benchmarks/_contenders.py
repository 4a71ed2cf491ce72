"""The three contenders and the texts they are asked to produce.

Both HTTP models are configured to do the same work against the same server:
same model name, a key (so both send `Authorization`), and `stream_usage=True`
for both (the usage chunk is requested and parsed by each). The floor is a
`BaseChatModel` with no I/O at all: what any LangChain chat model pays per
chunk just for going through `BaseChatModel.stream`, or `astream` through its
native `_astream` (not LangChain's fallback that runs `_stream` in a thread).

The emulator echoes the last user message one word per chunk, so a prompt of
N distinct words is an N-chunk answer whose exact text is known in advance,
and every result can be checked, not just timed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr, SecretStr

DFEHUB = "ChatDfeHub"
OPENAI = "ChatOpenAI"
FLOOR = "floor"

MODEL_NAME = "gpt-3.5-turbo"
API_KEY = SecretStr("unused")
# Both or neither: the same request and the same extra chunk for both models.
STREAM_USAGE = True


def dfehub_model(base_url: str) -> BaseChatModel:
    """ChatDfeHub against `base_url`, with its defaults otherwise."""
    from langchain_dfehub import ChatDfeHub

    return ChatDfeHub(
        base_url=base_url,
        api_key=API_KEY,
        model=MODEL_NAME,
        stream_usage=STREAM_USAGE,
    )


def openai_model(base_url: str) -> BaseChatModel:
    """`ChatOpenAI(base_url=...)`: what a user would do without this package."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=base_url,
        api_key=API_KEY,
        model=MODEL_NAME,
        stream_usage=STREAM_USAGE,
    )


MODEL_FACTORIES = {DFEHUB: dfehub_model, OPENAI: openai_model}


class FloorChatModel(BaseChatModel):
    """Yields chunks built in advance: LangChain's own per-chunk cost, no I/O.

    `load` builds the chunks before the timer starts; one `stream` call then
    consumes them through the same public `stream` the HTTP models use.

    With `prebuilt=False` the chunks are built inside `_stream` instead, as
    any real model must: a second reference that adds the cost of creating
    two pydantic objects per chunk, and of the garbage collections those
    allocations trigger, which the pre-built floor never pays.

    `_astream` is native, the way an async model's is: `astream` then costs
    what LangChain's async path costs, with no thread in between.
    """

    _pending: list[ChatGenerationChunk] = PrivateAttr(default_factory=list)
    _pieces: list[str] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "benchmark-floor"

    def load(self, pieces: Sequence[str], *, prebuilt: bool = True) -> None:
        """Set what the next `stream` call yields, one chunk per piece."""
        if prebuilt:
            self._pending = [
                ChatGenerationChunk(message=AIMessageChunk(content=piece))
                for piece in pieces
            ]
            self._pieces = []
        else:
            self._pending = []
            self._pieces = list(pieces)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        msg = "The floor model only streams."
        raise NotImplementedError(msg)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        chunks, self._pending = self._pending, []
        pieces, self._pieces = self._pieces, []
        yield from chunks
        for piece in pieces:
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        chunks, self._pending = self._pending, []
        pieces, self._pieces = self._pieces, []
        for chunk in chunks:
            yield chunk
        for piece in pieces:
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def answer_pieces(count: int, tag: str) -> list[str]:
    """`count` distinct words, each with the space after it but the last.

    These are the emulator's chunks for the prompt `"".join(pieces)`; the tag
    makes every word of every call unique, so a lost, repeated, reordered or
    foreign piece changes the text.
    """
    pieces = [f"{tag}{index} " for index in range(count)]
    pieces[-1] = pieces[-1].rstrip()
    return pieces


def answer_text(count: int, tag: str) -> str:
    """The prompt that makes a `count`-chunk answer, which is also the answer."""
    return "".join(answer_pieces(count, tag))


class WrongOutputError(RuntimeError):
    """A contender's answer differs from the expected text: its time is void."""


def check_answer(
    who: str, text: str, chunks: int, expected: str, expected_chunks: int
) -> None:
    """Raise `WrongOutputError` unless the answer is whole, in order, and in pieces.

    A benchmark that does not check what it received can report the speed of
    losing data.
    """
    if text != expected:
        at = next(
            (i for i, (a, b) in enumerate(zip(text, expected, strict=False)) if a != b),
            min(len(text), len(expected)),
        )
        msg = (
            f"{who}: answer differs from the expected text at character {at} "
            f"(got {len(text)} characters, expected {len(expected)}): "
            f"got {text[at : at + 40]!r}, expected {expected[at : at + 40]!r}."
        )
        raise WrongOutputError(msg)
    if chunks != expected_chunks:
        msg = f"{who}: {chunks} chunks with text, expected {expected_chunks}."
        raise WrongOutputError(msg)
