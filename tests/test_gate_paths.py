"""The in-process gate's short path decides exactly as the packaged one.

Every call's two decisions (`reserve`, `admitted`) on the in-process store
skip the dicts a shared store needs, and the async path makes them without
awaiting. The same script of operations runs on that gate and on one whose
store is asked only as a shared store is (by name, with dicts, awaited and
shielded), sync and async: every reservation, ticket, reopening, state and
log line must come out the same.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from gate_stores import Clock

from langchain_dfehub._errors import DfeHubError, error_from_status
from langchain_dfehub._gate import Reservation, ServiceGate, Ticket
from langchain_dfehub._gate._memory import MemoryStore
from langchain_dfehub._retry import RetryPolicy

URL = "http://127.0.0.1:9/v1/chat/completions"


class PackagedMemory:
    """The in-process store, asked only as a shared store is: `run`/`arun`."""

    kind = "memory"

    def __init__(self) -> None:
        self.records = MemoryStore()

    def run(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        return self.records.run(key, model, op, now, args)

    async def arun(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        await asyncio.sleep(0)  # a shared store's answer takes a trip
        return self.records.run(key, model, op, now, args)


def gate_on(store: str, clock: Callable[[], float]) -> ServiceGate:
    if store == "short":
        return ServiceGate("svc", clock, key="g")
    return ServiceGate("svc", clock, store=PackagedMemory(), key="g")  # type: ignore[arg-type]


class Twins:
    """One gate's operations, sync or async, written once for the script."""

    def __init__(self, gate: ServiceGate, mode: str) -> None:
        self.gate = gate
        self.mode = mode

    def _do(self, sync: Callable[[], Any], later: Callable[[], Awaitable[Any]]) -> Any:
        if self.mode == "sync":
            return sync()
        return asyncio.run(later())

    def reserve(
        self,
        now: float,
        model: str | None = None,
        limit: float = 60.0,
        enter: bool = False,
    ) -> Reservation:
        gate = self.gate
        return self._do(  # type: ignore[no-any-return]
            lambda: gate.reserve(now, model, limit, enter=enter),
            lambda: gate.areserve(now, model, limit, enter=enter),
        )

    def enter(self, reservation: Reservation, now: float) -> Ticket | None:
        gate = self.gate
        return self._do(  # type: ignore[no-any-return]
            lambda: gate.enter(reservation, now),
            lambda: gate.aenter(reservation, now),
        )

    def admitted(self, ticket: Ticket) -> None:
        gate = self.gate
        self._do(lambda: gate.admitted(ticket), lambda: gate.aadmitted(ticket))

    def throttled(
        self, ticket: Ticket, wait: float | None, now: float, per_model: bool = False
    ) -> float:
        gate = self.gate
        return self._do(  # type: ignore[no-any-return]
            lambda: gate.throttled(ticket, wait, now, per_model=per_model),
            lambda: gate.athrottled(ticket, wait, now, per_model=per_model),
        )


def script(gate: ServiceGate, clock: Clock, mode: str) -> list[Any]:
    """A gate's life: open, closed, paced, refusals, probes, a model's lane."""
    ops = Twins(gate, mode)
    seen: list[Any] = []

    def note(value: Any) -> Any:
        seen.append(value)
        seen.append((gate.state(), gate.state("a")))
        return value

    # Open: calls enter in the same trip, with and without a model.
    for model in (None, "a", "a", None):
        free = note(ops.reserve(clock.now, model, enter=True))
        assert free.ticket is not None
        ops.admitted(free.ticket)
    # A burst, throttled: the gate closes, then paces from what it saw.
    tickets = [note(ops.reserve(clock.now, "a", enter=True)).ticket for _ in range(11)]
    for ticket in tickets[:10]:
        ops.admitted(ticket)
    note(ops.throttled(tickets[10], 1.0, clock.now))
    note(ops.reserve(clock.now + 0.5, "a", enter=True))  # closed: holds nothing
    note(ops.reserve(clock.now + 0.5, "a", limit=0.1, enter=True))  # refused
    clock.now += 1.0
    queue = [note(ops.reserve(clock.now, "a", enter=True)) for _ in range(6)]
    gate.release(queue[3])
    note(gate.state())
    for reservation in queue:
        if reservation.ticket is None and reservation is not queue[3]:
            ticket = note(ops.enter(reservation, reservation.at))
            if ticket is not None:
                ops.admitted(ticket)

    def send(model: str | None, now: float) -> tuple[Ticket, float]:
        """Reserve and enter, waiting as a call does; the ticket and the time."""
        while True:
            reservation = note(ops.reserve(now, model, enter=True))
            if reservation.ticket is not None:
                return reservation.ticket, now
            now = reservation.at
            if reservation.holds_slot:
                ticket = note(ops.enter(reservation, now))
                if ticket is not None:
                    return ticket, now

    # A model's own throttle, then a waitless one: a probe goes first.
    ticket, now = send("a", clock.now + 2.0)
    note(ops.throttled(ticket, 5.0, now, per_model=True))
    ticket, now = send(None, now + 10.0)
    clock.now = note(ops.throttled(ticket, None, now))
    probe = note(ops.reserve(clock.now, enter=True))
    assert probe.probe
    note(ops.reserve(clock.now, enter=True))  # waits for the probe's answer
    ops.admitted(probe.ticket)  # type: ignore[arg-type]
    # An entered call that leaves unsent, and a long closing with its probe.
    ticket, now = send(None, clock.now)
    gate.settled(ticket, unsent=True)
    ticket, now = send("b", now)
    clock.now = now
    note(ops.throttled(ticket, 3600.0, now))
    note(ops.reserve(clock.now + 1.0, "b", limit=60.0, enter=True))  # refused
    clock.now += gate.probe_every + 1.0
    long_probe = note(ops.reserve(clock.now, "b", limit=60.0, enter=True))
    assert long_probe.probe
    ops.admitted(long_probe.ticket)  # type: ignore[arg-type]
    # The pace relaxes, then ends, with its log lines.
    for _ in range(3):
        clock.now += 600.0
        send("a", clock.now)
    return seen


