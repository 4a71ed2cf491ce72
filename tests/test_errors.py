"""The typed errors, and the mapping of HTTP error replies to them."""

from __future__ import annotations

import json

import pytest

from langchain_dfehub._errors import (
    DfeHubAPIError,
    DfeHubAuthenticationError,
    DfeHubConnectionError,
    DfeHubError,
    DfeHubInvalidRequestError,
    DfeHubNotFoundError,
    DfeHubPermissionDeniedError,
    DfeHubProtocolError,
    DfeHubRateLimitError,
    DfeHubServerError,
    DfeHubTimeoutError,
    error_from_status,
    rate_limit_error,
    server_message,
)

URL = "https://chat.dfehub.com/api/openai/v1/chat/completions"
KEY = "sk-dfehub-0123456789abcdefSECRET"
THROTTLE_TEXT = "Request was throttled. Expected available in 3.512 seconds."


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def from_status(
    status: int,
    payload: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    url: str = URL,
) -> DfeHubError:
    return error_from_status(status, headers or {}, payload, url=url, secret=KEY)


# --- The class tree ---


@pytest.mark.parametrize(
    "cls",
    [
        DfeHubAPIError,
        DfeHubAuthenticationError,
        DfeHubServerError,
        DfeHubRateLimitError,
        DfeHubTimeoutError,
        DfeHubConnectionError,
        DfeHubProtocolError,
    ],
)
def test_every_error_is_a_dfehub_error(cls):
    assert issubclass(cls, DfeHubError)


def test_a_timeout_is_a_builtin_timeout_error():
    error = DfeHubTimeoutError("The server went silent.", phase="read")
    assert isinstance(error, TimeoutError)
    assert error.status_code is None


def test_a_connection_error_is_a_builtin_connection_error():
    assert isinstance(DfeHubConnectionError("Refused."), ConnectionError)


def test_the_base_error_has_a_status_code():
    assert DfeHubError("x").status_code is None
    assert DfeHubError("x", status_code=418).status_code == 418


def test_a_connect_timeout_is_retryable_and_a_read_timeout_is_not():
    assert DfeHubTimeoutError("x", phase="connect").retryable
    assert not DfeHubTimeoutError("x", phase="read").retryable


def test_str_says_how_many_attempts_were_made():
    error = DfeHubConnectionError("Refused.")
    assert "attempts" not in str(error)
    error.attempts = 3
    assert "Gave up after 3 attempts" in str(error)


def test_str_says_how_much_text_was_delivered_before_a_failure():
    error = DfeHubConnectionError("Cut.")
    error.received_chars = 42
    assert "after 42 characters" in str(error)
    assert "not retried" in str(error)


# --- error_from_status: class and advice per status ---


@pytest.mark.parametrize(
    ("status", "cls", "advice"),
    [
        (400, DfeHubInvalidRequestError, "check the messages and parameters"),
        (401, DfeHubAuthenticationError, "Check the API key"),
        (403, DfeHubPermissionDeniedError, "not allowed"),
        (404, DfeHubNotFoundError, "Check base_url"),
        (422, DfeHubInvalidRequestError, "check the parameters"),
        (500, DfeHubServerError, "try again later"),
        (502, DfeHubServerError, "try again later"),
        (503, DfeHubServerError, "try again later"),
        (418, DfeHubInvalidRequestError, "Check the request"),
        (408, DfeHubServerError, "retries it"),
    ],
)
def test_an_error_status_maps_to_its_class_and_says_what_to_do(status, cls, advice):
    error = from_status(status, body({"detail": "Something broke"}))
    assert type(error) is cls
    assert error.status_code == status
    assert f"HTTP {status}" in str(error)
    assert "Something broke" in str(error)
    assert advice in str(error)


def test_a_throttled_status_is_a_rate_limit_error_that_says_what_to_do():
    error = from_status(429, body({"detail": THROTTLE_TEXT}))
    assert type(error) is DfeHubRateLimitError
    assert error.status_code == 429
    assert error.detail == THROTTLE_TEXT
    assert "throttled" in str(error)
    assert "3.512 s" in str(error)
    assert "max_retry_wait" in str(error)


