"""Where ChatDfeHub's streaming time goes: cProfile of one long answer.

Streams a 20,000-chunk answer from the emulator (in its own process, so only
the client is profiled) through the public `.stream()`, after one untimed
warm-up, and prints the top functions by own time. For optimising the hot
path; `benchmarks.run` gives the comparison with ChatOpenAI and the floor.

cProfile charges a garbage collection to whatever function happened to
allocate when it started, often pydantic's validation, so the cyclic
collector's pauses are measured separately first, with the same stream run
once with the collector on and once with it off.

Run it as `python -m benchmarks.profile_stream [--chunks N] [--top N]
[--sort tottime|cumulative] [--no-gc]`; `--no-gc` profiles with the collector
off, so the table shows the code's own work only.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._contenders import DFEHUB, answer_pieces, dfehub_model
from benchmarks._emulator import Emulator
from benchmarks._streaming import stream_seconds


@contextmanager
def gc_pauses() -> Iterator[dict[int, list[float]]]:
    """Collect the duration of every garbage collection, by generation."""
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def observe(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started[0])

    gc.callbacks.append(observe)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(observe)


def main(argv: Sequence[str] | None = None) -> int:
    """Profile one stream and print the top entries."""
    parser = argparse.ArgumentParser(description="cProfile ChatDfeHub streaming.")
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", choices=("tottime", "cumulative"), default="tottime")
    parser.add_argument(
        "--no-gc", action="store_true", help="profile with the collector off"
    )
    args = parser.parse_args(argv)

    pieces = answer_pieces(args.chunks, "p")
    prompt = "".join(pieces)
    with Emulator() as emulator:
        model = dfehub_model(emulator.base_url)
        stream_seconds(DFEHUB, model, "".join(pieces[:200]), 200)  # warm-up
        with gc_pauses() as pauses:
            with_gc = stream_seconds(DFEHUB, model, prompt, args.chunks)
        gc.disable()
        try:
            without_gc = stream_seconds(DFEHUB, model, prompt, args.chunks)
        finally:
            gc.enable()
        profiler = cProfile.Profile()
        if args.no_gc:
            gc.disable()
        try:
            start = time.perf_counter()
            profiler.enable()
            stream_seconds(DFEHUB, model, prompt, args.chunks)
            profiler.disable()
            profiled = time.perf_counter() - start
        finally:
            gc.enable()

    per_chunk = 1e6 / args.chunks
    print(
        f"ChatDfeHub, {args.chunks:,} chunks, unprofiled: "
        f"{args.chunks / with_gc:,.0f} chunks/s ({with_gc * per_chunk:.1f} us/chunk); "
        f"with gc disabled {args.chunks / without_gc:,.0f} chunks/s "
        f"({without_gc * per_chunk:.1f} us/chunk)"
    )
    collections = ", ".join(
        f"gen{generation} {len(times)} x = {sum(times) * 1000:.0f} ms"
        for generation, times in pauses.items()
    )
    print(f"garbage collections during the unprofiled run: {collections}")
    print(
        f"under cProfile (gc {'off' if args.no_gc else 'on'}): {profiled:.2f} s "
        f"({profiled * per_chunk:.1f} us/chunk with profiling overhead)\n"
    )
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
