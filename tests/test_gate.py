"""The service's throttle gate: one per service, closed by a throttle, paced after.

The pure core is driven with a fake clock, and once through a discrete-event
simulation of a Django REST Framework sliding-window throttle, so the queueing
and pacing figures are exact and no test sleeps. These scenarios run against
every store (`make_gate`: in memory, a SQLite file, a real Redis server given
the fake clock's time), so the stores cannot decide differently.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import multiprocessing
import threading
from dataclasses import dataclass, field

import pytest
from gate_stores import Clock, MakeGate

from langchain_dfehub import ChatDfeHub, DfeHubRateLimitError
from langchain_dfehub._gate import ServiceGate, Ticket, gate_for
from langchain_dfehub.testing import DfeHubEmulator, Throttle


def send(gate: ServiceGate, now: float) -> Ticket:
    """Reserve and enter at once; fails if the gate would make us wait."""
    reservation = gate.reserve(now)
    assert reservation.at == now, "the gate asked to wait"
    ticket = gate.enter(reservation, now)
    assert ticket is not None
    return ticket


# --- the pure core ---------------------------------------------------------------


def test_a_gate_that_was_never_throttled_never_delays_or_paces(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    for _ in range(1000):
        gate.admitted(send(gate, clock.now))
    state = gate.state()
    assert state.pace is None
    assert (state.sent, state.admitted, state.throttled) == (1000, 1000, 0)


def test_a_throttle_closes_the_gate_for_every_later_call(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    ticket = send(gate, clock.now)
    gate.throttled(ticket, 2.0, clock.now)

    reservation = gate.reserve(clock.now + 0.5)
    assert reservation.at == pytest.approx(clock.now + 2.0)
    assert not reservation.holds_slot
    assert gate.enter(reservation, clock.now + 0.5) is None
    assert gate.state().closed_for == pytest.approx(2.0)
    # Once it reopens, a call passes.
    assert send(gate, clock.now + 2.0)


def test_throttles_of_sends_already_in_flight_are_one_event(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    tickets = [send(gate, clock.now) for _ in range(10)]
    gate.throttled(tickets[0], 1.0, clock.now + 0.01)
    for ticket in tickets[1:]:
        gate.throttled(ticket, 1.0, clock.now + 0.02)
    state = gate.state()
    assert state.throttled == 10
    assert state.throttle_events == 1
    # Each answer's wait bounds the same moment from above; later answers,
    # late by their trip back, do not push the reopening back.
    assert gate.reserve(clock.now).at == pytest.approx(clock.now + 1.01)


def test_a_reservation_made_before_a_throttle_no_longer_holds(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    early = send(gate, clock.now)
    waiting = gate.reserve(clock.now)
    gate.throttled(early, 1.0, clock.now)
    assert gate.enter(waiting, clock.now) is None


def test_the_gate_logs_once_per_throttle_event_not_once_per_call(caplog, make_gate):
    clock = Clock()
    gate = make_gate(clock, "svc.example:8080")
    tickets = [send(gate, clock.now) for _ in range(20)]
    with caplog.at_level(logging.INFO, logger="langchain_dfehub"):
        for ticket in tickets:
            gate.throttled(ticket, 1.0, clock.now)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "svc.example:8080 throttled a request; holding every call to it for 1 s."
    )


def burst_of(gate: ServiceGate, now: float, admitted: int, wait: float) -> None:
    """`admitted` sends let through at `now`, and one more throttled for `wait`."""
    tickets = [send(gate, now) for _ in range(admitted + 1)]
    for ticket in tickets[:admitted]:
        gate.admitted(ticket)
    gate.throttled(tickets[admitted], wait, now)


def test_a_burst_teaches_the_gate_the_services_rate(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    # 10 admitted at once, the 11th throttled "for 1 second": 10 per second.
    burst_of(gate, clock.now, admitted=10, wait=1.0)
    reopening = clock.now + 1.0
    slots = [gate.reserve(reopening).at - reopening for _ in range(5)]
    assert gate.state().pace == pytest.approx(9.0)  # 10/s, less a margin
    assert slots == pytest.approx([0, 1 / 9, 2 / 9, 3 / 9, 4 / 9])


def test_a_throttle_while_paced_slows_the_pace_down(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    burst_of(gate, clock.now, admitted=10, wait=1.0)
    now = clock.now + 1.0
    gate.reserve(now)
    first_pace = gate.state().pace
    assert first_pace is not None
    # Paced sends, then a throttle anyway: the pace was too fast.
    ticket = gate.enter(gate.reserve(now), now)
    assert ticket is not None
    gate.throttled(ticket, 0.5, now + 0.01)
    gate.reserve(now + 1.0)
    second_pace = gate.state().pace
    assert second_pace is not None
    assert second_pace <= first_pace * 0.8


def test_the_pace_relaxes_when_throttles_stop_and_then_ends(caplog, make_gate):
    clock = Clock()
    gate = make_gate(clock)
    burst_of(gate, clock.now, admitted=2, wait=1.0)
    gate.reserve(clock.now + 1.0)
    learned = gate.state().pace
    assert learned is not None
    with caplog.at_level(logging.INFO, logger="langchain_dfehub"):
        gate.reserve(clock.now + 30.5)
        assert gate.state().pace == pytest.approx(learned * 1.25)
        gate.reserve(clock.now + 600.0)
    assert gate.state().pace is None
    assert "no longer pacing" in caplog.text


def test_a_throttle_with_no_wait_backs_off_growing_and_resets_on_success(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    waits = []
    now = clock.now
    for _ in range(3):
        ticket = send(gate, now)
        reopens = gate.throttled(ticket, None, now)
        waits.append(reopens - now)
        now = reopens
    assert 0.25 <= waits[0] <= 0.5 < waits[1] <= 0.75 < waits[2] <= 1.25
    gate.admitted(send(gate, now))
    ticket = send(gate, now)
    assert gate.throttled(ticket, 0, now) - now <= 0.5


# --- a DRF sliding-window throttle, simulated ------------------------------------


@dataclass
class SlidingWindow:
    """Django REST Framework's SimpleRateThrottle, as its source computes it."""

    num_requests: int
    duration: float
    history: list[float] = field(default_factory=list)  # newest first

    def allow(self, now: float) -> float | None:
        """None when admitted, else the wait DRF's text would show (ceil)."""
        while self.history and self.history[-1] <= now - self.duration:
            self.history.pop()
        if len(self.history) < self.num_requests:
            self.history.insert(0, now)
            return None
        remaining = self.duration - (now - self.history[-1])
        available = self.num_requests - len(self.history) + 1
        return float(math.ceil(remaining / available))


