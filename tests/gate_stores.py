"""The gate's stores, for the scenario suite every store must pass.

`make_gate(clock)` builds a fresh gate on one store: in memory, in a SQLite
file of the test's own, or on a real Redis server (a fresh key each time);
the shared stores decide by the fake clock's time, which the gate passes
them, so the same scenarios drive them all.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from langchain_dfehub._gate import ServiceGate
from langchain_dfehub._gate._redis import RedisStore
from langchain_dfehub._gate._sqlite import SqliteStore

STORES = ["memory", "sqlite", "redis"]
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
        if kind == "sqlite":
            store = SqliteStore(str(folder / "gates.sqlite3"))
            return ServiceGate(name, clock, store=store, key=key)
        if kind == "redis":
            assert redis_url is not None
            store = RedisStore(redis_url, server_time=False)
            return ServiceGate(name, clock, store=store, key=f"{key}-{uuid.uuid4()}")
        raise ValueError(kind)

    return make
