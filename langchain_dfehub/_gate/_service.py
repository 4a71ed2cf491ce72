"""`ServiceGate`: one service's gate, as the retry policy meets it.

It asks its store for each decision (`_decisions`, run where the records
live), turns the store's times into this process's monotonic clock, and logs
what the decision noted. So the waits around it (`_retry`) are the same
whatever the store.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from langchain_dfehub._gate._decisions import (
    DECREASE,
    PROBE_EVERY,
    Hold,
    Note,
    Reserved,
)
from langchain_dfehub._gate._memory import MemoryStore
from langchain_dfehub._gate._store import GateStore
from langchain_dfehub._throttle import usable_wait

logger = logging.getLogger("langchain_dfehub")

# A limit that stands for "none": JSON (and Lua) has no infinity.
_FOREVER = 1.0e15


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
        store: Where the gate lives: "memory" (this process), "sqlite" (the
            processes of one host) or "redis" (a fleet). A shared gate
            reports the whole fleet's counts.
    """

    closed_for: float
    pace: float | None
    sent: int
    admitted: int
    throttled: int
    throttle_events: int
    probing: bool = False
    store: str = "memory"


class Reservation(NamedTuple):
    """When a call may pass: `at` (monotonic), and what it holds meanwhile.

    `holds_slot` is False when the call only waits for a closed gate to
    reopen (it holds nothing, and reserves again then); `refused` when the
    wait is longer than the call allowed, so nothing was taken at all.
    A named tuple rather than a frozen dataclass: every call makes one, and
    a frozen dataclass costs several times as much to build.
    """

    at: float
    epoch: int
    holds_slot: bool
    refused: bool = False
    holds: tuple[Hold, ...] = ()
    id: int = 0
    model: str | None = None
    via: str | None = None  # which store made it, when one stands in
    ticket: Ticket | None = None  # already entered (`reserve(enter=True)`)

    @property
    def probe(self) -> bool:
        """Whether the call goes as a probe of a closed or probing lane."""
        return any(hold[2] for hold in self.holds)


class Ticket(NamedTuple):
    """A send the gate let through, reported back once its fate is known.

    `sent_at` is this process's monotonic clock; `store_sent_at` the store's.
    """

    sent_at: float
    holds: tuple[Hold, ...] = ()
    id: int = 0
    model: str | None = None
    via: str | None = None
    store_sent_at: float | None = None

    @property
    def probe(self) -> bool:
        """Whether this send is a probe."""
        return any(hold[2] for hold in self.holds)


