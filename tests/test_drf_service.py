"""ChatDfeHub against a real Django REST Framework app, the service's own stack.

The service's throttle text is DRF's `Throttled` exception and its decisions
are `AnonRateThrottle`'s, so these tests run the client against a real DRF
app under gunicorn (tests/drf_service), not our idea of one: its answers, its
content negotiation (the 406 a stream used to get) and its 429s are DRF's.
Rates like `3/min` provoke a throttle at once, without waiting; retries are
off where a test needs to see the throttle itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Callable

import pytest
import requests
from drf_service import DrfService, DrfServiceError, running_drf_service

from langchain_dfehub import ChatDfeHub, DfeHubRateLimitError

PROMPT = "Hello from the real stack"
MODES = ["sync", "async"]
ServiceAt = Callable[[str], DrfService]
_WAIT = re.compile(r"Request was throttled\. Expected available in (\d+) seconds?\.")


def chat_request(
    service: DrfService, *, accept: str = "application/json", stream: bool = False
) -> requests.Response:
    body = {"messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    return requests.post(
        f"{service.base_url}/chat/completions",
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


def throttle_now(service: DrfService, allowed: int) -> requests.Response:
    """Use up the `allowed` requests of the window; return the next, throttled."""
    for _ in range(allowed):
        assert chat_request(service).status_code == 200
    return chat_request(service)


@pytest.mark.parametrize("mode", MODES)
def test_invoke_gets_the_echo_from_the_drf_app(drf_service: ServiceAt, mode: str):
    service = drf_service("10/s")
    model = ChatDfeHub(base_url=service.base_url)

    assert invoke(model, mode) == PROMPT
    assert service.stats().completed == 1


@pytest.mark.parametrize("mode", MODES)
def test_stream_passes_drf_content_negotiation(drf_service: ServiceAt, mode: str):
    service = drf_service("10/s")
    model = ChatDfeHub(base_url=service.base_url)

    pieces = stream(model, mode)

    assert "".join(pieces) == PROMPT
    assert len([piece for piece in pieces if piece]) == len(PROMPT.split())
    stats = service.stats()
    assert (stats.requests, stats.throttled, stats.completed) == (1, 0, 1)


def test_drf_app_answers_406_to_a_stream_that_accepts_only_event_stream(
    drf_service: ServiceAt,
):
    service = drf_service("10/s")

    refused = chat_request(service, accept="text/event-stream", stream=True)
    accepted = chat_request(
        service, accept="text/event-stream, application/json", stream=True
    )

    assert refused.status_code == 406
    assert refused.json() == {"detail": "Could not satisfy the request Accept header."}
    assert accepted.status_code == 200
    assert accepted.headers["content-type"].startswith("text/event-stream")
    assert accepted.text.endswith("data: [DONE]\n\n")


def test_throttled_reply_is_drfs_text_with_a_matching_retry_after(
    drf_service: ServiceAt,
):
    service = drf_service("3/min")

    throttled = throttle_now(service, allowed=3)

    assert throttled.status_code == 429
    detail = throttled.json()["detail"]
    match = _WAIT.fullmatch(detail)
    assert match is not None, detail
    seconds = int(match.group(1))
    assert 0 < seconds <= 60
    assert detail.endswith(f"{seconds} seconds.")
    assert throttled.headers["Retry-After"] == str(seconds)
    stats = service.stats()
    assert (stats.requests, stats.throttled, stats.completed) == (4, 1, 3)


def test_drf_says_1_second_in_the_singular(drf_service: ServiceAt):
    service = drf_service("1/s")

    # Any request in the same second as the first is throttled; a slow
    # machine may need another try to land two in one second.
    for _ in range(10):
        throttled = chat_request(service)
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
    drf_service: ServiceAt, mode: str, streaming: bool
):
    service = drf_service("3/min")
    model = ChatDfeHub(base_url=service.base_url, max_retries=0)
    for _ in range(3):
        assert invoke(model, mode) == PROMPT

    with pytest.raises(DfeHubRateLimitError) as caught:
        stream(model, mode) if streaming else invoke(model, mode)

    error = caught.value
    assert error.status_code == 429
    assert error.detail is not None
    match = _WAIT.fullmatch(error.detail)
    assert match is not None, error.detail
    assert error.retry_after == int(match.group(1))
    assert service.stats().throttled == 1


def test_a_service_is_stopped_with_its_worker_when_the_block_ends():
    with running_drf_service("5/s") as service:
        assert chat_request(service).status_code == 200
        group = service.pid

    with pytest.raises(ProcessLookupError):
        os.killpg(group, signal.SIGCONT)  # no process of the group is left


def test_a_service_that_cannot_start_in_time_is_stopped_and_says_so():
    with (
        pytest.raises(DrfServiceError, match=r"did not start in 0\.001 s"),
        running_drf_service("5/s", start_timeout=0.001),
    ):
        pytest.fail("the service cannot have started")


def test_a_rate_drf_cannot_read_is_refused_before_starting():
    with pytest.raises(ValueError, match="N/period"), running_drf_service("10/x"):
        pytest.fail("no service for a bad rate")
