"""A shared store that never fails a call: the in-process store stands in.

Redis down, slow or answering errors, a SQLite file locked or unreadable:
the gate's decisions go to the in-process store at once, one WARNING names
the store (never its password), and the shared store is tried again after
`RETRY_AFTER` seconds. A reservation or ticket is reported back to the store
that made it; if that store is gone meanwhile, the report is dropped (a
reservation is simply made again).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from langchain_dfehub._gate._memory import MemoryStore
from langchain_dfehub._gate._store import GateStore, StoreUnavailable

logger = logging.getLogger("langchain_dfehub")

# Seconds before a failed shared store is tried again.
RETRY_AFTER = 5.0

SHARED = "shared"
LOCAL = "local"


class FallbackStore:
    """`shared`, with a `MemoryStore` for the moments it fails."""

    def __init__(self, shared: GateStore, label: str) -> None:
        self.shared = shared
        self.local = MemoryStore()
        self.label = label  # the store's URL, its password hidden
        self.retry_after = RETRY_AFTER
        self._down_until = -1.0e18
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        """The shared store's kind, or "memory" while it is down."""
        return self.shared.kind if self.up() else self.local.kind

    def up(self) -> bool:
        """Whether calls go to the shared store now."""
        return time.monotonic() >= self._down_until

    def run(
        self,
        key: str,
        model: str | None,
        op: str,
        now: float,
        args: dict[str, Any],
        via: str | None = None,
    ) -> dict[str, Any]:
        """Run on the store that made `via`'s reservation, or the current one."""
        via = self._via(via)
        if via == SHARED:
            try:
                result = self.shared.run(key, model, op, now, args)
            except StoreUnavailable as error:
                stand_in = self._stand_in(error, op, now)
                if stand_in is not None:
                    return stand_in
            else:
                return self._shared(result)
        return self._local(key, model, op, now, args)

    async def arun(
        self,
        key: str,
        model: str | None,
        op: str,
        now: float,
        args: dict[str, Any],
        via: str | None = None,
    ) -> dict[str, Any]:
        """The async twin of `run`."""
        via = self._via(via)
        if via == SHARED:
            try:
                result = await self.shared.arun(key, model, op, now, args)
            except StoreUnavailable as error:
                stand_in = self._stand_in(error, op, now)
                if stand_in is not None:
                    return stand_in
            else:
                return self._shared(result)
        return self._local(key, model, op, now, args)

    def _via(self, via: str | None) -> str:
        if via is not None:
            return via
        return SHARED if self.up() else LOCAL

    def _stand_in(
        self, error: StoreUnavailable, op: str, now: float
    ) -> dict[str, Any] | None:
        """What a failed shared decision becomes; None: the local gate decides."""
        self._failed(error)
        if op == "enter":
            # Made by the shared store: queue again, locally.
            return {"entered": False, "now": now, "notes": [], "via": SHARED}
        if op in ("release", "admitted", "settled"):
            return {"now": now, "notes": [], "via": SHARED}
        return None  # a reservation, a reading, a throttle: the local gate takes it

    def _shared(self, result: dict[str, Any]) -> dict[str, Any]:
        if self._down_until > 0:
            with self._lock:
                self._down_until = -1.0e18
        result["via"] = SHARED
        return result

    def _local(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        result = self.local.run(key, model, op, now, args)
        result["via"] = LOCAL
        return result

    def _failed(self, error: StoreUnavailable) -> None:
        with self._lock:
            was_up = self.up()
            self._down_until = time.monotonic() + self.retry_after
        if was_up:
            logger.warning(
                "The gate store %s failed (%s); calls use this process's own gate"
                " and the store is tried again in %g s.",
                self.label,
                error,
                self.retry_after,
            )