def test_only_server_failures_and_throttles_are_retryable():
    assert from_status(500).retryable
    assert from_status(429).retryable
    assert not from_status(400).retryable
    assert not from_status(401).retryable


# --- error_from_status: the body ---


@pytest.mark.parametrize(
    "payload",
    [
        body({"detail": "Model is busy"}),
        body({"error": {"message": "Model is busy", "type": "server_error"}}),
        body({"error": "Model is busy"}),
        body({"message": "Model is busy"}),
    ],
    ids=["detail", "error-message", "error-string", "message"],
)
def test_the_server_message_is_read_from_each_known_body_shape(payload):
    error = from_status(503, payload)
    assert isinstance(error, DfeHubServerError)
    assert error.server_message == "Model is busy"
    assert "Model is busy" in str(error)


def test_a_validation_detail_list_is_shown_as_json():
    error = from_status(422, body({"detail": [{"msg": "field required"}]}))
    assert isinstance(error, DfeHubAPIError)
    assert "field required" in error.server_message


def test_angle_brackets_in_a_json_message_are_kept():
    error = from_status(400, body({"error": {"message": "unknown model <gpt-9>"}}))
    assert isinstance(error, DfeHubAPIError)
    assert error.server_message == "unknown model <gpt-9>"


HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title>"
    "<style>body { color: red; }</style>"
    "<script>var tracking = 1;</script></head>"
    "<body><h1>Bad&nbsp;Gateway</h1><p>The upstream &amp; the proxy disagree.</p>"
    + "<p>filler text</p>" * 200
    + "</body></html>"
).encode()


def test_an_html_page_gives_a_short_excerpt_without_tags_scripts_or_styles():
    error = from_status(502, HTML_PAGE)
    assert isinstance(error, DfeHubServerError)
    said = error.server_message
    assert said.startswith("502 Bad Gateway Bad Gateway The upstream & the proxy")
    assert len(said) <= 200
    assert "<" not in said
    assert "color" not in said
    assert "tracking" not in said
    assert said in str(error)


def test_an_unclosed_script_hides_the_rest_of_the_page():
    page = b"<p>Oops</p><script>var secret = 1;"
    assert server_message(page)[0] == "Oops"


def test_a_huge_body_of_unclosed_angle_brackets_still_gives_an_excerpt():
    said, parsed = server_message(b"<" * 100_000)
    assert parsed is None
    assert len(said) <= 200


def test_an_empty_body_says_so():
    error = from_status(500, b"")
    assert "(empty body)" in str(error)
    assert error.status_code == 500


def test_a_body_that_is_not_utf8_is_read_with_replacements():
    error = from_status(500, b"Internal \xff\xfe error \xc3")
    assert isinstance(error, DfeHubServerError)
    assert error.server_message.startswith("Internal \ufffd\ufffd error")


def test_a_body_with_a_byte_order_mark_is_still_read_as_json():
    error = from_status(400, b"\xef\xbb\xbf" + body({"detail": "Bad temperature"}))
    assert isinstance(error, DfeHubAPIError)
    assert error.server_message == "Bad temperature"


def test_a_long_message_is_cut_to_a_short_single_line_excerpt():
    error = from_status(400, body({"detail": "word\n\t " * 500}))
    assert isinstance(error, DfeHubAPIError)
    assert len(error.server_message) == 200
    assert error.server_message.endswith("…")
    assert "\n" not in str(error)


# --- How long to wait ---


def test_a_throttle_reads_its_wait_from_the_detail_text():
    error = from_status(429, body({"detail": THROTTLE_TEXT}), {"retry-after": "60"})
    assert error.retry_after == 3.512


def test_a_throttle_reads_an_integer_wait_from_the_detail_text():
    error = from_status(429, body({"detail": "Expected available in 3 seconds."}))
    assert error.retry_after == 3.0


