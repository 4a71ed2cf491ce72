"""The one retry policy: what is retried, how long it waits, when it gives up.

No test sleeps: the policy's `sleep=` hook records the waits instead, and
advances the clock of the gate the policy waits at.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import pytest

from langchain_dfehub._errors import (
    DfeHubConnectionError,
    DfeHubError,
    DfeHubProtocolError,
    DfeHubRateLimitError,
    DfeHubServerError,
    DfeHubTimeoutError,
    error_from_status,
    rate_limit_error,
)
from langchain_dfehub._gate import ServiceGate
from langchain_dfehub._retry import Call, RetryPolicy

URL = "http://127.0.0.1:9/v1/chat/completions"
KEY = "sk-dfehub-0123456789abcdefSECRET"


class FakeSleep:
    """Records the waits instead of sleeping, and moves its clock on by them."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class AsyncFakeSleep(FakeSleep):
    async def __call__(self, seconds: float) -> None:  # type: ignore[override]
        super().__call__(seconds)


class Server:
    """Fails with the given errors, one per call, then answers "ok"."""

    def __init__(self, failures: Iterable[DfeHubError | Exception]) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


class Always:
    """Fails every call with a fresh error made by `make`."""

    def __init__(self, make: Callable[[], DfeHubError]) -> None:
        self.make = make
        self.calls = 0
        self.last: DfeHubError | None = None

    def __call__(self) -> str:
        self.calls += 1
        self.last = self.make()
        raise self.last


def run(policy: RetryPolicy, send: Callable[[], str]) -> str:
    """Drive `send` the way the transports do."""
    result = ""
    call = policy.start()
    for attempt in call.retrying():
        with attempt, call.passage():
            result = send()
    return result


async def arun(policy: RetryPolicy, send: Callable[[], str]) -> str:
    result = ""
    call = policy.start()
    async for attempt in call.async_retrying():
        with attempt:
            async with call.apassage():
                result = send()
    return result


def policy(
    sleep: FakeSleep,
    *,
    max_retries: int = 3,
    max_retry_wait: float = 60,
    backoff_initial: float = 0.5,
    backoff_max: float = 8.0,
) -> RetryPolicy:
    return RetryPolicy(
        max_retries=max_retries,
        max_retry_wait=max_retry_wait,
        backoff_initial=backoff_initial,
        backoff_max=backoff_max,
        gate=ServiceGate("127.0.0.1:9", clock=sleep.clock),
        sleep=sleep,
    )


def throttled(detail: str = "Expected available in 3.512 seconds.") -> DfeHubError:
    return error_from_status(429, {}, f'{{"detail": "{detail}"}}'.encode(), url=URL)


def status(code: int, headers: dict[str, str] | None = None) -> DfeHubError:
    return error_from_status(code, headers or {}, b'{"detail": "nope"}', url=URL)


# --- How long it waits ---


def test_it_waits_exactly_as_long_as_the_detail_text_asks():
    sleep = FakeSleep()
    server = Server(
        [
            throttled("Expected available in 3.512 seconds."),
            throttled("Expected available in 2 seconds."),
            throttled("Expected available in 1 second."),
        ]
    )
    assert run(policy(sleep), server) == "ok"
    assert sleep.waits == pytest.approx([3.512, 2.0, 1.0])
    assert server.calls == 4


def test_it_waits_as_long_as_retry_after_asks():
    sleep = FakeSleep()
    server = Server([status(503, {"Retry-After": "4"})])
    assert run(policy(sleep), server) == "ok"
    assert sleep.waits == [4.0]


def test_a_throttle_in_the_stream_is_waited_out_like_a_429():
    sleep = FakeSleep()
    in_stream = rate_limit_error("Expected available in 0.75 s", status_code=None)
    server = Server([in_stream])
    assert run(policy(sleep), server) == "ok"
    assert sleep.waits == [0.75]


def test_without_a_server_wait_it_backs_off_exponentially_up_to_the_cap():
    sleep = FakeSleep()
    server = Server([status(500) for _ in range(6)])
    retry = policy(sleep, max_retries=6, backoff_initial=0.5, backoff_max=8.0)
    assert run(retry, server) == "ok"
    assert len(sleep.waits) == 6
    for number, wait in enumerate(sleep.waits):
        base = 0.5 * 2**number
        assert min(base, 8.0) <= wait <= min(base + 0.5, 8.0)
    assert sleep.waits == sorted(sleep.waits)
    assert sleep.waits[-1] == 8.0


