"""The gate's decisions, pure: plain records in, plain records and notes out.

Every store runs these same decisions on the same records: the in-process
store on objects under a lock, the SQLite store inside a write transaction,
and Redis as Lua (`lua/lanes.lua` is a line-for-line port, kept honest by
the scenario suite every store passes). So nothing here sleeps, reads a
clock, draws a random number or logs: time comes in as `now` (the store's
own clock), randomness as `jitter`, and log lines go out as `Note`s that
the process which made the decision logs.

A gate is one `Counts` record and its lanes: lane 0 is the whole service's,
lane 1 (when a call names a model) the model's. A call waits at both.
"""

from __future__ import annotations

import math
from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from langchain_dfehub._throttle import usable_wait

# Sends are spaced this fraction of the learned rate: a sliding window has no
# slack, and a send a few milliseconds early is throttled.
SAFETY = 0.9
# A throttle while paced means the pace was too fast: slow down at least so.
DECREASE = 0.8
# ... unless the gate is shared by many processes, whose sends spread in time
# (a late one lands beside the next): there a throttle while paced is mostly
# that spread, which the window checked at entry already bounds, so the pace
# slows less. Measured with `make bench`'s fleet: at 0.8, one such throttle
# left a warm fleet at 1.4x the ideal time.
SHARED_DECREASE = 0.95
# Every this many seconds without a throttle (or thirty of the service's last
# waits, if longer: a window of minutes needs longer to show a pace holds), a
# pace relaxes by `INCREASE`; once it has relaxed `RELAXED_AFTER` times in a
# row, pacing stops. A throttle right after relaxing returns to the pace that
# held.
RELAX_EVERY = 30.0
RELAX_WAITS = 30.0
INCREASE = 1.25
RELAXED_AFTER = 12
# A throttle that names no wait closes the gate for a short backoff that
# doubles with each throttle in a row (no admitted send between them); the
# same backoff is the floor of any wait once throttles come in a row, so a
# server that keeps asking for a millisecond is not asked again at once.
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 8.0
# How often a gate closed longer than a call may wait lets one call through.
PROBE_EVERY = 30.0
# A probe not reported back within this long no longer holds the gate (its
# call was lost in a way no exception told of).
PROBE_LEASE = 180.0
# How often calls waiting for a probe's answer look again.
PROBE_POLL = 0.1
# How many admitted sends the rate estimate looks back on.
HISTORY = 4096
# Sends from many processes spread in time: a send planned for its slot may
# leave late (its process was not scheduled), and the next on time, so more
# than the service's count can leave within one of its periods though the
# pace is below it. So once a lane has learned "N sends per period P", no
# send enters while N entered within the last P (and this much more of P,
# for the trip to the server); the pace's margin is kept for the rest.
WINDOW_SLACK = 0.05
# A learned count above this is not checked at entry (the record would grow).
WINDOW_MAX = 256
# A time long past: JSON (and so Lua's cjson) has no infinities.
NEVER = -1e18
# Two stored times this close are the same moment (a slot read back from a
# store that keeps fewer digits than a float).
SAME_MOMENT = 1e-6
# The periods of DRF's rates ("10/s", "3/m", "100/h", "1000/d"), and how far
# above one a measured span may be and still be read as it.
DRF_PERIODS = (1.0, 60.0, 3600.0, 86400.0)
ROUNDING_SLACK = 1.5

# Log levels of notes (those of `logging`).
INFO = 20
WARNING = 30


