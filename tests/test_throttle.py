"""Reading the wait a server asks for, from a `detail` text or `Retry-After`."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from langchain_dfehub._throttle import (
    ThrottleSignal,
    is_throttle_text,
    read_throttle,
    throttle_is_per_model,
    wait_from_detail,
    wait_from_retry_after,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()


def http_date(seconds_from_now: float) -> str:
    moment = datetime.fromtimestamp(NOW + seconds_from_now, tz=timezone.utc)
    return format_datetime(moment, usegmt=True)


# --- The `detail` text ---


@pytest.mark.parametrize(
    ("detail", "wait"),
    [
        ("Request was throttled. Expected available in 3 seconds.", 3.0),
        ("Request was throttled. Expected available in 3.512 seconds.", 3.512),
        ("Request was throttled. Expected available in 1 second.", 1.0),
        ("Request was throttled. Expected available in 0.25 seconds", 0.25),
        ("Expected available in .5 seconds.", 0.5),
        ("Expected available in 120 seconds", 120.0),
    ],
    ids=["integer", "decimal", "singular", "no-period", "leading-dot", "long"],
)
def test_wait_from_detail_reads_the_number_of_seconds(detail, wait):
    assert wait_from_detail(detail) == wait


@pytest.mark.parametrize(
    "detail",
    [
        "Request was throttled.",
        "",
        "Expected available soon.",
        "Expected available in a few seconds.",
        ". . .",
    ],
)
def test_wait_from_detail_without_a_number_is_none(detail):
    assert wait_from_detail(detail) is None


def test_wait_from_detail_reads_the_wait_phrase_not_other_numbers():
    detail = "Limit 3 per 60 s for gpt-3.5-turbo. Expected available in 7.25 seconds."
    assert wait_from_detail(detail) == 7.25


def test_a_wait_in_the_past_is_read_as_negative_for_the_gate_to_floor():
    assert wait_from_detail("Expected available in -4 seconds.") == -4.0


def test_wait_from_detail_of_an_absurdly_long_number_is_infinite_not_a_crash():
    detail = "Expected available in " + "9" * 400 + " seconds"
    assert wait_from_detail(detail) == float("inf")


# --- The `Retry-After` header ---


@pytest.mark.parametrize(
    ("value", "wait"),
    [("3", 3.0), ("0", 0.0), ("120", 120.0), ("2.5", 2.5), ("  7 ", 7.0)],
)
def test_retry_after_in_seconds(value, wait):
    assert wait_from_retry_after(value) == wait


def test_retry_after_as_an_http_date_is_the_time_until_then():
    assert wait_from_retry_after(http_date(30), now=NOW) == 30.0


def test_retry_after_as_an_http_date_uses_the_clock_by_default():
    in_a_minute = datetime.fromtimestamp(time.time() + 60, tz=timezone.utc)
    wait = wait_from_retry_after(format_datetime(in_a_minute, usegmt=True))
    # HTTP dates have whole seconds, so up to one second is lost.
    assert wait is not None
    assert 58 < wait <= 60


def test_retry_after_as_a_past_http_date_is_zero():
    assert wait_from_retry_after(http_date(-3600), now=NOW) == 0.0


def test_retry_after_as_a_negative_number_is_zero():
    assert wait_from_retry_after("-5") == 0.0


@pytest.mark.parametrize(
    "value",
    [
        "",
        "soon",
        "3 seconds",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1_000",
        "0x10",
        "Wed, 21 Oct 99999 07:28:00 GMT",
        "Wed, 21 Oct 2015 25:61:00 GMT",
        "Wed, 21 Oct 2015 07:28:00",  # no zone: not an HTTP date
    ],
)
def test_retry_after_that_is_not_seconds_or_an_http_date_is_none(value):
    assert wait_from_retry_after(value, now=NOW) is None


# --- Only a wait phrase is a wait (servers word other numbers too) ---


@pytest.mark.parametrize(
    ("detail", "wait"),
    [
        ("Expected available in 20 seconds (limit 3 per minute)", 20.0),
        ("Request was throttled. Expected available in 2 minutes.", 120.0),
        ("Expected available in 500 ms.", 0.5),
        ("Expected available in 1e3 seconds.", 1000.0),
        ("Rate limit reached. Please try again in 1m30.5s.", 90.5),
        ("Please try again in 6ms.", 0.006),
        ("Retry after 2 seconds.", 2.0),
        ("Please wait 1.5 sec and retry.", 1.5),
        ("Expected available in 1 hour.", 3600.0),
    ],
)
def test_the_wait_phrase_is_read_with_its_unit(detail, wait):
    assert wait_from_detail(detail) == pytest.approx(wait)
    assert is_throttle_text(detail)


@pytest.mark.parametrize(
    "detail",
    [
        "Context length 4096 exceeded by 12 tokens",
        "Invalid model gpt-9 requested",
        "Too many requests: limit 100 per 60 seconds",
        "Please wait 5 secondary checks",
        "Not found.",
    ],
)
def test_numbers_outside_a_wait_phrase_are_not_waits(detail):
    assert wait_from_detail(detail) is None
    assert not is_throttle_text(detail)


def test_drfs_own_sentence_without_a_wait_is_still_a_throttle():
    assert is_throttle_text("Request was throttled.")
    assert wait_from_detail("Request was throttled.") is None


def test_the_text_wins_over_the_header_and_the_header_fills_in():
    with_phrase = "Request was throttled. Expected available in 1.5 seconds."
    assert read_throttle(with_phrase, "2") == ThrottleSignal(1.5, "detail")
    no_phrase = "Too many requests: limit 100 per 60 seconds"
    assert read_throttle(no_phrase, "2") == ThrottleSignal(2.0, "retry-after")
    assert read_throttle(no_phrase, None) == ThrottleSignal(None, "none")


# --- Waits that cannot be real, and hostile text ---


@pytest.mark.parametrize(
    "detail",
    [
        "Expected available in 1e999 seconds.",
        "Expected available in -4 seconds.",
        "Expected available in 99999999 hours.",
        "Expected available in " + "9" * 400 + " seconds",
    ],
    ids=["infinite", "negative", "absurd", "huge"],
)
def test_a_wait_that_cannot_be_real_is_no_wait_and_the_header_fills_in(detail):
    assert is_throttle_text(detail)
    assert read_throttle(detail, "3") == ThrottleSignal(3.0, "retry-after")
    assert read_throttle(detail, None) == ThrottleSignal(None, "none")
    assert read_throttle(detail, "1e999").wait is None
    assert read_throttle(detail, "99999999").wait is None


def test_a_days_wait_as_drfs_daily_rates_ask_is_real():
    assert read_throttle("Expected available in 86399 seconds.", None).wait == 86399


def _seconds_per_call(text: str, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        wait_from_detail(text)
        is_throttle_text(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize(
    "hostile",
    [
        "Please wait" + " " * 60_000,
        "Please wait" + " " * 4_000_000,
        "wait in " * 500_000,
        "retry after 1" * 300_000,
        ("Expected available in " + "5" * 60 + " ") * 50_000,
        "\t" * 2_000_000 + "try again in 2s",
    ],
    ids=["spaces", "megabytes-of-spaces", "phrases", "numbers", "digits", "tabs"],
)
def test_the_wait_reader_is_linear_and_reads_a_bounded_prefix(hostile):
    """Measured as a ratio to a plain text of the reader's prefix size.

    A backtracking reader spends seconds (or minutes) on these; the bound
    read makes a text of megabytes cost what its first few KiB cost.
    """
    plain = ("Request was throttled, try again soon. " * 200)[:4096]
    assert _seconds_per_call(hostile) < 50 * _seconds_per_call(plain) + 0.002


def test_the_wait_phrase_past_the_read_prefix_is_not_read():
    assert wait_from_detail("x" * 10_000 + " try again in 2s") is None
    assert wait_from_detail("try again in 2s " + "x" * 10_000) == 2.0


# --- Which throttles are about one model ---


@pytest.mark.parametrize(
    ("detail", "model", "per_model"),
    [
        ("Request was throttled. Expected available in 3 seconds.", "gpt-4o", False),
        (
            "Rate limit reached for gpt-4o in organization org-1 on requests per"
            " min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
            "gpt-4o",
            True,
        ),
        ("No deployments available for selected model.", "anything", True),
        (
            "google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream.",
            "google/gemini-2.0-flash-exp:free",
            True,
        ),
        ("Rate limit exceeded: free-models-per-day.", "google/gemma:free", False),
        ("Rate limit reached for gpt-4o-mini.", "gpt-4o", False),
        ("Too many requests, slow down.", "a", False),
        ("Rate limit reached for a in organization x.", "a", True),
    ],
    ids=["drf", "openai", "litellm", "openrouter", "per-day", "other-model",
         "placeholder", "short-name"],
)  # fmt: skip
def test_a_throttle_is_per_model_when_its_words_say_so(detail, model, per_model):
    assert throttle_is_per_model(detail, model) is per_model
