"""The gate under pressure: no leaked places, no floods, no lock-outs.

Every case runs with the gate in memory, in a SQLite file and on Redis.

Each case runs on the sync and the async path against a local server: the
real DRF app where the case is DRF's, the emulator's scripted replies, or a
gateway that limits per model and throttles late without a wait (what a
LiteLLM proxy does). Counts are asserted, never wall times.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from drf_service import DrfService
from gateway_server import NO_DEPLOYMENTS, GatewayServer
from model_calls import answer

from langchain_dfehub import ChatDfeHub, DfeHubRateLimitError
from langchain_dfehub._gate import forget_gates, gate_for
from langchain_dfehub._urls import chat_completions_url
from langchain_dfehub.testing import DfeHubEmulator, ErrorStatus, Malformed, Throttle

# Every case runs with the gate on each store (the `gate` setting, from
# DFEHUB_GATE_URL): the pressure fixes hold wherever the gate lives.
pytestmark = pytest.mark.usefixtures("every_gate_store")
MODES = ["sync", "async"]
ServiceAt = Callable[[str], DrfService]


def invoke(model: ChatDfeHub, mode: str, prompt: str = "hello there") -> str:
    return answer(model, "invoke" if mode == "sync" else "ainvoke", prompt)


def stream(model: ChatDfeHub, mode: str, prompt: str = "hello there") -> str:
    return answer(model, "stream" if mode == "sync" else "astream", prompt)


def burst(model: ChatDfeHub, mode: str, prompts: list[str]) -> list[Any]:
    """Every prompt at once; each result is the answer's text or the error."""
    if mode == "sync":
        config = {"max_concurrency": len(prompts)}
        results = model.batch(prompts, config=config, return_exceptions=True)
        return [r if isinstance(r, Exception) else str(r.content) for r in results]

    async def one(prompt: str) -> Any:
        try:
            return str((await model.ainvoke(prompt)).content)
        except DfeHubRateLimitError as error:
            return error

    async def all_of_them() -> list[Any]:
        return list(await asyncio.gather(*(one(p) for p in prompts)))

    return asyncio.run(all_of_them())


def gate_of(model: ChatDfeHub) -> Any:
    return gate_for(chat_completions_url(model.base_url), None, model._gate_store())


def learn_a_pace(service: DrfService, mode: str) -> ChatDfeHub:
    """A burst over the DRF app's rate, so that its gate paces."""
    model = ChatDfeHub(base_url=service.base_url)
    prompts = [f"warm up {n}" for n in range(16)]
    assert burst(model, mode, prompts) == prompts
    assert model.throttle_state.pace is not None
    return model


def wait_out_any_closing(model: ChatDfeHub) -> None:
    """Let a closing the server really asked for pass before the next call.

    A loaded machine may send one paced request early; what these tests
    check is that no place is left held, which `closed_for` does not show.
    """
    time.sleep(model.throttle_state.closed_for)


# --- a call that leaves the gate unsent gives its place back ----------------------


@pytest.mark.parametrize("mode", MODES)
def test_calls_refused_by_a_bound_take_no_place_at_the_gate(
    drf_service: ServiceAt, mode: str
) -> None:
    service = drf_service("5/s")
    learn_a_pace(service, mode)
    hurried = ChatDfeHub(base_url=service.base_url, max_retry_wait=0.05)
    results = burst(hurried, mode, [f"hurry {n}" for n in range(40)])
    refused = [r for r in results if isinstance(r, DfeHubRateLimitError)]
    assert len(refused) >= 20
    assert all(error.attempts == 0 for error in refused)  # never sent

    # The service is idle again: a call that may wait one paced interval
    # goes, instead of queuing behind forty places nobody uses.
    wait_out_any_closing(hurried)
    patient = ChatDfeHub(base_url=service.base_url, max_retry_wait=0.5)
    assert invoke(patient, mode, "after the hurry") == "after the hurry"
    assert patient.throttle_state.closed_for == 0.0


