"""A reply put into OpenAI's wire format: one JSON answer, or stream events.

The shapes copy OpenAI's chat-completions objects field for field, since the
emulator is only useful if a client that works against it works against the
real thing. Stream events are rendered from string templates, and the
answer's events only as they are sent (`LazyEvents`): a real server writes
each chunk as it generates it, and a 20,000-chunk answer rendered up front
would keep the client waiting for the first byte, which a benchmark would
charge to the client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from ._flavours import FLAVOURS, Flavour, timings
from ._replies import Reply

SYSTEM_FINGERPRINT = "fp_dfehub_emulator"
DONE_EVENT = b"data: [DONE]\n\n"
# The emulator is deterministic: the token it sends had probability 1, and
# every alternative probability 0, written as OpenAI writes "impossible".
CHOSEN_LOGPROB = 0.0
ALTERNATIVE_LOGPROB = -9999.0


@dataclass(frozen=True)
class Identity:
    """What names one answer: its id, creation time, model and tool-call ids."""

    completion_id: str
    created: int
    model: str
    call_id_prefix: str

    def call_id(self, index: int, choice: int = 0) -> str:
        """The id of the `index`-th tool call of one choice of the answer."""
        if choice:
            return f"{self.call_id_prefix}{choice}_{index}"
        return f"{self.call_id_prefix}{index}"


@dataclass(frozen=True)
class Sampling:
    """What the request asked of the answer's shape: choices and logprobs."""

    choices: int = 1
    logprobs: int | None = None
    """None: no logprobs; else how many `top_logprobs` per token."""


class LazyEvents(Sequence[bytes]):
    """Events each rendered when it is read: `render(item)` for each item.

    Iterated, it renders one event at a time, so the server can send the
    first events while the rest are not rendered yet.
    """

    __slots__ = ("_items", "_render")

    def __init__(self, items: Sequence[Any], render: Callable[[Any], bytes]) -> None:
        self._items = items
        self._render = render

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return [self._render(item) for item in self._items[index]]
        return self._render(self._items[index])

    def __iter__(self) -> Iterator[bytes]:
        return map(self._render, self._items)


@dataclass(frozen=True)
class StreamEvents:
    """An answer's stream, event by event, as bytes ready to send.

    `answer` holds one event per content piece or tool-call delta; faults
    count "chunks" in it.
    """

    role: bytes
    answer: Sequence[bytes]
    finish: bytes
    usage: bytes | None

    def ending(self) -> list[bytes]:
        """The events after the answer: finish reason, then usage if asked."""
        return [self.finish] if self.usage is None else [self.finish, self.usage]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def token_logprob(token: str, top: int) -> dict[str, Any]:
    """One entry of `logprobs.content`: the token and its `top` alternatives.

    The first alternative is the token itself; the others are `<altN>`.
    """
    alternatives = [token, *(f"<alt{rank}>" for rank in range(1, top))][:top]
    return {
        "token": token,
        "logprob": CHOSEN_LOGPROB,
        "bytes": list(token.encode()),
        "top_logprobs": [
            {
                "token": alternative,
                "logprob": CHOSEN_LOGPROB if rank == 0 else ALTERNATIVE_LOGPROB,
                "bytes": list(alternative.encode()),
            }
            for rank, alternative in enumerate(alternatives)
        ],
    }


def _logprobs(pieces: tuple[str, ...], top: int | None) -> dict[str, Any] | None:
    if top is None:
        return None
    content = [token_logprob(piece, top) for piece in pieces] if pieces else None
    return {"content": content, "refusal": None}


def usage_object(
    reply: Reply, flavour: Flavour = FLAVOURS["openai"], choices: int = 1
) -> dict[str, Any]:
    """The `usage` object the flavour's server reports for a reply.

    Completion (and reasoning) tokens count every choice; the prompt once.
    """
    return flavour.usage(
        reply.prompt_tokens,
        reply.completion_tokens * choices,
        len(reply.reasoning) * choices,
    )


def _service_tier(flavour: Flavour) -> str:
    if flavour.service_tier is None:
        return ""
    return f'"service_tier":{_dumps(flavour.service_tier)},'


