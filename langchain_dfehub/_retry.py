"""The one retry policy, shared by the sync and the async transport.

Two kinds of failure, bounded two ways:

- **Errors** (5xx, 408, connection failures, connect timeouts) are retried at
  most `max_retries` times, with tenacity's small parts: a `retry` predicate,
  a `stop`, and a `wait` that honours a server's `Retry-After` and otherwise
  backs off exponentially with jitter.
- **Throttles** are the service saying "not now" to every caller at once, so
  they are waited out at the service's shared gate (`_gate`), not counted as
  failed attempts: a fair queue of many calls would exhaust any count. They
  are bounded by time instead: `max_retry_wait` for one wait (asked by the
  server, or left at the gate), `throttle_budget` for the whole throttle loop
  of one call (its throttled requests and its waits), and by a cap on the
  throttled requests of one call (`MAX_THROTTLED_REQUESTS`). Every bound is
  checked before a call takes a place at the gate, and a call that leaves
  the gate unsent, for whatever reason, gives its place back.
- `max_retries=0` means one request and no waiting, as in every LangChain
  integration: a throttle, or a gate that would make the call wait, raises
  `DfeHubRateLimitError` at once with `retry_after` set.

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
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn, TypeVar

from tenacity import AsyncRetrying, AttemptManager, RetryCallState, Retrying
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from langchain_dfehub._errors import DfeHubError, DfeHubRateLimitError, _excerpt
from langchain_dfehub._gate import Reservation, ServiceGate, Ticket
from langchain_dfehub._throttle import throttle_is_per_model

logger = logging.getLogger("langchain_dfehub")

# Past this many doublings the backoff is at its cap anyway; stopping here
# keeps 2.0 ** n from overflowing on a very long retry run.
_MAX_DOUBLINGS = 64


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
    send, for as long as the gate is closed. A wait that would run past the
    call's deadline is not slept at all: the call gives up at once with the
    error that asked for it (see `Call.wait_or_give_up`).
    """

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        """Return the seconds to sleep before the next attempt."""
        error = _failure(retry_state)
        if isinstance(error, DfeHubRateLimitError):
            return 0.0
        if error is not None and error.retry_after is not None:
            seconds = max(error.retry_after, 0.0)
        else:
            seconds = float(self.fallback(retry_state))
        return _call(retry_state).wait_or_give_up(seconds, error)


class stop_after_errors(stop_base):  # noqa: N801 - named like tenacity's stops
    """Stop once a call has failed `max_retries + 1` times with errors.

    Also stops a call whose throttles ran into one of their bounds (the
    call then raises the error that names it), and one past its deadline.
    """

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries

    def __call__(self, retry_state: RetryCallState) -> bool:
        """Whether to give up now."""
        call = _call(retry_state)
        if call.give_up is not None:
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


class _Retrying(Retrying):
    """tenacity's controller, without its decision after a success.

    Once an attempt succeeds, tenacity asks the `retry` predicate, which
    answers no to every success here (`Call._retry`), and stops: the
    answer is known without the asking, which a call would pay for on
    every success.
    """

    def __iter__(self) -> Generator[AttemptManager, None, None]:
        attempts = super().__iter__()
        for attempt in attempts:
            yield attempt
            outcome = attempt.retry_state.outcome
            if outcome is not None and not outcome.failed:
                attempts.close()
                return


class _AsyncRetrying(AsyncRetrying):
    """The async twin of `_Retrying`."""

    async def __anext__(self) -> AttemptManager:
        state = getattr(self, "_retry_state", None)
        outcome = None if state is None else state.outcome
        if outcome is not None and not outcome.failed:
            raise StopAsyncIteration
        attempt: AttemptManager = await super().__anext__()
        return attempt


