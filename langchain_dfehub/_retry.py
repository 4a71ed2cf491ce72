"""The one retry policy, shared by the sync and the async transport.

Two kinds of failure, bounded two ways:

- **Errors** (5xx, 408, connection failures, connect timeouts) are retried at
  most `max_retries` times, with tenacity's small parts: a `retry` predicate,
  a `stop`, and a `wait` that honours a server's `Retry-After` and otherwise
  backs off exponentially with jitter.
- **Throttles** are the service saying "not now" to every caller at once, so
  they are waited out at the service's shared gate (`_gate`), not counted as
  failed attempts: a fair queue of many calls would exhaust any count. They
  are bounded by time instead: `max_retry_wait` for one wait the server asks,
  `throttle_budget` for all the throttle waits of one call.

`RetryPolicy.start()` makes the per-call state; its `passage()` (sync) and
`apassage()` (async) wait at the gate before each send and tell the gate how
the send went. `Retrying` and `AsyncRetrying` take the same parts, so both
paths behave the same.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

from tenacity import AsyncRetrying, RetryCallState, Retrying
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from langchain_dfehub._errors import DfeHubError, DfeHubRateLimitError
from langchain_dfehub._gate import Reservation, ServiceGate, Ticket

logger = logging.getLogger("langchain_dfehub")

# Past this many doublings the backoff is at its cap anyway; stopping here
# keeps 2.0 ** n from overflowing on a very long retry run.
_MAX_DOUBLINGS = 64
# A last guard against a loop, far beyond what the time budget allows.
_MAX_THROTTLED_ATTEMPTS = 10_000


class wait_backoff(wait_base):  # noqa: N801 - named like tenacity's waits
    """Exponential backoff with jitter: `initial * 2**(n-1)` plus up to `initial`.

    `n` counts the call's failed attempts that were errors, not throttles.
    Our own rather than tenacity's `wait_exponential_jitter`: its `initial`
    argument warns of deprecation in recent tenacity releases, and older ones
    (which we support) lack its replacement, `multiplier`.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum

    def __call__(self, retry_state: RetryCallState) -> float:
        """Return the seconds to sleep before the next attempt."""
        doublings = min(max(_call(retry_state).errors, 1) - 1, _MAX_DOUBLINGS)
        jitter = random.uniform(0, self.initial)  # noqa: S311 - not for secrets
        return max(0.0, min(self.initial * 2.0**doublings + jitter, self.maximum))


class wait_server_hint(wait_base):  # noqa: N801 - named like tenacity's waits
    """Wait as long as the server asked; fall back to another wait otherwise.

    A throttle waits nothing here: the call waits at the gate before its next
    send, for as long as the gate is closed.
    """

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        """Return the seconds to sleep before the next attempt."""
        error = _failure(retry_state)
        if isinstance(error, DfeHubRateLimitError):
            return 0.0
        if error is not None and error.retry_after is not None:
            return max(error.retry_after, 0.0)
        return float(self.fallback(retry_state))


class stop_after_errors(stop_base):  # noqa: N801 - named like tenacity's stops
    """Stop once a call has failed `max_retries + 1` times with errors."""

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries

    def __call__(self, retry_state: RetryCallState) -> bool:
        """Whether to give up now."""
        call = _call(retry_state)
        if call.throttles >= _MAX_THROTTLED_ATTEMPTS:
            return True
        if call.deadline_at is not None and time.monotonic() >= call.deadline_at:
            return True
        return call.errors > self.max_retries


def _failure(retry_state: RetryCallState) -> DfeHubError | None:
    outcome = retry_state.outcome
    if outcome is None or not outcome.failed:
        return None
    error = outcome.exception()
    return error if isinstance(error, DfeHubError) else None


def _call(retry_state: RetryCallState) -> Call:
    call: Call = retry_state.retry_object.dfehub_call  # type: ignore[attr-defined]
    return call


@dataclass(frozen=True)
class RetryPolicy:
    """How ChatDfeHub retries errors and waits out throttles.

    `sleep` replaces the real sleep (tests pass a fake that records waits,
    and give the gate a clock that the fake advances); it may be a plain or
    an async function, and serves both paths.
    """

    max_retries: int
    max_retry_wait: float
    throttle_budget: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    gate: ServiceGate = field(default_factory=lambda: ServiceGate("the server"))
    sleep: Callable[[float], Any] | None = None

    def start(self, deadline_at: float | None = None) -> Call:
        """The state of one call: its attempts, its throttle waits, its gate.

        `deadline_at` (monotonic) is when the call must be over: no wait at
        the gate and no retry may run past it.
        """
        return Call(self, deadline_at)

    def should_retry(self, error: BaseException) -> bool:
        """Whether a failed attempt is worth another one."""
        if not isinstance(error, DfeHubError) or not error.retryable:
            return False
        if error.received_chars:
            # Text already reached the caller; a retry would repeat it.
            return False
        if isinstance(error, DfeHubRateLimitError) and self.throttle_budget <= 0:
            return False
        return error.retry_after is None or error.retry_after <= self.max_retry_wait