def test_async_calls_cancelled_while_waiting_give_their_places_back(
    drf_service: ServiceAt,
) -> None:
    service = drf_service("5/s")
    learn_a_pace(service, "async")
    model = ChatDfeHub(base_url=service.base_url)

    async def impatient() -> int:
        calls = [
            asyncio.wait_for(model.ainvoke(f"impatient {n}"), timeout=0.05)
            for n in range(36)
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        return sum(isinstance(r, asyncio.TimeoutError) for r in results)

    assert asyncio.run(impatient()) >= 18
    wait_out_any_closing(model)
    patient = ChatDfeHub(base_url=service.base_url, max_retry_wait=0.5)
    assert invoke(patient, "async", "after them") == "after them"


class AlarmError(Exception):
    pass


def test_sync_calls_interrupted_while_waiting_give_their_places_back(
    drf_service: ServiceAt,
) -> None:
    service = drf_service("5/s")
    model = learn_a_pace(service, "sync")
    interval = 1 / model.throttle_state.pace

    def interrupt(signum: int, frame: Any) -> None:
        # Only while the call sleeps at the gate (the frame that called the
        # sleep): raised anywhere else, it could leave a lock of a library
        # below held. Elsewhere, look again shortly.
        if frame is not None and frame.f_code.co_name == "_wait_at_gate":
            raise AlarmError
        signal.setitimer(signal.ITIMER_REAL, 0.005)

    previous = signal.signal(signal.SIGALRM, interrupt)
    interrupted = 0
    try:
        for n in range(39):
            signal.setitimer(signal.ITIMER_REAL, interval / 4)
            try:
                model.invoke(f"interrupted {n}")
            except AlarmError:
                interrupted += 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert interrupted >= 20
    wait_out_any_closing(model)
    patient = ChatDfeHub(base_url=service.base_url, max_retry_wait=0.5)
    assert invoke(patient, "sync", "after them") == "after them"


# --- waits that cannot be real, and gates closed for long ---------------------------


def throttle_body(text: str) -> str:
    return '{"detail": "%s"}' % text  # noqa: UP031


@pytest.mark.parametrize("mode", MODES)
def test_an_infinite_wait_is_no_wait_and_shuts_nothing_out(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    text = "Request was throttled. Expected available in 1e999 seconds."
    dfehub_emulator.add_faults(ErrorStatus(429, throttle_body(text)))

    assert invoke(model, mode, "first") == "first"  # backed off, then a probe
    assert invoke(model, mode, "second") == "second"
    assert len(dfehub_emulator.requests) == 3
    state = model.throttle_state
    assert (state.closed_for, state.probing, state.throttled) == (0.0, False, 1)


@pytest.mark.parametrize("mode", MODES)
def test_an_infinite_wait_with_max_retries_zero_is_raised_with_a_finite_retry_after(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, max_retries=0)
    text = "Request was throttled. Expected available in 1e999 seconds."
    dfehub_emulator.add_faults(ErrorStatus(429, throttle_body(text)))
    with pytest.raises(DfeHubRateLimitError) as caught:
        invoke(model, mode)
    assert caught.value.retry_after is None
    assert "inf" not in str(caught.value).replace("info", "")


@pytest.mark.parametrize("mode", MODES)
def test_a_gate_closed_longer_than_a_call_may_wait_lets_a_probe_through(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, max_retry_wait=1)
    dfehub_emulator.add_faults(Throttle(wait=600))
    with pytest.raises(DfeHubRateLimitError):
        invoke(model, mode, "throttled")
    gate = gate_of(model)
    gate.probe_every = 0.3
    # Within `probe_every` of the closing: refused unsent.
    with pytest.raises(DfeHubRateLimitError) as caught:
        invoke(model, mode, "refused")
    assert caught.value.attempts == 0
    assert 500 < caught.value.retry_after <= 600
    assert len(dfehub_emulator.requests) == 1

    time.sleep(0.35)
    # The server has recovered: the probe is admitted and reopens the gate.
    assert invoke(model, mode, "the probe") == "the probe"
    assert model.throttle_state.closed_for == 0.0
    assert invoke(model, mode, "open again") == "open again"
    assert len(dfehub_emulator.requests) == 3


@pytest.mark.parametrize("mode", MODES)
def test_a_probe_that_is_throttled_again_keeps_the_gate_closed(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, max_retry_wait=1)
    dfehub_emulator.add_faults(Throttle(wait=600), Throttle(wait=500))
    with pytest.raises(DfeHubRateLimitError):
        invoke(model, mode, "throttled")
    gate_of(model).probe_every = 0.2
    time.sleep(0.25)
    with pytest.raises(DfeHubRateLimitError) as caught:
        invoke(model, mode, "the probe")
    assert caught.value.attempts == 1
    assert 400 < model.throttle_state.closed_for <= 500
    with pytest.raises(DfeHubRateLimitError):
        invoke(model, mode, "held")
    assert len(dfehub_emulator.requests) == 2


# --- throttle storms are bounded -------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_server_asking_for_a_millisecond_again_and_again_gets_few_requests(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(
        base_url=dfehub_emulator.base_url, max_retries=2, throttle_budget=1
    )
    said = '{"error": {"message": "Rate limit exceeded. Please try again in 1ms."}}'
    dfehub_emulator.add_faults(*[ErrorStatus(429, said)] * 50)
    with pytest.raises(DfeHubRateLimitError) as caught:
        invoke(model, mode)
    # 1 ms, then a floor of 0.25 s and 0.5 s as throttles come in a row:
    # the next would pass the budget.
    sent = len(dfehub_emulator.requests)
    assert 2 <= sent <= 4
    error = caught.value
    assert error.attempts == sent
    assert "throttle_budget" in str(error)
    assert "Please try again in 1ms" in str(error)
    assert error.status_code == 429


# --- in-band throttles are throttles ------------------------------------------------


IN_BAND = '{"error": {"code": 429, "message": "Rate limit hit, try again in 0.05s."}}'


@pytest.mark.parametrize("mode", MODES)
def test_an_in_band_429_in_a_200_body_is_waited_out_at_the_gate(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    dfehub_emulator.add_faults(ErrorStatus(200, IN_BAND))
    assert invoke(model, mode, "worth it") == "worth it"
    assert len(dfehub_emulator.requests) == 2
    assert model.throttle_state.throttled == 1


@pytest.mark.parametrize("mode", MODES)
def test_an_in_band_429_in_a_stream_is_waited_out_before_the_first_piece(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    dfehub_emulator.add_faults(Malformed(line=f"data: {IN_BAND}"))
    assert stream(model, mode, "no repeats") == "no repeats"
    assert len(dfehub_emulator.requests) == 2
    assert model.throttle_state.throttled == 1


# --- max_retries=0: one request, no waiting -------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_max_retries_zero_raises_a_throttle_at_once_and_never_waits_at_the_gate(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, max_retries=0)
    dfehub_emulator.add_faults(Throttle(wait=5))
    with pytest.raises(DfeHubRateLimitError) as throttled:
        invoke(model, mode)
    assert throttled.value.retry_after == 5
    assert throttled.value.status_code == 429
    with pytest.raises(DfeHubRateLimitError) as held:
        invoke(model, mode)
    assert 4 < held.value.retry_after <= 5
    assert "max_retries=0" in str(held.value)
    assert len(dfehub_emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_with_fallbacks_sees_the_throttle_at_once_with_max_retries_zero(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    primary = ChatDfeHub(base_url=dfehub_emulator.base_url, max_retries=0)
    with DfeHubEmulator() as spare:
        backup = ChatDfeHub(base_url=spare.base_url)
        chain = primary.with_fallbacks([backup])
        dfehub_emulator.add_faults(Throttle(wait=30))
        if mode == "sync":
            answer = chain.invoke("fall back")
        else:
            answer = asyncio.run(chain.ainvoke("fall back"))
        assert answer.content == "fall back"
        assert (len(dfehub_emulator.requests), len(spare.requests)) == (1, 1)


# --- a gateway that throttles late and without a wait ----------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_late_waitless_throttle_costs_at_most_one_throttled_request_per_call(
    mode: str,
) -> None:
    calls = 10
    with GatewayServer(limit=4, period=3.0, throttle_delay=0.8) as gateway:
        model = ChatDfeHub(base_url=gateway.base_url, model="gw-model")
        prompts = [f"through the gateway {n}" for n in range(calls)]
        try:
            assert burst(model, mode, prompts) == prompts
        finally:
            forget_gates(gateway.base_url)
        # The first wave is in flight before the first 429 comes back; after
        # it, the gate sends one probe at a time until one is admitted, then
        # paces: no wave per reopening.
        assert gateway.throttled["gw-model"] <= calls
        assert gateway.requests["gw-model"] <= 2 * calls


def test_the_gateways_words_are_a_per_model_throttle() -> None:
    from langchain_dfehub._throttle import throttle_is_per_model

    assert throttle_is_per_model(NO_DEPLOYMENTS, "gw-model")


@pytest.mark.parametrize("mode", MODES)
def test_a_per_model_throttle_does_not_hold_another_model(mode: str) -> None:
    with GatewayServer(limit=2, period=30.0, throttle_delay=0.05) as gateway:
        busy = ChatDfeHub(
            base_url=gateway.base_url, model="busy", throttle_budget=0, max_retries=0
        )
        free = ChatDfeHub(base_url=gateway.base_url, model="free", max_retry_wait=1)
        try:
            for n in range(2):
                assert invoke(busy, mode, f"busy {n}") == f"busy {n}"
            with pytest.raises(DfeHubRateLimitError):
                invoke(busy, mode, "over the limit")
            assert busy.throttle_state.closed_for > 0
            # The other model's calls are not held: sent at once, answered.
            assert invoke(free, mode, "not held") == "not held"
            assert free.throttle_state.closed_for == 0.0
            assert gateway.requests["free"] == 1
        finally:
            forget_gates(gateway.base_url)


OPENAI_PER_MODEL = (
    '{"error": {"message": "Rate limit reached for model-a in organization'
    " org-1 on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try"
    ' again in 20s.", "type": "requests", "code": "rate_limit_exceeded"}}'
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scope", ["auto", "service"])
def test_the_throttle_scope_decides_whether_another_model_is_held(
    dfehub_emulator: DfeHubEmulator, mode: str, scope: str
) -> None:
    def model(name: str, **kwargs: Any) -> ChatDfeHub:
        return ChatDfeHub(
            base_url=dfehub_emulator.base_url,
            model=name,
            throttle_scope=scope,
            **kwargs,
        )

    dfehub_emulator.add_faults(ErrorStatus(429, OPENAI_PER_MODEL))
    with pytest.raises(DfeHubRateLimitError):
        invoke(model("model-a", throttle_budget=0), mode)
    other = model("model-b", throttle_budget=1)
    if scope == "auto":
        assert invoke(other, mode, "b is free") == "b is free"
        assert len(dfehub_emulator.requests) == 2
    else:
        with pytest.raises(DfeHubRateLimitError) as caught:
            invoke(other, mode, "b is held")
        assert caught.value.attempts == 0
        assert len(dfehub_emulator.requests) == 1
    # The throttled model itself is held either way.
    with pytest.raises(DfeHubRateLimitError):
        invoke(model("model-a", throttle_budget=1), mode)


@pytest.mark.parametrize("mode", MODES)
def test_drfs_per_client_throttle_holds_every_model(
    drf_service: ServiceAt, mode: str
) -> None:
    service = drf_service("3/min")
    told = ChatDfeHub(base_url=service.base_url, model="model-a", throttle_budget=0)
    for n in range(3):
        assert invoke(told, mode, f"a {n}") == f"a {n}"
    with pytest.raises(DfeHubRateLimitError) as throttled:
        invoke(told, mode, "a over")
    assert "Request was throttled" in str(throttled.value)

    other = ChatDfeHub(base_url=service.base_url, model="model-b", max_retry_wait=5)
    with pytest.raises(DfeHubRateLimitError) as held:
        invoke(other, mode, "b is held too")
    assert held.value.attempts == 0
    assert other.throttle_state.closed_for > 30
    assert service.stats().requests == 4


@pytest.mark.parametrize("mode", MODES)
def test_an_agents_fallback_middleware_sees_the_throttle_at_once(
    dfehub_emulator: DfeHubEmulator, mode: str
) -> None:
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelFallbackMiddleware

    primary = ChatDfeHub(base_url=dfehub_emulator.base_url, max_retries=0)
    with DfeHubEmulator() as spare:
        backup = ChatDfeHub(base_url=spare.base_url)
        agent = create_agent(
            primary, tools=[], middleware=[ModelFallbackMiddleware(backup)]
        )
        dfehub_emulator.add_faults(Throttle(wait=30))
        asked = {"messages": [("user", "through the fallback")]}
        if mode == "sync":
            state = agent.invoke(asked)
        else:
            state = asyncio.run(agent.ainvoke(asked))
        assert state["messages"][-1].content == "through the fallback"
        assert (len(dfehub_emulator.requests), len(spare.requests)) == (1, 1)