def test_the_backoff_has_jitter():
    first_waits = set()
    for _ in range(20):
        sleep = FakeSleep()
        run(policy(sleep), Server([status(502)]))
        first_waits.add(sleep.waits[0])
    assert len(first_waits) > 1


def test_a_throttle_with_no_wait_closes_the_gate_for_a_short_growing_backoff():
    sleep = FakeSleep()
    server = Server([throttled("Request was throttled.")] * 3)
    assert run(policy(sleep), server) == "ok"
    first, second, third = sleep.waits
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 0.75
    assert 1.0 <= third <= 1.25


def test_the_backoff_stays_at_its_cap_after_a_thousand_retries():
    sleep = FakeSleep()
    server = Always(lambda: status(500))
    with pytest.raises(DfeHubServerError):
        run(policy(sleep, max_retries=1100, backoff_max=2.0), server)
    assert server.calls == 1101
    assert max(sleep.waits) == 2.0


# --- When it gives up ---


def test_a_server_wait_above_max_retry_wait_is_raised_at_once():
    sleep = FakeSleep()
    server = Always(lambda: throttled("Expected available in 120 seconds."))
    with pytest.raises(DfeHubRateLimitError) as caught:
        run(policy(sleep, max_retry_wait=60), server)
    assert caught.value.retry_after == 120.0
    assert caught.value.attempts == 1
    assert server.calls == 1
    assert sleep.waits == []


def test_a_server_wait_equal_to_max_retry_wait_is_waited_out():
    sleep = FakeSleep()
    server = Server([throttled("Expected available in 60 seconds.")])
    assert run(policy(sleep, max_retry_wait=60), server) == "ok"
    assert sleep.waits == [60.0]


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_it_makes_at_most_max_retries_plus_one_attempts(max_retries):
    sleep = FakeSleep()
    server = Always(lambda: status(503))
    with pytest.raises(DfeHubServerError) as caught:
        run(policy(sleep, max_retries=max_retries), server)
    assert server.calls == max_retries + 1
    assert len(sleep.waits) == max_retries
    assert caught.value is server.last
    assert caught.value.attempts == max_retries + 1
    if max_retries:
        assert f"Gave up after {max_retries + 1} attempts" in str(caught.value)


def test_a_deep_retry_count_needs_no_recursion():
    sleep = FakeSleep()
    server = Always(lambda: DfeHubConnectionError("Refused."))
    with pytest.raises(DfeHubConnectionError) as caught:
        run(policy(sleep, max_retries=50), server)
    assert server.calls == 51
    assert caught.value.attempts == 51


@pytest.mark.parametrize(
    "error",
    [
        status(400),
        status(401),
        status(403),
        status(404),
        status(422),
        DfeHubProtocolError("The server sent HTML."),
        DfeHubTimeoutError("The server went silent.", phase="read"),
    ],
    ids=["400", "401", "403", "404", "422", "protocol", "read-timeout"],
)
def test_an_error_not_worth_retrying_is_raised_at_once(error):
    sleep = FakeSleep()
    server = Server([error])
    with pytest.raises(DfeHubError) as caught:
        run(policy(sleep), server)
    assert caught.value is error
    assert server.calls == 1
    assert sleep.waits == []


def test_an_exception_that_is_not_ours_is_raised_at_once():
    sleep = FakeSleep()
    server = Server([KeyError("bug")])
    with pytest.raises(KeyError):
        run(policy(sleep), server)
    assert server.calls == 1


def test_a_failure_after_text_was_delivered_is_not_retried():
    error = DfeHubConnectionError("Cut mid-answer.")
    error.received_chars = 12
    server = Server([error])
    with pytest.raises(DfeHubConnectionError):
        run(policy(FakeSleep()), server)
    assert server.calls == 1


def test_an_error_not_retried_after_retries_says_how_many_attempts_were_made():
    server = Server([status(503), status(502), status(400)])
    with pytest.raises(DfeHubError) as caught:
        run(policy(FakeSleep()), server)
    assert caught.value.status_code == 400
    assert caught.value.attempts == 3


@pytest.mark.parametrize(
    "make",
    [
        lambda: throttled(),
        lambda: status(500),
        lambda: status(502),
        lambda: status(503),
        lambda: DfeHubConnectionError("Connection refused."),
        lambda: DfeHubTimeoutError("No connection in 5 s.", phase="connect"),
    ],
    ids=["429", "500", "502", "503", "connection", "connect-timeout"],
)
def test_a_passing_failure_is_retried(make):
    sleep = FakeSleep()
    server = Server([make(), make()])
    assert run(policy(sleep), server) == "ok"
    assert server.calls == 3
    assert len(sleep.waits) == 2