@dataclass
class Lane:
    """What one lane knows; the fields are those every store keeps."""

    closed_until: float = 0.0
    closed_at: float = NEVER  # when the last throttle event closed it
    epoch: int = 0  # advanced by every throttle event
    interval: float | None = None  # seconds between sends when paced
    held: list[float] = field(default_factory=list)  # paced slots, sorted
    last_sent: float = NEVER
    last_event: float = 0.0
    relaxations: int = 0
    relax_every: float = RELAX_EVERY
    held_pace: float | None = None  # the pace before the last relaxing
    in_row: int = 0  # throttle events with no admitted send between them
    episode_start: float = -1.0  # sends since then feed the next estimate
    learning: bool = False  # a closing whose pace is learned at reopening
    pace_before: float | None = None
    relaxed_too_far: bool = False
    probing: bool = False
    probe_id: int = 0  # the reservation or ticket holding the probe
    probe_since: float = NEVER
    last_long_probe: float = NEVER
    decrease: float = DECREASE  # how much a throttle while paced slows it
    window: int = 0  # learned: at most this many sends ...
    period: float = 0.0  # ... within this many seconds (0: not learned)
    entered: list[float] = field(default_factory=list)  # the last `window` sends
    # Admitted, oldest first; the in-process store keeps a bounded deque.
    history: MutableSequence[float] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        """The lane as JSON-ready data (without its history)."""
        return {name: getattr(self, name) for name, _ in _LANE_FIELDS}

    @classmethod
    def from_record(cls, record: Any, history: list[float] | None = None) -> Lane:
        """A lane from stored data; anything malformed makes a fresh lane.

        Garbage under a store's key (another program's, a half-written
        value) is reset, never trusted: a wrong type could shut a service
        out or crash every call.
        """
        lane = cls(history=list(history or []))
        if not isinstance(record, dict):
            return lane
        for name, kind in _LANE_FIELDS:
            if name not in record:
                continue
            value = _checked(record[name], kind)
            if value is _MALFORMED:
                return cls(history=lane.history)
            setattr(lane, name, value)
        return lane

    def pace(self) -> float | None:
        """Sends per second while paced."""
        return None if self.interval is None else 1.0 / self.interval


# The kind of each stored field: "n" number, "i" integer, "b" boolean,
# "p" positive number or None, "l" list of numbers (kept sorted).
_KINDS = {
    "epoch": "i",
    "relaxations": "i",
    "in_row": "i",
    "probe_id": "i",
    "window": "i",
    "interval": "p",
    "held_pace": "p",
    "pace_before": "p",
    "decrease": "p",
    "learning": "b",
    "relaxed_too_far": "b",
    "probing": "b",
    "held": "l",
    "entered": "l",
}
_LANE_FIELDS = tuple(
    (spec.name, _KINDS.get(spec.name, "n"))
    for spec in fields(Lane)
    if spec.name != "history"
)
_MALFORMED = object()


def _checked(value: Any, kind: str) -> Any:
    """`value` as a field of `kind` holds it, or `_MALFORMED`."""
    if kind == "n":
        return value if _is_number(value) else _MALFORMED
    if kind == "i":
        if _is_number(value) and float(value) == int(value):
            return int(value)
        return _MALFORMED
    if kind == "b":
        return value if isinstance(value, bool) else _MALFORMED
    if kind == "p":
        if value is None or (_is_number(value) and value > 0):
            return value
        return _MALFORMED
    if isinstance(value, list) and all(_is_number(v) for v in value):
        return sorted(float(v) for v in value)
    return _MALFORMED


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@dataclass
class Counts:
    """The gate's counters, shared by its lanes."""

    sent: int = 0
    admitted: int = 0
    throttled: int = 0
    events: int = 0
    ids: int = 0  # the last reservation id handed out


# A note: (level, lane index, format, args); the format's first `%s` is the
# lane's name, which the process that logs it knows.
Note = tuple[int, int, str, tuple[Any, ...]]

# What a reservation holds in one lane: (epoch, paced slot or None, probe).
Hold = tuple[int, "float | None", bool]

# What `reserve` decided: (id, at, holds_slot, refused, holds, entered). A
# plain tuple: the in-process store hands it to the gate unpackaged, and this
# is every call's path.
Reserved = tuple[int, float, bool, bool, tuple[Hold, ...], bool]


# --- passing ---------------------------------------------------------------------


