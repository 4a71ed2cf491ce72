"""Scripted failures: each fault as a client sees it on the wire.

Streams are read with `requests` and `httpx` directly, since what matters is
exactly what a transport receives: which bytes, and whether the body ended
cleanly or was cut.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import requests

from langchain_dfehub.testing import (
    DfeHubEmulator,
    Drop,
    ErrorStatus,
    Malformed,
    Stall,
    Throttle,
    Truncate,
)

WORDS = "one two three four five"
CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": WORDS}]}
STREAM = {**CHAT, "stream": True}


@pytest.fixture
def emulator(dfehub_emulator_session: DfeHubEmulator) -> DfeHubEmulator:
    dfehub_emulator_session.reset()
    return dfehub_emulator_session


def url(emulator: DfeHubEmulator) -> str:
    return emulator.base_url + "/chat/completions"


def blocks(raw: bytes) -> list[str]:
    """The stream's blank-line separated blocks, without the trailing empty one."""
    parts = raw.decode().split("\n\n")
    assert parts.pop() == ""
    return parts


def contents(parts: list[str]) -> list[str]:
    found = []
    for part in parts:
        if part.startswith("data: {"):
            choices = json.loads(part.removeprefix("data: "))["choices"]
            if choices and "content" in choices[0]["delta"]:
                found.append(choices[0]["delta"]["content"])
    return found


def finish_reasons(parts: list[str]) -> list[Any]:
    return [
        json.loads(part.removeprefix("data: "))["choices"][0]["finish_reason"]
        for part in parts
        if part.startswith("data: {")
    ]


def read_stream(emulator: DfeHubEmulator, body: dict[str, Any] = STREAM) -> bytes:
    """The whole body of a stream that must end cleanly."""
    response = httpx.post(url(emulator), json=body, timeout=5)
    assert response.status_code == 200
    return response.content


# --- throttle ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wait", "detail"),
    [
        (3, "Request was throttled. Expected available in 3 seconds."),
        (3.512, "Request was throttled. Expected available in 3.512 seconds."),
        (None, "Request was throttled."),
    ],
)
def test_a_status_throttle_is_a_429_with_the_detail_text(
    emulator: DfeHubEmulator, wait: float | None, detail: str
) -> None:
    emulator.add_faults(Throttle(wait))
    response = httpx.post(url(emulator), json=STREAM)
    assert response.status_code == 429
    assert response.json() == {"detail": detail}
    assert "retry-after" not in response.headers


def test_a_status_throttle_sends_retry_after_only_when_given(
    emulator: DfeHubEmulator,
) -> None:
    emulator.add_faults(Throttle(2, retry_after="2"))
    response = httpx.post(url(emulator), json=CHAT)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"


def test_a_stream_throttle_is_a_bare_detail_line_then_a_clean_end(
    emulator: DfeHubEmulator,
) -> None:
    emulator.add_faults(Throttle(0.2, as_="stream", after_chunks=2))
    parts = blocks(read_stream(emulator))
    assert contents(parts) == ["", "one ", "two "]
    assert parts[-1] == (
        '{"detail": "Request was throttled. Expected available in 0.2 seconds."}'
    )
    assert "data: [DONE]" not in parts


def test_a_stream_throttle_on_a_plain_request_is_a_200_detail_body(
    emulator: DfeHubEmulator,
) -> None:
    emulator.add_faults(Throttle(1, as_="stream"))
    response = httpx.post(url(emulator), json=CHAT)
    assert response.status_code == 200
    assert response.json() == {
        "detail": "Request was throttled. Expected available in 1 second."
    }


def test_throttle_mode_throttles_every_nth_request() -> None:
    with DfeHubEmulator(throttle_every=2, throttle_wait=0.01) as emulator:
        statuses = [httpx.post(url(emulator), json=CHAT).status_code for _ in range(5)]
        assert statuses == [200, 429, 200, 429, 200]
        emulator.add_faults(ErrorStatus(500))  # queued faults come first
        assert httpx.post(url(emulator), json=CHAT).status_code == 500
        emulator.reset()  # so does the count
        assert httpx.post(url(emulator), json=CHAT).status_code == 200