def simulate_burst(
    gate: ServiceGate, clock: Clock, server: SlidingWindow, calls: int
) -> tuple[int, float]:
    """Run `calls` concurrent calls through the gate; return (requests, seconds).

    Every call reserves, sleeps to its moment, enters, sends; the server
    answers 5 ms later. A throttled call queues again, as `_retry` does.
    """
    latency = 0.005
    start = clock.now
    events: list[tuple[float, int, str, int]] = []
    for call in range(calls):
        heapq.heappush(events, (start, call, "arrive", call))
    reservations: dict[int, object] = {}
    tickets: dict[int, Ticket] = {}
    decided: dict[int, float | None] = {}
    requests = 0
    finished = 0
    order = calls
    while events:
        now, _, kind, call = heapq.heappop(events)
        clock.now = now
        order += 1
        if kind == "arrive":
            reservation = gate.reserve(now)
            reservations[call] = reservation
            heapq.heappush(events, (max(reservation.at, now), order, "enter", call))
        elif kind == "enter":
            ticket = gate.enter(reservations[call], now)  # type: ignore[arg-type]
            if ticket is None:
                heapq.heappush(events, (now, order, "arrive", call))
                continue
            requests += 1
            tickets[call] = ticket
            decided[call] = server.allow(now + latency / 2)
            heapq.heappush(events, (now + latency, order, "answer", call))
        else:
            wait = decided[call]
            if wait is None:
                gate.admitted(tickets[call])
                finished += 1
            else:
                gate.throttled(tickets[call], wait, now)
                heapq.heappush(events, (now, order, "arrive", call))
    assert finished == calls
    return requests, clock.now - start