def reserve(
    lanes: list[Lane],
    counts: Counts,
    now: float,
    limit: float,
    probe_every: float,
    notes: list[Note],
    entering: bool = False,
) -> Reserved:
    """Say when a call may send: now, at its paced slot, or at reopening.

    Returns `(id, at, holds_slot, refused, holds, entered)`: `at` is store
    time, `holds` per lane `(epoch, slot or None, probe)`. A closed lane, or
    one waiting for its probe's answer, holds nothing: the call reserves
    again at `at`. A call whose wait would pass `limit` takes nothing
    (`refused`). `entering`: a call that need not wait enters at once (one
    trip to the store), and `entered` says so.
    """
    counts.ids += 1
    rid = counts.ids
    closed_at = now
    probes: list[int] = []
    for index, lane in enumerate(lanes):
        if now < lane.closed_until:
            wait = lane.closed_until - now
            if (
                wait > limit
                and _probe_free(lane, now)
                and now - max(lane.last_long_probe, lane.closed_at) >= probe_every
            ):
                probes.append(index)  # every so often, one goes through
            else:
                closed_at = max(closed_at, lane.closed_until)
        elif lane.probing:
            if _probe_free(lane, now):
                probes.append(index)
            else:
                closed_at = max(closed_at, now + PROBE_POLL)
    if closed_at > now:
        return (rid, closed_at, False, closed_at - now > limit, (), False)
    at = now
    for index, lane in enumerate(lanes):
        if index not in probes:
            if lane.learning:
                _ready(lane, index, notes)
            if lane.interval is not None:
                _relax(lane, index, now, notes)
                if lane.interval is not None:
                    at = max(at, _next_slot(lane, at))
    if at - now > limit:
        return (rid, at, False, True, (), False)
    holds: list[Hold] = []
    for index, lane in enumerate(lanes):
        probe = index in probes
        slot = None
        if probe:
            lane.probe_id = rid
            lane.probe_since = now
            if now < lane.closed_until:
                lane.last_long_probe = now
        elif lane.interval is not None:
            slot = _next_slot(lane, at)
            _take_slot(lane, slot)
        holds.append((lane.epoch, slot, probe))
    taken = tuple(holds)
    entered = entering and at <= now and enter(lanes, counts, rid, taken, now)
    return (rid, at, True, False, taken, entered)


def enter(
    lanes: list[Lane],
    counts: Counts,
    rid: int,
    holds: Sequence[Sequence[Any]],
    now: float,
) -> bool:
    """Send now if the reservation still holds; False means reserve again.

    A reservation made before a throttle closed its lane no longer holds: the
    call queues again behind the new closing, and what it held is given back.
    """
    for lane, (epoch, _, probe) in zip(lanes, holds, strict=False):
        if epoch != lane.epoch or not (
            lane.probe_id == rid
            if probe
            else now >= lane.closed_until
            and not lane.probing
            and (lane.window <= 0 or now >= _window_opens(lane))
        ):
            release(lanes, rid, holds)
            return False
    for lane, hold in zip(lanes, holds, strict=False):
        if hold[1] is not None:
            _give_back(lane, hold)
        if now > lane.last_sent:
            lane.last_sent = now
        if lane.episode_start < 0:
            lane.episode_start = now
        if lane.window > 0:
            lane.entered.append(now)
            del lane.entered[: -lane.window]
    counts.sent += 1
    return True


def release(lanes: list[Lane], rid: int, holds: Sequence[Sequence[Any]]) -> None:
    """Give back what a reservation holds: its call leaves unsent."""
    for lane, hold in zip(lanes, holds, strict=False):
        _give_back(lane, hold)
        if hold[2]:
            _settled(lane, rid)


# --- outcomes --------------------------------------------------------------------