def test_a_throttle_whose_detail_names_no_wait_uses_retry_after():
    error = from_status(429, body({"detail": "Slow down."}), {"retry-after": "7"})
    assert isinstance(error, DfeHubRateLimitError)
    assert error.retry_after == 7.0
    assert "7 s" in str(error)


def test_a_throttle_with_no_wait_at_all_says_it_gave_none():
    error = from_status(429, body({"detail": "Slow down."}))
    assert error.retry_after is None
    assert "gave no usable wait" in str(error)


def test_numbers_in_a_non_detail_throttle_message_are_not_taken_for_a_wait():
    message = {"error": {"message": "Limit 10000 tokens per min"}}
    error = from_status(429, body(message), {"Retry-After": "2"})
    assert isinstance(error, DfeHubRateLimitError)
    assert error.retry_after == 2.0
    assert from_status(429, body(message)).retry_after is None


def test_a_server_error_keeps_the_retry_after_it_was_given():
    error = from_status(503, b"busy", {"Retry-After": "4"})
    assert isinstance(error, DfeHubServerError)
    assert error.retry_after == 4.0


@pytest.mark.parametrize("name", ["retry-after", "Retry-After", "RETRY-AFTER"])
def test_retry_after_is_found_whatever_the_case_of_the_header_name(name):
    assert from_status(503, b"", {name: "4"}).retry_after == 4.0


def test_rate_limit_error_reads_the_wait_from_a_stream_detail():
    error = rate_limit_error(THROTTLE_TEXT, status_code=None)
    assert error.retry_after == 3.512
    assert error.status_code is None
    assert error.detail == THROTTLE_TEXT


def test_rate_limit_error_with_no_number_falls_back_to_the_header():
    error = rate_limit_error("Throttled.", status_code=429, retry_after_header="5")
    assert error.retry_after == 5.0


# --- The key never shows ---


def test_a_key_echoed_by_the_server_is_blanked_out():
    error = from_status(401, body({"detail": f"Invalid API key: {KEY}"}))
    assert KEY not in str(error)
    assert KEY not in repr(error)
    assert isinstance(error, DfeHubAPIError)
    assert KEY not in error.server_message
    assert "Invalid API key: ***" in str(error)


def test_a_key_cut_by_the_excerpt_leaves_no_part_of_itself():
    padding = "x " * 85  # puts the key across the 200-character cut
    error = from_status(401, body({"detail": f"{padding}Bad key {KEY} given"}))
    assert KEY[:8] not in str(error)
    assert "***" in str(error)


def test_a_key_echoed_in_a_throttle_detail_is_blanked_out():
    echoed = f"{KEY} throttled. Expected available in 2 seconds."
    error = from_status(429, body({"detail": echoed}))
    assert isinstance(error, DfeHubRateLimitError)
    assert KEY not in str(error)
    assert KEY not in error.detail
    assert error.retry_after == 2.0


def test_a_key_in_an_html_page_is_blanked_out():
    error = from_status(500, f"<p>key=<b>{KEY}</b></p>".encode())
    assert KEY not in str(error)


def test_the_url_is_shown_without_user_info_or_query():
    url = f"https://user:{KEY}@proxy.example:8443/v1/chat/completions?key={KEY}"
    error = from_status(404, b"", url=url)
    assert KEY not in str(error)
    assert "user" not in str(error)
    assert "https://proxy.example:8443/v1/chat/completions" in str(error)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 429, 500, 502, 503])
@pytest.mark.parametrize(
    "payload",
    [
        body({"detail": f"bad {KEY}"}),
        body({"error": {"message": f"bad {KEY}"}}),
        body({"error": f"bad {KEY}"}),
        f"<html><body>bad {KEY}</body></html>".encode(),
        f"bad {KEY}".encode(),
    ],
    ids=["detail", "error-message", "error-string", "html", "text"],
)
def test_the_key_never_appears_in_any_error(status, payload):
    error = from_status(status, payload, {"Retry-After": "1"})
    for shown in (str(error), repr(error), *error.args, *vars(error).values()):
        assert KEY not in str(shown)
