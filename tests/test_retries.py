"""Throttling, retries, timeouts and errors, against the emulator's faults.

Every scenario runs on the sync (`requests`) and the async (`httpx`) path: the
retry policy and the reply decisions are shared, the I/O is not. Waits are a
few hundredths of a second, so these tests sleep for real but briefly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from langchain_dfehub import (
    ChatDfeHub,
    DfeHubAPIError,
    DfeHubAuthenticationError,
    DfeHubConnectionError,
    DfeHubError,
    DfeHubProtocolError,
    DfeHubRateLimitError,
    DfeHubServerError,
    DfeHubTimeoutError,
)
from langchain_dfehub.testing import (
    DfeHubEmulator,
    Drop,
    ErrorStatus,
    Malformed,
    Stall,
    Throttle,
    Truncate,
)

SECRET = "sk-live-0123456789abcdef"
PROMPT = "one two three four five six"

Mode = str
MODES = ["sync", "async"]


def invoke(model: ChatDfeHub, mode: Mode, prompt: str = PROMPT) -> str:
    if mode == "sync":
        return str(model.invoke(prompt).content)
    return str(asyncio.run(model.ainvoke(prompt)).content)


def stream(
    model: ChatDfeHub, mode: Mode, received: list[str], prompt: str = PROMPT
) -> str:
    """Stream into `received` (kept when an error ends the stream)."""
    if mode == "sync":
        for chunk in model.stream(prompt):
            received.append(str(chunk.content))
    else:

        async def consume() -> None:
            async for chunk in model.astream(prompt):
                assert isinstance(chunk, AIMessageChunk)
                received.append(str(chunk.content))

        asyncio.run(consume())
    return "".join(received)


def make_model(emulator: DfeHubEmulator, **kwargs: Any) -> ChatDfeHub:
    return ChatDfeHub(base_url=emulator.base_url, **kwargs)


def call_both_ways(
    mode: Mode, model: ChatDfeHub
) -> list[tuple[str, Callable[[], str]]]:
    received: list[str] = []
    return [
        ("invoke", lambda: invoke(model, mode)),
        ("stream", lambda: stream(model, mode, received)),
    ]


# --- throttling ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wait", [0.05, 0.012])
def test_a_429_throttle_is_waited_out_then_answered(
    dfehub_emulator: DfeHubEmulator, mode: Mode, wait: float, caplog: Any
) -> None:
    model = make_model(dfehub_emulator)
    with caplog.at_level(logging.WARNING, logger="langchain_dfehub"):
        dfehub_emulator.add_faults(Throttle(wait=wait))
        assert invoke(model, mode) == PROMPT
        dfehub_emulator.add_faults(Throttle(wait=wait))
        assert stream(model, mode, []) == PROMPT

    assert len(dfehub_emulator.requests) == 4
    notes = [r.getMessage() for r in caplog.records if r.name == "langchain_dfehub"]
    assert len(notes) == 2  # one per throttle, from the service's gate
    assert all(f"holding every call to it for {wait:g} s" in n for n in notes)
    assert all(dfehub_emulator.base_url.split("/")[2] in n for n in notes)


@pytest.mark.parametrize("mode", MODES)
def test_a_throttle_whose_wait_is_already_over_is_floored_at_a_short_backoff(
    dfehub_emulator: DfeHubEmulator, mode: Mode, caplog: Any
) -> None:
    model = make_model(dfehub_emulator)
    dfehub_emulator.add_faults(Throttle(wait=0))
    with caplog.at_level(logging.WARNING, logger="langchain_dfehub"):
        assert invoke(model, mode) == PROMPT
    assert len(dfehub_emulator.requests) == 2
    (note,) = [r.getMessage() for r in caplog.records if r.name == "langchain_dfehub"]
    held = float(note.split("for ")[1].split(" s")[0])
    assert 0.25 <= held <= 0.5


@pytest.mark.parametrize("mode", MODES)
def test_a_throttle_line_before_the_answer_is_retried_without_duplication(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator)
    dfehub_emulator.add_faults(Throttle(wait=0.01, as_="stream"))
    received: list[str] = []

    assert stream(model, mode, received) == PROMPT
    assert len(dfehub_emulator.requests) == 2


@pytest.mark.parametrize("mode", MODES)
def test_a_throttle_line_after_text_ends_the_stream_without_replaying(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator)
    dfehub_emulator.add_faults(Throttle(wait=0.01, as_="stream", after_chunks=2))
    received: list[str] = []

    with pytest.raises(DfeHubRateLimitError) as caught:
        stream(model, mode, received)

    delivered = "".join(received)
    assert delivered == "one two "
    assert caught.value.received_chars == len(delivered)
    assert f"{len(delivered)} characters" in str(caught.value)
    assert len(dfehub_emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", [0, 1], ids=["invoke", "stream"])
def test_a_detail_that_is_no_throttle_is_raised_at_once_with_its_words(
    dfehub_emulator: DfeHubEmulator, mode: Mode, kind: int
) -> None:
    model = make_model(dfehub_emulator)
    _name, call = call_both_ways(mode, model)[kind]
    said = "Invalid model gpt-9 requested"
    # A 200 whose body (or stream line) is the bare `detail` object.
    dfehub_emulator.add_faults(Malformed(line=json.dumps({"detail": said})))
    with pytest.raises(DfeHubAPIError) as caught:
        call()
    assert not isinstance(caught.value, DfeHubRateLimitError)
    assert said in str(caught.value)
    assert len(dfehub_emulator.requests) == 1
    assert model.throttle_state.throttled == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_429_without_a_wait_phrase_waits_as_retry_after_says_not_its_numbers(
    dfehub_emulator: DfeHubEmulator, mode: Mode, caplog: Any
) -> None:
    model = make_model(dfehub_emulator)
    dfehub_emulator.add_faults(
        ErrorStatus(
            429,
            '{"detail": "Too many requests: limit 100 per 60 seconds"}',
            headers={"Retry-After": "0.05"},
        )
    )
    with caplog.at_level(logging.WARNING, logger="langchain_dfehub"):
        assert invoke(model, mode) == PROMPT
    (record,) = [r for r in caplog.records if r.name == "langchain_dfehub"]
    assert "for 0.05 s" in record.getMessage()


@pytest.mark.parametrize("mode", MODES)
def test_a_throttle_without_a_number_backs_off_and_retries(
    dfehub_emulator: DfeHubEmulator, mode: Mode, caplog: Any
) -> None:
    model = make_model(dfehub_emulator)
    dfehub_emulator.add_faults(Throttle(wait=None))
    with caplog.at_level(logging.WARNING, logger="langchain_dfehub"):
        assert invoke(model, mode) == PROMPT
    assert len(dfehub_emulator.requests) == 2
    (record,) = [r for r in caplog.records if r.name == "langchain_dfehub"]
    assert "throttled a request" in record.getMessage()


@pytest.mark.parametrize("mode", MODES)
def test_a_wait_longer_than_max_retry_wait_is_raised_at_once(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator, max_retry_wait=1.0)
    dfehub_emulator.add_faults(Throttle(wait=30))
    with pytest.raises(DfeHubRateLimitError) as caught:
        invoke(model, mode)
    assert caught.value.retry_after == 30
    assert "30 s" in str(caught.value)
    assert len(dfehub_emulator.requests) == 1

    # The service said "30 s" for everyone: the next call is not even sent.
    with pytest.raises(DfeHubRateLimitError) as at_the_gate:
        stream(model, mode, [])
    assert 25 < at_the_gate.value.retry_after <= 30
    assert "max_retry_wait" in str(at_the_gate.value)
    assert len(dfehub_emulator.requests) == 1
    assert model.throttle_state.closed_for > 25


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_header_sets_the_wait(
    dfehub_emulator: DfeHubEmulator, mode: Mode, caplog: Any
) -> None:
    model = make_model(dfehub_emulator)
    dfehub_emulator.add_faults(Throttle(wait=None, retry_after="0.03"))
    with caplog.at_level(logging.WARNING, logger="langchain_dfehub"):
        assert invoke(model, mode) == PROMPT
    (record,) = [r for r in caplog.records if r.name == "langchain_dfehub"]
    assert "for 0.03 s" in record.getMessage()


@pytest.mark.parametrize("mode", MODES)
def test_throttles_do_not_use_up_max_retries(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator, max_retries=1)
    for _name, call in call_both_ways(mode, model):
        dfehub_emulator.reset()
        dfehub_emulator.add_faults(*[Throttle(wait=0.001)] * 3)
        assert call() == PROMPT
        assert len(dfehub_emulator.requests) == 4


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", [0, 1], ids=["invoke", "stream"])
def test_throttles_are_bounded_by_the_throttle_budget(
    dfehub_emulator: DfeHubEmulator, mode: Mode, kind: int
) -> None:
    model = make_model(dfehub_emulator, throttle_budget=1.0)
    _name, call = call_both_ways(mode, model)[kind]
    dfehub_emulator.add_faults(*[Throttle(wait=0.04)] * 10)
    with pytest.raises(DfeHubRateLimitError) as caught:
        call()
    # 0.04 s, then the floors of throttles in a row (0.25 s, 0.5 s, 1 s): the
    # budget counts the requests too, so a slow machine gets fewer of them.
    sent = len(dfehub_emulator.requests)
    assert 2 <= sent <= 4
    error = caught.value
    assert "throttle_budget" in str(error)
    # The last reply is kept: its status, its words, itself as the cause.
    assert error.status_code == 429
    assert "Expected available in 0.04 seconds" in str(error)
    assert isinstance(error.__cause__, DfeHubRateLimitError)
    assert error.attempts == sent
    assert error.retry_after is not None
    assert 0.03 < error.waited < 1.0


@pytest.mark.parametrize("mode", MODES)
def test_a_throttle_budget_of_zero_sends_one_request(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator, throttle_budget=0)
    dfehub_emulator.add_faults(Throttle(wait=0.001))
    with pytest.raises(DfeHubRateLimitError) as caught:
        invoke(model, mode)
    assert caught.value.retry_after == 0.001
    assert len(dfehub_emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_retries_stop_after_max_retries(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator, max_retries=2)
    for _name, call in call_both_ways(mode, model):
        dfehub_emulator.reset()
        dfehub_emulator.add_faults(*[ErrorStatus(503)] * 5)
        with pytest.raises(DfeHubServerError) as caught:
            call()
        assert len(dfehub_emulator.requests) == 3
        assert caught.value.attempts == 3
        assert "3 attempts" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
def test_max_retries_zero_sends_one_request(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator, max_retries=0)
    dfehub_emulator.add_faults(ErrorStatus(503))
    with pytest.raises(DfeHubServerError):
        invoke(model, mode)
    assert len(dfehub_emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_server_error_then_success_is_retried(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator)
    for _name, call in call_both_ways(mode, model):
        dfehub_emulator.reset()
        dfehub_emulator.add_faults(
            ErrorStatus(500, '{"error": {"message": "boom"}}'),
            ErrorStatus(503, "Service Unavailable", content_type="text/plain"),
        )
        assert call() == PROMPT
        assert len(dfehub_emulator.requests) == 3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("status", "body", "error_type", "said"),
    [
        (
            401,
            '{"error": {"message": "Incorrect API key provided"}}',
            DfeHubAuthenticationError,
            "Incorrect API key provided",
        ),
        (403, '{"detail": "Not allowed"}', DfeHubAuthenticationError, "Not allowed"),
        (
            400,
            '{"error": {"message": "messages is too long"}}',
            DfeHubAPIError,
            "messages is too long",
        ),
        (404, '{"detail": "Not Found"}', DfeHubAPIError, "Not Found"),
        (
            422,
            '{"detail": [{"msg": "field required"}]}',
            DfeHubAPIError,
            "field required",
        ),
    ],
)
def test_client_errors_are_not_retried_and_keep_the_servers_words(
    dfehub_emulator: DfeHubEmulator,
    mode: Mode,
    status: int,
    body: str,
    error_type: type[DfeHubAPIError],
    said: str,
) -> None:
    model = make_model(dfehub_emulator)
    for _name, call in call_both_ways(mode, model):
        dfehub_emulator.reset()
        dfehub_emulator.add_faults(ErrorStatus(status, body))
        with pytest.raises(error_type) as caught:
            call()
        assert caught.value.status_code == status
        assert said in caught.value.server_message
        assert said in str(caught.value)
        assert len(dfehub_emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_an_html_502_gives_a_short_readable_message(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    page = (
        "<html><head><title>502 Bad Gateway</title></head><body>"
        "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
        + "<!-- padding -->" * 500
        + "</body></html>"
    )
    model = make_model(dfehub_emulator, max_retries=1)
    dfehub_emulator.add_faults(*[ErrorStatus(502, page, content_type="text/html")] * 2)
    with pytest.raises(DfeHubServerError) as caught:
        invoke(model, mode)
    message = str(caught.value)
    assert "502 Bad Gateway" in message
    assert "<" not in caught.value.server_message
    assert len(message) < 600
    assert len(dfehub_emulator.requests) == 2


# --- broken streams ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_malformed_line_is_a_protocol_error_not_retried(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator)
    for after in (0, 3):
        dfehub_emulator.reset()
        dfehub_emulator.add_faults(Malformed("data: {not json", after_chunks=after))
        received: list[str] = []
        with pytest.raises(DfeHubProtocolError) as caught:
            stream(model, mode, received)
        assert "{not json" in str(caught.value)
        assert caught.value.received_chars == len("".join(received))
        assert len(dfehub_emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_connection_dropped_before_the_answer_is_retried(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator)
    for _name, call in call_both_ways(mode, model):
        dfehub_emulator.reset()
        dfehub_emulator.add_faults(Drop())
        assert call() == PROMPT
        assert len(dfehub_emulator.requests) == 2


@pytest.mark.parametrize("mode", MODES)
def test_a_connection_dropped_after_text_raises_with_the_count(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator)
    dfehub_emulator.add_faults(Drop(after_chunks=2))
    received: list[str] = []
    with pytest.raises(DfeHubConnectionError) as caught:
        stream(model, mode, received)
    assert "".join(received) == "one two "
    assert caught.value.received_chars == len("one two ")
    assert len(dfehub_emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_clean_close_after_finish_reason_is_a_normal_end(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator)
    dfehub_emulator.add_faults(Truncate(after_chunks=6, finish=True))
    assert stream(model, mode, []) == PROMPT


@pytest.mark.parametrize("mode", MODES)
def test_a_clean_close_before_finish_reason_is_a_truncated_answer(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator)
    dfehub_emulator.add_faults(Truncate(after_chunks=3))
    received: list[str] = []
    with pytest.raises(DfeHubConnectionError, match="truncated") as caught:
        stream(model, mode, received)
    assert caught.value.received_chars == len("one two three ")
    assert len(dfehub_emulator.requests) == 1


# --- timeouts ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_stalled_stream_ends_with_a_read_timeout(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator, timeout=(2.0, 0.2))
    dfehub_emulator.add_faults(Stall(seconds=1.0, after_chunks=2))
    received: list[str] = []
    with pytest.raises(DfeHubTimeoutError) as caught:
        stream(model, mode, received)
    assert caught.value.phase == "read"
    assert "".join(received) == "one two "
    assert len(dfehub_emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_server_silent_before_answering_times_out_without_retry(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator, timeout=(2.0, 0.2))
    dfehub_emulator.add_faults(Stall(seconds=1.0, after_chunks=None))
    with pytest.raises(DfeHubTimeoutError) as caught:
        invoke(model, mode)
    assert caught.value.phase == "read"
    assert len(dfehub_emulator.requests) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("mode", MODES)
def test_an_unreachable_server_is_a_connection_error(mode: Mode) -> None:
    model = ChatDfeHub(
        base_url=f"http://user:{SECRET}@127.0.0.1:{_closed_port()}/api/openai/v1",
        max_retries=0,
    )
    with pytest.raises(DfeHubConnectionError) as caught:
        invoke(model, mode)
    message = str(caught.value)
    assert "127.0.0.1" in message
    assert "refused" in message.lower()
    assert SECRET not in message


# --- secrets -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_the_key_appears_in_no_error_or_log(mode: Mode, caplog: Any) -> None:
    wrong_key = "sk-wrong-fedcba9876543210"
    errors: list[DfeHubError] = []
    with DfeHubEmulator(api_key=SECRET) as emulator, caplog.at_level(logging.DEBUG):
        # The right key, but the server fails and echoes the key back.
        model = ChatDfeHub(base_url=emulator.base_url, api_key=SECRET, max_retries=1)
        emulator.add_faults(
            Throttle(wait=0.001),
            *[ErrorStatus(500, f'{{"error": {{"message": "bad key {SECRET}"}}}}')] * 2,
        )
        with pytest.raises(DfeHubServerError) as server_error:
            invoke(model, mode)
        errors.append(server_error.value)
        # A wrong key: refused, and not retried.
        refused = ChatDfeHub(base_url=emulator.base_url, api_key=wrong_key)
        for _name, call in call_both_ways(mode, refused):
            with pytest.raises(DfeHubAuthenticationError) as auth_error:
                call()
            errors.append(auth_error.value)
    assert "***" in str(errors[0])
    for error in errors:
        for key in (SECRET, wrong_key):
            assert key not in str(error)
            assert key not in repr(error)
            assert key not in str(vars(error))
    assert SECRET not in caplog.text
    assert wrong_key not in caplog.text


@pytest.mark.parametrize("mode", MODES)
def test_a_throttle_wait_that_would_pass_the_deadline_is_raised_at_once(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator, deadline=2.0)
    dfehub_emulator.add_faults(Throttle(wait=30))
    with pytest.raises(DfeHubRateLimitError) as caught:
        invoke(model, mode)
    assert "deadline" in str(caught.value)
    assert len(dfehub_emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_retry_after_past_the_deadline_is_not_slept_and_nothing_is_sent_late(
    dfehub_emulator: DfeHubEmulator, mode: Mode
) -> None:
    model = make_model(dfehub_emulator, deadline=3.0)
    for _name, call in call_both_ways(mode, model):
        dfehub_emulator.reset()
        dfehub_emulator.add_faults(
            ErrorStatus(
                503, '{"error": {"message": "busy"}}', headers={"Retry-After": "20"}
            )
        )
        with pytest.raises(DfeHubServerError) as caught:
            call()
        # Raised at once with the server's word, not after a 20 s sleep
        # and a request sent past the deadline.
        assert caught.value.retry_after == 20
        assert len(dfehub_emulator.requests) == 1
