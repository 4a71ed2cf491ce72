"""Streaming throughput: chunks per second of one long answer, per contender.

Each round runs every contender once, in turn, so that a burst of noise from
a neighbour on a shared machine hits one round of all of them rather than all
rounds of one; the report takes the median round of each.

Two more readings give context. The floor building its chunks as it
streams (instead of before the timer) adds what creating the chunk objects
costs any real model. The wire reads the same answer with `http.client` and
parses nothing: the rate at which the emulator can deliver it. A client close
to it is limited by the server, not by its own work.

The async path is measured the same way with `astream`, on one event loop
kept for the whole measurement: both HTTP models, and the floor building its
chunks in a native `_astream`.

The emulator sends each batch of events as soon as it is rendered, as a real
server sends what it has generated; it used to render the whole answer before
its first byte, a wait that every HTTP contender (and the wire) paid alike
and the floor did not.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel

from benchmarks._contenders import (
    DFEHUB,
    FLOOR,
    MODEL_FACTORIES,
    MODEL_NAME,
    OPENAI,
    STREAM_USAGE,
    FloorChatModel,
    WrongOutputError,
    answer_pieces,
    check_answer,
)

WIRE = "wire"
BUILDING_FLOOR = "floor, building chunks"
# The same contenders through `astream`.
ASYNC = {
    DFEHUB: f"{DFEHUB} astream",
    OPENAI: f"{OPENAI} astream",
    BUILDING_FLOOR: "floor astream, building chunks",
}
_TAG = "s"


def stream_seconds(
    who: str, model: BaseChatModel, prompt: str, expected_chunks: int
) -> float:
    """Seconds to stream the whole answer through `.stream`, after checking it.

    The answer must be the prompt echoed back, in `expected_chunks` chunks
    with text; an HTTP model must also deliver the usage it was asked for.
    """
    parts: list[str] = []
    usage_seen = False
    start = time.perf_counter()
    for chunk in model.stream(prompt):
        content = chunk.content
        if content:
            parts.append(content if isinstance(content, str) else str(content))
        if chunk.usage_metadata:
            usage_seen = True
    seconds = time.perf_counter() - start
    check_answer(who, "".join(parts), len(parts), prompt, expected_chunks)
    if who != FLOOR and STREAM_USAGE and not usage_seen:
        msg = f"{who}: asked for usage (stream_usage=True) but got none."
        raise WrongOutputError(msg)
    return seconds


async def astream_seconds(
    who: str, model: BaseChatModel, prompt: str, expected_chunks: int
) -> float:
    """`stream_seconds` through `.astream`: the same checks, on the running loop."""
    parts: list[str] = []
    usage_seen = False
    start = time.perf_counter()
    async for chunk in model.astream(prompt):
        content = chunk.content
        if content:
            parts.append(content if isinstance(content, str) else str(content))
        if chunk.usage_metadata:
            usage_seen = True
    seconds = time.perf_counter() - start
    check_answer(who, "".join(parts), len(parts), prompt, expected_chunks)
    if who != FLOOR and STREAM_USAGE and not usage_seen:
        msg = f"{who}: asked for usage (stream_usage=True) but got none."
        raise WrongOutputError(msg)
    return seconds


def wire_seconds(base_url: str, prompt: str, expected_chunks: int) -> float:
    """Seconds to read the raw stream of the same request, parsing nothing."""
    url = urlsplit(base_url)
    body = {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
    }
    if STREAM_USAGE:
        body["stream_options"] = {"include_usage": True}
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)
    received: list[bytes] = []
    try:
        start = time.perf_counter()
        connection.request(
            "POST",
            f"{url.path.rstrip('/')}/chat/completions",
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        while data := response.read1(65536):
            received.append(data)
        seconds = time.perf_counter() - start
    finally:
        connection.close()
    # Text events, plus role, finish, usage and [DONE].
    events = b"".join(received).count(b"\n\n")
    if response.status != 200 or events < expected_chunks:
        msg = f"wire: status {response.status}, {events} events."
        raise WrongOutputError(msg)
    return seconds


def measure_streaming(
    base_url: str,
    *,
    chunks: int,
    rounds: int,
    progress: Callable[[str], None],
) -> dict[str, list[float]]:
    """Chunks per second of a `chunks`-chunk answer, one value per round."""
    pieces = answer_pieces(chunks, _TAG)
    prompt = "".join(pieces)
    models = {name: factory(base_url) for name, factory in MODEL_FACTORIES.items()}
    floor = FloorChatModel()
    loop = asyncio.new_event_loop()

    def run_async(who: str, model: BaseChatModel, text: str, count: int) -> float:
        return loop.run_until_complete(astream_seconds(who, model, text, count))

    # Warm up: pooled connections, lazy imports, first-call caches.
    warm = answer_pieces(200, "warm")
    for name, model in models.items():
        stream_seconds(name, model, "".join(warm), len(warm))
        run_async(name, model, "".join(warm), len(warm))
    floor.load(warm)
    stream_seconds(FLOOR, floor, "".join(warm), len(warm))
    floor.load(warm, prebuilt=False)
    run_async(FLOOR, floor, "".join(warm), len(warm))

    names = (DFEHUB, OPENAI, FLOOR, BUILDING_FLOOR, WIRE, *ASYNC.values())
    rates: dict[str, list[float]] = {name: [] for name in names}
    try:
        for index in range(rounds):
            for name in (DFEHUB, OPENAI):
                seconds = stream_seconds(name, models[name], prompt, chunks)
                rates[name].append(chunks / seconds)
            floor.load(pieces)  # built before the timer starts
            rates[FLOOR].append(chunks / stream_seconds(FLOOR, floor, prompt, chunks))
            floor.load(pieces, prebuilt=False)
            seconds = stream_seconds(FLOOR, floor, prompt, chunks)
            rates[BUILDING_FLOOR].append(chunks / seconds)
            rates[WIRE].append(chunks / wire_seconds(base_url, prompt, chunks))
            for name in (DFEHUB, OPENAI):
                seconds = run_async(name, models[name], prompt, chunks)
                rates[ASYNC[name]].append(chunks / seconds)
            floor.load(pieces, prebuilt=False)
            seconds = run_async(FLOOR, floor, prompt, chunks)
            rates[ASYNC[BUILDING_FLOOR]].append(chunks / seconds)
            progress(
                f"stream round {index + 1}/{rounds}: "
                + ", ".join(f"{name} {rates[name][-1]:,.0f}/s" for name in rates)
            )
    finally:
        for model in models.values():
            close = getattr(model, "close", None)
            if close is not None:
                close()
        # Ends the async clients with the loop, as `asyncio.run` would.
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return rates