def admitted(
    lanes: list[Lane], counts: Counts, rid: int, sent_at: float, notes: list[Note]
) -> None:
    """The service answered a send without throttling it."""
    counts.admitted += 1
    for index, lane in enumerate(lanes):
        lane.in_row = 0
        if lane.probe_id == rid:
            lane.probe_id = 0
            if lane.probing:
                lane.probing = False
                if lane.learning:
                    # The service had room when the probe left: that is the
                    # reopening the rate estimate reads from.
                    _learn(lane, index, sent_at, notes)
            if lane.closed_until > sent_at:
                # A long closing, and the probe got through: it is over.
                lane.closed_until = sent_at
                lane.epoch += 1
                lane.held.clear()
                notes.append((INFO, index, "%s admitted a probe; reopening.", ()))
        lane.history.append(sent_at)
        if len(lane.history) > HISTORY:
            del lane.history[0]


def throttled(
    lanes: list[Lane],
    counts: Counts,
    rid: int,
    sent_at: float,
    wait: float | None,
    now: float,
    per_model: bool,
    jitter: float,
    notes: list[Note],
    decrease: float = DECREASE,
) -> float:
    """The service throttled a send; close a lane. Returns its reopening.

    Sends that left before the lane closed are answered after it did: their
    throttles belong to the same event. Each of their waits bounds the same
    reopening from above (rounded up, and late by the trip back), so the
    earliest bound holds. `per_model` closes the model's lane only; `jitter`
    (0 to 1) spreads a backoff; `decrease` is how much the pace learned at
    reopening slows if this throttle came while paced.
    """
    counts.throttled += 1
    target = len(lanes) - 1 if per_model else 0
    for index, other in enumerate(lanes):
        if index != target:
            _settled(other, rid)
    lane = lanes[target]
    if lane.probe_id == rid:
        lane.probe_id = 0
    if _close(lane, target, sent_at, wait, now, jitter, notes):
        counts.events += 1
        lane.decrease = decrease
    return lane.closed_until


def settled(lanes: list[Lane], rid: int, unsent_at: float | None = None) -> None:
    """A send ended with no verdict on the throttle (a network failure, a cancel).

    `unsent_at`: the call entered then, but left before sending (interrupted
    between the two): it takes no room in the learned window.
    """
    for lane in lanes:
        _settled(lane, rid)
        if unsent_at is not None:
            for position, entered in enumerate(lane.entered):
                if abs(entered - unsent_at) <= SAME_MOMENT:
                    del lane.entered[position]
                    break


def apply(
    op: str, lanes: list[Lane], counts: Counts, now: float, args: dict[str, Any]
) -> dict[str, Any]:
    """Run decision `op` with `args`: what every store does under its lock.

    The result is JSON-ready, and has the store's `now` and the `notes` to
    log. `lua/gate.lua` dispatches the same way.
    """
    notes: list[Note] = []
    result: dict[str, Any]
    if op == "reserve":
        rid, at, holds_slot, refused, holds, entered = reserve(
            lanes,
            counts,
            now,
            args["limit"],
            args["probe_every"],
            notes,
            bool(args.get("enter")),
        )
        result = {
            "id": rid,
            "at": at,
            "holds_slot": holds_slot,
            "refused": refused,
            "holds": [list(hold) for hold in holds],
            "entered": entered,
        }
    elif op == "enter":
        result = {"entered": enter(lanes, counts, args["id"], args["holds"], now)}
    elif op == "release":
        release(lanes, args["id"], args["holds"])
        result = {}
    elif op == "admitted":
        admitted(lanes, counts, args["id"], args["sent_at"], notes)
        result = {}
    elif op == "throttled":
        closed_until = throttled(
            lanes,
            counts,
            args["id"],
            args["sent_at"],
            args["wait"],
            now,
            args["per_model"],
            args["jitter"],
            notes,
            args.get("decrease", DECREASE),
        )
        result = {"closed_until": closed_until}
    elif op == "settled":
        settled(lanes, args["id"], args.get("unsent_at"))
        result = {}
    elif op == "state":
        paces = [pace for lane in lanes if (pace := lane.pace()) is not None]
        result = {
            "closed_for": max(0.0, *(lane.closed_until - now for lane in lanes)),
            "pace": min(paces) if paces else None,
            "probing": any(lane.probing for lane in lanes),
            "sent": counts.sent,
            "admitted": counts.admitted,
            "throttled": counts.throttled,
            "events": counts.events,
        }
    else:
        raise ValueError(f"no gate decision named {op!r}")
    result["now"] = now
    result["notes"] = notes
    return result