@dataclass(frozen=True)
class RetryPolicy:
    """How ChatDfeHub retries errors and waits out throttles.

    `sleep` replaces the real sleep (tests pass a fake that records waits,
    and give the gate a clock that the fake advances); it may be a plain or
    an async function, and serves both paths. `model` names the lane of the
    gate a call also passes; `throttle_scope` says which lane a throttle
    closes: `"service"`, `"model"`, or `"auto"` (read from its words).
    """

    max_retries: int
    max_retry_wait: float
    throttle_budget: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    gate: ServiceGate = field(default_factory=lambda: ServiceGate("the server"))
    sleep: Callable[[float], Any] | None = None
    model: str | None = None
    throttle_scope: str = "auto"

    def start(self, deadline_at: float | None = None) -> Call:
        """The state of one call: its attempts, its throttle waits, its gate.

        `deadline_at` (monotonic) is when the call must be over: no wait at
        the gate and no retry may run past it.
        """
        return Call(self, deadline_at)

    def should_retry(self, error: BaseException) -> bool:
        """Whether a failed attempt is worth another one, by itself.

        A call adds its own bounds on throttles (`Call`): the time spent in
        its throttle loop and the requests throttled.
        """
        if not isinstance(error, DfeHubError) or not error.retryable:
            return False
        if error.received_chars:
            # Text already reached the caller; a retry would repeat it.
            return False
        if isinstance(error, DfeHubRateLimitError) and (
            self.throttle_budget <= 0 or self.max_retries == 0
        ):
            return False
        return error.retry_after is None or error.retry_after <= self.max_retry_wait

    def per_model(self, error: DfeHubRateLimitError) -> bool:
        """Whether a throttle is about the call's model rather than the client."""
        if self.model is None or self.throttle_scope == "service":
            return False
        if self.throttle_scope == "model":
            return True
        return throttle_is_per_model(error.detail, self.model)