def test_throttle_mode_can_throttle_inside_the_stream() -> None:
    options = {"throttle_every": 1, "throttle_wait": None, "throttle_as": "stream"}
    with DfeHubEmulator(**options) as emulator:  # type: ignore[arg-type]
        parts = blocks(read_stream(emulator))
    assert parts[-1] == '{"detail": "Request was throttled."}'


# --- errors and lost connections --------------------------------------------------


def test_an_error_status_is_sent_exactly(emulator: DfeHubEmulator) -> None:
    page = "<html><body>502 Bad Gateway</body></html>"
    emulator.add_faults(
        ErrorStatus(502, page, "text/html", {"x-served-by": "proxy"}),
        ErrorStatus(401, '{"error": {"message": "bad key"}}'),
    )
    response = httpx.post(url(emulator), json=STREAM)
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert response.headers["x-served-by"] == "proxy"
    assert response.text == page
    second = httpx.post(url(emulator), json=CHAT)
    assert second.status_code == 401
    assert second.json() == {"error": {"message": "bad key"}}


def test_each_fault_is_used_by_exactly_one_request(emulator: DfeHubEmulator) -> None:
    emulator.add_faults(ErrorStatus(500))
    assert httpx.post(url(emulator), json=CHAT).status_code == 500
    assert httpx.post(url(emulator), json=CHAT).status_code == 200


def test_invalid_requests_do_not_use_up_faults(emulator: DfeHubEmulator) -> None:
    emulator.add_faults(ErrorStatus(500))
    assert httpx.post(url(emulator), json={"messages": []}).status_code == 400
    assert httpx.post(url(emulator), json=CHAT).status_code == 500


def test_a_drop_before_the_response_sends_nothing(emulator: DfeHubEmulator) -> None:
    emulator.add_faults(Drop(), Drop())
    with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
        httpx.post(url(emulator), json=STREAM)
    with pytest.raises(requests.ConnectionError):
        requests.post(url(emulator), json=CHAT, timeout=5)


def test_a_drop_mid_stream_leaves_the_chunked_body_incomplete(
    emulator: DfeHubEmulator,
) -> None:
    emulator.add_faults(Drop(after_chunks=2))
    received: list[bytes] = []
    with (
        requests.post(url(emulator), json=STREAM, stream=True, timeout=5) as response,
        pytest.raises(requests.exceptions.ChunkedEncodingError),
    ):
        received.extend(response.iter_content(chunk_size=None))
    assert contents(blocks(b"".join(received))) == ["", "one ", "two "]
    emulator.add_faults(Drop(after_chunks=0))
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        httpx.post(url(emulator), json=STREAM)


def test_a_drop_of_a_plain_answer_cuts_its_body(emulator: DfeHubEmulator) -> None:
    emulator.add_faults(Drop(after_chunks=1))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(url(emulator), json=CHAT)


# --- stalls, malformed lines, truncation ------------------------------------------


def test_a_stall_outlasts_a_short_read_timeout(emulator: DfeHubEmulator) -> None:
    emulator.add_faults(Stall(0.3, after_chunks=1))
    timeout = httpx.Timeout(5, read=0.05)
    received: list[bytes] = []
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("POST", url(emulator), json=STREAM, timeout=timeout) as response,
    ):
        received.extend(response.iter_raw())
    assert contents(blocks(b"".join(received))) == ["", "one "]


def test_after_a_stall_the_stream_carries_on_intact(emulator: DfeHubEmulator) -> None:
    emulator.add_faults(Stall(0.1, after_chunks=2))
    began = time.perf_counter()
    parts = blocks(read_stream(emulator))
    assert time.perf_counter() - began >= 0.1
    assert "".join(contents(parts)) == WORDS
    assert parts[-1] == "data: [DONE]"


def test_a_stall_before_the_headers_delays_the_response(
    emulator: DfeHubEmulator,
) -> None:
    emulator.add_faults(Stall(0.3, after_chunks=None), Stall(0.1))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url(emulator), json=STREAM, timeout=httpx.Timeout(5, read=0.05))
    began = time.perf_counter()
    assert httpx.post(url(emulator), json=CHAT).status_code == 200  # plain: delayed
    assert time.perf_counter() - began >= 0.1


