"""A throttled burst against a real Django REST Framework app, both models.

The DfeHub service's throttle is DRF's `AnonRateThrottle`, so the burst runs
against the DRF chat app the tests use (`tests/drf_service`), under gunicorn,
at `10/s`. Each contender gets a fresh server (an empty throttle history), and
runs each burst twice on the same model: cold, then warm (ChatDfeHub's gate
has learned the pace by then; ChatOpenAI has nothing to learn).

Reported per run: calls completed with the right answer, requests the server
received and throttled, and wall time against the ideal, calls / rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from benchmarks._contenders import DFEHUB, MODEL_FACTORIES, OPENAI

RATE = "10/s"
RATE_PER_SECOND = 10.0
BATCH = 64
STREAMS = 100
# Issue 13's targets.
COLD_REQUESTS_PER_CALL = 2.0
WARM_REQUESTS_PER_CALL = 1.1
WALL_VS_IDEAL = 1.25


@dataclass(frozen=True)
class BurstResult:
    """One burst of one contender."""

    contender: str
    kind: str  # "batch" or "astream"
    phase: str  # "cold" or "warm"
    calls: int
    completed: int
    requests: int
    throttled: int
    seconds: float
    first_error: str

    @property
    def ideal(self) -> float:
        """The shortest time the server's rate allows for the calls."""
        return self.calls / RATE_PER_SECOND

    @property
    def requests_per_call(self) -> float:
        return self.requests / self.calls

    @property
    def wall_vs_ideal(self) -> float:
        return self.seconds / self.ideal

    def meets_targets(self) -> bool:
        """Every call done, few requests, close to the ideal time."""
        limit = (
            COLD_REQUESTS_PER_CALL if self.phase == "cold" else WARM_REQUESTS_PER_CALL
        )
        return (
            self.completed == self.calls
            and self.requests_per_call <= limit
            and self.wall_vs_ideal <= WALL_VS_IDEAL
        )


def _prompts(count: int, tag: str) -> list[str]:
    return [f"{tag} call {n} answers this" for n in range(count)]


def _batch(model: BaseChatModel, prompts: list[str]) -> list[Any]:
    config: Any = {"max_concurrency": len(prompts)}
    return list(model.batch(prompts, config=config, return_exceptions=True))


# Both phases of the async burst run on one event loop, as one program would:
# ChatOpenAI's async client is bound to the loop it first ran on.
_LOOP = asyncio.new_event_loop()


def _astreams(model: BaseChatModel, prompts: list[str]) -> list[Any]:
    async def one(prompt: str) -> str:
        return "".join([str(chunk.content) async for chunk in model.astream(prompt)])

    async def all_of_them() -> list[Any]:
        return list(
            await asyncio.gather(*(one(p) for p in prompts), return_exceptions=True)
        )

    return _LOOP.run_until_complete(all_of_them())


_RUNS: dict[str, tuple[int, Callable[[BaseChatModel, list[str]], list[Any]]]] = {
    "batch": (BATCH, _batch),
    "astream": (STREAMS, _astreams),
}


def _text(result: Any) -> str | None:
    if isinstance(result, BaseException):
        return None
    content = getattr(result, "content", result)
    return content if isinstance(content, str) else None


def measure_throttled_bursts(progress: Callable[[str], None]) -> list[BurstResult]:
    """Run every burst of both contenders; one fresh DRF app per contender/kind."""
    from tests.drf_service import running_drf_service

    results: list[BurstResult] = []
    for kind, (calls, run) in _RUNS.items():
        for contender in (DFEHUB, OPENAI):
            with running_drf_service(RATE) as service:
                model = MODEL_FACTORIES[contender](service.base_url)
                for phase in ("cold", "warm"):
                    prompts = _prompts(calls, f"{phase} {kind}")
                    service.reset_stats()
                    started = time.perf_counter()
                    answers = run(model, prompts)
                    seconds = time.perf_counter() - started
                    stats = service.stats()
                    texts = [_text(answer) for answer in answers]
                    errors = [a for a in answers if isinstance(a, BaseException)]
                    result = BurstResult(
                        contender=contender,
                        kind=kind,
                        phase=phase,
                        calls=calls,
                        completed=sum(
                            t == p for t, p in zip(texts, prompts, strict=True)
                        ),
                        requests=stats.requests,
                        throttled=stats.throttled,
                        seconds=seconds,
                        first_error=repr(errors[0])[:160] if errors else "",
                    )
                    results.append(result)
                    progress(
                        f"{contender} {phase} {kind}: {result.completed}/{calls}"
                        f" done, {result.requests} requests, {seconds:.1f} s"
                    )
    return results


def burst_table(results: list[BurstResult]) -> str:
    """The throttled-burst results as a Markdown table, with the targets."""
    header = (
        "| burst | phase | contender | completed | requests (throttled) |"
        " requests/call | wall s | wall / ideal | targets met? |"
    )
    rule = "|---|---|---|---|---|---|---|---|---|"
    lines = [header, rule]
    for r in results:
        met = "yes" if r.meets_targets() else "**NO**"
        if r.contender != DFEHUB:
            met = "-"
        lines.append(
            f"| {r.calls} x {r.kind} | {r.phase} | {r.contender} |"
            f" {r.completed}/{r.calls} | {r.requests} ({r.throttled}) |"
            f" {r.requests_per_call:.2f} | {r.seconds:.2f} |"
            f" {r.wall_vs_ideal:.2f} | {met} |"
        )
    notes = [
        "",
        f"Against the DRF chat app under gunicorn at {RATE} (AnonRateThrottle);"
        f" ideal = calls / rate. Targets for ChatDfeHub: every call completed,"
        f" requests/call <= {COLD_REQUESTS_PER_CALL:g} cold and"
        f" <= {WARM_REQUESTS_PER_CALL:g} warm, wall <= {WALL_VS_IDEAL:g}x ideal."
        f" `batch` runs with max_concurrency={BATCH}; both models use their"
        " default retry settings.",
    ]
    for r in results:
        if r.first_error and r.contender in (DFEHUB, OPENAI):
            notes.append(
                f"- {r.contender} {r.phase} {r.kind}, first error: {r.first_error}"
            )
    return "\n".join(lines + notes)