class Call:
    """One call's retries: counts, throttle time spent, the last gate ticket.

    It is also the context of each send (`with call.passage():`, or `async
    with call.apassage():`): entering waits at the gate, leaving tells the
    gate how the send went.

    Attributes:
        errors: Failed attempts that were errors (bounded by `max_retries`).
        throttled: Requests of this call the service throttled.
        sent: Requests sent, of every kind.
        waited: Seconds spent waiting at the gate.
        give_up: The error that ends the call before its next send: its
            throttles reached a bound, or a retry's wait would pass the
            deadline.
    """

    def __init__(self, policy: RetryPolicy, deadline_at: float | None = None) -> None:
        self.policy = policy
        self.deadline_at = deadline_at
        self.errors = 0
        self.throttled = 0
        self.sent = 0
        self.waited = 0.0
        self.give_up: DfeHubError | None = None
        self._last_throttle: DfeHubRateLimitError | None = None
        self._loop_since: float | None = None  # gate clock: the throttle loop began
        self._ticket: Ticket | None = None

    # --- tenacity ------------------------------------------------------------

    def _retry(self, retry_state: RetryCallState) -> bool:
        """Tenacity's `retry` predicate; also counts the call's failures."""
        error = _failure(retry_state)
        if error is None:
            return False  # a success, or a bug of ours: neither is retried
        if error is self.give_up:
            return False  # refused at the gate: raised as it is
        error.attempts = max(self.sent, 1)
        if not isinstance(error, DfeHubRateLimitError):
            self.errors += 1
            return self.policy.should_retry(error)
        if not self.policy.should_retry(error):
            self._annotate(error)
            return False
        bound = self._throttle_bound()
        if bound is not None:
            self.give_up = _exhausted(self, error, error.retry_after, bound)
            return True  # so that the stop raises `give_up`
        return True

    def _throttle_bound(self) -> str | None:
        """The bound a throttled call has reached, if any: it is sent no more."""
        policy = self.policy
        if self.throttled >= MAX_THROTTLED_REQUESTS:
            return (
                f"after {self.throttled} throttled requests, the most one call"
                " sends into a throttle"
            )
        spent = self._spent(policy.gate.clock())
        if spent >= policy.throttle_budget:
            return (
                f"past this call's throttle_budget ({policy.throttle_budget:g} s,"
                f" {spent:.3g} s already spent on throttles)"
            )
        return None

    def _annotate(self, error: DfeHubRateLimitError) -> None:
        error.waited = self.waited

    def _spent(self, now: float) -> float:
        """Seconds since this call's throttle loop began (sends and waits)."""
        return 0.0 if self._loop_since is None else max(now - self._loop_since, 0.0)

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
        controller = _Retrying(sleep=self._sleep, **self._parts())
        controller.dfehub_call = self  # type: ignore[attr-defined]
        return controller

    def _sleep(self, seconds: float) -> None:
        # A throttle's retry waits nothing here (the gate waits instead).
        if seconds > 0:
            (self.policy.sleep or time.sleep)(seconds)

    def async_retrying(self) -> AsyncRetrying:
        """The async controller of this call."""
        controller = _AsyncRetrying(sleep=self._async_sleep, **self._parts())
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

    def wait_or_give_up(self, seconds: float, error: DfeHubError | None) -> float:
        """A retry's wait, or none when it would run past the deadline.

        Then nothing more is sent: the next attempt raises `error` (the last
        reply, with its `retry_after`) before sending, rather than sleeping
        into the deadline and sending a request too late to be answered.
        """
        if (
            self.deadline_at is not None
            and error is not None
            and time.monotonic() + seconds >= self.deadline_at
        ):
            self.give_up = error
            return 0.0
        return seconds

    # --- the gate ------------------------------------------------------------

    def passage(self) -> Call:
        """Wait at the gate, send (the body of the `with`), report the outcome.

        The call is that context itself (entering waits at the gate, leaving
        reports the send): one passage at a time, and no object made per
        passage. `apassage` is the same for `async with`.
        """
        return self

    def apassage(self) -> Call:
        """The async twin of `passage`; a shared store is asked without blocking."""
        return self

    def __enter__(self) -> None:
        gate = self.policy.gate
        reservation, delay = self._reserve(gate)
        ticket = reservation.ticket  # not None: it may send now, and entered
        if ticket is None:
            ticket = self._wait_at_gate(gate, reservation, delay)
        self._ticket = ticket
        self.sent += 1

    def _wait_at_gate(
        self, gate: ServiceGate, reservation: Reservation, delay: float
    ) -> Ticket:
        """Wait until the gate lets the call in; the sync path's queue."""
        ticket = None
        try:
            while True:
                if delay > 0:
                    try:
                        (self.policy.sleep or time.sleep)(delay)
                    except BaseException:
                        gate.release(reservation)  # leaving unsent: give it back
                        raise
                    self.waited += delay
                ticket = gate.enter(reservation, gate.clock())
                if ticket is not None:
                    return ticket
                reservation, delay = self._reserve(gate)
                if reservation.ticket is not None:
                    return reservation.ticket
        except BaseException:
            if ticket is not None:  # interrupted between entering and sending
                gate.settled(ticket, unsent=True)
            raise

    async def __aenter__(self) -> None:
        gate = self.policy.gate
        if gate.inline:  # decided here without waiting: the sync decision
            reservation, delay = self._reserve(gate)
        else:
            reservation, delay = await self._areserve(gate)
        ticket = reservation.ticket
        if ticket is None:
            ticket = await self._await_gate(gate, reservation, delay)
        self._ticket = ticket
        self.sent += 1

    async def _await_gate(
        self, gate: ServiceGate, reservation: Reservation, delay: float
    ) -> Ticket:
        """The async twin of `_wait_at_gate`."""
        ticket = None
        try:
            while True:
                if delay > 0:
                    try:
                        await self._async_sleep(delay)
                    except BaseException:  # cancelled, timed out: leaving unsent
                        gate.release(reservation)
                        raise
                    self.waited += delay
                ticket = await _kept_or_given_back(
                    gate,
                    gate.aenter(reservation, gate.clock()),
                    lambda entered: _leave_unsent(gate, entered),
                )
                if ticket is not None:
                    return ticket
                reservation, delay = await self._areserve(gate)
                if reservation.ticket is not None:
                    return reservation.ticket
        except BaseException:
            if ticket is not None:  # cancelled between entering and sending
                gate.settled(ticket, unsent=True)
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Tell the gate whether the service admitted or throttled the send."""
        gate = self.policy.gate
        ticket = self._ticket
        assert ticket is not None  # set by entering
        verdict = _verdict(error)
        if verdict is _ADMITTED:
            gate.admitted(ticket)
        elif isinstance(verdict, DfeHubRateLimitError):
            gate.throttled(
                ticket,
                verdict.retry_after,
                gate.clock(),
                per_model=self._note_throttle(ticket, verdict),
            )
        else:
            gate.settled(ticket)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """The async twin of `__exit__` (a cancel is reported at once, sync)."""
        gate = self.policy.gate
        if gate.inline:
            self.__exit__(kind, error, traceback)
            return
        ticket = self._ticket
        assert ticket is not None  # set by entering
        verdict = _verdict(error)
        if verdict is _ADMITTED:
            await gate.aadmitted(ticket)
        elif isinstance(verdict, DfeHubRateLimitError):
            await gate.athrottled(
                ticket,
                verdict.retry_after,
                gate.clock(),
                per_model=self._note_throttle(ticket, verdict),
            )
        else:
            gate.settled(ticket)  # sync: a cancel is reported at once

    def throttled_late(self, error: DfeHubRateLimitError) -> None:
        """A throttle after the answer began: not retried, but the gate learns."""
        if self._ticket is not None:
            gate = self.policy.gate
            gate.throttled(
                self._ticket,
                error.retry_after,
                gate.clock(),
                per_model=self.policy.per_model(error),
            )

    async def athrottled_late(self, error: DfeHubRateLimitError) -> None:
        """The async twin of `throttled_late`."""
        if self._ticket is not None:
            gate = self.policy.gate
            await gate.athrottled(
                self._ticket,
                error.retry_after,
                gate.clock(),
                per_model=self.policy.per_model(error),
            )

    def _reserve(self, gate: ServiceGate) -> tuple[Reservation, float]:
        """Reserve a passage within the call's bounds; raise if none fits."""
        if self.give_up is not None:
            raise self.give_up  # a retry's wait would have passed the deadline
        now = gate.clock()
        limit, bound = self._limit(now)
        reservation = gate.reserve(now, self.policy.model, limit, enter=True)
        return reservation, self._after_reserving(reservation, now, bound)

    async def _areserve(self, gate: ServiceGate) -> tuple[Reservation, float]:
        """The async twin of `_reserve`."""
        if self.give_up is not None:
            raise self.give_up
        now = gate.clock()
        limit, bound = self._limit(now)
        reservation = await _kept_or_given_back(
            gate,
            gate.areserve(now, self.policy.model, limit, enter=True),
            lambda taken: _give_back(gate, taken),
        )
        return reservation, self._after_reserving(reservation, now, bound)

    def _after_reserving(
        self, reservation: Reservation, now: float, bound: int
    ) -> float:
        delay = max(reservation.at - now, 0.0)
        if reservation.refused:
            what = self._bound_text(bound, now)
            self.give_up = _exhausted(self, self._last_throttle, delay, what)
            raise self.give_up
        if delay > 0 and self._loop_since is None:
            self._loop_since = now
        return delay

    def _limit(self, now: float) -> tuple[float, int]:
        """The longest this call may wait at the gate now, and what bounds it.

        The bound comes back as one of the `_BY_*` numbers: its words are
        written (`_bound_text`) only for a call the gate refuses. Of equal
        bounds, the first of max_retry_wait, budget and deadline is named.
        """
        policy = self.policy
        if policy.max_retries == 0:
            return 0.0, _BY_NO_WAITING
        limit, bound = policy.max_retry_wait, _BY_MAX_RETRY_WAIT
        left = policy.throttle_budget - self._spent(now)
        if left < limit:
            limit, bound = left, _BY_BUDGET
        if self.deadline_at is not None:
            left = self.deadline_at - time.monotonic()
            if left < limit:
                limit, bound = left, _BY_DEADLINE
        return max(limit, 0.0), bound

    def _bound_text(self, bound: int, now: float) -> str:
        """The words for a bound `_limit` named at `now`."""
        policy = self.policy
        if bound == _BY_NO_WAITING:
            return "and max_retries=0 sends without waiting"
        if bound == _BY_MAX_RETRY_WAIT:
            return f"longer than max_retry_wait ({policy.max_retry_wait:g} s)"
        if bound == _BY_BUDGET:
            return (
                f"past this call's throttle_budget ({policy.throttle_budget:g} s,"
                f" {self._spent(now):.3g} s already spent on throttles)"
            )
        return "past this call's deadline"

    def _note_throttle(self, ticket: Ticket, error: DfeHubRateLimitError) -> bool:
        """Count a throttle of this call; return whether it is about the model."""
        self.throttled += 1
        self._last_throttle = error
        if self._loop_since is None:
            self._loop_since = ticket.sent_at
        return self.policy.per_model(error)