def test_should_retry_says_the_same_as_the_controller():
    retry = RetryPolicy(max_retries=2, max_retry_wait=10)
    assert retry.should_retry(status(503))
    assert retry.should_retry(throttled("Expected available in 10 seconds"))
    assert not retry.should_retry(throttled("Expected available in 11 seconds"))
    assert not retry.should_retry(status(404))
    assert not retry.should_retry(ValueError("not ours"))


def test_each_call_gets_a_fresh_count_of_attempts():
    sleep = FakeSleep()
    retry = policy(sleep, max_retries=1)
    for _ in range(3):
        assert run(retry, Server([status(500)])) == "ok"
    assert len(sleep.waits) == 3


# --- The async controller ---


async def test_async_waits_as_long_as_the_server_asks():
    sleep = AsyncFakeSleep()
    server = Server(
        [
            throttled("Expected available in 3.512 seconds"),
            throttled("Expected available in 3 seconds"),
        ]
    )
    assert await arun(policy(sleep), server) == "ok"
    assert sleep.waits == pytest.approx([3.512, 3.0])


async def test_async_backs_off_without_a_server_wait():
    sleep = AsyncFakeSleep()
    server = Server([status(500), status(500)])
    assert await arun(policy(sleep, backoff_initial=0.5), server) == "ok"
    assert 0.5 <= sleep.waits[0] <= 1.0
    assert 1.0 <= sleep.waits[1] <= 1.5


async def test_async_raises_a_wait_above_max_retry_wait_at_once():
    sleep = AsyncFakeSleep()
    server = Always(lambda: throttled("Expected available in 300 seconds"))
    with pytest.raises(DfeHubRateLimitError) as caught:
        await arun(policy(sleep, max_retry_wait=60), server)
    assert caught.value.retry_after == 300.0
    assert server.calls == 1
    assert sleep.waits == []


async def test_async_makes_at_most_max_retries_plus_one_attempts():
    sleep = AsyncFakeSleep()
    server = Always(lambda: status(502))
    with pytest.raises(DfeHubServerError) as caught:
        await arun(policy(sleep, max_retries=50), server)
    assert server.calls == 51
    assert caught.value.attempts == 51
    assert len(sleep.waits) == 50


@pytest.mark.parametrize(
    "error",
    [
        status(401),
        DfeHubProtocolError("The server sent HTML."),
        DfeHubTimeoutError("The server went silent.", phase="read"),
    ],
    ids=["401", "protocol", "read-timeout"],
)
async def test_async_raises_an_error_not_worth_retrying_at_once(error):
    server = Server([error])
    with pytest.raises(DfeHubError) as caught:
        await arun(policy(AsyncFakeSleep()), server)
    assert caught.value is error
    assert server.calls == 1


async def test_async_accepts_a_plain_sleep_function_too():
    sleep = FakeSleep()
    server = Server([throttled("Expected available in 2 seconds")])
    assert await arun(policy(sleep), server) == "ok"
    assert sleep.waits == [2.0]


# --- What it logs ---