class ServiceGate:
    """The shared gate of one service; thread-safe, never sleeps.

    Args:
        name: The service's host, for log lines.
        clock: Monotonic seconds (tests pass a fake one).
        store: Where the gate's records live (this process's memory unless
            a shared store is set).
        key: The gate's name in its store: a digest of endpoint and key.
    """

    def __init__(
        self,
        name: str,
        clock: Callable[[], float] = time.monotonic,
        store: GateStore | None = None,
        key: str = "",
    ) -> None:
        self.name = name
        self.clock = clock
        self.store: GateStore = store if store is not None else MemoryStore()
        self.key = key
        # Seconds between probes of a gate closed longer than a call may
        # wait, counted from the closing (tests shorten it).
        self.probe_every = PROBE_EVERY
        # How much a throttle while paced slows the pace (less when shared).
        self.decrease = DECREASE

    @property
    def inline(self) -> bool:
        """Whether the gate decides here and now: its store is this process's.

        Such a decision never waits, so the async path may make it with the
        sync methods, and every call's two decisions (`reserve`, `admitted`)
        skip the packaging a shared store needs (see `MemoryStore`).
        """
        return type(self.store) is MemoryStore

    def _run(
        self,
        op: str,
        model: str | None,
        now: float,
        args: dict[str, Any],
        via: str | None = None,
    ) -> dict[str, Any]:
        if via is not None:
            result = self.store.run(  # type: ignore[call-arg]
                self.key, model, op, now, args, via=via
            )
        else:
            result = self.store.run(self.key, model, op, now, args)
        self._log(result["notes"], model)
        return result

    async def _arun(
        self,
        op: str,
        model: str | None,
        now: float,
        args: dict[str, Any],
        via: str | None = None,
    ) -> dict[str, Any]:
        if via is not None:
            result = await self.store.arun(  # type: ignore[call-arg]
                self.key, model, op, now, args, via=via
            )
        else:
            result = await self.store.arun(self.key, model, op, now, args)
        self._log(result["notes"], model)
        return result

    def _log(self, notes: list[Note], model: str | None) -> None:
        for level, lane, text, values in notes:
            label = self.name if lane == 0 else f"{self.name} (model {model})"
            logger.log(level, text, label, *values)

    # --- passing -----------------------------------------------------------

    def reserve(
        self,
        now: float,
        model: str | None = None,
        limit: float = math.inf,
        *,
        enter: bool = False,
    ) -> Reservation:
        """Say when a call may send: now, at its paced slot, or at reopening.

        `limit` is the longest the call may wait: a paced slot further away
        is not taken (the reservation comes back `refused`), so a call that
        cannot wait costs the others nothing. `enter`: a call that may send
        now enters at once (its `ticket`), in the same trip to the store.
        """
        store = self.store
        if self.inline:
            assert isinstance(store, MemoryStore)
            notes: list[Note] = []
            reserved = store.reserve(
                self.key,
                model,
                now,
                min(limit, _FOREVER),
                self.probe_every,
                enter,
                notes,
            )
            if notes:
                self._log(notes, model)
            return _reservation(reserved, now, now, model, None)
        args = self._reserve_args(limit, enter)
        return _reservation_of(self._run("reserve", model, now, args), now, model)

    async def areserve(
        self,
        now: float,
        model: str | None = None,
        limit: float = math.inf,
        *,
        enter: bool = False,
    ) -> Reservation:
        """The async twin of `reserve` (a shared store is asked without blocking)."""
        if self.inline:
            return self.reserve(now, model, limit, enter=enter)
        args = self._reserve_args(limit, enter)
        result = await self._arun("reserve", model, now, args)
        return _reservation_of(result, now, model)

    def _reserve_args(self, limit: float, enter: bool) -> dict[str, Any]:
        return {
            "limit": min(limit, _FOREVER),
            "probe_every": self.probe_every,
            "enter": enter,
        }

    def enter(self, reservation: Reservation, now: float) -> Ticket | None:
        """Send now if the reservation still holds; None means reserve again.

        A reservation made before a throttle closed the gate no longer holds:
        the call queues again behind the new closing (and what it held is
        given back).
        """
        if not reservation.holds_slot:
            return None
        result = self._run(
            "enter", reservation.model, now, _holds_args(reservation), reservation.via
        )
        return _ticket(result, reservation, now)

    async def aenter(self, reservation: Reservation, now: float) -> Ticket | None:
        """The async twin of `enter`."""
        if not reservation.holds_slot:
            return None
        result = await self._arun(
            "enter", reservation.model, now, _holds_args(reservation), reservation.via
        )
        return _ticket(result, reservation, now)

    def release(self, reservation: Reservation) -> None:
        """Give back what a reservation holds: its call leaves unsent.

        Sync on both paths: it runs while a call is being cancelled.
        """
        if reservation.holds:
            self._run(
                "release",
                reservation.model,
                self.clock(),
                _holds_args(reservation),
                reservation.via,
            )

    # --- outcomes ----------------------------------------------------------

    def admitted(self, ticket: Ticket) -> None:
        """The service answered this send without throttling it."""
        store = self.store
        if self.inline:
            assert isinstance(store, MemoryStore)
            notes: list[Note] = []
            store.admitted(
                self.key, ticket.model, ticket.id, _store_sent_at(ticket), notes
            )
            if notes:
                self._log(notes, ticket.model)
            return
        args = {"id": ticket.id, "sent_at": _store_sent_at(ticket)}
        self._run("admitted", ticket.model, self.clock(), args, ticket.via)

    async def aadmitted(self, ticket: Ticket) -> None:
        """The async twin of `admitted`."""
        if self.inline:
            self.admitted(ticket)
            return
        args = {"id": ticket.id, "sent_at": _store_sent_at(ticket)}
        await self._arun("admitted", ticket.model, self.clock(), args, ticket.via)

    def throttled(
        self,
        ticket: Ticket,
        wait: float | None,
        now: float,
        *,
        per_model: bool = False,
    ) -> float:
        """The service throttled this send; close a lane. Returns the reopening.

        `per_model` closes the model's lane only (see `_decisions.throttled`).
        """
        args = _throttle_args(ticket, wait, per_model, self.decrease)
        result = self._run("throttled", ticket.model, now, args, ticket.via)
        return _reopening(result, now)

    async def athrottled(
        self,
        ticket: Ticket,
        wait: float | None,
        now: float,
        *,
        per_model: bool = False,
    ) -> float:
        """The async twin of `throttled`."""
        args = _throttle_args(ticket, wait, per_model, self.decrease)
        result = await self._arun("throttled", ticket.model, now, args, ticket.via)
        return _reopening(result, now)

    def settled(self, ticket: Ticket, *, unsent: bool = False) -> None:
        """The send ended without a verdict (a network failure, a cancel).

        `unsent`: the call left between entering and sending. Sync on both
        paths: it runs while a call is being cancelled.
        """
        args: dict[str, Any] = {"id": ticket.id}
        if unsent:
            args["unsent_at"] = _store_sent_at(ticket)
        self._run("settled", ticket.model, self.clock(), args, ticket.via)

    # --- reading -----------------------------------------------------------

    def state(self, model: str | None = None) -> GateState:
        """A snapshot of the gate (for `model`'s calls), for users and tests."""
        result = self._run("state", model, self.clock(), {})
        via = result.get("via")
        return GateState(
            closed_for=result["closed_for"],
            pace=result["pace"],
            sent=result["sent"],
            admitted=result["admitted"],
            throttled=result["throttled"],
            throttle_events=result["events"],
            probing=bool(result["probing"]),
            store="memory" if via == "local" else self.store.kind,
        )