# What bounds a call's wait at the gate (see `Call._limit`).
_BY_NO_WAITING, _BY_MAX_RETRY_WAIT, _BY_BUDGET, _BY_DEADLINE = range(4)

# What a send's outcome tells the gate (`_verdict`), besides a throttle.
_ADMITTED = "admitted"
_NO_VERDICT = "no verdict"


def _verdict(error: BaseException | None) -> DfeHubRateLimitError | str:
    """What a send's outcome tells the gate, the same on both paths.

    The throttle itself; `_ADMITTED` when the service answered, and not with
    "wait" (an error with a status counts); `_NO_VERDICT` for a network
    failure, a cancel or an interrupt: the send is only settled.
    """
    if error is None:
        return _ADMITTED
    if isinstance(error, DfeHubRateLimitError):
        return error
    if isinstance(error, DfeHubError) and error.status_code is not None:
        return _ADMITTED
    return _NO_VERDICT


# A throttle storm's last bound: a call sends at most this many requests that
# the service throttles. Far more than a fair queue needs (a call is throttled
# once or twice in a burst); it stops a server that throttles every request.
MAX_THROTTLED_REQUESTS = 10


def _exhausted(
    call: Call,
    last: DfeHubRateLimitError | None,
    delay: float | None,
    bound: str,
) -> DfeHubRateLimitError:
    """The error of a call whose throttles reached a bound.

    It keeps the last throttle's reply (status, the server's words, as the
    cause) and says how many requests were sent and how long was waited.
    """
    gate = call.policy.gate
    if delay is not None and delay > 0:
        what = f"this call would wait {delay:.3g} s more at its throttle, {bound}"
    else:
        what = f"this call stopped {bound}"
    said = f" The server said: {_excerpt(last.detail)!r}." if last is not None else ""
    error = DfeHubRateLimitError(
        f"{gate.name} is throttling: {what}, so it was not sent again.{said}"
        f" {call.sent} request(s) sent, {call.waited:.3g} s waited. Retry later,"
        " or raise max_retry_wait / throttle_budget to let ChatDfeHub wait"
        " longer.",
        status_code=last.status_code if last is not None else None,
        retry_after=delay,
        detail=last.detail if last is not None else "",
    )
    error.retryable = False
    error.attempts = call.sent
    error.waited = call.waited
    error.__cause__ = last
    return error


