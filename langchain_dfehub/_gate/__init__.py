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

The layout: `_decisions` is the pure core (it decides from times and events
on plain records, and never sleeps); a store runs one decision at a time
atomically where the records live: `_memory` (this process, the default),
`_sqlite` (the processes of one host, through a file), `_redis` (a fleet of
hosts, as the Lua scripts in `lua/`). `ServiceGate` (`_service`) asks its
store and turns the store's times into this process's clock; `_fallback`
keeps calls going on the in-process store when a shared one fails. A call's
slot is its own until it enters or releases it, so a call that leaves
without sending (refused by a bound, cancelled, interrupted) gives its place
back. The retry policy wraps the gate in thin sync and async waits
(`_retry`), so both paths queue the same way.
"""

from __future__ import annotations

import hashlib
import os
import threading

from langchain_dfehub._gate._decisions import PROBE_EVERY, SHARED_DECREASE
from langchain_dfehub._gate._fallback import FallbackStore
from langchain_dfehub._gate._service import (
    GateState,
    Reservation,
    ServiceGate,
    Ticket,
)
from langchain_dfehub._gate._store import GateStore
from langchain_dfehub._gate_urls import SQLITE_PREFIX, without_password
from langchain_dfehub._urls import service_name

__all__ = [
    "PROBE_EVERY",
    "GateState",
    "Reservation",
    "ServiceGate",
    "Ticket",
    "forget_gates",
    "gate_for",
    "gate_named",
    "key_digest",
]

# --- the registry: one gate per service per process ---------------------------

_gates: dict[tuple[str, str, str], ServiceGate] = {}
_stores: dict[str, FallbackStore] = {}
_registry_lock = threading.Lock()


def gate_for(url: str, secret: str | None, store: str | None = None) -> ServiceGate:
    """The process's gate for the service at `url` used with key `secret`.

    The key is kept only as a digest. Model copies, unpickled models and
    other instances with the same endpoint and key share the gate. `store`
    is the `gate` setting's URL (with its password): None keeps the gate in
    this process; a shared store holds it under a digest of endpoint and
    key. Called on every request, so a gate is worked out only once.
    """
    return gate_named(url, key_digest(secret), store)


def key_digest(secret: str | None) -> str:
    """The digest of a key that names its gate: the key itself is never kept."""
    return hashlib.sha256(secret.encode()).hexdigest() if secret else ""


def gate_named(url: str, digest: str, store: str | None = None) -> ServiceGate:
    """`gate_for`, given the key's digest (a model keeps it, see `_call_target`)."""
    key = (url, digest, store or "")
    gate = _gates.get(key)
    if gate is None:
        with _registry_lock:
            gate = _gates.get(key)
            if gate is None:
                name = hashlib.sha256(f"{url}\n{digest}".encode()).hexdigest()[:32]
                shared = None if store is None else _store_locked(store)
                gate = ServiceGate(service_name(url), store=shared, key=name)
                if shared is not None:
                    gate.decrease = SHARED_DECREASE
                _gates[key] = gate
    return gate


def _store_locked(url: str) -> FallbackStore:
    """One store per URL per process (so one connection pool), lock held."""
    store = _stores.get(url)
    if store is None:
        store = _stores[url] = FallbackStore(open_store(url), without_password(url))
    return store


def open_store(url: str) -> GateStore:
    """The store a `gate` URL names; Redis's client is imported only here."""
    if url.startswith(SQLITE_PREFIX):
        from langchain_dfehub._gate._sqlite import SqliteStore

        return SqliteStore(url[len(SQLITE_PREFIX) :])
    from langchain_dfehub._gate._redis import RedisStore

    return RedisStore(url)


def forget_gates(base_url: str | None = None) -> None:
    """Drop the gates of the services under `base_url` (None: every gate).

    For a server that was restarted or reset behind a URL (a test server on
    a port that an earlier one used): the next call starts unthrottled. A
    shared gate is forgotten by this process only; its store keeps it.
    """
    with _registry_lock:
        if base_url is None:
            _gates.clear()
            return
        prefix = base_url.rstrip("/")
        for key in [key for key in _gates if key[0].startswith(prefix)]:
            del _gates[key]


def _fresh_registry_in_child() -> None:
    """A forked child shares no gate, store connection or held lock with its parent."""
    global _registry_lock
    _gates.clear()
    _stores.clear()
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_registry_in_child)
