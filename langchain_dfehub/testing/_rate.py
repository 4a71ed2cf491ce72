"""Rate-based throttling with Django REST Framework's semantics.

The DfeHub service's throttle was DRF's `AnonRateThrottle`, so the emulator's
rate mode decides exactly as that class does: a rate `N/period` (`10/s`,
`3/min`, `100/hour`, `1/day`: only the period's first letter counts), a
sliding window of allowed request times per client, throttled requests not
counted, and the wait `(period - age of the oldest request in the window) /
(free slots + 1)`, which the throttle text rounds up to whole seconds.

`RateWindow` is pure (request times in, decisions out, no clock of its own),
so a test can script any sequence of times without sleeping; the server
passes it the monotonic clock.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._faults import Throttle, ThrottleForm

# DRF's periods: the first letter of second, minute, hour, day.
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"(\d+)/([smhd][a-z]*)")


@dataclass(frozen=True)
class Rate:
    """At most `requests` requests per client in any `period` seconds."""

    requests: int
    period: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Read DRF's rate syntax: `10/s`, `3/min`, `100/hour`, `1/d`."""
        match = _RATE.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            msg = (
                f"a throttle rate is N/period with a period of s, m, h or d "
                f"(second, minute, hour, day), e.g. '10/s' or '3/min'; got {text!r}"
            )
            raise ValueError(msg)
        return cls(int(match.group(1)), _PERIODS[match.group(2)[0]])


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may pass; if not, the wait DRF would advise (or None)."""

    allowed: bool
    wait: float | None = None


def drf_wait(history: Sequence[float], now: float, rate: Rate) -> float | None:
    """The wait DRF advises a throttled client (`SimpleRateThrottle.wait`).

    `history` holds the client's request times in the window, oldest first.
    None when the window holds more requests than the rate allows (DRF's
    answer after a rate was lowered), which DRF writes as a text with no wait.
    """
    remaining = rate.period - (now - history[0]) if history else rate.period
    free_slots = rate.requests - len(history)
    if free_slots + 1 <= 0:
        return None
    return remaining / float(free_slots + 1)


class RateWindow:
    """Per-client sliding windows of allowed request times, as DRF keeps them."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self._history: dict[str, deque[float]] = {}

    def check(self, client: str, now: float) -> RateDecision:
        """Decide a request of `client` at time `now` (seconds, never decreasing).

        An allowed request joins the window; a throttled one does not.
        """
        history = self._history.get(client)
        if history is None:
            history = self._history[client] = deque()
        while history and history[0] <= now - self.rate.period:
            history.popleft()
        if len(history) >= self.rate.requests:
            return RateDecision(False, drf_wait(history, now, self.rate))
        history.append(now)
        return RateDecision(True)

    def clear(self) -> None:
        """Forget every client's history."""
        self._history.clear()


def client_ident(headers: Mapping[str, str], peer: object) -> str:
    """Who a request comes from, as DRF's `get_ident` says with default settings.

    `X-Forwarded-For` with its whitespace removed when present, else the
    peer's address (`REMOTE_ADDR`). A test can send that header to act as
    several clients.
    """
    forwarded = headers.get("x-forwarded-for")
    if forwarded:
        return "".join(forwarded.split())
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


def rate_throttle(decision: RateDecision, form: ThrottleForm) -> Throttle | None:
    """The throttle answer for a refused request, in DRF's words and header.

    DRF writes the wait rounded up to whole seconds ("in 1 second.", "in 3
    seconds.") and sends the same number as `Retry-After`; with no wait, the
    text has none and there is no header.
    """
    if decision.allowed:
        return None
    if decision.wait is None:
        return Throttle(None, form)
    seconds = math.ceil(decision.wait)
    return Throttle(seconds, form, retry_after=str(seconds) if seconds else None)