_Granted = TypeVar("_Granted")


async def _kept_or_given_back(
    gate: ServiceGate,
    decision: Awaitable[_Granted],
    give_back: Callable[[_Granted], None],
) -> _Granted:
    """Await a gate decision that grants a place; a cancelled call gives it back.

    A shared store decides in another thread (SQLite) or on a server
    (Redis): a call cancelled while it waits for the answer cannot stop the
    decision, which then holds a place nobody takes. The decision runs to
    its end beside the cancelled call, and what it granted is given back.
    The in-process store decides without suspending, so it needs none of
    this (a task and a shield would cost every async call).
    """
    if gate.inline:
        return await decision
    pending = asyncio.ensure_future(decision)
    try:
        return await asyncio.shield(pending)
    except BaseException:

        def hand_back(done: asyncio.Future[_Granted]) -> None:
            if not done.cancelled() and done.exception() is None:
                give_back(done.result())

        if pending.done():
            hand_back(pending)
        else:
            pending.add_done_callback(hand_back)
        raise


def _give_back(gate: ServiceGate, reservation: Reservation) -> None:
    if reservation.ticket is not None:
        gate.settled(reservation.ticket, unsent=True)
    else:
        gate.release(reservation)


def _leave_unsent(gate: ServiceGate, ticket: Ticket | None) -> None:
    if ticket is not None:
        gate.settled(ticket, unsent=True)


def _log_retry(retry_state: RetryCallState) -> None:
    error = _failure(retry_state)
    if isinstance(error, DfeHubRateLimitError):
        return  # the gate logs each throttle once, not once per waiting call
    if _call(retry_state).give_up is not None:
        return  # not retried after all: the wait would pass the deadline
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
    """Re-raise the last error once attempts run out (its `attempts` is set).

    A call whose throttles reached a bound raises the error that names it.
    """
    call = _call(retry_state)
    if call.give_up is not None:
        raise call.give_up
    error = _failure(retry_state)
    if error is None:  # unreachable: only a DfeHubError is ever retried
        raise RuntimeError("retries ran out without a DfeHubError")
    raise error