def test_a_cold_then_warm_burst_against_a_drf_window_meets_the_targets(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    server = SlidingWindow(num_requests=10, duration=1.0)
    ideal = 64 / 10

    cold_requests, cold_seconds = simulate_burst(gate, clock, server, 64)
    assert cold_requests <= 2 * 64
    assert cold_seconds <= 1.25 * ideal

    warm_requests, warm_seconds = simulate_burst(gate, clock, server, 64)
    assert warm_requests <= 1.1 * 64
    assert warm_seconds <= 1.25 * ideal


def test_a_burst_into_a_window_already_full_learns_from_its_second_wave(make_gate):
    """Nothing admitted before the first throttle leaves nothing to learn.

    The first wave is throttled whole; at reopening it goes again, the
    service admits what its window holds, and that teaches the pace.
    """
    clock = Clock()
    gate = make_gate(clock)
    server = SlidingWindow(num_requests=10, duration=1.0)
    server.history = [clock.now - 0.2] * 10  # another client filled it

    requests, seconds = simulate_burst(gate, clock, server, 64)

    assert requests <= 3 * 64
    assert seconds <= 1.5 * 64 / 10
    assert gate.state().pace == pytest.approx(9.0)


# --- one gate per service, process-wide ----------------------------------------


def test_one_gate_per_endpoint_and_key_and_the_key_is_not_kept():
    url = "http://gate-test.invalid/v1/chat/completions"
    assert gate_for(url, "sk-one") is gate_for(url, "sk-one")
    assert gate_for(url, "sk-one") is not gate_for(url, "sk-two")
    assert gate_for(url, None) is not gate_for(url + "2", None)
    assert gate_for(url, None).name == "gate-test.invalid"
    from langchain_dfehub import _gate

    assert not any("sk-one" in part for key in _gate._gates for part in key)


def _child_sees_a_fresh_gate(url: str, queue: multiprocessing.Queue[int]) -> None:
    queue.put(gate_for(url, None).state().throttled)


def test_a_forked_child_gets_a_fresh_gate():
    url = "http://fork-test.invalid/v1/chat/completions"
    gate = gate_for(url, None)
    gate.throttled(send(gate, gate.clock()), 5.0, gate.clock())
    assert gate.state().throttled == 1
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[int] = context.Queue()
    child = context.Process(target=_child_sees_a_fresh_gate, args=(url, queue))
    child.start()
    child.join(30)
    assert queue.get(timeout=5) == 0


# --- against the emulator: every instance, thread and loop waits at one gate -----


@pytest.mark.parametrize("mode", ["sync", "async", "thread"])
def test_a_throttle_told_to_one_model_holds_back_another(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    told = ChatDfeHub(base_url=dfehub_emulator.base_url, throttle_budget=0)
    dfehub_emulator.add_faults(Throttle(wait=30))
    with pytest.raises(DfeHubRateLimitError):
        told.invoke("first")
    assert len(dfehub_emulator.requests) == 1

    other = ChatDfeHub(base_url=dfehub_emulator.base_url, throttle_budget=5)
    caught: list[BaseException] = []

    def call_other() -> None:
        try:
            if mode == "sync":
                other.invoke("second")
            else:
                asyncio.run(other.ainvoke("second"))
        except DfeHubRateLimitError as error:
            caught.append(error)

    if mode == "thread":
        worker = threading.Thread(target=call_other)
        worker.start()
        worker.join(30)
    else:
        call_other()
    (error,) = caught
    assert "throttle_budget" in str(error)
    assert len(dfehub_emulator.requests) == 1  # held at the gate, never sent
    state = other.throttle_state
    assert state.throttled == 1
    assert state.closed_for > 20
    assert (state.sent, state.throttle_events) == (1, 1)
    assert told.throttle_state.throttled == 1


def test_a_copied_model_shares_the_gate(dfehub_emulator: DfeHubEmulator) -> None:
    import copy
    import pickle

    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    dfehub_emulator.add_faults(Throttle(wait=0.01))
    model.invoke("hello")
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone.throttle_state.throttled == 1


def test_resetting_the_emulator_forgets_the_gate_of_its_url(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, throttle_budget=0)
    dfehub_emulator.add_faults(Throttle(wait=30))
    with pytest.raises(DfeHubRateLimitError):
        model.invoke("held")
    assert model.throttle_state.closed_for > 20

    dfehub_emulator.reset()

    assert model.throttle_state.throttled == 0
    assert model.invoke("free again").content == "free again"


def test_an_emulator_on_a_port_used_before_starts_with_no_gate() -> None:
    first = DfeHubEmulator().start()
    port = int(first.base_url.split(":")[2].split("/")[0])
    model = ChatDfeHub(base_url=first.base_url, throttle_budget=0)
    first.add_faults(Throttle(wait=30))
    with pytest.raises(DfeHubRateLimitError):
        model.invoke("held")
    first.stop()

    with DfeHubEmulator(port=port) as second:
        assert second.base_url == model.base_url
        assert model.invoke("a new server").content == "a new server"


def test_the_state_type_is_public(dfehub_emulator: DfeHubEmulator) -> None:
    import langchain_dfehub

    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    assert isinstance(model.throttle_state, langchain_dfehub.GateState)
    assert "GateState" in langchain_dfehub.__all__


# --- places given back, probes, storms, lanes (the pure core) --------------------


def paced_gate(make_gate: MakeGate, clock: Clock) -> ServiceGate:
    """A gate that paces at 9/s, learned from a burst of 10 in a second."""
    gate = make_gate(clock)
    burst_of(gate, clock.now, admitted=10, wait=1.0)
    clock.now += 1.0
    gate.admitted(send(gate, clock.now))
    assert gate.state().pace == pytest.approx(9.0)
    return gate


def test_a_place_refused_by_the_calls_limit_is_never_taken(make_gate):
    clock = Clock()
    gate = paced_gate(make_gate, clock)
    for _ in range(40):
        reservation = gate.reserve(clock.now, limit=0.01)
        assert reservation.refused
        assert not reservation.holds_slot
    # An idle moment later: the next call's place is one interval away at most.
    assert gate.reserve(clock.now).at <= clock.now + 1 / 9.0 + 1e-9


def test_released_places_are_given_back_in_any_order(make_gate):
    clock = Clock()
    gate = paced_gate(make_gate, clock)
    reservations = [gate.reserve(clock.now) for _ in range(36)]
    assert reservations[-1].at > clock.now + 3.5
    for reservation in reservations[::2] + reservations[1::2]:
        gate.release(reservation)
    assert gate.reserve(clock.now).at <= clock.now + 1 / 9.0 + 1e-9


def test_a_released_place_in_the_middle_of_the_queue_is_taken_by_the_next_call(
    make_gate,
):
    clock = Clock()
    gate = paced_gate(make_gate, clock)
    queue = [gate.reserve(clock.now) for _ in range(5)]
    gate.release(queue[2])
    again = gate.reserve(clock.now)
    assert again.at == pytest.approx(queue[2].at)
    # Each held place stays one interval from the others.
    held = sorted(r.at for r in (*queue[:2], again, *queue[3:]))
    assert all(b - a >= 1 / 9.0 - 1e-9 for a, b in itertools.pairwise(held))


def test_a_waitless_throttle_reopens_for_one_probe_and_the_rest_follow_it(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    tickets = [send(gate, clock.now) for _ in range(6)]
    for ticket in tickets[:3]:
        gate.admitted(ticket)
    clock.now += 2.0  # the throttles come late
    for ticket in tickets[3:]:
        gate.throttled(ticket, None, clock.now)
    assert gate.state().probing
    clock.now = gate.reserve(clock.now).at  # the backoff is over
    probe = gate.reserve(clock.now)
    assert probe.probe
    assert probe.at == clock.now
    others = [gate.reserve(clock.now) for _ in range(5)]
    assert not any(r.holds_slot for r in others)  # they wait for the probe
    ticket = gate.enter(probe, clock.now)
    assert ticket is not None
    # Throttled again: a longer backoff, and one more probe after it.
    first_backoff = gate.state().closed_for
    clock.now += 2.0
    gate.throttled(ticket, None, clock.now)
    assert gate.state().closed_for > 0.5
    clock.now += gate.state().closed_for
    probe = gate.reserve(clock.now)
    assert probe.probe
    gate.admitted(gate.enter(probe, clock.now))  # type: ignore[arg-type]
    state = gate.state()
    assert not state.probing
    assert state.pace is not None
    assert gate.reserve(clock.now).holds_slot
    assert first_backoff < 0.6


def test_a_probe_that_leaves_unsent_lets_another_call_probe(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    gate.throttled(send(gate, clock.now), None, clock.now)
    clock.now += 1.0
    first = gate.reserve(clock.now)
    assert first.probe
    assert not gate.reserve(clock.now).holds_slot
    gate.release(first)
    assert gate.reserve(clock.now).probe


def test_a_gate_closed_longer_than_a_call_may_wait_lets_one_probe_through(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    gate.throttled(send(gate, clock.now), 3600.0, clock.now)
    # At first, refused: the server's wait is fresh.
    assert gate.reserve(clock.now + 1, limit=60).refused
    clock.now += gate.probe_every
    probe = gate.reserve(clock.now, limit=60)
    assert probe.probe
    assert probe.holds_slot
    assert gate.reserve(clock.now, limit=60).refused  # one probe at a time
    gate.admitted(gate.enter(probe, clock.now))  # type: ignore[arg-type]
    assert gate.state().closed_for == 0.0
    assert gate.reserve(clock.now, limit=60).holds_slot


@pytest.mark.parametrize("wait", [math.inf, math.nan, -5.0, 1e12])
def test_a_wait_that_cannot_be_real_closes_for_a_backoff_and_a_probe(wait, make_gate):
    clock = Clock()
    gate = make_gate(clock)
    reopens = gate.throttled(send(gate, clock.now), wait, clock.now)
    assert 0.25 <= reopens - clock.now <= 0.5
    assert gate.state().probing


def test_throttles_in_a_row_widen_the_floor_of_the_wait(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    held = []
    for _ in range(6):
        reopens = gate.throttled(send(gate, clock.now), 0.001, clock.now)
        held.append(reopens - clock.now)
        clock.now = reopens
    assert held == pytest.approx([0.001, 0.25, 0.5, 1.0, 2.0, 4.0])
    gate.admitted(send(gate, clock.now))
    assert gate.throttled(send(gate, clock.now), 0.001, clock.now) == pytest.approx(
        clock.now + 0.001
    )


def test_a_per_model_throttle_closes_only_that_models_lane(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    ticket = gate.enter(gate.reserve(clock.now, "a"), clock.now)
    assert ticket is not None
    gate.throttled(ticket, 20.0, clock.now, per_model=True)
    assert gate.state("a").closed_for == pytest.approx(20.0)
    assert gate.state("b").closed_for == 0.0
    assert gate.reserve(clock.now, "b").at == clock.now
    assert gate.reserve(clock.now, "a").at == pytest.approx(clock.now + 20.0)
    # A throttle of the service holds every model.
    other = gate.enter(gate.reserve(clock.now, "b"), clock.now)
    gate.throttled(other, 5.0, clock.now)  # type: ignore[arg-type]
    assert gate.state("b").closed_for == pytest.approx(5.0)
    assert gate.reserve(clock.now, "c").at == pytest.approx(clock.now + 5.0)


# --- sends from many processes: the learned window, checked at entry ---------------


def test_sends_that_left_late_and_bunched_up_are_held_to_the_learned_count(make_gate):
    clock = Clock()
    gate = paced_gate(make_gate, clock)  # learned: 10 sends per second
    queue = [gate.reserve(clock.now) for _ in range(10)]
    # Their processes woke late: all ten enter at the last one's slot.
    late = queue[-1].at
    tickets = [gate.enter(reservation, late) for reservation in queue]
    assert all(ticket is not None for ticket in tickets)
    # The pace alone would send the next one interval later; the window
    # holds it until the first of the ten has left the period.
    following = gate.reserve(late)
    assert following.at == pytest.approx(late + 1.0 * 1.05)
    assert gate.enter(gate.reserve(late), late + 0.5) is None


def test_a_call_that_entered_but_never_sent_takes_no_room_in_the_window(make_gate):
    clock = Clock()
    gate = paced_gate(make_gate, clock)
    queue = [gate.reserve(clock.now) for _ in range(10)]
    late = queue[-1].at
    tickets = [gate.enter(reservation, late) for reservation in queue]
    held_back = gate.reserve(late)
    gate.release(held_back)
    gate.settled(tickets[0], unsent=True)  # type: ignore[arg-type]
    assert gate.reserve(late).at < held_back.at


def test_a_call_that_need_not_wait_enters_in_the_same_trip(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    free = gate.reserve(clock.now, enter=True)
    assert free.ticket is not None
    assert gate.state().sent == 1
    gate.throttled(free.ticket, 1.0, clock.now)
    held = gate.reserve(clock.now, enter=True)
    assert held.ticket is None
    assert gate.state().sent == 1


def test_a_shared_gate_slows_less_after_a_throttle_while_paced(make_gate):
    clock = Clock()
    gate = make_gate(clock)
    gate.decrease = 0.95  # what gate_for sets for a SQLite or Redis gate
    burst_of(gate, clock.now, admitted=10, wait=1.0)
    now = clock.now + 1.0
    gate.reserve(now)
    first_pace = gate.state().pace
    ticket = gate.enter(gate.reserve(now), now)
    assert ticket is not None
    gate.throttled(ticket, 0.5, now + 0.01)
    gate.reserve(now + 1.0)
    assert gate.state().pace == pytest.approx(first_pace * 0.95)


def test_gates_on_a_shared_store_slow_less_than_a_process_gate(tmp_path):
    url = "http://decrease-test.invalid/v1/chat/completions"
    assert gate_for(url, None).decrease == 0.8
    assert gate_for(url, None, f"sqlite:///{tmp_path / 'g.db'}").decrease == 0.95
