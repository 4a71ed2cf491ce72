"""`make bench`: ChatDfeHub against ChatOpenAI on the same server, in one run.

Starts two emulator processes (one answering at once, one after a second),
then measures streaming throughput (sync and async), invoke latency,
concurrent async calls and import time, and prints one Markdown table of
medians and ratios with the targets, met or not. Every answer is checked against its
expected text, so a fast but wrong client fails instead of winning. Machines
here are shared and noisy: compare the ratios, not the absolute numbers.

Run it as `python -m benchmarks.run` or `python benchmarks/run.py`; nothing
is written to disk.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._concurrency import ChildResult, run_child
from benchmarks._contenders import DFEHUB, FLOOR, OPENAI, STREAM_USAGE, WrongOutputError
from benchmarks._emulator import Emulator
from benchmarks._fleet import fleet_table, measure_fleet, measure_gate_cost
from benchmarks._imports import CLASS, IMPORTS, PACKAGE, measure_imports
from benchmarks._latency import measure_invoke
from benchmarks._report import Row, machine_summary, markdown_table, median, spread
from benchmarks._streaming import ASYNC, BUILDING_FLOOR, WIRE, measure_streaming
from benchmarks._throttled import burst_table, measure_throttled_bursts

REPO_ROOT = Path(__file__).resolve().parent.parent

# The targets. The streaming floor is LangChain's own per-chunk cost for a
# model that builds its chunks as it streams, as every real model must.
STREAM_VS_OPENAI = 3.5
STREAM_VS_FLOOR = 0.8
INVOKE_VS_OPENAI = 1 / 2
IMPORT_VS_FLOOR = 1.15
PEAK_RSS_MIB = 400.0
SLOW_LATENCY = 1.0
# "About one second": the server's second plus client overhead, far from the
# 2 s or more of calls queued behind a thread pool.
SLOW_WALL_LIMIT = 1.5


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="ChatDfeHub vs ChatOpenAI against the local emulator."
    )
    parser.add_argument("--stream-chunks", type=int, default=20_000)
    parser.add_argument("--stream-rounds", type=int, default=7)
    parser.add_argument("--invoke-calls", type=int, default=150)
    parser.add_argument("--async-streams", type=int, default=200)
    parser.add_argument("--async-chunks", type=int, default=200)
    parser.add_argument("--async-rounds", type=int, default=3)
    parser.add_argument("--slow-calls", type=int, default=16)
    parser.add_argument("--import-rounds", type=int, default=15)
    parser.add_argument(
        "--only-throttled",
        action="store_true",
        help="run only the throttled bursts against the DRF app",
    )
    parser.add_argument(
        "--only-fleet",
        action="store_true",
        help="run only the fleet of worker processes against the DRF app",
    )
    return parser.parse_args(argv)


def _measure_async(
    args: argparse.Namespace, stream_url: str, slow_url: str
) -> dict[str, list[ChildResult]]:
    results: dict[str, list[ChildResult]] = {DFEHUB: [], OPENAI: []}
    for index in range(args.async_rounds):
        for name, runs in results.items():
            runs.append(
                run_child(
                    name,
                    stream_url,
                    slow_url,
                    streams=args.async_streams,
                    chunks=args.async_chunks,
                    slow=args.slow_calls,
                    cwd=REPO_ROOT,
                )
            )
        _progress(
            f"async round {index + 1}/{args.async_rounds}: "
            + ", ".join(
                f"{name} {runs[-1].streams_seconds:.2f} s "
                f"{runs[-1].peak_rss_mib:.0f} MiB"
                for name, runs in results.items()
            )
        )
    return results


def _ratio_row(
    measure: str,
    values: dict[str, float],
    fmt: str,
    ratio: float,
    against: str,
    target: str,
    met: bool | None,
) -> Row:
    return Row(
        measure=measure,
        dfehub=format(values[DFEHUB], fmt),
        openai=format(values[OPENAI], fmt) if OPENAI in values else "-",
        floor=format(values[FLOOR], fmt) if FLOOR in values else "-",
        ratio=f"{ratio:.2f}x {against}",
        target=target,
        met=met,
    )


def _rows(
    args: argparse.Namespace,
    stream: dict[str, list[float]],
    invoke: dict[str, list[float]],
    concurrent: dict[str, list[ChildResult]],
    imports: dict[str, dict[str, list[float]]],
) -> list[Row]:
    rate = {name: median(values) for name, values in stream.items()}
    latency = {name: median(values) * 1000 for name, values in invoke.items()}
    load = {n: median(values) * 1000 for n, values in imports[PACKAGE].items()}
    use = {n: median(values) * 1000 for n, values in imports[CLASS].items()}
    wall = {n: median([r.streams_seconds for r in rs]) for n, rs in concurrent.items()}
    rss = {n: max(r.peak_rss_mib for r in rs) for n, rs in concurrent.items()}
    slow_invoke = {
        n: median([r.slow_invoke_seconds for r in rs]) for n, rs in concurrent.items()
    }
    slow_stream = {
        n: median([r.slow_stream_seconds for r in rs]) for n, rs in concurrent.items()
    }
    whole = {n: sum(r.streams_whole for r in rs) for n, rs in concurrent.items()}
    total = {n: sum(r.streams for r in rs) for n, rs in concurrent.items()}
    slow_whole = {n: sum(r.slow_whole for r in rs) for n, rs in concurrent.items()}
    slow_total = {n: sum(r.slow_calls for r in rs) for n, rs in concurrent.items()}

    vs_openai = rate[DFEHUB] / rate[OPENAI]
    vs_floor = rate[DFEHUB] / rate[BUILDING_FLOOR]
    arate = {name: rate[ASYNC[name]] for name in (DFEHUB, OPENAI)}
    arate[FLOOR] = rate[ASYNC[BUILDING_FLOOR]]
    avs_floor = arate[DFEHUB] / arate[FLOOR]
    invoke_ratio = latency[DFEHUB] / latency[OPENAI]
    # Per round: see `_imports`. The ratio of medians is among the details.
    import_ratio = median(_paired(imports[PACKAGE][DFEHUB], imports[PACKAGE][FLOOR]))
    class_import_ratio = median(_paired(imports[CLASS][DFEHUB], imports[CLASS][FLOOR]))
    chunks = f"{args.stream_chunks:,}"
    streams = f"{args.async_streams} x {args.async_chunks}-chunk astream"
    slow = f"{args.slow_calls} concurrent {SLOW_LATENCY:g} s"
    return [
        _ratio_row(
            f"stream {chunks} chunks, chunks/s",
            rate,
            ",.0f",
            vs_openai,
            "vs ChatOpenAI",
            f">= {STREAM_VS_OPENAI}x",
            vs_openai >= STREAM_VS_OPENAI,
        ),
        _ratio_row(
            f"stream {chunks} chunks, chunks/s",
            {**rate, FLOOR: rate[BUILDING_FLOOR]},
            ",.0f",
            vs_floor,
            "vs floor",
            f">= {STREAM_VS_FLOOR}x",
            vs_floor >= STREAM_VS_FLOOR,
        ),
        _ratio_row(
            f"stream {chunks} chunks, chunks/s",
            rate,
            ",.0f",
            rate[DFEHUB] / rate[FLOOR],
            "vs floor pre-built",
            "-",
            None,
        ),
        _ratio_row(
            f"astream {chunks} chunks, chunks/s",
            arate,
            ",.0f",
            arate[DFEHUB] / arate[OPENAI],
            "vs ChatOpenAI",
            "-",
            None,
        ),
        _ratio_row(
            f"astream {chunks} chunks, chunks/s",
            arate,
            ",.0f",
            avs_floor,
            "vs async floor",
            f">= {STREAM_VS_FLOOR}x",
            avs_floor >= STREAM_VS_FLOOR,
        ),
        _ratio_row(
            f"invoke, median ms of {args.invoke_calls}",
            latency,
            ".2f",
            invoke_ratio,
            "vs ChatOpenAI",
            f"<= {INVOKE_VS_OPENAI:.2f}x (2x as fast)",
            invoke_ratio <= INVOKE_VS_OPENAI,
        ),
        _ratio_row(
            "import package, median ms",
            load,
            ".0f",
            import_ratio,
            "vs floor, per round",
            f"<= {IMPORT_VS_FLOOR}x",
            import_ratio <= IMPORT_VS_FLOOR,
        ),
        _ratio_row(
            "import the model class, median ms",
            use,
            ".0f",
            class_import_ratio,
            "vs BaseChatModel, per round",
            f"<= {IMPORT_VS_FLOOR}x",
            class_import_ratio <= IMPORT_VS_FLOOR,
        ),
        _ratio_row(
            f"{streams}, wall s",
            wall,
            ".2f",
            wall[DFEHUB] / wall[OPENAI],
            "vs ChatOpenAI",
            "-",
            None,
        ),
        Row(
            measure=f"{streams}, answers whole",
            dfehub=f"{whole[DFEHUB]}/{total[DFEHUB]}",
            openai=f"{whole[OPENAI]}/{total[OPENAI]}",
            floor="-",
            ratio="-",
            target="all",
            met=whole[DFEHUB] == total[DFEHUB],
        ),
        _ratio_row(
            f"{streams}, peak RSS MiB",
            rss,
            ".0f",
            rss[DFEHUB] / rss[OPENAI],
            "vs ChatOpenAI",
            f"< {PEAK_RSS_MIB:.0f} MiB",
            rss[DFEHUB] < PEAK_RSS_MIB,
        ),
        _ratio_row(
            f"{slow} ainvoke, wall s",
            slow_invoke,
            ".2f",
            slow_invoke[DFEHUB] / slow_invoke[OPENAI],
            "vs ChatOpenAI",
            f"~1 s (<= {SLOW_WALL_LIMIT} s)",
            slow_invoke[DFEHUB] <= SLOW_WALL_LIMIT
            and slow_whole[DFEHUB] == slow_total[DFEHUB],
        ),
        _ratio_row(
            f"{slow} astream, wall s",
            slow_stream,
            ".2f",
            slow_stream[DFEHUB] / slow_stream[OPENAI],
            "vs ChatOpenAI",
            f"~1 s (<= {SLOW_WALL_LIMIT} s)",
            slow_stream[DFEHUB] <= SLOW_WALL_LIMIT
            and slow_whole[DFEHUB] == slow_total[DFEHUB],
        ),
    ]


def _details(
    args: argparse.Namespace,
    stream: dict[str, list[float]],
    invoke: dict[str, list[float]],
    concurrent: dict[str, list[ChildResult]],
    imports: dict[str, dict[str, list[float]]],
) -> list[str]:
    """Spread of every measure, and the context needed to read the table."""
    wire = median(stream[WIRE])
    lines = [
        f"Both HTTP models: stream_usage={STREAM_USAGE} (the usage chunk is "
        "requested and checked), model='gpt-3.5-turbo', every answer checked "
        "against its expected text.",
        "Medians; ratios are ratios of medians, but for imports (median of the"
        " ratios within each round). Spread: median (min-max, n).",
    ]
    for name in (DFEHUB, OPENAI):
        lines.append(f"- stream {name}: {spread(stream[name], unit='/s')}")
    lines.append(
        "- floor: a BaseChatModel building each chunk inside _stream, as a "
        f"real model must: {spread(stream[BUILDING_FLOOR], unit='/s')}; "
        f"yielding chunks built before the timer: {spread(stream[FLOOR], unit='/s')}"
    )
    for name in ASYNC.values():
        lines.append(f"- {name}: {spread(stream[name], unit='/s')}")
    for form, statements in IMPORTS.items():
        for name, statement in statements.items():
            lines.append(f"- `{statement}`: {spread(imports[form][name], 1000, ' ms')}")
    lines.append(
        f"- wire (raw http.client read of the same answer, no parsing): "
        f"{spread(stream[WIRE], unit='/s')}; ChatDfeHub reaches "
        f"{median(stream[DFEHUB]) / wire:.0%} of it"
    )
    lines.append(
        f"- stream ChatDfeHub/ChatOpenAI per round: "
        f"{spread(_paired(stream[DFEHUB], stream[OPENAI]))}"
    )
    lines.append(
        f"- stream ChatDfeHub/floor per round: "
        f"{spread(_paired(stream[DFEHUB], stream[BUILDING_FLOOR]))}; astream: "
        f"{spread(_paired(stream[ASYNC[DFEHUB]], stream[ASYNC[BUILDING_FLOOR]]))}"
    )
    lines.append(
        f"- invoke ChatDfeHub/ChatOpenAI, paired calls: "
        f"{spread(_paired(invoke[DFEHUB], invoke[OPENAI]))}"
    )
    for form in (PACKAGE, CLASS):
        loads = imports[form]
        lines.append(
            f"- import {form} ChatDfeHub/floor per round: "
            f"{spread(_paired(loads[DFEHUB], loads[FLOOR]))}; ratio of medians "
            f"{median(loads[DFEHUB]) / median(loads[FLOOR]):.2f}"
        )
    for name in (DFEHUB, OPENAI):
        lines.append(f"- invoke {name}: {spread(invoke[name], 1000, ' ms')}")
    for name, runs in concurrent.items():
        lines.append(
            f"- async {name}: {args.async_streams} astreams "
            f"{spread([r.streams_seconds for r in runs], unit=' s')}, peak RSS "
            f"{spread([r.peak_rss_mib for r in runs], unit=' MiB')}, "
            f"{args.slow_calls} slow ainvoke "
            f"{spread([r.slow_invoke_seconds for r in runs], unit=' s')}, "
            f"astream {spread([r.slow_stream_seconds for r in runs], unit=' s')}"
        )
        problems = [p for run in runs for p in run.problems]
        if problems:
            lines.append(f"  first problems: {problems[:3]}")
    return lines


def _paired(values: Sequence[float], references: Sequence[float]) -> list[float]:
    """Ratios within each round: neighbours in time share the machine's mood."""
    return [value / ref for value, ref in zip(values, references, strict=True)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measure, print the table; 1 if any answer was wrong."""
    args = _parse_args(argv)
    started = time.perf_counter()
    print(
        "Benchmarking ChatDfeHub vs ChatOpenAI (progress on stderr)...", file=sys.stderr
    )
    if args.only_fleet:
        cost = measure_gate_cost(_progress)
        fleet = fleet_table(measure_fleet(_progress), cost)
        print(f"\n{machine_summary()}\n\n## A fleet of processes\n\n{fleet}")
        return 0
    bursts = measure_throttled_bursts(_progress)
    throttled = f"## Throttled bursts\n\n{burst_table(bursts)}"
    if args.only_throttled:
        print(f"\n{machine_summary()}\n\n{throttled}")
        return 0
    cost = measure_gate_cost(_progress)
    fleet = f"## A fleet of processes\n\n{fleet_table(measure_fleet(_progress), cost)}"
    try:
        with (
            Emulator() as emulator,
            Emulator("--latency", f"{SLOW_LATENCY:g}") as slow_emulator,
        ):
            _progress(f"emulators at {emulator.base_url}, {slow_emulator.base_url}")
            stream = measure_streaming(
                emulator.base_url,
                chunks=args.stream_chunks,
                rounds=args.stream_rounds,
                progress=_progress,
            )
            invoke = measure_invoke(
                emulator.base_url, calls=args.invoke_calls, progress=_progress
            )
            concurrent = _measure_async(args, emulator.base_url, slow_emulator.base_url)
        imports = measure_imports(
            rounds=args.import_rounds, cwd=REPO_ROOT, progress=_progress
        )
    except WrongOutputError as exc:
        print(f"error: wrong output, no timing reported: {exc}", file=sys.stderr)
        return 1
    rows = _rows(args, stream, invoke, concurrent, imports)
    print(f"\n{machine_summary()}\n")
    print(markdown_table(rows))
    print()
    print("\n".join(_details(args, stream, invoke, concurrent, imports)))
    print(f"\n{throttled}")
    print(f"\n{fleet}")
    met = sum(row.met is True for row in rows)
    targets = sum(row.met is not None for row in rows)
    print(
        f"\n{met}/{targets} targets met; "
        f"run took {time.perf_counter() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
