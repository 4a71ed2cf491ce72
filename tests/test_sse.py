"""The sans-IO SSE decoder: bytes in, in any pieces, events out."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

import pytest

from langchain_dfehub import _json, _sse
from langchain_dfehub._sse import (
    Chunk,
    Detail,
    Done,
    Malformed,
    ServerError,
    SSEDecoder,
    classify_object,
)

THROTTLE_TEXT = "Request was throttled. Expected available in 3.512 seconds."


def chunk(content: str, index: int = 0) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{index}",
        "object": "chat.completion.chunk",
        "model": "gpt-3.5-turbo",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }


def data_line(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode()


def decode(pieces: Iterable[bytes]) -> list[_sse.Event]:
    decoder = SSEDecoder()
    events: list[_sse.Event] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    return events


def contents(events: list[_sse.Event]) -> list[str]:
    out = []
    for event in events:
        assert isinstance(event, Chunk), event
        out.append(event.data["choices"][0]["delta"]["content"])
    return out


def stream_body(line_end: bytes) -> bytes:
    lines = [
        b": keep-alive",
        b"",
        data_line(chunk("Hello")),
        b"",
        b"event: message",
        b"id: 2",
        data_line(chunk(", wörld 🙂")),
        b"",
        b"data: [DONE]",
        b"",
    ]
    return line_end.join(lines) + line_end


EXPECTED = [Chunk(chunk("Hello")), Chunk(chunk(", wörld 🙂")), Done()]


# --- Line ends and read boundaries ---


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_a_body_decodes_the_same_whatever_its_line_ends(line_end):
    assert decode([stream_body(line_end)]) == EXPECTED


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_a_body_split_at_any_byte_decodes_the_same(line_end):
    body = stream_body(line_end)
    for split in range(len(body) + 1):
        events = decode([body[:split], body[split:]])
        assert events == EXPECTED, f"split at byte {split}"


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_a_body_fed_one_byte_at_a_time_decodes_the_same(line_end):
    body = stream_body(line_end)
    assert decode(body[i : i + 1] for i in range(len(body))) == EXPECTED


def test_a_cr_ending_one_read_and_a_lf_starting_the_next_are_one_line_end():
    decoder = SSEDecoder()
    assert decoder.feed(data_line(chunk("a")) + b"\r") == []
    # Were the LF a second line end, this blank line would dispatch the event.
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r\n") == [Chunk(chunk("a"))]


def test_an_empty_read_between_cr_and_lf_keeps_them_one_line_end():
    decoder = SSEDecoder()
    assert decoder.feed(data_line(chunk("a")) + b"\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [Chunk(chunk("a"))]


def test_a_cr_followed_by_a_cr_in_the_next_read_ends_the_event():
    decoder = SSEDecoder()
    assert decoder.feed(data_line(chunk("a")) + b"\r") == []
    assert decoder.feed(b"\r") == [Chunk(chunk("a"))]


def test_a_multibyte_character_split_across_reads_comes_through_intact():
    text = "Привет, 世界 🙂"
    body = data_line(chunk(text)) + b"\n\n"
    start = body.index("🙂".encode())
    for split in range(start, start + 5):
        assert contents(decode([body[:split], body[split:]])) == [text]


# --- Lines the decoder skips ---


def test_comments_and_keep_alives_make_no_events():
    assert decode([b": keep-alive\n\n:\n\n: ping\r\n\r\n"]) == []


def test_a_comment_between_data_lines_does_not_end_the_event():
    body = b'data: {"choices":\n: ping\ndata: []}\n\n'
    assert decode([body]) == [Chunk({"choices": []})]


def test_blank_lines_alone_make_no_events():
    assert decode([b"\n\n\n\r\n\r\r\n"]) == []


def test_event_id_and_retry_fields_are_ignored():
    body = b"event: completion\nid: 42\nretry: 3000\n" + data_line(chunk("x")) + b"\n\n"
    assert contents(decode([body])) == ["x"]


def test_an_empty_data_line_makes_no_event():
    assert decode([b"data:\n\ndata: \n\n"]) == []


def test_data_without_a_space_after_the_colon_is_read():
    assert contents(decode([b"data:" + data_line(chunk("x"))[6:] + b"\n\n"])) == ["x"]


# --- What the events say ---


def test_done_sentinel_is_a_done_event():
    assert decode([b"data: [DONE]\n\n"]) == [Done()]


def test_a_detail_object_in_a_data_line_is_a_throttle():
    body = data_line({"detail": THROTTLE_TEXT}) + b"\n\n"
    assert decode([body]) == [Detail(THROTTLE_TEXT)]


def test_a_bare_detail_line_is_a_throttle():
    body = json.dumps({"detail": THROTTLE_TEXT}).encode() + b"\n"
    assert decode([body]) == [Detail(THROTTLE_TEXT)]


def test_a_bare_json_line_first_ends_the_event_before_it():
    body = data_line(chunk("before")) + b"\n" + b'{"detail": "wait 1 second"}\n'
    assert decode([body]) == [Chunk(chunk("before")), Detail("wait 1 second")]


def test_an_error_object_is_a_server_error_with_its_message():
    error = {"error": {"message": "model overloaded", "code": 503}}
    assert decode([data_line(error) + b"\n\n"]) == [
        ServerError("model overloaded", error)
    ]


def test_an_error_given_as_a_string_is_a_server_error():
    error = {"error": "upstream failed"}
    assert decode([data_line(error) + b"\n\n"]) == [
        ServerError("upstream failed", error)
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json at all", "not valid JSON"),
        ('{"choices": [', "not valid JSON"),
        ("[1, 2, 3]", "not a JSON object"),
        ("42", "not a JSON object"),
        ('"text"', "not a JSON object"),
        ('{"object": "chat.completion.chunk"}', "no 'choices'"),
        ("[" * 100_000, "not valid JSON"),
    ],
    ids=[
        "not-json",
        "truncated-json",
        "array",
        "number",
        "string",
        "no-choices",
        "absurdly-deep",
    ],
)
def test_a_data_payload_that_is_not_a_chunk_is_malformed(payload, reason):
    [event] = decode([f"data: {payload}\n\n".encode()])
    assert isinstance(event, Malformed)
    assert event.line == payload
    assert reason in event.reason


def test_a_line_that_is_neither_an_sse_field_nor_json_is_malformed():
    [event] = decode([b"<html>Bad Gateway</html>\n"])
    assert isinstance(event, Malformed)
    assert event.line == "<html>Bad Gateway</html>"


def test_a_bare_json_line_that_is_not_an_object_with_choices_is_malformed():
    [event] = decode([b'{"hello": "world"}\n'])
    assert isinstance(event, Malformed)
    assert "no 'choices'" in event.reason


@pytest.mark.parametrize(
    "text",
    [
        'the "detail": "in 3 seconds" field',
        "content",
        "data: [DONE]",
        "[DONE]",
        '{"error": {"message": "x"}}',
        "{} {{ }} data: detail content [DONE] \\n \n\n data: x",
        "\r\n\r\n",
    ],
)
def test_chunk_text_with_protocol_words_comes_through_intact(text):
    body = data_line(chunk(text)) + b"\n\n" + data_line(chunk(text)) + b"\n\n"
    assert contents(decode([body])) == [text, text]


# --- Several data lines in one event ---


def test_data_lines_of_one_event_are_joined_with_newlines():
    body = b'data: {"choices":\ndata: [], "id": "x"}\n\n'
    assert decode([body]) == [Chunk({"choices": [], "id": "x"})]


def test_consecutive_data_lines_each_holding_an_object_are_read_one_by_one():
    body = data_line(chunk("a")) + b"\n" + data_line(chunk("b")) + b"\ndata: [DONE]\n\n"
    events = decode([body])
    assert events == [Chunk(chunk("a")), Chunk(chunk("b")), Done()]


# --- The end of the stream ---


def test_close_flushes_a_last_event_with_no_trailing_blank_line():
    decoder = SSEDecoder()
    assert decoder.feed(data_line(chunk("last")) + b"\n") == []
    assert decoder.close() == [Chunk(chunk("last"))]


def test_close_flushes_a_last_line_with_no_line_end():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.close() == [Done()]


def test_close_after_a_complete_stream_adds_nothing():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]\n\n") == [Done()]
    assert decoder.close() == []
    assert decoder.close() == []


def test_close_of_an_unused_decoder_adds_nothing():
    assert SSEDecoder().close() == []


# --- Size ---


@functools.cache
def large_body(count: int) -> bytes:
    return b"".join(data_line(chunk(f"t{i} ", i)) + b"\n\n" for i in range(count))


def test_twenty_thousand_events_in_one_read_all_come_out_in_order():
    count = 20_000
    decoder = SSEDecoder()
    events = decoder.feed(large_body(count) + b"data: [DONE]\n\n")
    assert len(events) == count + 1
    assert contents(events[:-1]) == [f"t{i} " for i in range(count)]
    assert events[-1] == Done()


def test_twenty_thousand_events_in_8_kib_reads_all_come_out(monkeypatch):
    # Each event is parsed exactly once, however the reads cut it.
    parsed = 0

    def counting_loads(text: str) -> Any:
        nonlocal parsed
        parsed += 1
        return json.loads(text)

    monkeypatch.setattr(_json, "fast_reader", counting_loads)
    count = 20_000
    body = large_body(count)
    reads = [body[i : i + 8192] for i in range(0, len(body), 8192)]
    events = decode(reads)
    assert len(events) == count
    assert parsed == count
    assert contents(events)[-1] == f"t{count - 1} "


def test_one_long_line_fed_in_thousands_of_small_reads_is_one_event():
    text = "x" * (4 << 20)
    body = data_line(chunk(text)) + b"\n\n"
    reads = [body[i : i + 1024] for i in range(0, len(body), 1024)]
    assert len(reads) > 4000
    assert contents(decode(reads)) == [text]


# --- classify_object, shared with non-stream bodies ---


def test_classify_object_reads_a_completion_object_as_a_chunk():
    completion = {"object": "chat.completion", "choices": [{"message": {}}]}
    assert classify_object(completion, "src") == Chunk(completion)


def test_classify_object_keeps_the_source_of_a_malformed_value():
    event = classify_object(["not", "an", "object"], "the source text")
    assert event == Malformed("the source text", "it is not a JSON object")