# --- one lane --------------------------------------------------------------------


def _probe_free(lane: Lane, now: float) -> bool:
    return lane.probe_id == 0 or now - lane.probe_since > PROBE_LEASE


def _next_slot(lane: Lane, now: float) -> float:
    """The first paced moment from `now` that no held slot is too near."""
    assert lane.interval is not None
    interval = lane.interval
    slot = max(now, lane.last_sent + interval, _window_opens(lane))
    for held in lane.held:
        if slot + interval <= held:
            break
        slot = max(slot, held + interval)
    return slot


def _window_opens(lane: Lane) -> float:
    """When the learned window has room for one more send (NEVER: it has now)."""
    if lane.window <= 0 or len(lane.entered) < lane.window:
        return NEVER
    return lane.entered[-lane.window] + lane.period * (1.0 + WINDOW_SLACK)


def _ready(lane: Lane, index: int, notes: list[Note]) -> None:
    """Bring the lane up to date before it is asked for a slot."""
    if lane.learning and not lane.probing:
        _learn(lane, index, lane.closed_until, notes)


def _take_slot(lane: Lane, slot: float) -> None:
    position = 0
    while position < len(lane.held) and lane.held[position] <= slot:
        position += 1
    lane.held.insert(position, slot)


def _give_back(lane: Lane, hold: Sequence[Any]) -> None:
    epoch, slot, _ = hold
    if epoch != lane.epoch or slot is None:
        return
    for position, held in enumerate(lane.held):
        if abs(held - slot) <= SAME_MOMENT:
            del lane.held[position]
            return


def _settled(lane: Lane, rid: int) -> None:
    if lane.probe_id == rid:
        lane.probe_id = 0


def _close(
    lane: Lane,
    index: int,
    sent_at: float,
    wait: float | None,
    now: float,
    jitter: float,
    notes: list[Note],
) -> bool:
    """Close the lane; return whether this was a new throttle event."""
    new_event = sent_at > lane.closed_at
    wait = usable_wait(wait)
    if new_event:
        lane.in_row += 1
    floor = _floor(lane.in_row)
    if wait is None and new_event:
        lane.probing = True  # no word on when: reopen for one probe
    if wait is None or wait <= 0:
        wait = _backoff(lane.in_row, jitter)
    wait = max(wait, floor)
    if not new_event:
        lane.closed_until = min(lane.closed_until, now + wait)
        return False
    lane.epoch += 1
    lane.held.clear()
    lane.closed_at = lane.last_event = now
    lane.closed_until = now + wait
    if not lane.learning:
        lane.learning = True
        lane.pace_before = lane.pace()
        if lane.relaxations:
            lane.pace_before = lane.held_pace
            lane.relaxed_too_far = True
    lane.relaxations = 0
    lane.relax_every = max(RELAX_EVERY, RELAX_WAITS * wait)
    notes.append(
        (
            WARNING,
            index,
            "%s throttled a request; holding every call to it for %.3g s%s.",
            (wait, ", then one probe" if lane.probing else ""),
        )
    )
    return True