def test_each_retry_logs_one_warning_with_the_wait_and_the_reason(caplog):
    caplog.set_level(logging.WARNING, logger="langchain_dfehub")
    server = Server([throttled("Expected available in 3.512 seconds"), status(503)])
    run(policy(FakeSleep(), backoff_initial=0.5), server)
    records = [r for r in caplog.records if r.name == "langchain_dfehub"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    first, second = (r.getMessage() for r in records)
    assert "127.0.0.1:9 throttled a request" in first
    assert "holding every call to it for 3.51 s" in first
    assert "Request to 127.0.0.1:9 failed with DfeHubServerError (HTTP 503)" in second
    # The throttle was not a failed attempt: this is the first retry of an error.
    assert "attempt 2 of 4" in second


def test_no_warning_is_logged_when_nothing_is_retried(caplog):
    caplog.set_level(logging.WARNING, logger="langchain_dfehub")
    with pytest.raises(DfeHubError):
        run(policy(FakeSleep()), Server([status(400)]))
    assert caplog.records == []


def test_the_retry_log_never_shows_a_key(caplog):
    caplog.set_level(logging.DEBUG, logger="langchain_dfehub")
    echoed = error_from_status(
        503, {}, f'{{"detail": "bad key {KEY}"}}'.encode(), url=URL, secret=KEY
    )
    careless = DfeHubConnectionError(f"Refused for Authorization: Bearer {KEY}")
    run(policy(FakeSleep()), Server([echoed, careless]))
    assert len(caplog.records) == 2
    assert KEY not in caplog.text


# --- Throttle storms, places given back, the deadline ---


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_requests_one_call_sends_into_throttles_are_capped(mode):
    from langchain_dfehub._retry import MAX_THROTTLED_REQUESTS

    sleep = AsyncFakeSleep() if mode == "async" else FakeSleep()
    server = Always(lambda: throttled("Please try again in 1ms."))
    retry = RetryPolicy(
        max_retries=3,
        max_retry_wait=1e6,
        throttle_budget=1e6,
        gate=ServiceGate("127.0.0.1:9", clock=sleep.clock),
        sleep=sleep,
    )

    def call() -> str:
        if mode == "sync":
            return run(retry, server)
        return asyncio.run(arun(retry, server))

    with pytest.raises(DfeHubRateLimitError) as caught:
        call()
    assert server.calls == MAX_THROTTLED_REQUESTS
    error = caught.value
    assert error.attempts == MAX_THROTTLED_REQUESTS
    assert error.__cause__ is server.last
    assert error.status_code == 429
    assert error.waited == pytest.approx(sum(sleep.waits))


class Interrupting(FakeSleep):
    """Raises on every sleep, as an interrupt or a cancel would."""

    def __call__(self, seconds: float) -> None:
        raise KeyboardInterrupt


class AsyncCancelling(FakeSleep):
    async def __call__(self, seconds: float) -> None:  # type: ignore[override]
        raise asyncio.CancelledError


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_call_interrupted_while_waiting_gives_its_place_back(mode):
    sleep = AsyncCancelling() if mode == "async" else Interrupting()
    gate = ServiceGate("127.0.0.1:9", clock=sleep.clock)
    # Pace the gate: ten admitted, then a throttle "for 1 second".
    tickets = [gate.enter(gate.reserve(sleep.now), sleep.now) for _ in range(11)]
    for ticket in tickets[:10]:
        gate.admitted(ticket)  # type: ignore[arg-type]
    gate.throttled(tickets[10], 1.0, sleep.now)  # type: ignore[arg-type]
    sleep.now += 1.0
    gate.admitted(gate.enter(gate.reserve(sleep.now), sleep.now))  # type: ignore[arg-type]
    retry = RetryPolicy(max_retries=2, max_retry_wait=60, gate=gate, sleep=sleep)

    def call() -> str:
        if mode == "sync":
            return run(retry, Server([]))
        return asyncio.run(arun(retry, Server([])))

    for _ in range(39):
        with pytest.raises((KeyboardInterrupt, asyncio.CancelledError)):
            call()
    assert gate.reserve(sleep.now).at <= sleep.now + 1 / 9 + 1e-9


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_retry_wait_past_the_deadline_is_not_slept_and_nothing_more_is_sent(mode):
    import time

    sleep = AsyncFakeSleep() if mode == "async" else FakeSleep()
    server = Server([status(503, {"Retry-After": "20"})])
    call = policy(sleep).start(deadline_at=time.monotonic() + 3)

    def drive() -> None:
        for attempt in call.retrying():
            with attempt, call.passage():
                server()

    async def adrive() -> None:
        async for attempt in call.async_retrying():
            with attempt:
                async with call.apassage():
                    server()

    with pytest.raises(DfeHubServerError) as caught:
        drive() if mode == "sync" else asyncio.run(adrive())
    assert sleep.waits == []
    assert server.calls == 1
    assert caught.value.retry_after == 20
    assert caught.value.attempts == 1


def _count_attempts(call: Call, server: Server) -> int:
    count = 0
    for attempt in call.retrying():
        with attempt, call.passage():
            count += 1
            server()
    return count


async def _acount_attempts(call: Call, server: Server) -> int:
    count = 0
    async for attempt in call.async_retrying():
        with attempt:
            async with call.apassage():
                count += 1
                server()
    return count


@pytest.mark.parametrize("driver", ["sync", "async"])
@pytest.mark.parametrize("failures", [0, 1, 2])
def test_a_success_ends_the_attempts_on_both_paths(failures: int, driver: str) -> None:
    """The controllers stop at a success without asking tenacity again."""
    sleep = FakeSleep() if driver == "sync" else AsyncFakeSleep()
    server = Server([status(503) for _ in range(failures)])
    call = policy(sleep).start()
    if driver == "sync":
        attempts = _count_attempts(call, server)
    else:
        attempts = asyncio.run(_acount_attempts(call, server))
    assert (attempts, server.calls, call.sent) == (failures + 1,) * 3
    assert len(sleep.waits) == failures