class Call:
    """One call's retries: counts, throttle time spent, the last gate ticket."""

    def __init__(self, policy: RetryPolicy, deadline_at: float | None = None) -> None:
        self.policy = policy
        self.deadline_at = deadline_at
        self.errors = 0
        self.throttles = 0
        self.throttle_waited = 0.0
        self._ticket: Ticket | None = None

    # --- tenacity ------------------------------------------------------------

    def _retry(self, retry_state: RetryCallState) -> bool:
        """Tenacity's `retry` predicate; also counts the call's failures."""
        error = _failure(retry_state)
        if error is None:
            return False  # a success, or a bug of ours: neither is retried
        if isinstance(error, DfeHubRateLimitError):
            self.throttles += 1
        else:
            self.errors += 1
        error.attempts = retry_state.attempt_number
        return self.policy.should_retry(error)

    def _parts(self) -> dict[str, Any]:
        policy = self.policy
        return {
            "retry": self._retry,
            "stop": stop_after_errors(policy.max_retries),
            "wait": wait_server_hint(
                wait_backoff(policy.backoff_initial, policy.backoff_max)
            ),
            "before_sleep": _log_retry,
            "retry_error_callback": _give_up,
        }

    def retrying(self) -> Retrying:
        """The sync controller of this call."""
        controller = Retrying(sleep=self._sleep, **self._parts())
        controller.dfehub_call = self  # type: ignore[attr-defined]
        return controller

    def _sleep(self, seconds: float) -> None:
        # A throttle's retry waits nothing here (the gate waits instead).
        if seconds > 0:
            (self.policy.sleep or time.sleep)(seconds)

    def async_retrying(self) -> AsyncRetrying:
        """The async controller of this call."""
        controller = AsyncRetrying(sleep=self._async_sleep, **self._parts())
        controller.dfehub_call = self  # type: ignore[attr-defined]
        return controller

    async def _async_sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        sleep = self.policy.sleep
        if sleep is None:
            await asyncio.sleep(seconds)
            return
        result = sleep(seconds)
        if inspect.isawaitable(result):
            await result

    # --- the gate ------------------------------------------------------------

    @contextmanager
    def passage(self) -> Iterator[None]:
        """Wait at the gate, send (the body of the `with`), report the outcome."""
        gate = self.policy.gate
        while True:
            reservation = gate.reserve(gate.clock())
            delay = self._check_wait(reservation, gate)
            if delay > 0:
                (self.policy.sleep or time.sleep)(delay)
            ticket = gate.enter(reservation, gate.clock())
            if ticket is not None:
                break
        with self._reporting(ticket):
            yield

    @asynccontextmanager
    async def apassage(self) -> AsyncIterator[None]:
        """The async twin of `passage`."""
        gate = self.policy.gate
        while True:
            reservation = gate.reserve(gate.clock())
            delay = self._check_wait(reservation, gate)
            if delay > 0:
                await self._async_sleep(delay)
            ticket = gate.enter(reservation, gate.clock())
            if ticket is not None:
                break
        with self._reporting(ticket):
            yield

    def throttled_late(self, error: DfeHubRateLimitError) -> None:
        """A throttle after the answer began: not retried, but the gate learns."""
        if self._ticket is not None:
            gate = self.policy.gate
            gate.throttled(self._ticket, error.retry_after, gate.clock())

    def _check_wait(self, reservation: Reservation, gate: ServiceGate) -> float:
        """The wait before the reserved moment, if the call's bounds allow it."""
        delay = reservation.at - gate.clock()
        if delay <= 0:
            return 0.0
        policy = self.policy
        if delay > policy.max_retry_wait:
            raise _gate_error(
                gate,
                delay,
                f"longer than max_retry_wait ({policy.max_retry_wait:g} s)",
            )
        if self.deadline_at is not None and time.monotonic() + delay > self.deadline_at:
            raise _gate_error(gate, delay, "past this call's deadline")
        if self.throttle_waited + delay > policy.throttle_budget:
            raise _gate_error(
                gate,
                delay,
                f"past this call's throttle_budget ({policy.throttle_budget:g} s,"
                f" {self.throttle_waited:.3g} s already waited)",
            )
        self.throttle_waited += delay
        return delay

    @contextmanager
    def _reporting(self, ticket: Ticket) -> Iterator[None]:
        """Tell the gate whether the service admitted or throttled the send."""
        self._ticket = ticket
        gate = self.policy.gate
        try:
            yield
        except DfeHubRateLimitError as error:
            gate.throttled(ticket, error.retry_after, gate.clock())
            raise
        except DfeHubError as error:
            if error.status_code is not None:
                gate.admitted(ticket)  # the service answered, and not "wait"
            raise
        else:
            gate.admitted(ticket)


def _gate_error(gate: ServiceGate, delay: float, bound: str) -> DfeHubRateLimitError:
    error = DfeHubRateLimitError(
        f"{gate.name} is throttling: this call would wait {delay:.3g} s more at"
        f" its throttle, {bound}, so it was not sent. Retry later, or raise"
        " max_retry_wait / throttle_budget to let ChatDfeHub wait longer.",
        retry_after=delay,
    )
    error.retryable = False
    return error


def _log_retry(retry_state: RetryCallState) -> None:
    error = _failure(retry_state)
    if isinstance(error, DfeHubRateLimitError):
        return  # the gate logs each throttle once, not once per waiting call
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    reason = type(error).__name__ if error is not None else "unknown failure"
    if error is not None and error.status_code is not None:
        reason += f" (HTTP {error.status_code})"
    asked = (
        " as the server asked"
        if error is not None and error.retry_after is not None
        else ""
    )
    call = _call(retry_state)
    logger.warning(
        "Request to %s failed with %s; retrying in %.3g s%s (attempt %d of %d).",
        call.policy.gate.name,
        reason,
        wait,
        asked,
        call.errors + 1,
        call.policy.max_retries + 1,
    )


def _give_up(retry_state: RetryCallState) -> NoReturn:
    """Re-raise the last error once attempts run out (its `attempts` is set)."""
    error = _failure(retry_state)
    if error is None:  # unreachable: only a DfeHubError is ever retried
        raise RuntimeError("retries ran out without a DfeHubError")
    raise error