def _estimate_rate(
    lane: Lane, reopens_at: float
) -> tuple[float | None, int, int, float]:
    """The rate the admitted sends of this episode show the service allows.

    A sliding-window throttle (DRF's) admits N sends per period P and, once
    full, asks to wait until its oldest send leaves the window. So if the
    k-th most recent admitted send left at `s_k` and the window frees at
    `reopens_at`, k sends fit in `reopens_at - s_k` seconds. The largest such
    rate is the estimate: for a burst it is N / P; for paced sends it is the
    pace that proved too fast.

    DRF rounds its wait up to whole seconds, and the answer takes time to
    come back, so `reopens_at` is late by up to a second or so: a span just
    above one of DRF's periods is read as that period.
    """
    best: float | None = None
    count = best_count = 0
    best_span = 0.0
    for sent_at in reversed(lane.history):
        if sent_at < lane.episode_start:
            break
        count += 1
        span = _drf_period(reopens_at - sent_at)
        if span > 0 and (best is None or count / span > best):
            best, best_count, best_span = count / span, count, span
    return best, count, best_count, best_span


def _learn(lane: Lane, index: int, reopens_at: float, notes: list[Note]) -> None:
    """Set the pace at reopening, from what the last episode showed."""
    lane.learning = False
    rate, count, window, period = _estimate_rate(lane, reopens_at)
    old_pace = lane.pace_before
    pace: float | None
    if rate is None:
        # Nothing was admitted since the last reopening: the pace, if any,
        # was too fast for what the service allows now.
        pace = None if old_pace is None else old_pace * lane.decrease
    elif lane.relaxed_too_far and old_pace is not None:
        pace = old_pace  # it held until the pace was relaxed past it
    else:
        pace = rate * SAFETY
        if old_pace is not None:
            pace = min(pace, old_pace * lane.decrease)
    lane.relaxed_too_far = False
    lane.interval = None if pace is None else 1.0 / pace
    lane.episode_start = reopens_at
    # The window is free at reopening; what the service allows in it is
    # what the episode showed (checked at entry: see `WINDOW_SLACK`).
    lane.entered.clear()
    if rate is not None and pace is not None and window <= WINDOW_MAX:
        lane.window, lane.period = window, period
    elif pace is None:
        lane.window, lane.period = 0, 0.0
    if pace is not None and pace != old_pace:
        notes.append(
            (
                INFO,
                index,
                "%s reopened; pacing requests at %.3g/s (learned from %d admitted"
                " before the throttle).",
                (pace, count),
            )
        )


def _relax(lane: Lane, index: int, now: float, notes: list[Note]) -> None:
    """Ease the pace once throttles have stopped."""
    if lane.interval is None:
        return
    steps = int((now - lane.last_event) // lane.relax_every) - lane.relaxations
    if steps <= 0:
        return
    lane.relaxations += steps
    lane.held_pace = INCREASE ** (steps - 1) / lane.interval
    if lane.relaxations >= RELAXED_AFTER:
        lane.interval = None
        lane.held.clear()
        lane.window, lane.period = 0, 0.0
        lane.entered.clear()
        notes.append(
            (
                INFO,
                index,
                "%s has not throttled for %g s; no longer pacing requests.",
                (lane.relaxations * lane.relax_every,),
            )
        )
        return
    lane.interval /= INCREASE**steps
    notes.append(
        (
            INFO,
            index,
            "%s has not throttled for %g s; pacing relaxed to %.3g requests/s.",
            (lane.relaxations * lane.relax_every, 1.0 / lane.interval),
        )
    )


def _drf_period(span: float) -> float:
    """`span`, or the DRF period it overshoots by no more than rounding does."""
    for period in DRF_PERIODS:
        if period <= span <= period + max(ROUNDING_SLACK, period / 2):
            return period
    return span


def _backoff(in_row: int, jitter: float) -> float:
    base = min(BACKOFF_FIRST * 2.0 ** min(max(in_row, 1) - 1, 32), BACKOFF_MAX)
    return base + jitter * BACKOFF_FIRST


def _floor(in_row: int) -> float:
    """The least wait after `in_row` throttles in a row: none for the first."""
    if in_row <= 1:
        return 0.0
    return min(BACKOFF_FIRST * 2.0 ** min(in_row - 2, 32), BACKOFF_MAX)
