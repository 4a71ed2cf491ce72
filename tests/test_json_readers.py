"""Replies are read with orjson where it is installed, with `json`'s results.

Every test runs with each reader: orjson (skipped where it is not installed)
and the standard library's, forced with orjson installed. Whichever reads a
reply, the caller gets the same values and the same typed errors, worded the
same: what orjson reads differently from `json` (NaN and Infinity, numbers
past a double's range, integers past 64 bits, escaped lone surrogates) comes
out as `json` reads it.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_dfehub import ChatDfeHub, DfeHubProtocolError, _json
from langchain_dfehub._sse import Chunk, Malformed, SSEDecoder
from langchain_dfehub.testing import DfeHubEmulator, ErrorStatus
from langchain_dfehub.testing import Malformed as BadLine

READERS = ["orjson", "json"]
MODES = ["sync", "async"]
KEY = "sk-reader-test-0123456789abcdef"


@pytest.fixture(params=READERS)
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which library reads replies in this test."""
    if request.param == "orjson":
        pytest.importorskip("orjson")
        assert _json.name() == "orjson"
    else:
        monkeypatch.setattr(_json, "fast_reader", _json.read_with_json)
        assert _json.name() == "json"
    return str(request.param)


@pytest.fixture
def emulator(dfehub_emulator_session: DfeHubEmulator) -> DfeHubEmulator:
    dfehub_emulator_session.reset()
    return dfehub_emulator_session


def outcome(read: Any, text: str) -> str:
    """What reading `text` gives: the value's repr (types and all), or a refusal."""
    try:
        return repr(read(text))
    except (ValueError, RecursionError):
        return "refused"


# Where orjson and `json` disagree, or nearly: each must come out as `json` says.
EDGE_TEXTS = [
    "NaN",
    '{"logprob": NaN}',
    "[Infinity, -Infinity]",
    "1e400",
    '{"x": -1e400}',
    "1.5e-400",
    "18446744073709551615",  # the largest integer orjson reads exactly
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    '{"usage": {"prompt_tokens": 123456789012345678901234567890}}',
    "0.12345678901234567890123",
    '{"a": 1, "a": 2}',
    '"\\ud800"',
    '{"content": "\\udc00 lone"}',
    '"\\ud83d\\ude00"',
    '"a\\u0000b"',
    '"tab\there"',
    "\ufeff{}",
    "{} x",
    "[1,]",
    "01",
    "-0",
    "-0.0",
    "",
    "[" * 500 + "]" * 500,
    "[" * 5000 + "]" * 5000,
    "[" * 100_000,
]


@pytest.mark.parametrize("text", EDGE_TEXTS, ids=range(len(EDGE_TEXTS)))
def test_a_text_is_read_as_json_reads_it(reader: str, text: str) -> None:
    assert outcome(_json.loads, text) == outcome(json.loads, text)


def generated_texts(count: int) -> Iterator[str]:
    """Numbers of every form, and damaged chunks, from a fixed seed."""
    rng = random.Random(20261202)
    base = json.dumps(
        {
            "id": "chatcmpl-1",
            "created": 1796192647,
            "choices": [{"index": 0, "delta": {"content": "héllo 🙂"}}],
            "usage": {"prompt_tokens": 3, "logprob": -0.25},
        }
    )
    for _ in range(count):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 26)))
        sign = rng.choice(["", "-"])
        fraction = rng.choice(["", "." + digits[::-1][: rng.randint(1, 20)]])
        exponent = rng.choice(["", f"e{rng.randint(-420, 420)}", "E+5", "e-0"])
        yield f'{{"n": {sign}{digits}{fraction}{exponent}}}'
        yield repr(rng.uniform(-1e308, 1e308))
        yield repr(rng.random() * 10 ** rng.randint(-330, 10))
        damaged = list(base)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(damaged))
            choice = rng.random()
            if choice < 0.4:
                del damaged[at]
            elif choice < 0.8:
                damaged.insert(at, rng.choice('{}[]",:0123456789eE.-+ \\uNaIfty'))
            else:
                damaged[at] = rng.choice(["\\ud800", "NaN", "1" * 21, '"'])
        yield "".join(damaged)


def test_generated_texts_are_read_as_json_reads_them(reader: str) -> None:
    differences = [
        text
        for text in generated_texts(1500)
        if outcome(_json.loads, text) != outcome(json.loads, text)
    ]
    assert differences == []


@pytest.mark.parametrize(
    ("data", "long"),
    [
        (b"1234567890123456789", True),
        (b'{"n": -1234567890123456789}', True),
        (b"123456789012345678", False),
        (b"123456789 0123456789", False),
        (b'"1796192647", 1796192647, 000001', False),
        (b"", False),
    ],
)
def test_a_number_orjson_may_misread_is_one_of_19_digits_or_more(
    data: bytes, long: bool
) -> None:
    assert _json.has_long_number(data) is long


def events(*reads: bytes) -> list[Any]:
    decoder = SSEDecoder()
    found = [event for data in reads for event in decoder.feed(data)]
    return found + decoder.close()


BIG = 2**70 + 123  # not a float's value either


def test_an_integer_past_64_bits_in_a_stream_stays_an_integer(reader: str) -> None:
    line = json.dumps({"choices": [], "usage": {"prompt_tokens": BIG}}).encode()

    found = events(b"data: " + line + b"\n\n")

    expected = [Chunk({"choices": [], "usage": {"prompt_tokens": BIG}})]
    assert repr(found) == repr(expected)


