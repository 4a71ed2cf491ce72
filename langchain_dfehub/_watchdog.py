"""The sync path's whole-exchange timer: a socket is shut at its call's deadline.

A read timeout bounds one wait for data; a server that trickles its status
line or headers a byte at a time resets it with every byte, and `timeout=None`
waits for a silent server forever. Neither can be seen from the transport,
which is blocked inside `requests` until the headers are in. So one thread per
process keeps the deadlines of the calls in flight, and at a call's deadline
shuts down the socket the call is reading: the blocked read returns at once,
and the transport, seeing the deadline passed, raises its deadline error.

A call costs one heap push when it starts and one flag when it ends; nothing
runs per chunk. The async path needs no thread: the event loop has timers
(see `_async_transport`).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from langchain_dfehub import _fork

# Ended calls are dropped from the heap lazily; past this many, it is rebuilt
# (a deadline of minutes would otherwise keep every ended call of minutes).
_COMPACT_AFTER = 1024


class Watch:
    """One call's deadline, and the socket to shut when it passes."""

    __slots__ = ("at", "fired", "live", "shutdown")

    def __init__(self, at: float) -> None:
        self.at = at
        self.live = True
        self.fired = False
        self.shutdown: Callable[[], Any] | None = None


class Watchdog:
    """Shuts each attached socket at its watch's deadline, from one thread."""

    def __init__(self) -> None:
        self._reset()
        _fork.track(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._ended = 0
        self._thread: threading.Thread | None = None

    def forget_inherited(self) -> list[Any]:
        """In a forked child: no thread runs; start afresh (see `_fork`)."""
        self._reset()
        return []

    def arm(self, at: float) -> Watch:
        """Start watching a call that must be over by `at` (monotonic)."""
        watch = Watch(at)
        with self._lock:
            heapq.heappush(self._heap, (at, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="dfehub-deadline", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._wake.notify()  # sooner than what the thread waits for
        return watch

    def attach(self, watch: Watch, shutdown: Callable[[], Any]) -> None:
        """Shut the socket with `shutdown` when `watch`'s deadline passes."""
        with self._lock:
            if not watch.fired:
                watch.shutdown = shutdown
                return
        _quietly(shutdown)  # already past the deadline

    def detach(self, watch: Watch) -> None:
        """The socket is done with (its reply read whole): leave it alone.

        Called before the connection goes back to the pool, under the lock
        the firing takes, so another call's exchange on it is never cut.
        """
        with self._lock:
            watch.shutdown = None

    def disarm(self, watch: Watch) -> None:
        """The call is over."""
        with self._lock:
            watch.shutdown = None
            if not watch.live:
                return
            watch.live = False
            self._ended += 1
            if self._ended > _COMPACT_AFTER and self._ended * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[2].live]
                heapq.heapify(self._heap)
                self._ended = 0

    def _run(self) -> None:
        with self._lock:
            while True:
                heap = self._heap
                while heap and not heap[0][2].live:
                    heapq.heappop(heap)
                    self._ended -= 1
                if not heap:
                    self._wake.wait()
                    continue
                delay = heap[0][0] - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                watch = heapq.heappop(heap)[2]
                watch.live = False
                watch.fired = True
                if watch.shutdown is not None:
                    _quietly(watch.shutdown)
                    watch.shutdown = None


def _quietly(shutdown: Callable[[], Any]) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to cut
        shutdown()


WATCHDOG = Watchdog()
