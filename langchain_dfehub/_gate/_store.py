"""What a store of gates is: a place where the gate's decisions run atomically.

A store keeps the records of many gates (one per service and key, under a
hashed name) and runs one decision of `_decisions` on one gate's records at
a time, as one atomic step: under a lock (memory), in a write transaction
(SQLite), as a Lua script (Redis). Times inside a store are the store's own
clock; callers get back durations from the store's `now`, so the clocks of
different hosts are never compared.
"""

from __future__ import annotations

from typing import Any, Protocol


class StoreUnavailable(Exception):  # noqa: N818 - a condition, caught, never raised to users
    """The shared store did not answer, or answered with an error.

    Never reaches a caller: the gate falls back to the in-process store.
    The message names the store without its password.
    """


class GateStore(Protocol):
    """A home for gates: memory, a SQLite file, or a Redis server."""

    @property
    def kind(self) -> str:
        """Its name in `GateState.store`: "memory", "sqlite" or "redis"."""
        ...  # pragma: no cover

    def run(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Run decision `op` on gate `key` (and `model`'s lane) atomically.

        `now` is the caller's monotonic clock; a store with its own clock
        (Redis) decides by that instead. The result carries the `now` the
        decision used. Raises `StoreUnavailable` when the store fails.
        """
        ...  # pragma: no cover

    async def arun(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The same, without blocking the event loop."""
        ...  # pragma: no cover
