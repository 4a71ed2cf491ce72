"""The emulator as a server: lifecycle, routes, HTTP, keys, load, CLI, plugin.

Reply rules and faults have their own files; this one is about the server
being a well-behaved HTTP/1.1 peer that starts, serves many clients at once
and stops cleanly, in-process, as a CLI and through the pytest plugin.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import h11
import httpx
import pytest

from langchain_dfehub.testing import DfeHubEmulator, RecordedRequest, Stall
from langchain_dfehub.testing import __main__ as cli

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
def emulator(dfehub_emulator_session: DfeHubEmulator) -> DfeHubEmulator:
    dfehub_emulator_session.reset()
    return dfehub_emulator_session


def address(emulator: DfeHubEmulator) -> tuple[str, int]:
    host_port = emulator.base_url.split("//")[1].split("/")[0]
    host, port = host_port.rsplit(":", 1)
    return host, int(port)


def raw_exchange(emulator: DfeHubEmulator, data: bytes) -> bytes:
    """Send raw bytes; return everything the server sends until it closes."""
    with socket.create_connection(address(emulator), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def post_raw(body: bytes, extra: str = "", path: str = "/api/openai/v1") -> bytes:
    return (
        f"POST {path}/chat/completions HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# --- lifecycle --------------------------------------------------------------------


def test_the_base_url_names_the_services_path() -> None:
    emulator = DfeHubEmulator()
    with pytest.raises(RuntimeError, match="start"):
        _ = emulator.base_url
    with emulator:
        port = address(emulator)[1]
        assert emulator.base_url == f"http://127.0.0.1:{port}/api/openai/v1"
        with pytest.raises(RuntimeError, match="already running"):
            emulator.start()
    with pytest.raises(RuntimeError):
        _ = emulator.base_url


def test_an_emulator_can_be_started_again_after_stop() -> None:
    emulator = DfeHubEmulator()
    for _ in range(2):
        with emulator:
            assert httpx.post(
                emulator.base_url + "/chat/completions", json=CHAT
            ).is_success


def test_a_port_in_use_fails_start_with_the_os_error(emulator: DfeHubEmulator) -> None:
    with pytest.raises(OSError):  # noqa: PT011 - the OS names the error
        DfeHubEmulator(port=address(emulator)[1]).start()


def test_stop_is_prompt_even_with_a_stream_in_progress() -> None:
    threads_before = set(threading.enumerate())
    emulator = DfeHubEmulator().start()
    [server_thread] = set(threading.enumerate()) - threads_before
    emulator.add_faults(Stall(30, after_chunks=1))
    outcome: list[BaseException | None] = []

    def stream() -> None:
        try:
            body = {**CHAT, "stream": True}
            httpx.post(emulator.base_url + "/chat/completions", json=body, timeout=10)
            outcome.append(None)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    client = threading.Thread(target=stream)
    client.start()
    while not emulator.requests:
        time.sleep(0.01)
    began = time.perf_counter()
    emulator.stop()
    assert time.perf_counter() - began < 1
    assert not server_thread.is_alive()
    client.join(5)
    assert isinstance(outcome[0], httpx.RemoteProtocolError)  # cut, not hung


@pytest.mark.parametrize(
    "options",
    [
        {"throttle_every": -1},
        {"latency": -1},
        {"throttle_as": "body"},
        {"chunk_delay": "1"},
    ],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        DfeHubEmulator(**options)  # type: ignore[arg-type]


# --- routes -----------------------------------------------------------------------


def test_models_lists_one_model(emulator: DfeHubEmulator) -> None:
    body = httpx.get(emulator.base_url + "/models").json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == ["gpt-3.5-turbo"]


def test_any_path_ending_in_chat_completions_is_the_chat_route(
    emulator: DfeHubEmulator,
) -> None:
    root = emulator.base_url.split("/api/")[0]
    for path in ("/v1/chat/completions", "/chat/completions"):
        assert httpx.post(root + path, json=CHAT).json()["object"] == "chat.completion"


def test_an_unknown_path_is_an_openai_style_404(emulator: DfeHubEmulator) -> None:
    response = httpx.post(emulator.base_url + "/completions", json=CHAT)
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "Invalid URL (POST /api/openai/v1/completions)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def test_a_wrong_method_is_an_openai_style_405(emulator: DfeHubEmulator) -> None:
    response = httpx.get(emulator.base_url + "/chat/completions")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert httpx.post(emulator.base_url + "/models").status_code == 405


def test_chat_requests_are_recorded_as_received(emulator: DfeHubEmulator) -> None:
    httpx.post(
        emulator.base_url + "/chat/completions", json=CHAT, headers={"X-Trace": "t1"}
    )
    httpx.post(emulator.base_url + "/chat/completions", content=b"{oops")
    httpx.get(emulator.base_url + "/models")  # not a chat request
    first, second = emulator.requests
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, first.body) == (
        "POST",
        "/api/openai/v1/chat/completions",
        CHAT,
    )
    assert first.headers["x-trace"] == "t1"
    assert second.body is None
    emulator.requests.clear()  # a copy
    assert len(emulator.requests) == 2
    emulator.reset()
    assert emulator.requests == []


# --- API key ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed() -> Iterator[DfeHubEmulator]:
    with DfeHubEmulator(api_key="sk-secret") as running:
        yield running


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer sk-wrong"}, 401),
        ({"Authorization": "sk-secret"}, 401),
        ({"Authorization": "Bearer sk-secret"}, 200),
    ],
)
def test_the_api_key_is_required_when_set(
    keyed: DfeHubEmulator, headers: dict[str, str], status: int
) -> None:
    for method, path in (("POST", "/chat/completions"), ("GET", "/models")):
        response = httpx.request(
            method, keyed.base_url + path, json=CHAT, headers=headers
        )
        assert response.status_code == status
        assert "sk-secret" not in response.text
        if status == 401:
            assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_wrong_key_is_reported_with_openais_code(keyed: DfeHubEmulator) -> None:
    response = httpx.post(
        keyed.base_url + "/chat/completions",
        json=CHAT,
        headers={"Authorization": "Bearer nope"},
    )
    assert response.json()["error"]["code"] == "invalid_api_key"


# --- HTTP/1.1 ---------------------------------------------------------------------


def test_connections_are_kept_alive_between_requests(emulator: DfeHubEmulator) -> None:
    body = json.dumps(CHAT).encode()
    with socket.create_connection(address(emulator), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(post_raw(body))
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"connection: keep-alive" in head
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            received = b""
            while len(received) < length:
                received += sock.recv(length - len(received))
            assert json.loads(received)["choices"][0]["message"]["content"] == "Hello"


def test_connection_close_is_honoured(emulator: DfeHubEmulator) -> None:
    body = json.dumps(CHAT).encode()
    received = raw_exchange(emulator, post_raw(body, "Connection: close\r\n"))
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" in received


def test_an_http_1_0_request_gets_its_answer_and_a_close(
    emulator: DfeHubEmulator,
) -> None:
    body = json.dumps(CHAT).encode()
    request = post_raw(body).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    assert raw_exchange(emulator, request).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_chunked_request_body_is_read(emulator: DfeHubEmulator) -> None:
    body = json.dumps(CHAT).encode()
    head = (
        b"POST /api/openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunked = b"%x\r\n%b\r\n%x\r\n%b\r\n0\r\n\r\n" % (
        5,
        body[:5],
        len(body) - 5,
        body[5:],
    )
    received = raw_exchange(emulator, head + chunked)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"content":"Hello"' in received


def test_expect_100_continue_is_answered(emulator: DfeHubEmulator) -> None:
    body = json.dumps(CHAT).encode()
    request = post_raw(body, "Expect: 100-continue\r\nConnection: close\r\n")
    received = raw_exchange(emulator, request)
    assert received.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="request-line"),
        pytest.param(b"GET / HTTP/2.0\r\n\r\n", id="version"),
        pytest.param(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", id="header-name"),
        pytest.param(b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", id="header-colon"),
        pytest.param(
            b"POST /x HTTP/1.1\r\nContent-Length: ten\r\n\r\n", id="content-length"
        ),
        pytest.param(
            b"POST /x HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", id="too-large"
        ),
        pytest.param(
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", id="coding"
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", id="head-too-large"
        ),
    ],
)
def test_a_malformed_request_gets_a_400_and_a_close(
    emulator: DfeHubEmulator, request_bytes: bytes
) -> None:
    received = raw_exchange(emulator, request_bytes)
    assert received.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"connection: close" in received
    assert b'"type": "invalid_request_error"' in received


# --- timing and load --------------------------------------------------------------


def test_latency_delays_responses_without_blocking_others() -> None:
    with DfeHubEmulator(latency=0.25) as emulator:
        url = emulator.base_url + "/chat/completions"

        async def both() -> list[httpx.Response]:
            async with httpx.AsyncClient() as client:
                return await asyncio.gather(
                    *(client.post(url, json=CHAT) for _ in range(2))
                )

        began = time.perf_counter()
        responses = asyncio.run(both())
        elapsed = time.perf_counter() - began
    assert all(response.is_success for response in responses)
    assert 0.25 <= elapsed < 0.45  # one after the other would take 0.5 s


def test_chunk_delay_spaces_out_the_stream() -> None:
    with DfeHubEmulator(chunk_delay=0.02) as emulator:
        body = {**CHAT, "stream": True}  # role, "Hello", finish, [DONE]: 3 gaps
        began = time.perf_counter()
        httpx.post(emulator.base_url + "/chat/completions", json=body)
        assert time.perf_counter() - began >= 0.06


def test_a_twenty_thousand_chunk_answer_streams_quickly(
    emulator: DfeHubEmulator,
) -> None:
    words = " ".join(f"w{i}" for i in range(20_000))
    body = {**CHAT, "stream": True, "messages": [{"role": "user", "content": words}]}
    began = time.perf_counter()
    response = httpx.post(
        emulator.base_url + "/chat/completions", json=body, timeout=10
    )
    elapsed = time.perf_counter() - began
    events = response.text.split("\n\n")
    assert len(events) == 20_000 + 4  # role, pieces, finish, [DONE], trailing ""
    assert json.loads(events[20_000].removeprefix("data: "))["choices"][0]["delta"] == {
        "content": "w19999"
    }
    assert elapsed < 3  # generous: it takes well under a tenth of that


async def _stream_with_h11(host: str, port: int, text: str) -> str:
    """One stream, read by h11: a strict parser that rejects a cut body."""
    body = json.dumps(
        {**CHAT, "stream": True, "messages": [{"role": "user", "content": text}]}
    ).encode()
    reader, writer = await asyncio.open_connection(host, port)
    connection = h11.Connection(h11.CLIENT)
    headers = [("host", host), ("content-length", str(len(body)))]
    request = h11.Request(
        method="POST", target="/api/openai/v1/chat/completions", headers=headers
    )
    writer.write(
        connection.send(request)
        + connection.send(h11.Data(data=body))
        + connection.send(h11.EndOfMessage())
    )
    received: list[bytes] = []
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Response):
            assert event.status_code == 200
        elif isinstance(event, h11.Data):
            received.append(event.data)
        elif isinstance(event, h11.EndOfMessage):
            break
    writer.close()
    await writer.wait_closed()
    events = b"".join(received).decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    deltas = [
        json.loads(event.removeprefix("data: "))["choices"][0]["delta"]
        for event in events[:-2]
    ]
    return "".join(delta.get("content", "") for delta in deltas)


def test_two_hundred_concurrent_streams_all_complete_intact(
    emulator: DfeHubEmulator,
) -> None:
    host, port = address(emulator)
    texts = [f"stream {number} " + "word " * 30 for number in range(200)]

    async def all_of_them() -> list[str]:
        return await asyncio.gather(
            *(_stream_with_h11(host, port, text) for text in texts)
        )

    assert asyncio.run(all_of_them()) == texts


# --- CLI ----------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_the_cli_prints_the_url_first_and_stops_cleanly(stop_signal: int) -> None:
    command = [
        sys.executable,
        "-m",
        "langchain_dfehub.testing",
        "--port",
        "0",
        "--api-key",
        "sk-cli-secret",
        "--throttle-every",
        "2",
        "--throttle-wait",
        "3",
        "-v",
    ]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/api/openai/v1")
        headers = {"Authorization": "Bearer sk-cli-secret"}
        url = base_url + "/chat/completions"
        assert httpx.post(url, json=CHAT, headers=headers).status_code == 200
        throttled = httpx.post(url, json=CHAT, headers=headers)
        assert throttled.json()["detail"].endswith("in 3 seconds.")
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert stdout == ""
    assert "Traceback" not in stderr
    assert "sk-cli-secret" not in stderr
    assert "POST /api/openai/v1/chat/completions 429" in stderr


@pytest.mark.parametrize(
    "arguments",
    [["--latency", "-1"], ["--port", "x"], ["--throttle-as", "body"]],
)
def test_the_cli_refuses_bad_options(
    arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(arguments)
    assert exit_info.value.code == 2
    assert arguments[0] in capsys.readouterr().err


# --- pytest plugin ------------------------------------------------------------------


def _plugin_arguments() -> list[str]:
    """Load the plugin by module name unless its entry point is installed."""
    installed = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    if "dfehub_emulator" in installed:
        return []
    return ["-p", "langchain_dfehub.testing.pytest_plugin"]


def test_the_pytest_plugin_gives_fixtures_and_a_marker(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pytest

        CHAT = {"messages": [{"role": "user", "content": "Hi"}]}

        @pytest.mark.dfehub_emulator(throttle_every=2, throttle_wait=0.01)
        def test_marker_options(dfehub_emulator):
            url = dfehub_emulator.base_url + "/chat/completions"
            assert httpx.post(url, json=CHAT).status_code == 200
            throttled = httpx.post(url, json=CHAT)
            assert throttled.status_code == 429
            assert "0.01 seconds" in throttled.json()["detail"]

        def test_defaults(dfehub_emulator):
            url = dfehub_emulator.base_url + "/chat/completions"
            assert all(httpx.post(url, json=CHAT).status_code == 200 for _ in range(3))

        def test_session(dfehub_emulator_session):
            url = dfehub_emulator_session.base_url + "/chat/completions"
            assert httpx.post(url, json=CHAT).status_code == 200
        """
    )
    result = pytester.runpytest_inprocess(
        *_plugin_arguments(),
        "--strict-markers",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:asyncio",
    )
    result.assert_outcomes(passed=3)


def test_the_pytest_plugin_imports_no_server_code() -> None:
    code = (
        "import sys, langchain_dfehub.testing.pytest_plugin; "
        "print(any(m.startswith('langchain_dfehub.testing._') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