def transcript(store: str, mode: str, caplog: pytest.LogCaptureFixture) -> list[Any]:
    caplog.clear()
    random.seed(7)  # the backoff's jitter
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="langchain_dfehub"):
        seen = script(gate_on(store, clock), clock, mode)
    return [*seen, [(r.levelno, r.getMessage()) for r in caplog.records]]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_short_path_reserves_enters_and_logs_as_the_packaged_one(mode, caplog):
    packaged = transcript("packaged", mode, caplog)
    short = transcript("short", mode, caplog)
    assert short == packaged
    lines = packaged[-1]
    # The script went where it meant to: closed, paced, probed, relaxed.
    assert any("throttled a request" in text for _, text in lines)
    assert any("pacing requests at" in text for _, text in lines)
    assert any("admitted a probe" in text for _, text in lines)
    assert any("no longer pacing" in text for _, text in lines)
    refused = [r for r in packaged if isinstance(r, Reservation) and r.refused]
    assert len(refused) == 2
    assert any(isinstance(r, Ticket) for r in packaged)  # entered after a wait


def test_the_sync_and_async_short_paths_agree(caplog):
    assert transcript("short", "async", caplog) == transcript("short", "sync", caplog)


# --- the same, through the retry policy's passage -----------------------------------


def throttle(seconds: float) -> DfeHubError:
    body = f'{{"detail": "Expected available in {seconds} seconds."}}'.encode()
    return error_from_status(429, {}, body, url=URL)


def unavailable() -> DfeHubError:
    return error_from_status(503, {}, b'{"detail": "nope"}', url=URL)


# Each call's replies in turn (None: answered), and its policy's bounds. After
# the first throttle the gate paces at 0.9/s: a call waits 1.1 s for its slot.
CALLS: list[tuple[list[DfeHubError | None], dict[str, float]]] = [
    ([None], {}),
    ([throttle(2), None], {}),
    ([unavailable(), None], {}),
    ([None], {"max_retry_wait": 1}),  # refused at the paced gate
    ([None], {"throttle_budget": 0.5}),  # the same, by its budget
    ([None], {"max_retries": 0}),  # and without waiting at all
    ([None], {"deadline": 0.5}),  # and by its deadline
    ([throttle(5)], {"max_retry_wait": 2}),  # passes, then a wait too long
    ([None], {}),  # waits out the closing
    ([None, None], {}),
]


class Replies:
    """A server that gives the listed replies in turn (None: an answer)."""

    def __init__(self, clock: Clock, replies: list[DfeHubError | None]) -> None:
        self.clock = clock
        self.pending = list(replies)

    def __call__(self) -> str:
        reply = self.pending.pop(0)
        self.clock.now += 0.01
        if reply is not None:
            raise reply
        return "ok"


def one_call(
    policy: RetryPolicy, deadline_at: float | None, send: Replies, mode: str
) -> str:
    """Drive one call the way the transports do."""
    result = ""
    if mode == "sync":
        call = policy.start(deadline_at)
        for attempt in call.retrying():
            with attempt, call.passage():
                result = send()
        return result

    async def drive() -> str:
        answer = ""
        call = policy.start(deadline_at)
        async for attempt in call.async_retrying():
            with attempt:
                async with call.apassage():
                    answer = send()
        return answer

    return asyncio.run(drive())


def run_calls(store: str, mode: str) -> list[Any]:
    """`CALLS` in turn on one gate: each one's outcome, then the waits and state."""
    random.seed(11)
    clock = Clock(1000.0)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds

    async def asleep(seconds: float) -> None:
        sleep(seconds)

    gate = gate_on(store, clock)
    seen: list[Any] = []
    for replies, bounds in CALLS:
        policy = RetryPolicy(
            max_retries=int(bounds.get("max_retries", 3)),
            max_retry_wait=bounds.get("max_retry_wait", 60.0),
            throttle_budget=bounds.get("throttle_budget", 60.0),
            gate=gate,
            sleep=asleep if mode == "async" else sleep,
            model="m",
        )
        deadline = bounds.get("deadline")
        deadline_at = None if deadline is None else time.monotonic() + deadline
        try:
            seen.append(one_call(policy, deadline_at, Replies(clock, replies), mode))
        except DfeHubError as error:
            seen.append((type(error).__name__, str(error), error.retry_after))
        seen.append((list(waits), gate.state(), gate.state("m")))
    return seen


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_calls_through_the_short_path_wait_and_fail_as_through_the_packaged_one(mode):
    short = run_calls("short", mode)
    assert short == run_calls("packaged", mode)
    failures = [e[1] for e in short if isinstance(e, tuple) and isinstance(e[0], str)]
    assert len(failures) == 5
    # Refused at the gate, each naming the bound that stopped it.
    assert (
        "wait 1.1 s more at its throttle, longer than max_retry_wait (1 s),"
        in (failures[0])
    )
    assert (
        "past this call's throttle_budget (0.5 s, 0 s already spent on" in (failures[1])
    )
    assert "and max_retries=0 sends without waiting," in failures[2]
    assert "1.1 s more at its throttle, past this call's deadline," in failures[3]
    assert "Expected available in 5 seconds" in failures[4]


def test_sync_and_async_calls_on_the_short_path_agree():
    assert run_calls("short", "async") == run_calls("short", "sync")
