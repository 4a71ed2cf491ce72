"""A reply put into OpenAI's wire format: one JSON answer, or stream events.

The shapes copy OpenAI's chat-completions objects field for field, since the
emulator is only useful if a client that works against it works against the
real thing. Stream events are rendered up front from string templates (not
one `json.dumps` per chunk) so that a 20,000-chunk answer costs the server
next to nothing and a benchmark measures the client, not the emulator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._flavours import FLAVOURS, Flavour, timings
from ._replies import Reply

SYSTEM_FINGERPRINT = "fp_dfehub_emulator"
DONE_EVENT = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Identity:
    """What names one answer: its id, creation time, model and tool-call ids."""

    completion_id: str
    created: int
    model: str
    call_id_prefix: str

    def call_id(self, index: int) -> str:
        """The id of the answer's `index`-th tool call."""
        return f"{self.call_id_prefix}{index}"


@dataclass(frozen=True)
class StreamEvents:
    """An answer's stream, event by event, as bytes ready to send.

    `answer` holds one event per content piece or tool-call delta; faults
    count "chunks" in it.
    """

    role: bytes
    answer: list[bytes]
    finish: bytes
    usage: bytes | None

    def ending(self) -> list[bytes]:
        """The events after the answer: finish reason, then usage if asked."""
        return [self.finish] if self.usage is None else [self.finish, self.usage]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def usage_object(reply: Reply, flavour: Flavour = FLAVOURS["openai"]) -> dict[str, Any]:
    """The `usage` object the flavour's server reports for a reply."""
    return flavour.usage(
        reply.prompt_tokens, reply.completion_tokens, len(reply.reasoning)
    )


def render_completion(
    reply: Reply, identity: Identity, flavour: Flavour = FLAVOURS["openai"]
) -> bytes:
    """The `chat.completion` object for a non-streaming request."""
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
                "id": identity.call_id(index),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    body = {
        "id": identity.completion_id,
        "object": "chat.completion",
        "created": identity.created,
        "model": identity.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": usage_object(reply, flavour),
    }
    if flavour.timings:
        body["timings"] = timings(reply.prompt_tokens, reply.completion_tokens)
    return _dumps(body).encode()


def render_stream(
    reply: Reply,
    identity: Identity,
    *,
    include_usage: bool,
    flavour: Flavour = FLAVOURS["openai"],
) -> StreamEvents:
    """The `chat.completion.chunk` events of a streaming answer.

    With `include_usage`, every chunk carries `"usage": null` and a last chunk
    with no choices carries the usage, as OpenAI does. Reasoning pieces come
    first, under the flavour's field; a flavour with `timings` puts them on
    the last event.
    """
    head = (
        f'data: {{"id":{_dumps(identity.completion_id)},'
        f'"object":"chat.completion.chunk","created":{identity.created},'
        f'"model":{_dumps(identity.model)},'
        f'"system_fingerprint":"{SYSTEM_FINGERPRINT}",'
    )
    usage_tail = ',"usage":null' if include_usage else ""
    open_delta = head + '"choices":[{"index":0,"delta":'
    close_delta = ',"logprobs":null,"finish_reason":null}]' + usage_tail + "}\n\n"

    def event(delta: str) -> bytes:
        return (open_delta + delta + close_delta).encode()

    answer: list[bytes] = []
    if reply.reasoning and flavour.reasoning_field:
        field = _dumps(flavour.reasoning_field)
        answer = [event(f"{{{field}:{_dumps(piece)}}}") for piece in reply.reasoning]
    answer += [event(f'{{"content":{_dumps(piece)}}}') for piece in reply.pieces]
    for index, call in enumerate(reply.tool_calls):
        start = {
            "index": index,
            "id": identity.call_id(index),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        answer.append(event(f'{{"tool_calls":[{_dumps(start)}]}}'))
        prefix = f'{{"tool_calls":[{{"index":{index},"function":{{"arguments":'
        answer.extend(event(prefix + _dumps(piece) + "}}]}") for piece in call.pieces)
    # The last event gets llama.cpp's `timings` before its closing brace.
    timings_tail = ""
    if flavour.timings:
        measured = timings(reply.prompt_tokens, reply.completion_tokens)
        timings_tail = f',"timings":{_dumps(measured)}'
    finish = (
        f'{open_delta}{{}},"logprobs":null,'
        f'"finish_reason":"{reply.finish_reason}"}}]{usage_tail}'
        f"{'' if include_usage else timings_tail}}}\n\n"
    ).encode()
    usage = None
    if include_usage:
        usage = (
            head + f'"choices":[],"usage":{_dumps(usage_object(reply, flavour))}'
            f"{timings_tail}}}\n\n"
        ).encode()
    return StreamEvents(
        role=event('{"role":"assistant","content":""}'),
        answer=answer,
        finish=finish,
        usage=usage,
    )
