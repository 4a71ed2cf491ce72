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
  throttle (see `_Lane.estimate_rate`) and spaces sends a little below it. A
  service that never throttles is never paced; the pace relaxes again when
  throttles stop.
- **Probing:** a throttle that named no usable wait (none at all, or one
  that cannot be real) says nothing of when the service frees up. The gate
  then reopens for one probe only; the waiting calls follow once the service
  admits it, and a throttled probe closes it again for a longer backoff. So a
  service that throttles late and without a wait (a gateway with a
  requests-per-minute limit) gets one request at a time, never a wave. A gate
  closed for longer than a call may wait also lets one call through as a
  probe every `PROBE_EVERY` seconds: no single throttle shuts a service out.

A gate has *lanes*: one for the whole service, and one per model. A throttle
about one model (per-model limits, as OpenAI, LiteLLM deployments and
OpenRouter have) closes that model's lane only; a throttle about the client
(Django REST Framework's, the DfeHub service's) closes the service lane, which
every call passes. A call waits at both the service lane and its model's.

`ServiceGate` is the pure core: it decides from times and events, under a
lock, and never sleeps. A call's slot is its own until it enters or releases
it, so a call that leaves without sending (refused by a bound, cancelled,
interrupted) gives its place back. The retry policy wraps the gate in thin
sync and async waits (`_retry`), so both paths queue the same way.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import logging
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from langchain_dfehub._throttle import usable_wait
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
# A throttle that names no wait closes the gate for a short backoff that
# doubles with each throttle in a row (no admitted send between them); the
# same backoff is the floor of any wait once throttles come in a row, so a
# server that keeps asking for a millisecond is not asked again at once.
_BACKOFF_FIRST = 0.25
_BACKOFF_MAX = 8.0
# How often a gate closed longer than a call may wait lets one call through.
PROBE_EVERY = 30.0
# A probe not reported back within this long no longer holds the gate (its
# call was lost in a way no exception told of).
_PROBE_LEASE = 180.0
# How often calls waiting for a probe's answer look again.
_PROBE_POLL = 0.1
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
        probing: Whether the gate lets one probe through before the rest
            (after a throttle that named no wait, until one is admitted).
    """

    closed_for: float
    pace: float | None
    sent: int
    admitted: int
    throttled: int
    throttle_events: int
    probing: bool = False


@dataclass(frozen=True)
class _Hold:
    """What one reservation holds in one lane."""

    lane: _Lane
    epoch: int
    slot: float | None  # a paced slot, given back if never used
    probe: bool  # whether this call is the lane's probe


@dataclass(frozen=True)
class Reservation:
    """When a call may pass: `at` (monotonic), and what it holds meanwhile.

    `holds_slot` is False when the call only waits for a closed gate to
    reopen (it holds nothing, and reserves again then); `refused` when the
    wait is longer than the call allowed, so nothing was taken at all.
    """

    at: float
    epoch: int
    holds_slot: bool
    refused: bool = False
    holds: tuple[_Hold, ...] = ()
    id: int = 0

    @property
    def probe(self) -> bool:
        """Whether the call goes as a probe of a closed or probing lane."""
        return any(hold.probe for hold in self.holds)


@dataclass(frozen=True)
class Ticket:
    """A send the gate let through, reported back once its fate is known."""

    sent_at: float
    holds: tuple[_Hold, ...] = ()
    id: int = 0

    @property
    def probe(self) -> bool:
        """Whether this send is a probe."""
        return any(hold.probe for hold in self.holds)


class _Lane:
    """The state and decisions of one lane; every method runs under the lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed_until = 0.0
        self.closed_at = -math.inf  # when the last throttle event closed it
        self.epoch = 0  # advanced by every throttle event
        self.interval: float | None = None  # seconds between sends when paced
        self.held: list[float] = []  # paced slots reserved and not yet used
        self.last_sent = -math.inf
        self.last_event = 0.0
        self.relaxations = 0
        self.relax_every = _RELAX_EVERY
        self.held_pace: float | None = None  # the pace before the last relaxing
        self.in_row = 0  # throttle events with no admitted send between them
        self.episode_start = -1.0  # sends since then feed the next estimate
        self.learning = False  # a closing whose pace is learned at reopening
        self.pace_before: float | None = None
        self.relaxed_too_far = False
        self.admitted_at: deque[float] = deque(maxlen=_HISTORY)
        # Probing: after a throttle with no usable wait, and for gates closed
        # longer than a call may wait.
        self.probing = False
        self.probe_id = 0  # the reservation or ticket holding the probe
        self.probe_since = -math.inf
        self.last_long_probe = -math.inf

    # --- passing -----------------------------------------------------------

    def probe_free(self, now: float) -> bool:
        return self.probe_id == 0 or now - self.probe_since > _PROBE_LEASE

    def next_slot(self, now: float) -> float:
        """The first paced moment from `now` that no held slot is too near."""
        assert self.interval is not None
        interval = self.interval
        slot = max(now, self.last_sent + interval)
        for held in self.held:
            if slot + interval <= held:
                break
            slot = max(slot, held + interval)
        return slot

    def ready(self) -> None:
        """Bring the lane up to date before it is asked for a slot."""
        if self.learning and not self.probing:
            self.learn(self.closed_until)

    def take_slot(self, slot: float) -> None:
        bisect.insort(self.held, slot)

    def give_back(self, hold: _Hold) -> None:
        if hold.epoch == self.epoch and hold.slot is not None:
            index = bisect.bisect_left(self.held, hold.slot)
            if index < len(self.held) and self.held[index] == hold.slot:
                del self.held[index]

    # --- outcomes ----------------------------------------------------------

    def admitted(self, hold: _Hold, sent_at: float, ticket_id: int) -> None:
        self.in_row = 0
        if self.probe_id == ticket_id:
            self.probe_id = 0
            if self.probing:
                self.probing = False
                if self.learning:
                    # The service had room when the probe left: that is the
                    # reopening the rate estimate reads from.
                    self.learn(sent_at)
            if self.closed_until > sent_at:
                # A long closing, and the probe got through: it is over.
                self.closed_until = sent_at
                self.epoch += 1
                self.held.clear()
                logger.info("%s admitted a probe; reopening.", self.name)
        self.admitted_at.append(sent_at)

    def throttled(self, sent_at: float, wait: float | None, now: float) -> bool:
        """Close the lane; return whether this was a new throttle event."""
        new_event = sent_at > self.closed_at
        wait = usable_wait(wait)
        if new_event:
            self.in_row += 1
        floor = _floor(self.in_row)
        if wait is None and new_event:
            self.probing = True  # no word on when: reopen for one probe
        if wait is None or wait <= 0:
            wait = _backoff(self.in_row)
        wait = max(wait, floor)
        if not new_event:
            self.closed_until = min(self.closed_until, now + wait)
            return False
        self.epoch += 1
        self.held.clear()
        self.closed_at = self.last_event = now
        self.closed_until = now + wait
        if not self.learning:
            self.learning = True
            self.pace_before = self.pace()
            if self.relaxations:
                self.pace_before = self.held_pace
                self.relaxed_too_far = True
        self.relaxations = 0
        self.relax_every = max(_RELAX_EVERY, _RELAX_WAITS * wait)
        logger.warning(
            "%s throttled a request; holding every call to it for %.3g s%s.",
            self.name,
            wait,
            ", then one probe" if self.probing else "",
        )
        return True

    def settled(self, ticket_id: int) -> None:
        """A send ended with no verdict on the throttle (or never left)."""
        if self.probe_id == ticket_id:
            self.probe_id = 0

    # --- learning ----------------------------------------------------------

    def pace(self) -> float | None:
        return None if self.interval is None else 1.0 / self.interval

    def estimate_rate(self, reopens_at: float) -> tuple[float | None, int]:
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
        for sent_at in reversed(self.admitted_at):
            if sent_at < self.episode_start:
                break
            count += 1
            span = _drf_period(reopens_at - sent_at)
            if span > 0 and (best is None or count / span > best):
                best = count / span
        return best, count

    def learn(self, reopens_at: float) -> None:
        """Set the pace at reopening, from what the last episode showed."""
        self.learning = False
        rate, admitted = self.estimate_rate(reopens_at)
        old_pace = self.pace_before
        if rate is None:
            # Nothing was admitted since the last reopening: the pace, if
            # any, was too fast for what the service allows now.
            pace = None if old_pace is None else old_pace * _DECREASE
        elif self.relaxed_too_far and old_pace is not None:
            pace = old_pace  # it held until the pace was relaxed past it
        else:
            pace = rate * _SAFETY
            if old_pace is not None:
                pace = min(pace, old_pace * _DECREASE)
        self.relaxed_too_far = False
        self.interval = None if pace is None else 1.0 / pace
        self.episode_start = reopens_at
        if pace is not None and pace != old_pace:
            logger.info(
                "%s reopened; pacing requests at %.3g/s (learned from %d admitted"
                " before the throttle).",
                self.name,
                pace,
                admitted,
            )

    def relax(self, now: float) -> None:
        """Ease the pace once throttles have stopped."""
        if self.interval is None:
            return
        steps = int((now - self.last_event) // self.relax_every) - self.relaxations
        if steps <= 0:
            return
        self.relaxations += steps
        self.held_pace = _INCREASE ** (steps - 1) / self.interval
        if self.relaxations >= _RELAXED_AFTER:
            self.interval = None
            self.held.clear()
            logger.info(
                "%s has not throttled for %g s; no longer pacing requests.",
                self.name,
                self.relaxations * self.relax_every,
            )
            return
        self.interval /= _INCREASE**steps
        logger.info(
            "%s has not throttled for %g s; pacing relaxed to %.3g requests/s.",
            self.name,
            self.relaxations * self.relax_every,
            1.0 / self.interval,
        )


class ServiceGate:
    """The shared gate of one service; thread-safe, never blocks on I/O.

    Args:
        name: The service's host, for log lines.
        clock: Monotonic seconds (tests pass a fake one).
    """

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        # Seconds between probes of a gate closed longer than a call may
        # wait, counted from the closing (tests shorten it).
        self.probe_every = PROBE_EVERY
        self._lock = threading.Lock()
        self._service = _Lane(name)
        self._models: dict[str, _Lane] = {}
        self._ids = itertools.count(1)
        self._sent = 0
        self._admitted = 0
        self._throttled = 0
        self._events = 0

    def _lanes(self, model: str | None, create: bool = True) -> list[_Lane]:
        if model is None:
            return [self._service]
        lane = self._models.get(model)
        if lane is None:
            if not create:
                return [self._service]
            lane = self._models[model] = _Lane(f"{self.name} (model {model})")
        return [self._service, lane]

    # --- passing -----------------------------------------------------------

    def reserve(
        self, now: float, model: str | None = None, limit: float = math.inf
    ) -> Reservation:
        """Say when a call may send: now, at its paced slot, or at reopening.

        `limit` is the longest the call may wait: a paced slot further away
        is not taken (the reservation comes back `refused`), so a call that
        cannot wait costs the others nothing.
        """
        with self._lock:
            lanes = self._lanes(model)
            rid = next(self._ids)
            # A closed lane, or one waiting for its probe's answer: nothing
            # is held, and the call reserves again at the moment given.
            closed_at = now
            probes: list[_Lane] = []
            for lane in lanes:
                if now < lane.closed_until:
                    wait = lane.closed_until - now
                    if (
                        wait > limit
                        and lane.probe_free(now)
                        and now - max(lane.last_long_probe, lane.closed_at)
                        >= self.probe_every
                    ):
                        probes.append(lane)  # every so often, one goes through
                    else:
                        closed_at = max(closed_at, lane.closed_until)
                elif lane.probing:
                    if lane.probe_free(now):
                        probes.append(lane)
                    else:
                        closed_at = max(closed_at, now + _PROBE_POLL)
            if closed_at > now:
                return Reservation(
                    closed_at,
                    self._service.epoch,
                    holds_slot=False,
                    refused=closed_at - now > limit,
                    id=rid,
                )
            at = now
            for lane in lanes:
                if lane not in probes:
                    lane.ready()
                    lane.relax(now)
                    if lane.interval is not None:
                        at = max(at, lane.next_slot(at))
            if at - now > limit:
                return Reservation(
                    at, self._service.epoch, holds_slot=False, refused=True, id=rid
                )
            holds = []
            for lane in lanes:
                probe = lane in probes
                slot = None
                if probe:
                    lane.probe_id = rid
                    lane.probe_since = now
                    if now < lane.closed_until:
                        lane.last_long_probe = now
                elif lane.interval is not None:
                    slot = lane.next_slot(at)
                    lane.take_slot(slot)
                holds.append(_Hold(lane, lane.epoch, slot, probe))
            return Reservation(
                at, self._service.epoch, holds_slot=True, holds=tuple(holds), id=rid
            )

    def enter(self, reservation: Reservation, now: float) -> Ticket | None:
        """Send now if the reservation still holds; None means reserve again.

        A reservation made before a throttle closed the gate no longer holds:
        the call queues again behind the new closing (and what it held is
        given back).
        """
        with self._lock:
            if not reservation.holds_slot:
                return None
            valid = all(
                hold.epoch == hold.lane.epoch
                and (
                    hold.lane.probe_id == reservation.id
                    if hold.probe
                    else now >= hold.lane.closed_until and not hold.lane.probing
                )
                for hold in reservation.holds
            )
            if not valid:
                self._release_locked(reservation)
                return None
            for hold in reservation.holds:
                hold.lane.give_back(hold)
                hold.lane.last_sent = max(hold.lane.last_sent, now)
                if hold.lane.episode_start < 0:
                    hold.lane.episode_start = now
            self._sent += 1
            return Ticket(now, reservation.holds, reservation.id)

    def release(self, reservation: Reservation) -> None:
        """Give back what a reservation holds: its call leaves unsent."""
        with self._lock:
            self._release_locked(reservation)

    def _release_locked(self, reservation: Reservation) -> None:
        for hold in reservation.holds:
            hold.lane.give_back(hold)
            if hold.probe:
                hold.lane.settled(reservation.id)

    # --- outcomes ----------------------------------------------------------

    def admitted(self, ticket: Ticket) -> None:
        """The service answered this send without throttling it."""
        with self._lock:
            self._admitted += 1
            for lane in self._ticket_lanes(ticket):
                lane.admitted(_hold_of(ticket, lane), ticket.sent_at, ticket.id)

    def throttled(
        self,
        ticket: Ticket,
        wait: float | None,
        now: float,
        *,
        per_model: bool = False,
    ) -> float:
        """The service throttled this send; close a lane. Returns the closing.

        Sends that left before the lane closed are answered after it did:
        their throttles belong to the same event. Each of their waits bounds
        the same reopening from above (rounded up, and late by the trip back),
        so the earliest bound holds. The pace is learned when the lane
        reopens, once the answers to the sends in flight at the closing have
        come in. `per_model` closes the model's lane only.
        """
        with self._lock:
            self._throttled += 1
            lanes = self._ticket_lanes(ticket)
            lane = lanes[-1] if per_model else lanes[0]
            for other in lanes:
                if other is not lane:
                    other.settled(ticket.id)
            if lane.probe_id == ticket.id:
                lane.probe_id = 0
            if lane.throttled(ticket.sent_at, wait, now):
                self._events += 1
            return lane.closed_until

    def settled(self, ticket: Ticket) -> None:
        """The send ended without a verdict (a network failure, a cancel)."""
        with self._lock:
            for lane in self._ticket_lanes(ticket):
                lane.settled(ticket.id)

    def _ticket_lanes(self, ticket: Ticket) -> list[_Lane]:
        if ticket.holds:
            return [hold.lane for hold in ticket.holds]
        return [self._service]  # a ticket made by hand (tests)

    # --- reading -----------------------------------------------------------

    def state(self, model: str | None = None) -> GateState:
        """A snapshot of the gate (for `model`'s calls), for users and tests."""
        now = self.clock()
        with self._lock:
            lanes = self._lanes(model, create=False)
            paces = [pace for lane in lanes if (pace := lane.pace()) is not None]
            return GateState(
                closed_for=max(0.0, *(lane.closed_until - now for lane in lanes)),
                pace=min(paces) if paces else None,
                sent=self._sent,
                admitted=self._admitted,
                throttled=self._throttled,
                throttle_events=self._events,
                probing=any(lane.probing for lane in lanes),
            )

    def pace_locked(self) -> float | None:
        """The service lane's sends per second while paced (lock held)."""
        return self._service.pace()


def _hold_of(ticket: Ticket, lane: _Lane) -> _Hold:
    for hold in ticket.holds:
        if hold.lane is lane:
            return hold
    return _Hold(lane, lane.epoch, None, probe=False)


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
    base = min(_BACKOFF_FIRST * 2.0 ** min(max(in_row, 1) - 1, 32), _BACKOFF_MAX)
    return base + random.uniform(0, _BACKOFF_FIRST)  # noqa: S311 - not for secrets


def _floor(in_row: int) -> float:
    """The least wait after `in_row` throttles in a row: none for the first."""
    if in_row <= 1:
        return 0.0
    return min(_BACKOFF_FIRST * 2.0 ** min(in_row - 2, 32), _BACKOFF_MAX)


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
