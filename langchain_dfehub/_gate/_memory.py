"""The in-process store: the gate's records in memory, under a lock.

The default home of a gate, and the one every shared store falls back to
when it fails. Besides `run` (a decision by name, with its arguments and
result packaged as a shared store's are), it offers the two decisions every
call makes, `reserve` and `admitted`, with plain arguments and results: the
same decisions of `_decisions`, without building dicts on every call.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from langchain_dfehub._gate import _decisions
from langchain_dfehub._gate._decisions import HISTORY, Counts, Lane, Note, Reserved


def _lane() -> Lane:
    # A bounded deque drops the oldest admitted send in constant time, where
    # a full list would move thousands of entries on every admitted call.
    return Lane(history=deque(maxlen=HISTORY))


class _Records:
    def __init__(self) -> None:
        self.counts = Counts()
        self.service = _lane()
        # The lanes a call for each model passes (None: the service's only);
        # built once, so a call does not build its list.
        self.passed: dict[str | None, list[Lane]] = {None: [self.service]}

    def lanes(self, model: str | None, create: bool) -> list[Lane]:
        lanes = self.passed.get(model)
        if lanes is None:
            if not create:
                return self.passed[None]
            lanes = self.passed[model] = [self.service, _lane()]
        return lanes


class MemoryStore:
    """Gates of this process only; thread-safe, never blocks on I/O."""

    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[str, _Records] = {}

    def _records(self, key: str) -> _Records:
        records = self._gates.get(key)
        if records is None:
            records = self._gates[key] = _Records()
        return records

    def run(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one decision under the lock."""
        with self._lock:
            records = self._records(key)
            lanes = records.lanes(model, create=op != "state")
            return _decisions.apply(op, lanes, records.counts, now, args)

    async def arun(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The same: nothing here waits on I/O."""
        return self.run(key, model, op, now, args)

    def reserve(
        self,
        key: str,
        model: str | None,
        now: float,
        limit: float,
        probe_every: float,
        entering: bool,
        notes: list[Note],
    ) -> Reserved:
        """`run("reserve", ...)` unpackaged: `_decisions.reserve`'s own result."""
        with self._lock:
            records = self._records(key)
            return _decisions.reserve(
                records.lanes(model, create=True),
                records.counts,
                now,
                limit,
                probe_every,
                notes,
                entering,
            )

    def admitted(
        self, key: str, model: str | None, rid: int, sent_at: float, notes: list[Note]
    ) -> None:
        """`run("admitted", ...)` unpackaged."""
        with self._lock:
            records = self._records(key)
            lanes = records.lanes(model, create=True)
            _decisions.admitted(lanes, records.counts, rid, sent_at, notes)