def render_completion(
    reply: Reply,
    identity: Identity,
    flavour: Flavour = FLAVOURS["openai"],
    sampling: Sampling = Sampling(),
) -> bytes:
    """The `chat.completion` object for a non-streaming request.

    `sampling.choices` copies of the reply (OpenAI's `n`), with
    `logprobs.content` when logprobs were asked for.
    """
    body: dict[str, Any] = {
        "id": identity.completion_id,
        "object": "chat.completion",
        "created": identity.created,
        "model": identity.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if flavour.service_tier is not None:
        body["service_tier"] = flavour.service_tier
    body["choices"] = [
        {
            "index": choice,
            "message": _message(reply, identity, flavour, choice),
            "logprobs": _logprobs(reply.pieces, sampling.logprobs),
            "finish_reason": reply.finish_reason,
        }
        for choice in range(sampling.choices)
    ]
    body["usage"] = usage_object(reply, flavour, sampling.choices)
    if flavour.timings:
        body["timings"] = timings(reply.prompt_tokens, reply.completion_tokens)
    return _dumps(body).encode()


def _message(
    reply: Reply, identity: Identity, flavour: Flavour, choice: int
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if reply.tool_calls else reply.content,
        "refusal": None,
    }
    if reply.reasoning and flavour.reasoning_field:
        message[flavour.reasoning_field] = "".join(reply.reasoning)
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": identity.call_id(index, choice),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    return message


def render_stream(
    reply: Reply,
    identity: Identity,
    *,
    include_usage: bool,
    flavour: Flavour = FLAVOURS["openai"],
    sampling: Sampling = Sampling(),
) -> StreamEvents:
    """The `chat.completion.chunk` events of a streaming answer.

    With `include_usage`, every chunk carries `"usage": null` and a last chunk
    with no choices carries the usage, as OpenAI does. Reasoning pieces come
    first, under the flavour's field; a flavour with `timings` puts them on
    the last event. With several choices, each chunk carries one choice and
    the choices' chunks take turns, as OpenAI interleaves them; all finish
    chunks come after all answer chunks.
    """
    head = (
        f'data: {{"id":{_dumps(identity.completion_id)},'
        f'"object":"chat.completion.chunk","created":{identity.created},'
        f'"model":{_dumps(identity.model)},'
        f'"system_fingerprint":"{SYSTEM_FINGERPRINT}",{_service_tier(flavour)}'
    )
    usage_tail = ',"usage":null' if include_usage else ""
    # The last event gets llama.cpp's `timings` before its closing brace.
    timings_tail = ""
    if flavour.timings:
        measured = timings(reply.prompt_tokens, reply.completion_tokens)
        timings_tail = f',"timings":{_dumps(measured)}'
    per_choice = [
        _choice_events(reply, identity, flavour, head, usage_tail, choice, sampling)
        for choice in range(sampling.choices)
    ]
    answer: Sequence[bytes] = per_choice[0][1]
    if len(per_choice) > 1:
        mixed = [role for role, _, _ in per_choice[1:]]
        longest = max(len(events) for _, events, _ in per_choice)
        for position in range(longest):
            mixed.extend(
                events[position]
                for _, events, _ in per_choice
                if position < len(events)
            )
        answer = mixed
    finishes = [finish for _, _, finish in per_choice]
    if timings_tail and not include_usage:
        closing = b"}\n\n"
        finishes[-1] = finishes[-1][: -len(closing)] + f"{timings_tail}}}\n\n".encode()
    usage = None
    if include_usage:
        measured_usage = usage_object(reply, flavour, sampling.choices)
        usage = (
            head + f'"choices":[],"usage":{_dumps(measured_usage)}{timings_tail}}}\n\n'
        ).encode()
    return StreamEvents(
        role=per_choice[0][0],
        answer=answer,
        finish=b"".join(finishes),
        usage=usage,
    )


def _choice_events(
    reply: Reply,
    identity: Identity,
    flavour: Flavour,
    head: str,
    usage_tail: str,
    choice: int,
    sampling: Sampling,
) -> tuple[bytes, LazyEvents, bytes]:
    """One choice's role event, answer events (rendered when sent), finish event."""
    open_delta = head + f'"choices":[{{"index":{choice},"delta":'
    close_delta = ',"logprobs":null,"finish_reason":null}]' + usage_tail + "}\n\n"

    def event(delta: str, logprobs: str = "null") -> bytes:
        return (
            f'{open_delta}{delta},"logprobs":{logprobs},"finish_reason":null}}]'
            f"{usage_tail}}}\n\n"
        ).encode()

    # What each answer event says, as (render, argument): rendered when sent.
    answer: list[tuple[Callable[[Any], bytes], Any]] = []
    if reply.reasoning and flavour.reasoning_field:
        field = _dumps(flavour.reasoning_field)

        def reasoning(piece: str) -> bytes:
            return event(f"{{{field}:{_dumps(piece)}}}")

        answer += [(reasoning, piece) for piece in reply.reasoning]

    def content(piece: str) -> bytes:
        if sampling.logprobs is None:
            return event(f'{{"content":{_dumps(piece)}}}')
        return event(
            f'{{"content":{_dumps(piece)}}}',
            _dumps(_logprobs((piece,), sampling.logprobs)),
        )

    answer += [(content, piece) for piece in reply.pieces]
    for index, call in enumerate(reply.tool_calls):
        start = {
            "index": index,
            "id": identity.call_id(index, choice),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        answer.append((event, f'{{"tool_calls":[{_dumps(start)}]}}'))
        prefix = f'{{"tool_calls":[{{"index":{index},"function":{{"arguments":'
        answer.extend((event, prefix + _dumps(piece) + "}}]}") for piece in call.pieces)
    finish = (
        f'{open_delta}{{}},"logprobs":null,'
        f'"finish_reason":"{reply.finish_reason}"}}]{usage_tail}}}\n\n'
    ).encode()
    role = (open_delta + '{"role":"assistant","content":""}' + close_delta).encode()
    return role, LazyEvents(answer, _apply), finish


def _apply(step: tuple[Callable[[Any], bytes], Any]) -> bytes:
    render, argument = step
    return render(argument)
