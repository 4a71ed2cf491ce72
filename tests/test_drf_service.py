"""ChatDfeHub against a real Django REST Framework app, the service's own stack.

The service's throttle text is DRF's `Throttled` exception and its decisions
are `AnonRateThrottle`'s, so these tests run the client against a real DRF
app under gunicorn (tests/drf_service), not our idea of one: its answers, its
content negotiation (the 406 a stream used to get) and its 429s are DRF's.
The throttle tests run against the emulator's rate mode too, which must
answer exactly as the DRF app does. Rates like `3/min` provoke a throttle at
once, without waiting; `throttle_budget=0` shows a test the throttle itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import requests
from drf_service import DrfService, DrfServiceError, ServerStats, running_drf_service

from langchain_dfehub import ChatDfeHub, DfeHubRateLimitError
from langchain_dfehub.testing import DfeHubEmulator

PROMPT = "Hello from the real stack"
MODES = ["sync", "async"]
ServiceAt = Callable[[str], DrfService]
ServerAt = Callable[[str], str]
_WAIT = re.compile(r"Request was throttled\. Expected available in (\d+) seconds?\.")


@pytest.fixture(params=["drf", "emulator"])
def server_at(
    request: pytest.FixtureRequest, drf_service: ServiceAt
) -> Iterator[ServerAt]:
    """Start a server throttling at a rate; return its base URL.

    The DRF app, or the emulator in rate mode, which must answer alike.
    """
    with ExitStack() as stack:

        def start(rate: str) -> str:
            if request.param == "drf":
                return drf_service(rate).base_url
            emulator = DfeHubEmulator(throttle_rate=rate)
            return stack.enter_context(emulator).base_url

        yield start


def fresh_model(base_url: str, **options: Any) -> ChatDfeHub:
    """A model with a gate of its own.

    Calls to one service share a throttle gate per process, keyed by endpoint
    and key. The DRF apps outlive a test and ports are reused, so a unique key
    (which neither server checks) keeps one test's throttles out of another's.
    """
    return ChatDfeHub(base_url=base_url, api_key=f"sk-{uuid.uuid4().hex}", **options)


def chat_request(
    base_url: str, *, accept: str = "application/json", stream: bool = False
) -> requests.Response:
    body = {"messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    return requests.post(
        f"{base_url}/chat/completions",
        json=body,
        headers={"Accept": accept},
        timeout=10,
    )


def invoke(model: ChatDfeHub, mode: str) -> str:
    if mode == "sync":
        return str(model.invoke(PROMPT).content)
    return str(asyncio.run(model.ainvoke(PROMPT)).content)


def stream(model: ChatDfeHub, mode: str) -> list[str]:
    if mode == "sync":
        return [str(chunk.content) for chunk in model.stream(PROMPT)]

    async def collect() -> list[str]:
        return [str(chunk.content) async for chunk in model.astream(PROMPT)]

    return asyncio.run(collect())


def whole_seconds(detail: str) -> int:
    match = _WAIT.fullmatch(detail)
    assert match is not None, detail
    return int(match.group(1))


@pytest.mark.parametrize("mode", MODES)
def test_invoke_gets_the_echo_from_the_drf_app(drf_service: ServiceAt, mode: str):
    service = drf_service("10/s")
    model = fresh_model(service.base_url)

    assert invoke(model, mode) == PROMPT
    assert service.stats().completed == 1


@pytest.mark.parametrize("mode", MODES)
def test_stream_passes_drf_content_negotiation(drf_service: ServiceAt, mode: str):
    service = drf_service("10/s")
    model = fresh_model(service.base_url)

    pieces = stream(model, mode)

    assert "".join(pieces) == PROMPT
    assert len([piece for piece in pieces if piece]) == len(PROMPT.split())
    stats = service.stats()
    assert (stats.requests, stats.throttled, stats.completed) == (1, 0, 1)


def test_drf_app_answers_406_to_a_stream_that_accepts_only_event_stream(
    drf_service: ServiceAt,
):
    service = drf_service("10/s")

    refused = chat_request(service.base_url, accept="text/event-stream", stream=True)
    accepted = chat_request(
        service.base_url, accept="text/event-stream, application/json", stream=True
    )

    assert refused.status_code == 406
    assert refused.json() == {"detail": "Could not satisfy the request Accept header."}
    assert accepted.status_code == 200
    assert accepted.headers["content-type"].startswith("text/event-stream")
    assert accepted.text.endswith("data: [DONE]\n\n")


def test_a_burst_is_throttled_with_drfs_text_and_a_matching_retry_after(
    server_at: ServerAt,
):
    base_url = server_at("3/min")

    replies = [chat_request(base_url) for _ in range(5)]

    assert [reply.status_code for reply in replies] == [200, 200, 200, 429, 429]
    for throttled in replies[3:]:
        seconds = whole_seconds(throttled.json()["detail"])
        assert 0 < seconds <= 60
        assert throttled.headers["Retry-After"] == str(seconds)


def test_the_drf_app_counts_what_it_throttled(drf_service: ServiceAt):
    service = drf_service("2/min")

    statuses = [chat_request(service.base_url).status_code for _ in range(5)]

    assert statuses == [200, 200, 429, 429, 429]
    stats = service.stats()
    assert (stats.requests, stats.throttled, stats.completed) == (5, 3, 2)
    service.reset_stats()
    assert service.stats() == ServerStats(0, 0, 0)
    assert chat_request(service.base_url).status_code == 429  # history kept
    service.reset_throttle()
    assert chat_request(service.base_url).status_code == 200


def test_drf_says_1_second_in_the_singular(server_at: ServerAt):
    base_url = server_at("1/s")

    # Any request in the same second as the first is throttled; a slow
    # machine may need another try to land two in one second.
    for _ in range(10):
        throttled = chat_request(base_url)
        if throttled.status_code == 429:
            break
    assert throttled.status_code == 429
    assert throttled.json() == {
        "detail": "Request was throttled. Expected available in 1 second."
    }
    assert throttled.headers["Retry-After"] == "1"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_drf_throttle_raises_rate_limit_error_with_its_wait(
    server_at: ServerAt, mode: str, streaming: bool
):
    model = fresh_model(server_at("3/min"), throttle_budget=0)
    for _ in range(3):
        assert invoke(model, mode) == PROMPT

    with pytest.raises(DfeHubRateLimitError) as caught:
        stream(model, mode) if streaming else invoke(model, mode)

    error = caught.value
    assert error.status_code == 429
    assert error.detail is not None
    assert error.retry_after == whole_seconds(error.detail)


def test_a_service_is_stopped_with_its_worker_when_the_block_ends():
    with running_drf_service("5/s") as service:
        assert chat_request(service.base_url).status_code == 200
        group = service.pid

    with pytest.raises(ProcessLookupError):
        os.killpg(group, signal.SIGCONT)  # no process of the group is left


def test_a_service_that_cannot_start_in_time_is_stopped_and_says_so():
    with (
        pytest.raises(DrfServiceError, match=r"did not start in 0\.001 s"),
        running_drf_service("5/s", start_timeout=0.001),
    ):
        pytest.fail("the service cannot have started")


def test_a_service_that_fails_to_start_shows_what_it_said():
    with (
        pytest.raises(
            DrfServiceError, match=r"exited before printing its URL"
        ) as caught,
        running_drf_service("5/s", threads=-1),
    ):
        pytest.fail("gunicorn cannot have started with -1 threads")
    assert "-1" in str(caught.value).split("Its stderr:")[1]  # gunicorn's complaint


def test_a_rate_drf_cannot_read_is_refused_before_starting():
    with pytest.raises(ValueError, match="N/period"), running_drf_service("10/x"):
        pytest.fail("no service for a bad rate")
