"""A fleet of real worker processes bursting at one server, for tests and bench.

Each worker is a spawned process (not a fork, not a thread) that builds its
own model, as a gunicorn or Celery worker would, and runs bursts on command:
all workers start a burst at one moment (a barrier), and each reports how
many of its calls came back with the right answer. The same workers serve
several bursts (cold, then warm), and `Fleet` stops them all at the end.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

BURST_TIMEOUT = 180.0


@dataclass(frozen=True)
class WorkerReport:
    """One worker's part of a burst."""

    calls: int
    completed: int
    first_error: str
    store: str  # where the worker's gate lived, as throttle_state says
    pace: float | None  # the gate's pace when the burst began


def _model(base_url: str, contender: str, gate: str | None) -> Any:
    if contender == "ChatOpenAI":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(base_url=base_url, api_key="unused", model="gpt-3.5-turbo")
    from langchain_dfehub import ChatDfeHub

    return ChatDfeHub(base_url=base_url, api_key="unused", gate=gate)


def _serve(
    connection: Connection,
    barrier: Any,
    base_url: str,
    contender: str,
    gate: str | None,
    mode: str,
) -> None:
    """The worker's loop: a burst per command, until told to stop."""
    model = _model(base_url, contender, gate)
    while True:
        command = connection.recv()
        if command is None:
            return
        prompts: list[str] = command
        state = getattr(model, "throttle_state", None)
        barrier.wait(BURST_TIMEOUT)
        results = _run(model, mode, prompts)
        errors = [r for r in results if isinstance(r, BaseException)]
        completed = sum(
            getattr(r, "content", None) == p
            for r, p in zip(results, prompts, strict=True)
        )
        connection.send(
            WorkerReport(
                calls=len(prompts),
                completed=completed,
                first_error=repr(errors[0])[:200] if errors else "",
                store=state.store if state is not None else "none",
                pace=state.pace if state is not None else None,
            )
        )


def _run(model: Any, mode: str, prompts: list[str]) -> list[Any]:
    """A `batch` as wide as the prompts, or as many `ainvoke`s on one loop."""
    if mode == "sync":
        config: Any = {"max_concurrency": len(prompts)}
        return list(model.batch(prompts, config=config, return_exceptions=True))

    async def all_of_them() -> list[Any]:
        calls = (model.ainvoke(prompt) for prompt in prompts)
        return list(await asyncio.gather(*calls, return_exceptions=True))

    return asyncio.run(all_of_them())


class Fleet:
    """`workers` spawned processes, each with its own model of `contender`."""

    def __init__(
        self,
        workers: int,
        base_url: str,
        gate: str | None = None,
        contender: str = "ChatDfeHub",
        mode: str = "sync",
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.barrier = context.Barrier(workers + 1)
        self.connections: list[Connection] = []
        self.processes: list[Any] = []
        for _ in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve,
                args=(theirs, self.barrier, base_url, contender, gate, mode),
                daemon=True,
            )
            process.start()
            self.connections.append(ours)
            self.processes.append(process)

    def burst(self, calls_each: int, tag: str) -> tuple[list[WorkerReport], float]:
        """Every worker runs `calls_each` calls at once; reports and wall time."""
        for index, connection in enumerate(self.connections):
            connection.send(
                [f"{tag} worker {index} call {n} answers" for n in range(calls_each)]
            )
        self.barrier.wait(BURST_TIMEOUT)
        started = time.perf_counter()
        reports = []
        for connection in self.connections:
            if not connection.poll(BURST_TIMEOUT):
                raise TimeoutError("a fleet worker did not finish its burst")
            reports.append(connection.recv())
        return reports, time.perf_counter() - started

    def stop(self) -> None:
        """Stop every worker: asked first, then terminated."""
        for connection in self.connections:
            with suppress(OSError):
                connection.send(None)
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)


@contextmanager
def running_fleet(
    workers: int,
    base_url: str,
    gate: str | None = None,
    contender: str = "ChatDfeHub",
    mode: str = "sync",
) -> Iterator[Fleet]:
    """A fleet for the `with` block, stopped at its end whatever happens."""
    fleet = Fleet(workers, base_url, gate, contender, mode)
    try:
        yield fleet
    finally:
        fleet.stop()
