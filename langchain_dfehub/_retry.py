"""The one retry policy, shared by the sync and the async transport.

Built from tenacity's small parts: a `retry` predicate (what is worth trying
again), a `stop` (how many times), and a custom `wait` that sleeps as long as
the server asked (its `detail` text or `Retry-After` header) and otherwise backs
off exponentially with jitter. `Retrying` and `AsyncRetrying` take the same
parts, so both paths behave the same.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from tenacity import AsyncRetrying, RetryCallState, Retrying, stop_after_attempt
from tenacity.wait import wait_base

from langchain_dfehub._errors import DfeHubError

logger = logging.getLogger("langchain_dfehub")

# Past this many doublings the backoff is at its cap anyway; stopping here
# keeps 2.0 ** n from overflowing on a very long retry run.
_MAX_DOUBLINGS = 64


class wait_backoff(wait_base):  # noqa: N801 - named like tenacity's waits
    """Exponential backoff with jitter: `initial * 2**(n-1)` plus up to `initial`.

    Our own rather than tenacity's `wait_exponential_jitter`: its `initial`
    argument warns of deprecation in recent tenacity releases, and older ones
    (which we support) lack its replacement, `multiplier`.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum

    def __call__(self, retry_state: RetryCallState) -> float:
        """Return the seconds to sleep before the next attempt."""
        doublings = min(retry_state.attempt_number - 1, _MAX_DOUBLINGS)
        jitter = random.uniform(0, self.initial)  # noqa: S311 - not for secrets
        return max(0.0, min(self.initial * 2.0**doublings + jitter, self.maximum))


class wait_server_hint(wait_base):  # noqa: N801 - named like tenacity's waits
    """Wait as long as the server asked; fall back to another wait otherwise."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        """Return the seconds to sleep before the next attempt."""
        error = _failure(retry_state)
        if error is not None and error.retry_after is not None:
            return error.retry_after
        return float(self.fallback(retry_state))


def _failure(retry_state: RetryCallState) -> DfeHubError | None:
    outcome = retry_state.outcome
    if outcome is None or not outcome.failed:
        return None
    error = outcome.exception()
    return error if isinstance(error, DfeHubError) else None


@dataclass(frozen=True)
class RetryPolicy:
    """How ChatDfeHub retries: at most `max_retries` retries, no recursion.

    A wait the server asks for that is longer than `max_retry_wait` is not
    slept through: the `DfeHubRateLimitError` reaches the caller at once, with
    `retry_after` set, so the caller decides.

    `sleep` replaces the real sleep (tests pass a fake that records waits); it
    may be a plain or an async function, and serves both controllers.
    """

    max_retries: int
    max_retry_wait: float
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    sleep: Callable[[float], Any] | None = None

    def should_retry(self, error: BaseException) -> bool:
        """Whether a failed attempt is worth another one."""
        if not isinstance(error, DfeHubError) or not error.retryable:
            return False
        if error.received_chars:
            # Text already reached the caller; a retry would repeat it.
            return False
        return error.retry_after is None or error.retry_after <= self.max_retry_wait

    def _retry(self, retry_state: RetryCallState) -> bool:
        """Tenacity's `retry` predicate; also records the attempts made so far."""
        error = _failure(retry_state)
        if error is None:
            return False  # a success, or a bug of ours: neither is retried
        error.attempts = retry_state.attempt_number
        return self.should_retry(error)

    def _parts(self) -> dict[str, Any]:
        return {
            "retry": self._retry,
            "stop": stop_after_attempt(self.max_retries + 1),
            "wait": wait_server_hint(
                wait_backoff(self.backoff_initial, self.backoff_max)
            ),
            "before_sleep": _log_retry,
            "retry_error_callback": _give_up,
        }

    def retrying(self) -> Retrying:
        """A fresh sync controller, for one call."""
        if self.sleep is not None:
            return Retrying(sleep=self.sleep, **self._parts())
        return Retrying(**self._parts())

    def async_retrying(self) -> AsyncRetrying:
        """A fresh async controller, for one call."""
        sleep = self.sleep
        if sleep is None:
            return AsyncRetrying(**self._parts())

        async def async_sleep(seconds: float) -> None:
            result = sleep(seconds)
            if inspect.isawaitable(result):
                await result

        return AsyncRetrying(sleep=async_sleep, **self._parts())


def _log_retry(retry_state: RetryCallState) -> None:
    error = _failure(retry_state)
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    reason = type(error).__name__ if error is not None else "unknown failure"
    if error is not None and error.status_code is not None:
        reason += f" (HTTP {error.status_code})"
    asked = (
        " as the server asked"
        if error is not None and error.retry_after is not None
        else ""
    )
    logger.warning(
        "DfeHub request failed with %s; retrying in %g s%s (attempt %d of %d).",
        reason,
        wait,
        asked,
        retry_state.attempt_number + 1,
        _stop_limit(retry_state),
    )


def _stop_limit(retry_state: RetryCallState) -> int:
    stop = retry_state.retry_object.stop
    return int(getattr(stop, "max_attempt_number", 0))


def _give_up(retry_state: RetryCallState) -> NoReturn:
    """Re-raise the last error once attempts run out (its `attempts` is set)."""
    error = _failure(retry_state)
    if error is None:  # unreachable: only a DfeHubError is ever retried
        raise RuntimeError("retries ran out without a DfeHubError")
    raise error
