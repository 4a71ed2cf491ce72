"""One throttle gate per service, shared by every call of the process.

A throttle is the service speaking about all our calls, not one: when it says
"Expected available in 1 second." to one call, every other call sent in that
second would be throttled too. So all calls to one service (same endpoint URL
and key) pass one `ServiceGate`, whatever model instance, thread or event loop
they come from:

- **Closed:** a throttle closes the gate for the wait the server asked.
  Calls that arrive meanwhile wait at the gate instead of being sent to be
  throttled; waiting there is not a failed attempt.
- **Paced:** when the gate reopens, the waiting calls are not all let go at
  once. The gate learns the service's rate from what it admitted before the
  throttle (see `_estimate_rate`) and spaces sends a little below it. A
  service that never throttles is never paced; the pace relaxes again when
  throttles stop.

`ServiceGate` is the pure core: it decides from times and events, under a
lock, and never sleeps. The retry policy wraps it in thin sync and async
waits (`_retry`), so both paths queue the same way.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from langchain_dfehub._urls import service_name

logger = logging.getLogger("langchain_dfehub")

# Sends are spaced this fraction of the learned rate: a sliding window has no
# slack, and a send a few milliseconds early is throttled.
_SAFETY = 0.9
# A throttle while paced means the pace was too fast: slow down at least so.
_DECREASE = 0.8
# Every this many seconds without a throttle (or thirty of the service's last
# waits, if longer: a window of minutes needs longer to show a pace holds), a
# pace relaxes by `_INCREASE`; once it has relaxed `_RELAXED_AFTER` times in
# a row, pacing stops. A throttle right after relaxing returns to the pace
# that held.
_RELAX_EVERY = 30.0
_RELAX_WAITS = 30.0
_INCREASE = 1.25
_RELAXED_AFTER = 12
# A throttle that names no wait (or a wait already over) closes the gate for
# a short backoff that doubles with each such throttle in a row.
_BACKOFF_FIRST = 0.25
_BACKOFF_MAX = 8.0
# How many admitted sends the rate estimate looks back on.
_HISTORY = 4096


@dataclass(frozen=True)
class GateState:
    """What a service's gate knows, as `ChatDfeHub.throttle_state` shows it.

    Attributes:
        closed_for: Seconds until the gate reopens; 0 when it is open.
        pace: Sends per second the gate allows, or None when it does not pace
            (before the first throttle, and once throttles have stopped).
        sent: Requests sent through the gate.
        admitted: Requests the service answered without throttling.
        throttled: Requests the service throttled.
        throttle_events: Distinct throttles; the requests in flight when the
            gate closed count as one event.
    """

    closed_for: float
    pace: float | None
    sent: int
    admitted: int
    throttled: int
    throttle_events: int


@dataclass(frozen=True)
class Reservation:
    """When a call may pass: `at` (monotonic), holding a send slot or not."""

    at: float
    epoch: int
    holds_slot: bool


@dataclass(frozen=True)
class Ticket:
    """A send the gate let through, reported back once its fate is known."""

    sent_at: float


class ServiceGate:
    """The shared gate of one service; thread-safe, never blocks on I/O.

    Args:
        name: The service's host, for log lines.
        clock: Monotonic seconds (tests pass a fake one).
    """

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        self._lock = threading.Lock()
        self._closed_until = 0.0
        self._closed_at = -math.inf  # when the last throttle event closed it
        self._epoch = 0  # advanced by every throttle event
        self._interval: float | None = None  # seconds between sends when paced
        self._next_slot = 0.0
        self._last_event = 0.0
        self._relaxations = 0
        self._relax_every = _RELAX_EVERY
        self._held_pace: float | None = None  # the pace before the last relaxing
        self._backoffs_in_row = 0
        self._episode_start = -1.0  # sends since then feed the next estimate
        self._learning = False  # a closing whose pace is learned at reopening
        self._pace_before: float | None = None
        self._relaxed_too_far = False
        self._admitted_at: deque[float] = deque(maxlen=_HISTORY)
        self._sent = 0
        self._admitted = 0
        self._throttled = 0
        self._events = 0

    # --- passing -----------------------------------------------------------

    def reserve(self, now: float) -> Reservation:
        """Say when a call may send: now, at its paced slot, or at reopening."""
        with self._lock:
            if now < self._closed_until:
                return Reservation(self._closed_until, self._epoch, holds_slot=False)
            if self._learning:
                self._learn()
            self._relax(now)
            if self._interval is None:
                return Reservation(now, self._epoch, holds_slot=True)
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
            return Reservation(slot, self._epoch, holds_slot=True)

    def enter(self, reservation: Reservation, now: float) -> Ticket | None:
        """Send now if the reservation still holds; None means reserve again.

        A reservation made before a throttle closed the gate no longer holds:
        the call queues again behind the new closing.
        """
        with self._lock:
            if (
                not reservation.holds_slot
                or reservation.epoch != self._epoch
                or now < self._closed_until
            ):
                return None
            self._sent += 1
            if self._episode_start < 0:
                self._episode_start = now
            return Ticket(now)

    # --- outcomes ----------------------------------------------------------

    def admitted(self, ticket: Ticket) -> None:
        """The service answered this send without throttling it."""
        with self._lock:
            self._admitted += 1
            self._backoffs_in_row = 0
            self._admitted_at.append(ticket.sent_at)

    def throttled(self, ticket: Ticket, wait: float | None, now: float) -> float:
        """The service throttled this send; close the gate. Returns the closing.

        Sends that left before the gate closed are answered after it did:
        their throttles belong to the same event. Each of their waits bounds
        the same reopening from above (rounded up, and late by the trip back),
        so the earliest bound holds. The pace is learned when the gate
        reopens, once the answers to the sends in flight at the closing have
        come in.
        """
        with self._lock:
            self._throttled += 1
            new_event = ticket.sent_at > self._closed_at
            if wait is None or wait <= 0:
                if new_event:
                    self._backoffs_in_row += 1
                wait = _backoff(self._backoffs_in_row)
            if not new_event:
                self._closed_until = min(self._closed_until, now + wait)
                self._next_slot = self._closed_until
                return self._closed_until
            self._events += 1
            self._epoch += 1
            self._closed_at = self._last_event = now
            self._closed_until = self._next_slot = now + wait
            if not self._learning:
                self._learning = True
                self._pace_before = self.pace_locked()
                if self._relaxations:
                    self._pace_before = self._held_pace
                    self._relaxed_too_far = True
            self._relaxations = 0
            self._relax_every = max(_RELAX_EVERY, _RELAX_WAITS * wait)
            logger.warning(
                "%s throttled a request; holding every call to it for %.3g s.",
                self.name,
                wait,
            )
            return self._closed_until

    # --- reading -----------------------------------------------------------

    def state(self) -> GateState:
        """A snapshot of the gate, for users and tests."""
        now = self.clock()
        with self._lock:
            return GateState(
                closed_for=max(0.0, self._closed_until - now),
                pace=self.pace_locked(),
                sent=self._sent,
                admitted=self._admitted,
                throttled=self._throttled,
                throttle_events=self._events,
            )

    def pace_locked(self) -> float | None:
        """Sends per second while paced (call with the lock held)."""
        return None if self._interval is None else 1.0 / self._interval

    # --- learning ----------------------------------------------------------

    def _estimate_rate(self, reopens_at: float) -> tuple[float | None, int]:
        """The rate the admitted sends of this episode show the service allows.

        A sliding-window throttle (DRF's) admits N sends per period P and, once
        full, asks to wait until its oldest send leaves the window. So if the
        k-th most recent admitted send left at `s_k` and the window frees at
        `reopens_at`, k sends fit in `reopens_at - s_k` seconds. The largest
        such rate is the estimate: for a burst it is N / P; for paced sends it
        is the pace that proved too fast.

        DRF rounds its wait up to whole seconds, and the answer takes time to
        come back, so `reopens_at` is late by up to a second or so: a span
        just above one of DRF's periods is read as that period.
        """
        best: float | None = None
        count = 0
        for sent_at in reversed(self._admitted_at):
            if sent_at < self._episode_start:
                break
            count += 1
            span = _drf_period(reopens_at - sent_at)
            if span > 0 and (best is None or count / span > best):
                best = count / span
        return best, count

    def _learn(self) -> None:
        """Set the pace at reopening, from what the last episode showed."""
        self._learning = False
        rate, admitted = self._estimate_rate(self._closed_until)
        old_pace = self._pace_before
        if rate is None:
            # Nothing was admitted since the last reopening: the pace, if
            # any, was too fast for what the service allows now.
            pace = None if old_pace is None else old_pace * _DECREASE
        elif self._relaxed_too_far and old_pace is not None:
            pace = old_pace  # it held until the pace was relaxed past it
        else:
            pace = rate * _SAFETY
            if old_pace is not None:
                pace = min(pace, old_pace * _DECREASE)
        self._relaxed_too_far = False
        self._interval = None if pace is None else 1.0 / pace
        self._episode_start = self._closed_until
        if pace is not None and pace != old_pace:
            logger.info(
                "%s reopened; pacing requests at %.3g/s (learned from %d admitted"
                " before the throttle).",
                self.name,
                pace,
                admitted,
            )

    def _relax(self, now: float) -> None:
        """Ease the pace once throttles have stopped (call with the lock held)."""
        if self._interval is None:
            return
        steps = int((now - self._last_event) // self._relax_every) - self._relaxations
        if steps <= 0:
            return
        self._relaxations += steps
        self._held_pace = _INCREASE ** (steps - 1) / self._interval
        if self._relaxations >= _RELAXED_AFTER:
            self._interval = None
            logger.info(
                "%s has not throttled for %g s; no longer pacing requests.",
                self.name,
                self._relaxations * self._relax_every,
            )
            return
        self._interval /= _INCREASE**steps
        logger.info(
            "%s has not throttled for %g s; pacing relaxed to %.3g requests/s.",
            self.name,
            self._relaxations * self._relax_every,
            1.0 / self._interval,
        )


# The periods of DRF's rates ("10/s", "3/m", "100/h", "1000/d"), and how far
# above one a measured span may be and still be read as it.
_DRF_PERIODS = (1.0, 60.0, 3600.0, 86400.0)
_ROUNDING_SLACK = 1.5


def _drf_period(span: float) -> float:
    """`span`, or the DRF period it overshoots by no more than rounding does."""
    for period in _DRF_PERIODS:
        if period <= span <= period + max(_ROUNDING_SLACK, period / 2):
            return period
    return span


def _backoff(in_row: int) -> float:
    base = min(_BACKOFF_FIRST * 2.0 ** min(in_row - 1, 32), _BACKOFF_MAX)
    return base + random.uniform(0, _BACKOFF_FIRST)  # noqa: S311 - not for secrets


# --- the registry: one gate per service per process ---------------------------

_gates: dict[tuple[str, str], ServiceGate] = {}
_registry_lock = threading.Lock()


def gate_for(url: str, secret: str | None) -> ServiceGate:
    """The process's gate for the service at `url` used with key `secret`.

    The key is kept only as a digest. Model copies, unpickled models and
    other instances with the same endpoint and key share the gate. Called on
    every request, so the service's name is worked out only for a new gate.
    """
    digest = hashlib.sha256(secret.encode()).hexdigest() if secret else ""
    key = (url, digest)
    gate = _gates.get(key)
    if gate is None:
        with _registry_lock:
            gate = _gates.get(key)
            if gate is None:
                gate = _gates[key] = ServiceGate(service_name(url))
    return gate


def forget_gates(base_url: str | None = None) -> None:
    """Drop the gates of the services under `base_url` (None: every gate).

    For a server that was restarted or reset behind a URL (a test server on
    a port that an earlier one used): the next call starts unthrottled.
    """
    with _registry_lock:
        if base_url is None:
            _gates.clear()
            return
        prefix = base_url.rstrip("/")
        for key in [key for key in _gates if key[0].startswith(prefix)]:
            del _gates[key]


def _fresh_registry_in_child() -> None:
    """A forked child never shares its parent's gates, nor a lock held there."""
    global _registry_lock
    _gates.clear()
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_registry_in_child)
