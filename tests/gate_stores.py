"""The gate's stores, for the scenario suite every store must pass.

`make_gate(clock)` builds a fresh gate on one store: in memory, in a SQLite
file of the test's own, or on a real Redis server (a fresh key each time);
the shared stores decide by the fake clock's time, which the gate passes
them, so the same scenarios drive them all.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from langchain_dfehub._gate import ServiceGate

STORES = ["memory"]
_keys = itertools.count(1)


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class MakeGate(Protocol):
    def __call__(
        self, clock: Callable[[], float], name: str = "svc"
    ) -> ServiceGate: ...


def gate_maker(kind: str, folder: Path, redis_url: str | None = None) -> MakeGate:
    """A factory of fresh gates on the store `kind`."""

    def make(clock: Callable[[], float], name: str = "svc") -> ServiceGate:
        key = f"scenario-{next(_keys)}"
        if kind == "memory":
            return ServiceGate(name, clock, key=key)
        raise ValueError(kind)

    return make
