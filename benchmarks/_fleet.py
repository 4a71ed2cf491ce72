"""A fleet against one throttle: several worker processes, one gate or many.

What a LangChain app behind gunicorn workers, a Celery pool or a few pods
meets: `WORKERS` spawned processes, each with its own model and a
`CALLS_EACH`-wide `batch`, started at one moment against the DRF chat app at
`10/s`. Cold, then warm (the same processes), then a fresh set of processes
on the same store. Per gate (per process, SQLite, Redis) and for ChatOpenAI:
calls completed, requests throttled, wall time against the ideal (calls /
rate). And each gate's cost per call, against a server that never throttles.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks._contenders import DFEHUB, OPENAI

RATE = "10/s"
RATE_PER_SECOND = 10.0
WORKERS = 4
CALLS_EACH = 32
COST_CALLS = 300
# The targets for the shared gates.
COLD_THROTTLED_PER_CALL = 1.0
WARM_THROTTLED_PER_CALL = 0.1
WALL_VS_IDEAL = 1.25

PER_PROCESS = "per process"
SQLITE = "SQLite"
REDIS = "Redis"


@dataclass(frozen=True)
class FleetResult:
    """One phase of one gate's fleet."""

    gate: str
    phase: str  # "cold", "warm" or "fresh"
    calls: int
    completed: int
    requests: int
    throttled: int
    seconds: float
    first_error: str

    @property
    def wall_vs_ideal(self) -> float:
        return self.seconds / (self.calls / RATE_PER_SECOND)

    def meets_targets(self) -> bool:
        limit = (
            COLD_THROTTLED_PER_CALL if self.phase == "cold" else WARM_THROTTLED_PER_CALL
        )
        return (
            self.completed == self.calls
            and self.throttled <= limit * self.calls
            and self.wall_vs_ideal <= WALL_VS_IDEAL
        )


@contextmanager
def _gate_urls() -> Iterator[dict[str, str | None]]:
    """The gate setting of each contender: none, a SQLite file, a Redis server."""
    from tests.redis_server import running_redis, why_no_redis

    with ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        urls: dict[str, str | None] = {
            PER_PROCESS: None,
            SQLITE: f"sqlite:///{folder}/gates.sqlite3",
        }
        if why_no_redis() is None:
            urls[REDIS] = stack.enter_context(running_redis())
        yield urls


def measure_fleet(progress: Callable[[str], None]) -> list[FleetResult]:
    """Every gate's fleet, and ChatOpenAI's, each against a fresh DRF app."""
    from tests.drf_service import running_drf_service
    from tests.fleet import running_fleet

    results: list[FleetResult] = []
    with _gate_urls() as urls:
        contenders: list[tuple[str, str, str | None]] = [
            (name, DFEHUB, url) for name, url in urls.items()
        ]
        contenders.append((OPENAI, OPENAI, None))
        for name, contender, url in contenders:
            with running_drf_service(RATE) as service:
                with running_fleet(WORKERS, service.base_url, url, contender) as fleet:
                    for label in ("cold", "warm"):
                        results.append(_phase(name, label, fleet, service, progress))
                with running_fleet(WORKERS, service.base_url, url, contender) as fleet:
                    results.append(_phase(name, "fresh", fleet, service, progress))
    return results


def _phase(
    name: str, label: str, fleet: Any, service: Any, progress: Callable[[str], None]
) -> FleetResult:
    service.reset_stats()
    reports, seconds = fleet.burst(CALLS_EACH, label)
    stats = service.stats()
    errors = [r.first_error for r in reports if r.first_error]
    result = FleetResult(
        gate=name,
        phase=label,
        calls=WORKERS * CALLS_EACH,
        completed=sum(r.completed for r in reports),
        requests=stats.requests,
        throttled=stats.throttled,
        seconds=seconds,
        first_error=errors[0] if errors else "",
    )
    progress(
        f"fleet {name} {label}: {result.completed}/{result.calls} done,"
        f" {result.throttled} throttled, {seconds:.1f} s"
    )
    return result


def measure_gate_cost(progress: Callable[[str], None]) -> dict[str, float]:
    """Milliseconds per call each gate adds, on a server that never throttles.

    One process, sequential `invoke`s against the DRF app at a rate it never
    reaches; the per-process gate is the reference (its cost is in every
    figure), so a shared gate's cost is its difference from it.
    """
    from langchain_dfehub import ChatDfeHub
    from tests.drf_service import running_drf_service

    per_call: dict[str, float] = {}
    with _gate_urls() as urls, running_drf_service("100000/s") as service:
        for name, url in urls.items():
            model = ChatDfeHub(base_url=service.base_url, api_key="unused", gate=url)
            for n in range(20):
                model.invoke(f"warm up {n}")
            started = time.perf_counter()
            for n in range(COST_CALLS):
                model.invoke(f"cost {n}")
            per_call[name] = (time.perf_counter() - started) / COST_CALLS * 1000
            progress(f"gate cost {name}: {per_call[name]:.2f} ms per call")
    return per_call


def fleet_table(results: list[FleetResult], cost: dict[str, float]) -> str:
    """The fleet's results and the gates' costs as Markdown, with the targets."""
    lines = [
        "| gate | phase | completed | requests (throttled) | wall s |"
        " wall / ideal | targets met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        met = "yes" if r.meets_targets() else "**NO**"
        if r.gate in (OPENAI, PER_PROCESS):
            met = "-"
        lines.append(
            f"| {r.gate} | {r.phase} | {r.completed}/{r.calls} |"
            f" {r.requests} ({r.throttled}) | {r.seconds:.2f} |"
            f" {r.wall_vs_ideal:.2f} | {met} |"
        )
    reference = cost.get(PER_PROCESS, 0.0)
    lines += [
        "",
        f"{WORKERS} spawned worker processes x {CALLS_EACH}-wide `batch`, started"
        f" at one moment, against the DRF chat app at {RATE}; ideal = calls /"
        " rate. cold, then warm on the same processes, then fresh processes on"
        " the same store. Targets for the shared gates: every call completed;"
        f" throttled <= {COLD_THROTTLED_PER_CALL:g}x the calls cold and"
        f" <= {WARM_THROTTLED_PER_CALL:g}x warm and fresh; wall <="
        f" {WALL_VS_IDEAL:g}x ideal.",
        "",
        "Cost per call on a server that never throttles (one process,"
        f" {COST_CALLS} sequential invokes): "
        + "; ".join(
            f"{name} {ms:.2f} ms ({ms - reference:+.2f} ms)"
            for name, ms in cost.items()
        ),
    ]
    for r in results:
        if r.first_error:
            lines.append(f"- {r.gate} {r.phase}, first error: {r.first_error}")
    return "\n".join(lines)
