"""The in-process store: the gate's records in memory, under a lock.

The default home of a gate, and the one every shared store falls back to
when it fails.
"""

from __future__ import annotations

import threading
from typing import Any

from langchain_dfehub._gate._decisions import Counts, Lane, apply


class _Records:
    def __init__(self) -> None:
        self.counts = Counts()
        self.service = Lane()
        self.models: dict[str, Lane] = {}

    def lanes(self, model: str | None, create: bool) -> list[Lane]:
        if model is None:
            return [self.service]
        lane = self.models.get(model)
        if lane is None:
            if not create:
                return [self.service]
            lane = self.models[model] = Lane()
        return [self.service, lane]


class MemoryStore:
    """Gates of this process only; thread-safe, never blocks on I/O."""

    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[str, _Records] = {}

    def run(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one decision under the lock."""
        with self._lock:
            records = self._gates.get(key)
            if records is None:
                records = self._gates[key] = _Records()
            lanes = records.lanes(model, create=op != "state")
            return apply(op, lanes, records.counts, now, args)

    async def arun(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The same: nothing here waits on I/O."""
        return self.run(key, model, op, now, args)