def test_a_malformed_line_is_injected_and_the_stream_goes_on(
    emulator: DfeHubEmulator,
) -> None:
    emulator.add_faults(Malformed(after_chunks=1), Malformed("<oops>"))
    parts = blocks(read_stream(emulator))
    assert parts.pop(2) == "data: {this is not json"
    assert "".join(contents(parts)) == WORDS
    assert parts[-1] == "data: [DONE]"
    plain = httpx.post(url(emulator), json=CHAT)
    assert plain.status_code == 200
    assert plain.text == "<oops>"


def test_a_truncated_stream_ends_cleanly_without_finish_or_done(
    emulator: DfeHubEmulator,
) -> None:
    emulator.add_faults(Truncate(after_chunks=2))
    parts = blocks(read_stream(emulator))
    assert contents(parts) == ["", "one ", "two "]
    assert finish_reasons(parts) == [None, None, None]
    assert "data: [DONE]" not in parts


def test_a_truncated_stream_may_finish_without_done(emulator: DfeHubEmulator) -> None:
    emulator.add_faults(Truncate(after_chunks=1, finish=True))
    body = {**STREAM, "stream_options": {"include_usage": True}}
    *chunks, usage = blocks(read_stream(emulator, body))
    assert contents(chunks) == ["", "one "]
    assert finish_reasons(chunks) == [None, None, "stop"]
    assert json.loads(usage.removeprefix("data: "))["usage"]["total_tokens"] > 0


def test_a_truncated_plain_answer_is_cut_json_with_a_clean_end(
    emulator: DfeHubEmulator,
) -> None:
    emulator.add_faults(Truncate(after_chunks=1))
    response = httpx.post(url(emulator), json=CHAT)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_chunk_counts_beyond_the_answer_apply_after_all_of_it(
    emulator: DfeHubEmulator,
) -> None:
    emulator.add_faults(Truncate(after_chunks=99))
    parts = blocks(read_stream(emulator))
    assert "".join(contents(parts)) == WORDS
    assert finish_reasons(parts)[-1] is None


# --- fault objects and the control surface ----------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Drop(after_chunks=-1),
        lambda: Throttle(as_="body"),  # type: ignore[arg-type]
        lambda: Throttle(wait=-1),
        lambda: Stall(seconds=float("nan")),
        lambda: Malformed("two\nlines"),
        lambda: ErrorStatus(99),
        lambda: ErrorStatus(500, headers={"x": "a\r\nb"}),
    ],
)
def test_a_nonsensical_fault_is_refused(make: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        make()


def test_add_faults_refuses_what_is_not_a_fault(emulator: DfeHubEmulator) -> None:
    with pytest.raises(TypeError, match="not a fault"):
        emulator.add_faults("drop")  # type: ignore[arg-type]


def test_faults_can_be_queued_over_http(emulator: DfeHubEmulator) -> None:
    control = emulator.base_url.split("/api/")[0] + "/_emulator"
    queued = httpx.post(
        control + "/faults",
        json=[
            {"kind": "throttle", "wait": 0.2, "as": "stream"},
            {"kind": "error_status", "status": 503, "body": "busy"},
        ],
    )
    assert queued.json() == {"queued": 2}
    assert blocks(read_stream(emulator))[-1].startswith('{"detail": ')
    assert httpx.post(url(emulator), json=CHAT).status_code == 503
    recorded = httpx.get(control + "/requests").json()
    assert recorded["count"] == 2
    assert recorded["bodies"] == [STREAM, CHAT]
    assert httpx.post(control + "/reset").json() == {"reset": True}
    assert httpx.get(control + "/requests").json() == {"count": 0, "bodies": []}


@pytest.mark.parametrize(
    "payload",
    [{"kind": "explode"}, [{"kind": "drop", "after_chunks": "two"}], ["drop"], 5],
)
def test_bad_faults_over_http_get_a_400(emulator: DfeHubEmulator, payload: Any) -> None:
    control = emulator.base_url.split("/api/")[0] + "/_emulator"
    response = httpx.post(control + "/faults", json=payload)
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert httpx.post(url(emulator), json=CHAT).status_code == 200  # nothing queued


def test_the_control_surface_checks_paths_and_methods(emulator: DfeHubEmulator) -> None:
    control = emulator.base_url.split("/api/")[0] + "/_emulator"
    assert httpx.get(control + "/faults").status_code == 405
    assert httpx.get(control + "/nothing").status_code == 404