def test_an_integer_split_across_reads_stays_an_integer(reader: str) -> None:
    line = json.dumps({"choices": [], "usage": {"prompt_tokens": BIG}}).encode()
    at = line.index(b"18") + 5  # inside the number

    for first, second in ((line[:at], line[at:]), (line[:-3], line[-3:])):
        found = events(b"data: " + first, second + b"\n\n")
        expected = [Chunk({"choices": [], "usage": {"prompt_tokens": BIG}})]
        assert repr(found) == repr(expected)


def test_an_event_of_two_lines_read_apart_keeps_its_big_integer(reader: str) -> None:
    found = events(
        b'data: {"choices": [], "usage": {"prompt_tokens": 1180591620717411303547,\n',
        b'data: "total_tokens": 1}}\n\n',
    )

    usage = {"prompt_tokens": BIG, "total_tokens": 1}
    assert repr(found) == repr([Chunk({"choices": [], "usage": usage})])


@pytest.mark.parametrize(
    "line",
    [
        b'data: {"choices": [{"delta": {"content": "a"}, "logprobs": NaN}]}',
        b'data: {"choices": [{"delta": {"content": "\\ud800"}}], "x": -Infinity}',
        b'data: {"choices": [], "x": 1e999}',
    ],
)
def test_what_only_json_reads_in_a_stream_is_read_as_json_reads_it(
    reader: str, line: bytes
) -> None:
    found = events(line + b"\n\n")

    assert repr(found) == repr([Chunk(json.loads(line[6:]))])


@pytest.mark.parametrize("line", [b"data: {this is not json", b"data: [" * 3000])
def test_a_line_that_is_not_json_is_malformed_whichever_reads_it(
    reader: str, line: bytes
) -> None:
    (event,) = events(line + b"\n\n")

    assert isinstance(event, Malformed)
    assert event.reason == "it is not valid JSON"


# --- through the model, on both paths ---------------------------------------------


def stream_text(model: ChatDfeHub, mode: str) -> list[Any]:
    if mode == "sync":
        return list(model.stream("hello there"))

    async def run() -> list[Any]:
        return [chunk async for chunk in model.astream("hello there")]

    return asyncio.run(run())


def invoke(model: ChatDfeHub, mode: str) -> Any:
    if mode == "sync":
        return model.invoke("hello there")
    return asyncio.run(model.ainvoke("hello there"))


def error_text(
    emulator: DfeHubEmulator,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    *,
    stream: bool,
    fault: Any,
) -> dict[str, str]:
    """The error a bad reply raises, by reader: type checked, message kept."""
    messages = {}
    for name in READERS:
        with monkeypatch.context() as patch:
            if name == "json":
                patch.setattr(_json, "fast_reader", _json.read_with_json)
            elif _json.name() != "orjson":
                continue  # orjson is not installed here
            emulator.add_faults(fault)
            model = ChatDfeHub(base_url=emulator.base_url, api_key=KEY, max_retries=0)
            with pytest.raises(DfeHubProtocolError) as caught:
                stream_text(model, mode) if stream else invoke(model, mode)
            messages[name] = str(caught.value)
    return messages


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_line_that_is_not_json_is_one_error_whichever_reads_it(
    emulator: DfeHubEmulator, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    fault = BadLine(line=f'data: {{"choices": [], "echo": "{KEY}" oops', after_chunks=0)

    messages = error_text(emulator, monkeypatch, mode, stream=True, fault=fault)

    assert len(set(messages.values())) == 1
    message = messages["json"]
    assert "not part of the chat-completions stream format" in message
    assert "not valid JSON" in message
    assert KEY not in message


@pytest.mark.parametrize("mode", MODES)
def test_a_body_that_is_not_json_is_one_error_whichever_reads_it(
    emulator: DfeHubEmulator, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    fault = ErrorStatus(200, f'{{"choices": [], "echo": "{KEY}", NaN: 1}}')

    messages = error_text(emulator, monkeypatch, mode, stream=False, fault=fault)

    assert len(set(messages.values())) == 1
    message = messages["json"]
    assert "reply is not JSON" in message
    assert KEY not in message


def completion_with_usage(tokens: int) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": tokens, "completion_tokens": 1},
    }


@pytest.mark.parametrize("mode", MODES)
def test_a_usage_past_64_bits_is_read_exactly_on_invoke(
    emulator: DfeHubEmulator, reader: str, mode: str
) -> None:
    emulator.add_faults(ErrorStatus(200, json.dumps(completion_with_usage(BIG))))
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)

    usage = invoke(model, mode).usage_metadata

    assert usage["input_tokens"] == BIG
    assert type(usage["input_tokens"]) is int


@pytest.mark.parametrize("mode", MODES)
def test_a_usage_past_64_bits_is_read_exactly_in_a_stream(
    emulator: DfeHubEmulator, reader: str, mode: str
) -> None:
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": BIG, "completion_tokens": 1}},
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    emulator.add_faults(ErrorStatus(200, body, content_type="text/event-stream"))
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)

    usages = [c.usage_metadata for c in stream_text(model, mode) if c.usage_metadata]

    assert [u["input_tokens"] for u in usages] == [BIG]


def test_without_orjson_the_standard_library_reads_everything() -> None:
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "from langchain_dfehub import _json\n"
        "from langchain_dfehub._sse import SSEDecoder\n"
        'events = SSEDecoder().feed(b\'data: {"choices": [], "x": NaN}\\n\\n\')\n'
        "print(_json.name(), _json.fast_reader is _json.read_with_json, events)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    assert result.stdout.split(" ", 2)[:2] == ["json", "True"]
    assert "'x': nan" in result.stdout