def _reservation_of(
    result: dict[str, Any], now: float, model: str | None
) -> Reservation:
    """A store's packaged reservation (JSON from Redis: numbers for booleans)."""
    holds = tuple((int(e), s, bool(p)) for e, s, p in result["holds"])
    reserved = (
        int(result["id"]),
        result["at"],
        bool(result["holds_slot"]),
        bool(result["refused"]),
        holds,
        bool(result.get("entered")),
    )
    return _reservation(reserved, now, result["now"], model, result.get("via"))


def _reservation(
    reserved: Reserved,
    now: float,
    store_now: float,
    model: str | None,
    via: str | None,
) -> Reservation:
    """What the store decided, on this process's clock (`now`)."""
    rid, at, holds_slot, refused, holds, entered = reserved
    ticket = None
    if entered:
        ticket = Ticket(now, holds, rid, model, via, store_now)
    return Reservation(
        now + max(at - store_now, 0.0),
        holds[0][0] if holds else 0,
        holds_slot,
        refused,
        holds,
        rid,
        model,
        via,
        ticket,
    )


def _holds_args(reservation: Reservation) -> dict[str, Any]:
    return {"id": reservation.id, "holds": [list(h) for h in reservation.holds]}


def _ticket(
    result: dict[str, Any], reservation: Reservation, now: float
) -> Ticket | None:
    if not result["entered"]:
        return None
    return Ticket(
        sent_at=now,
        holds=reservation.holds,
        id=reservation.id,
        model=reservation.model,
        via=result.get("via"),
        store_sent_at=result["now"],
    )


def _throttle_args(
    ticket: Ticket, wait: float | None, per_model: bool, decrease: float
) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "sent_at": _store_sent_at(ticket),
        "wait": usable_wait(wait),
        "per_model": per_model and ticket.model is not None,
        "jitter": random.random(),  # noqa: S311 - not for secrets
        "decrease": decrease,
    }


def _reopening(result: dict[str, Any], now: float) -> float:
    """The store's reopening, on this process's clock."""
    if "closed_until" not in result:
        return now  # the store failed to take it: nothing is closed here
    return now + float(result["closed_until"] - result["now"])


def _store_sent_at(ticket: Ticket) -> float:
    """When the ticket's send left, by its store's clock."""
    return ticket.sent_at if ticket.store_sent_at is None else ticket.store_sent_at
