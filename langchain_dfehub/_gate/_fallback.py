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
        if via is None:
            via = SHARED if self.up() else LOCAL
        if via == SHARED:
            try:
                result = self.shared.run(key, model, op, now, args)
            except StoreUnavailable as error:
                self._failed(error)
                if op == "enter":
                    # Made by the shared store: queue again, locally.
                    return {"entered": False, "now": now, "notes": [], "via": via}
                if op in ("release", "admitted", "settled"):
                    return {"now": now, "notes": [], "via": via}
                # A reservation, a reading, a throttle: the local gate takes it.
            else:
                if self._down_until > 0:
                    with self._lock:
                        self._down_until = -1.0e18
                result["via"] = SHARED
                return result
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
