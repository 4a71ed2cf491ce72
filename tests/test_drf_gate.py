"""The service gate against a real Django REST Framework app under gunicorn.

A burst wider than the app's `AnonRateThrottle` allows completes, every
call, on the sync and the async path; the gate closes once per throttle and
paces what follows; a rate the burst never reaches is never paced; and a
user's own LangChain rate limiter still works beside the gate. Counts, not
times, are asserted: the timing targets belong to `make bench`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from drf_service import DrfService
from langchain_core.rate_limiters import InMemoryRateLimiter

from langchain_dfehub import ChatDfeHub

ServiceAt = Callable[[str], DrfService]
# Every case runs with the gate on each store: memory, SQLite, Redis.
pytestmark = pytest.mark.usefixtures("every_gate_store")
CALLS = 40


def prompts(tag: str) -> list[str]:
    return [f"{tag} call {n} here" for n in range(CALLS)]


def burst(model: ChatDfeHub, mode: str, asked: list[str]) -> list[str]:
    if mode == "sync":
        config = {"max_concurrency": len(asked)}
        return [str(m.content) for m in model.batch(asked, config=config)]

    async def one(prompt: str) -> str:
        return "".join([str(c.content) async for c in model.astream(prompt)])

    async def all_of_them() -> list[str]:
        return list(await asyncio.gather(*(one(p) for p in asked)))

    return asyncio.run(all_of_them())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_burst_over_the_rate_completes_every_call(
    drf_service: ServiceAt, mode: str
) -> None:
    service = drf_service("20/s")
    model = ChatDfeHub(base_url=service.base_url)
    asked = prompts(mode)

    assert burst(model, mode, asked) == asked

    stats = service.stats()
    state = model.throttle_state
    assert stats.completed == CALLS
    assert stats.requests <= 2 * CALLS
    assert state.throttled == stats.throttled > 0
    assert state.sent == stats.requests
    assert state.admitted == CALLS
    # The throttles of the sends in flight were one event, and the gate paced
    # what followed, a little under the app's 20/s.
    assert state.throttle_events <= 3
    assert state.pace is not None
    assert 10 <= state.pace < 20


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_service_that_never_throttles_is_never_paced(
    drf_service: ServiceAt, mode: str
) -> None:
    service = drf_service("1000/m")
    model = ChatDfeHub(base_url=service.base_url)
    asked = prompts(mode)

    assert burst(model, mode, asked) == asked

    assert service.stats().throttled == 0
    state = model.throttle_state
    assert state.pace is None
    assert (state.sent, state.throttled) == (CALLS, 0)


def test_a_users_rate_limiter_works_beside_the_gate(drf_service: ServiceAt) -> None:
    service = drf_service("20/s")
    limiter = InMemoryRateLimiter(
        requests_per_second=12, check_every_n_seconds=0.01, max_bucket_size=1
    )
    model = ChatDfeHub(base_url=service.base_url, rate_limiter=limiter)
    asked = prompts("limited")[:24]

    assert burst(model, "sync", asked) == asked

    assert service.stats().throttled == 0
    assert model.throttle_state.pace is None
