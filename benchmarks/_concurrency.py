"""Concurrent async calls, each model in a fresh process of its own.

Run as `python -m benchmarks._concurrency CONTENDER STREAM_URL SLOW_URL`, the
child makes many concurrent `astream` calls against the normal emulator, then
a few concurrent calls against one that waits a second before each answer,
and prints its results as one JSON line. Peak RSS is the child's own
`ru_maxrss`, so neither the other model nor the earlier parts of the
benchmark inflate it.

Every call has its own prompt of unique words, so an answer that lost,
repeated or mixed in another call's text does not count as whole.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from benchmarks._contenders import MODEL_FACTORIES, answer_text, check_answer

_PROBLEMS_KEPT = 3


@dataclass
class ChildResult:
    """What one child measured; printed as JSON, read back by the parent."""

    streams: int
    streams_whole: int
    streams_seconds: float
    slow_calls: int
    slow_whole: int
    slow_invoke_seconds: float
    slow_stream_seconds: float
    peak_rss_mib: float
    problems: list[str]


async def _astream_text(model: BaseChatModel, prompt: str) -> tuple[str, int]:
    parts: list[str] = []
    async for chunk in model.astream(prompt):
        if chunk.content:
            parts.append(str(chunk.content))
    return "".join(parts), len(parts)


async def _ainvoke_text(model: BaseChatModel, prompt: str) -> tuple[str, int]:
    message = await model.ainvoke(prompt)
    return str(message.content), 1


Call = Callable[[BaseChatModel, str], Awaitable[tuple[str, int]]]


async def _concurrently(
    model: BaseChatModel,
    call: Call,
    prompts: Sequence[str],
    chunks: int,
    problems: list[str],
) -> tuple[float, int]:
    """Wall seconds for all calls at once, and how many answers were whole."""
    start = time.perf_counter()
    results = await asyncio.gather(
        *(call(model, prompt) for prompt in prompts), return_exceptions=True
    )
    seconds = time.perf_counter() - start
    whole = 0
    for index, (prompt, result) in enumerate(zip(prompts, results, strict=True)):
        try:
            if isinstance(result, BaseException):
                raise result
            check_answer(f"call {index}", *result, prompt, chunks)
        except Exception as exc:  # a failed call is simply not whole
            problems.append(f"{exc!r}"[:300])
        else:
            whole += 1
    return seconds, whole


async def _run(
    contender: str, stream_url: str, slow_url: str, streams: int, chunks: int, slow: int
) -> ChildResult:
    problems: list[str] = []
    factory = MODEL_FACTORIES[contender]
    model = factory(stream_url)
    # One small call first: lazy imports and client set-up, not concurrency.
    await _concurrently(model, _astream_text, [answer_text(5, "w")], 5, problems)
    prompts = [answer_text(chunks, f"r{index}x") for index in range(streams)]
    streams_seconds, streams_whole = await _concurrently(
        model, _astream_text, prompts, chunks, problems
    )

    slow_model = factory(slow_url)
    slow_prompts = [answer_text(3, f"q{index}x") for index in range(slow)]
    invoke_seconds, invoke_whole = await _concurrently(
        slow_model, _ainvoke_text, slow_prompts, 1, problems
    )
    slow_stream_seconds, stream_whole = await _concurrently(
        slow_model, _astream_text, slow_prompts, 3, problems
    )
    # Linux reports ru_maxrss in KiB.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return ChildResult(
        streams=streams,
        streams_whole=streams_whole,
        streams_seconds=streams_seconds,
        slow_calls=2 * slow,
        slow_whole=invoke_whole + stream_whole,
        slow_invoke_seconds=invoke_seconds,
        slow_stream_seconds=slow_stream_seconds,
        peak_rss_mib=peak,
        problems=problems[:_PROBLEMS_KEPT],
    )


def run_child(
    contender: str,
    stream_url: str,
    slow_url: str,
    *,
    streams: int,
    chunks: int,
    slow: int,
    cwd: Path,
) -> ChildResult:
    """Run one contender's async part in a fresh interpreter; its results."""
    command = [
        sys.executable,
        "-m",
        "benchmarks._concurrency",
        contender,
        stream_url,
        slow_url,
        f"--streams={streams}",
        f"--chunks={chunks}",
        f"--slow={slow}",
    ]
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        command, capture_output=True, text=True, cwd=cwd, check=False
    )
    if result.returncode != 0:
        msg = f"The async benchmark of {contender} failed:\n{result.stderr[-3000:]}"
        raise RuntimeError(msg)
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return ChildResult(**data)


def main(argv: Sequence[str] | None = None) -> None:
    """Child entry point: measure one contender, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("contender", choices=sorted(MODEL_FACTORIES))
    parser.add_argument("stream_url")
    parser.add_argument("slow_url")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--slow", type=int, default=16)
    args = parser.parse_args(argv)
    result = asyncio.run(
        _run(
            args.contender,
            args.stream_url,
            args.slow_url,
            args.streams,
            args.chunks,
            args.slow,
        )
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
