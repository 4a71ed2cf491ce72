"""Connection settings: one policy, the same on the sync and the async path.

TLS verification (default bundle, a CA file, the environment's bundle, off),
client certificates, proxies from a field or the environment (read once, on
the first call), the user's own HTTP clients, redirects (never followed, so
the request and its credentials go nowhere but base_url), cookies (never
kept), and settings that cannot work (a header with a line break) refused when
the model is built.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import pickle
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from hostile_server import HostileServer, http_head
from langchain_core.load import dumpd
from model_calls import call
from pydantic import SecretStr
from urllib3.exceptions import InsecureRequestWarning

from langchain_dfehub import (
    ChatDfeHub,
    DfeHubAPIError,
    DfeHubConnectionError,
    DfeHubServerError,
    DfeHubTimeoutError,
)
from langchain_dfehub.testing import DfeHubEmulator, ErrorStatus

MODES = ["sync", "async"]
Start = Callable[..., HostileServer]


def answer(conn: socket.socket, request: bytes) -> None:
    """A well-formed answer, "secure", streamed or whole as asked."""
    if b'"stream": true' in request or b'"stream":true' in request:
        delta = {"content": "secure"}
        events = [
            {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
        conn.sendall(http_head("200 OK", "text/event-stream") + body.encode())
        return
    message = {"role": "assistant", "content": "secure"}
    reply = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    conn.sendall(http_head("200 OK", "application/json") + json.dumps(reply).encode())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, and its key, made by openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command makes the test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "localhost.pem", folder / "localhost-key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return str(cert), str(key)


@pytest.fixture
def tls_server(hostile_server: Start, certificate: tuple[str, str]) -> HostileServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return hostile_server(answer, tls=context)


@pytest.fixture
def ca(certificate: tuple[str, str]) -> str:
    """The CA bundle that trusts the test server: its own certificate."""
    return certificate[0]


# --- TLS ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_certificate_failure_says_so_and_is_not_retried(
    tls_server: HostileServer, mode: str
) -> None:
    model = ChatDfeHub(base_url=tls_server.base_url, max_retries=2)

    with pytest.raises(DfeHubConnectionError) as caught:
        call(model, mode)

    text = str(caught.value)
    assert "certificate" in text
    assert "verify=" in text
    assert "Operation not permitted" not in text
    assert not caught.value.retryable
    assert tls_server.connections == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_verify_accepts_a_ca_bundle_file(
    tls_server: HostileServer, ca: str, mode: str, streaming: bool
) -> None:
    model = ChatDfeHub(base_url=tls_server.base_url, verify=ca)
    assert call(model, mode, streaming) == "secure"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]
)
def test_both_paths_read_the_same_ca_bundle_variables(
    tls_server: HostileServer,
    ca: str,
    mode: str,
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, ca)
    model = ChatDfeHub(base_url=tls_server.base_url)
    assert call(model, mode) == "secure"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("setting", ["verify", "cert"])
def test_a_file_that_is_not_pem_is_the_same_clear_error_on_both_paths(
    tls_server: HostileServer, mode: str, setting: str, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    model = ChatDfeHub(
        base_url=tls_server.base_url, max_retries=2, **{setting: str(junk)}
    )

    with pytest.raises(ValueError, match="could not be loaded") as caught:
        call(model, mode)

    assert str(junk) in str(caught.value)
    assert tls_server.connections == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]
)
def test_a_ca_bundle_variable_naming_no_file_is_a_clear_error_on_both_paths(
    tls_server: HostileServer,
    mode: str,
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, "/no/such/bundle.pem")
    model = ChatDfeHub(base_url=tls_server.base_url, max_retries=2)

    with pytest.raises(ValueError, match=f"{variable} names the CA bundle") as caught:
        call(model, mode)

    assert "/no/such/bundle.pem" in str(caught.value)
    assert tls_server.connections == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_verify_false_turns_the_check_off_with_one_warning_on_both_paths(
    tls_server: HostileServer, mode: str, streaming: bool
) -> None:
    with pytest.warns(InsecureRequestWarning, match="127.0.0.1") as built:
        model = ChatDfeHub(base_url=tls_server.base_url, verify=False)
    assert len(built) == 1
    assert built[0].filename == __file__  # it points at the user's line

    with warnings.catch_warnings(record=True) as calls:
        warnings.simplefilter("always")
        assert call(model, mode, streaming) == "secure"
        assert call(model, mode, streaming) == "secure"

    assert [str(w.message) for w in calls] == []  # not urllib3's, per request


@pytest.mark.parametrize("mode", MODES)
def test_verify_false_set_on_a_copy_warns_once_on_its_first_call(
    tls_server: HostileServer, mode: str
) -> None:
    model = ChatDfeHub(base_url=tls_server.base_url)
    unchecked = model.model_copy(update={"verify": False})

    with pytest.warns(InsecureRequestWarning, match="127.0.0.1") as first:
        assert call(unchecked, mode) == "secure"
    assert len(first) == 1

    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        assert call(unchecked, mode) == "secure"
        assert call(unchecked.model_copy(), mode) == "secure"  # knew already
    assert [str(w.message) for w in later] == []


def test_verify_false_leaves_warnings_for_the_users_own_requests_alone(
    tls_server: HostileServer,
) -> None:
    with pytest.warns(InsecureRequestWarning):
        model = ChatDfeHub(base_url=tls_server.base_url, verify=False)
    assert call(model, "sync") == "secure"

    with pytest.warns(InsecureRequestWarning, match="Unverified HTTPS request"):
        requests.get(tls_server.base_url, verify=False, timeout=10)


def tunnel_to(server: HostileServer) -> Callable[[socket.socket, bytes], None]:
    """A proxy's answer to CONNECT: a byte pipe to `server`, whatever was asked."""

    def reply(conn: socket.socket, request: bytes) -> None:
        assert request.startswith(b"CONNECT ")
        port = int(server.origin.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pipe = threading.Thread(target=copy_bytes, args=(upstream, conn))
            pipe.start()
            copy_bytes(conn, upstream)
            pipe.join(timeout=10)

    return reply


def copy_bytes(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@pytest.mark.parametrize("mode", MODES)
def test_verify_false_through_a_proxy_does_not_warn_per_request(
    tls_server: HostileServer, hostile_server: Start, mode: str
) -> None:
    proxy = hostile_server(tunnel_to(tls_server))
    with pytest.warns(InsecureRequestWarning):
        model = ChatDfeHub(
            base_url=tls_server.base_url, verify=False, proxy=proxy.base_url
        )

    with warnings.catch_warnings(record=True) as calls:
        warnings.simplefilter("always")
        assert call(model, mode) == "secure"

    assert [str(w.message) for w in calls] == []
    assert proxy.connections == 1  # the call went through the proxy


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("one_file", [False, True], ids=["pair", "one-file"])
def test_a_client_certificate_is_loaded_on_both_paths(
    tls_server: HostileServer,
    certificate: tuple[str, str],
    mode: str,
    one_file: bool,
    tmp_path: Path,
) -> None:
    cert: str | tuple[str, str] = certificate
    if one_file:  # one PEM file holding the certificate and its key
        both = tmp_path / "both.pem"
        both.write_text("".join(Path(part).read_text() for part in certificate))
        cert = str(both)
    model = ChatDfeHub(base_url=tls_server.base_url, verify=certificate[0], cert=cert)
    assert call(model, mode) == "secure"


@pytest.mark.parametrize(
    "settings",
    [{"verify": "/no/such/ca.pem"}, {"cert": "/no/such/cert.pem"}],
)
def test_a_certificate_file_that_does_not_exist_is_refused(
    settings: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        ChatDfeHub(**settings)


# --- proxies -------------------------------------------------------------------------


@pytest.fixture
def emulator(dfehub_emulator_session: DfeHubEmulator) -> DfeHubEmulator:
    dfehub_emulator_session.reset()
    return dfehub_emulator_session


def origin(emulator: DfeHubEmulator) -> str:
    return emulator.base_url.split("/api/")[0]


UNKNOWN_HOST = "http://dfehub.invalid/api/openai/v1"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_the_proxy_field_is_used(
    emulator: DfeHubEmulator, mode: str, streaming: bool
) -> None:
    # The emulator doubles as the proxy: the model's own host does not exist.
    model = ChatDfeHub(base_url=UNKNOWN_HOST, proxy=origin(emulator), max_retries=0)
    assert call(model, mode, streaming) == "hi"
    assert emulator.requests[-1].headers["host"] == "dfehub.invalid"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_proxy_variables_are_read_the_same_on_both_paths(
    emulator: DfeHubEmulator,
    mode: str,
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, origin(emulator))
    model = ChatDfeHub(base_url=UNKNOWN_HOST, max_retries=0)
    assert call(model, mode) == "hi"


@pytest.mark.parametrize("mode", MODES)
def test_an_unreachable_proxy_is_named_without_its_password(mode: str) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    proxy = f"http://carol:{PROXY_PASSWORD}@127.0.0.1:{port}"
    model = ChatDfeHub(base_url=UNKNOWN_HOST, proxy=proxy, max_retries=0)

    with pytest.raises(DfeHubConnectionError) as caught:
        call(model, mode)

    text = str(caught.value)
    assert f"through the proxy http://127.0.0.1:{port}" in text
    assert PROXY_PASSWORD not in text


@pytest.mark.parametrize("mode", MODES)
def test_no_proxy_and_an_empty_proxy_field_connect_directly(
    emulator: DfeHubEmulator, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert call(ChatDfeHub(base_url=emulator.base_url, max_retries=0), mode) == "hi"

    monkeypatch.delenv("NO_PROXY")
    direct = ChatDfeHub(base_url=emulator.base_url, proxy="", max_retries=0)
    assert call(direct, mode) == "hi"


@pytest.mark.parametrize("mode", MODES)
def test_the_environment_is_read_once_on_the_first_call(
    emulator: DfeHubEmulator, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)
    assert call(model, mode) == "hi"
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens
    assert call(model, "sync") == "hi"
    assert call(model, "async") == "hi"


PROXY_PASSWORD = "proxy-pw-0123456789"


@pytest.mark.parametrize("mode", MODES)
def test_credentials_in_the_proxy_are_sent_but_never_shown(
    emulator: DfeHubEmulator, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = origin(emulator).replace("http://", f"http://bob:{PROXY_PASSWORD}@")
    model = ChatDfeHub(base_url=UNKNOWN_HOST, proxy=proxy, max_retries=0)

    assert call(model, mode) == "hi"
    basic = base64.b64encode(f"bob:{PROXY_PASSWORD}".encode()).decode()
    assert emulator.requests[-1].headers["proxy-authorization"] == f"Basic {basic}"
    assert model.proxy == origin(emulator)
    shown = [repr(model), json.dumps(dumpd(model)), str(model.model_dump())]
    assert all(PROXY_PASSWORD not in place for place in shown)

    # Not pickled either; the unpickled copy takes them from its environment.
    pickled = pickle.dumps(model)
    assert PROXY_PASSWORD.encode() not in pickled
    monkeypatch.setenv("HTTP_PROXY", proxy)
    assert call(pickle.loads(pickled), mode) == "hi"
    assert emulator.requests[-1].headers["proxy-authorization"] == f"Basic {basic}"


@pytest.mark.parametrize("mode", MODES)
def test_copies_with_other_settings_keep_their_own_connections(
    emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)
    proxied = model.model_copy(update={"base_url": UNKNOWN_HOST})
    proxied.proxy = origin(emulator)
    for _ in range(2):
        assert call(model, mode) == "hi"
        assert call(proxied, mode) == "hi"
    hosts = [r.headers["host"] for r in emulator.requests]
    assert hosts[1::2] == ["dfehub.invalid"] * 2
    assert "dfehub.invalid" not in hosts[0::2]


# --- the user's own clients -----------------------------------------------------------


def test_a_users_requests_session_is_used_as_it_is(emulator: DfeHubEmulator) -> None:
    with requests.Session() as session:
        session.headers["X-Client"] = "my session"
        model = ChatDfeHub(base_url=emulator.base_url, http_client=session)
        assert model.invoke("through my session").content == "through my session"
        assert list(model.stream("streamed too"))
    assert all(r.headers["x-client"] == "my session" for r in emulator.requests)


async def test_a_users_httpx_client_is_used_as_it_is(
    emulator: DfeHubEmulator,
) -> None:
    async with httpx.AsyncClient(headers={"X-Client": "my client"}) as client:
        model = ChatDfeHub(base_url=emulator.base_url, http_async_client=client)
        answer = await model.ainvoke("through my client")
        assert answer.content == "through my client"
        assert [c async for c in model.astream("streamed too")]
        assert not client.is_closed  # yours to close
    assert all(r.headers["x-client"] == "my client" for r in emulator.requests)


def test_something_else_as_a_client_is_refused() -> None:
    with pytest.raises(ValueError, match=r"requests\.Session"):
        ChatDfeHub(http_client="not a session")
    with pytest.raises(ValueError, match=r"httpx\.AsyncClient"):
        ChatDfeHub(http_async_client=requests.Session())


def test_user_clients_are_not_pickled(emulator: DfeHubEmulator) -> None:
    with requests.Session() as session:
        model = ChatDfeHub(base_url=emulator.base_url, http_client=session)
        twin = pickle.loads(pickle.dumps(model))
    assert twin.http_client is None
    assert twin.invoke("own connections").content == "own connections"


COPIES = {
    "deepcopy": copy.deepcopy,
    "copy": copy.copy,
    "model_copy": lambda model: model.model_copy(),
    "model_copy-deep": lambda model: model.model_copy(deep=True),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make_copy", list(COPIES.values()), ids=list(COPIES))
def test_a_copy_shares_the_users_own_clients_and_uses_them(
    emulator: DfeHubEmulator, mode: str, make_copy: Callable[[Any], Any]
) -> None:
    async def run() -> None:
        async with httpx.AsyncClient() as client:
            with requests.Session() as session:
                model = ChatDfeHub(
                    base_url=emulator.base_url,
                    http_client=session,
                    http_async_client=client,
                    model_kwargs={"seed": [1]},
                )
                twin = make_copy(model)
                assert twin.http_client is session
                assert twin.http_async_client is client
                if mode == "sync":
                    answer = await asyncio.to_thread(twin.invoke, "copied")
                else:
                    answer = await twin.ainvoke("copied")
                assert answer.content == "copied"

    asyncio.run(run())


# --- redirects and cookies ---------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("own_client", [False, True], ids=["ours", "users"])
def test_a_redirect_is_reported_never_followed(
    emulator: DfeHubEmulator,
    hostile_server: Start,
    mode: str,
    status: int,
    own_client: bool,
) -> None:
    elsewhere = hostile_server(answer)
    target = f"{elsewhere.base_url}/chat/completions?token=t0ps3cret"
    emulator.add_faults(ErrorStatus(status, "", headers={"Location": target}))
    clients: dict[str, Any] = {}
    if own_client:  # even a client set to follow redirects does not
        clients["http_client"] = requests.Session()
        clients["http_async_client"] = httpx.AsyncClient(follow_redirects=True)
    model = ChatDfeHub(
        base_url=emulator.base_url,
        default_headers={"X-Api-Key": "k"},
        max_retries=2,
        **clients,
    )

    with pytest.raises(DfeHubAPIError) as caught:
        call(model, mode)

    assert caught.value.status_code == status
    assert not caught.value.retryable
    assert f"{elsewhere.base_url}/chat/completions" in str(caught.value)
    assert "t0ps3cret" not in str(caught.value)
    assert "base_url" in str(caught.value)
    assert elsewhere.requests == []
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_cookies_a_server_sets_are_not_sent_back(
    emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(base_url=emulator.base_url)
    whole = {
        "choices": [{"index": 0, "message": {"content": "c"}, "finish_reason": "stop"}]
    }
    cookie = {"Set-Cookie": "session=abc; Path=/"}
    emulator.add_faults(ErrorStatus(200, json.dumps(whole), headers=cookie))

    async def twice() -> None:
        await model.ainvoke("first")
        await model.ainvoke("second")

    if mode == "sync":
        model.invoke("first")
        model.invoke("second")
    else:
        asyncio.run(twice())
    assert "cookie" not in emulator.requests[-1].headers


# --- settings that cannot work -----------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"X-Bad": "a\r\nInjected: yes"}, {"X-Bad": "a\nb"}, {"X-Bad\r\n": "v"}],
)
def test_a_header_with_a_line_break_is_refused_when_the_model_is_built(
    headers: dict[str, str],
) -> None:
    with pytest.raises(ValueError, match="line break"):
        ChatDfeHub(default_headers=headers)


def test_a_key_with_a_line_break_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="line break") as caught:
        ChatDfeHub(api_key="sk-secret-value\n")
    assert "sk-secret-value" not in str(caught.value)
    with pytest.raises(ValueError, match="line break") as caught:
        ChatDfeHub(default_headers={"X-Api-Key": "sk-secret-value\r\n"})
    assert "sk-secret-value" not in str(caught.value)


SET_AFTERWARDS = {
    "a copy's header": lambda model: model.model_copy(
        update={"default_headers": {"X-Team": "a\r\nX-Evil: 1"}}
    ),
    "a header set later": lambda model: (
        setattr(model, "default_headers", {"X-Team": "a\nb"}) or model
    ),
    "a key set later": lambda model: (
        setattr(model, "api_key", SecretStr("sk-secret-value\n")) or model
    ),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize(
    "change", list(SET_AFTERWARDS.values()), ids=list(SET_AFTERWARDS)
)
def test_a_line_break_set_after_the_model_was_built_is_a_bad_setting_not_retried(
    emulator: DfeHubEmulator,
    mode: str,
    streaming: bool,
    change: Callable[[ChatDfeHub], ChatDfeHub],
) -> None:
    model = change(ChatDfeHub(base_url=emulator.base_url, max_retries=2))

    with pytest.raises(ValueError, match="line break") as caught:
        call(model, mode, streaming)

    assert "sk-secret-value" not in str(caught.value)
    assert "reach" not in str(caught.value)
    assert emulator.requests == []  # refused before sending, never retried


# --- client settings given to one call ------------------------------------------------


def call_with(model: ChatDfeHub, mode: str, stream: bool, **kwargs: Any) -> str:
    """The answer to "hi", with the call's own arguments."""
    if mode == "sync":
        if stream:
            return "".join(str(c.content) for c in model.stream("hi", **kwargs))
        return str(model.invoke("hi", **kwargs).content)

    async def run() -> str:
        if stream:
            chunks = [str(c.content) async for c in model.astream("hi", **kwargs)]
            return "".join(chunks)
        return str((await model.ainvoke("hi", **kwargs)).content)

    return asyncio.run(run())


def silent(conn: socket.socket, request: bytes) -> None:
    """Take the request, then say nothing until the client goes (at most 10 s)."""
    conn.recv(1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize("name", ["timeout", "request_timeout"])
def test_a_calls_timeout_bounds_that_call_and_is_not_sent(
    hostile_server: Start, mode: str, streaming: bool, name: str
) -> None:
    server = hostile_server(silent)
    model = ChatDfeHub(base_url=server.base_url, timeout=30, max_retries=0)

    with pytest.raises(DfeHubTimeoutError) as caught:
        call_with(model, mode, streaming, **{name: 0.3})

    assert caught.value.phase == "read"
    assert "sent nothing for 0.3 s" in str(caught.value)
    assert b"timeout" not in server.requests[0].partition(b"\r\n\r\n")[2]
    assert model.timeout == 30  # the model's own is unchanged


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_a_calls_max_retries_applies_to_that_call_only(
    emulator: DfeHubEmulator, mode: str, streaming: bool
) -> None:
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)
    emulator.add_faults(*[ErrorStatus(500, "down")] * 2)

    assert call_with(model, mode, streaming, max_retries=2) == "hi"
    assert len(emulator.requests) == 3
    assert all("max_retries" not in r.body for r in emulator.requests)

    emulator.add_faults(ErrorStatus(500, "down"))
    with pytest.raises(DfeHubServerError):
        call_with(model, mode, streaming)
    assert len(emulator.requests) == 4


def trickle(conn: socket.socket, request: bytes) -> None:
    """A reply that comes one byte every 50 ms, for at most 10 s."""
    streaming = b'"stream":true' in request.replace(b" ", b"")
    kind = "text/event-stream" if streaming else "application/json"
    conn.sendall(http_head("200 OK", kind))
    for _ in range(200):
        conn.sendall(b":" if streaming else b" ")
        time.sleep(0.05)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_a_calls_deadline_bounds_that_call_and_is_not_sent(
    hostile_server: Start, mode: str, streaming: bool
) -> None:
    server = hostile_server(trickle)
    model = ChatDfeHub(base_url=server.base_url, timeout=(5, 5), max_retries=0)

    with pytest.raises(DfeHubTimeoutError) as caught:
        call_with(model, mode, streaming, deadline=0.5)

    assert caught.value.phase == "deadline"
    assert "deadline of 0.5 s" in str(caught.value)
    assert b"deadline" not in server.requests[0].partition(b"\r\n\r\n")[2]


REFUSED_PER_CALL = {
    "base_url": "http://elsewhere.example/v1",
    "openai_api_base": "http://elsewhere.example/v1",
    "proxy": "http://127.0.0.1:9",
    "verify": False,
    "default_headers": {"X-Team": "a"},
    "model_kwargs": {"seed": 1},
    "streaming": True,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(REFUSED_PER_CALL))
def test_the_models_other_settings_are_refused_in_a_call(
    emulator: DfeHubEmulator, mode: str, name: str
) -> None:
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)

    with pytest.raises(ValueError, match=f"{name!r} is a setting of the model"):
        call_with(model, mode, False, **{name: REFUSED_PER_CALL[name]})

    assert emulator.requests == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", 0),
        ("timeout", "soon"),
        ("timeout", (1, 2, 3)),
        ("max_retries", -1),
        ("max_retries", 1.5),
        ("deadline", float("nan")),
        ("max_retry_wait", -1),
        ("throttle_budget", float("inf")),
    ],
)
def test_a_bad_setting_for_a_call_is_refused_before_sending(
    emulator: DfeHubEmulator, mode: str, name: str, value: Any
) -> None:
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)

    with pytest.raises(ValueError, match=f"^{name} must be"):
        call_with(model, mode, False, **{name: value})

    assert emulator.requests == []


# --- proxies as requests and httpx read them -----------------------------------------


def refuse(conn: socket.socket, request: bytes) -> None:
    """A proxy that must not be used: it records the request and answers 502."""
    conn.sendall(http_head("502 Bad Gateway", "text/plain") + b"not for you")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("no_proxy", ["127.0.0.0/8", "10.0.0.0/8, 127.0.0.1/32"])
def test_no_proxy_networks_in_cidr_form_are_honoured(
    emulator: DfeHubEmulator,
    hostile_server: Start,
    mode: str,
    no_proxy: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = hostile_server(refuse)
    monkeypatch.setenv("HTTP_PROXY", proxy.origin)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    model = ChatDfeHub(base_url=emulator.base_url, api_key="sk-x", max_retries=0)

    assert call(model, mode) == "hi"
    assert proxy.connections == 0  # neither the request nor its key went there


@pytest.mark.parametrize("mode", MODES)
def test_a_network_that_does_not_hold_the_host_leaves_the_proxy_in_use(
    emulator: DfeHubEmulator,
    hostile_server: Start,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = hostile_server(answer)  # reached only through the proxy
    monkeypatch.setenv("HTTP_PROXY", origin(emulator))
    monkeypatch.setenv("NO_PROXY", "10.0.0.0/8")
    model = ChatDfeHub(base_url=server.base_url, max_retries=0)

    assert call(model, mode) == "hi"  # the emulator, as the proxy, answered
    assert server.connections == 0


def without_scheme(emulator: DfeHubEmulator, credentials: str = "") -> str:
    return credentials + origin(emulator).removeprefix("http://")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("credentials", ["", f"bob:{PROXY_PASSWORD}@"])
@pytest.mark.parametrize("where", ["HTTP_PROXY", "ALL_PROXY", "proxy="])
def test_a_proxy_without_a_scheme_is_an_http_proxy_on_both_paths(
    emulator: DfeHubEmulator,
    mode: str,
    credentials: str,
    where: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = without_scheme(emulator, credentials)
    if where == "proxy=":
        model = ChatDfeHub(base_url=UNKNOWN_HOST, proxy=proxy, max_retries=0)
    else:
        monkeypatch.setenv(where, proxy)
        model = ChatDfeHub(base_url=UNKNOWN_HOST, max_retries=0)

    assert call(model, mode) == "hi"
    sent = emulator.requests[-1].headers
    assert sent["host"] == "dfehub.invalid"
    if credentials:
        basic = base64.b64encode(f"bob:{PROXY_PASSWORD}".encode()).decode()
        assert sent["proxy-authorization"] == f"Basic {basic}"
    else:
        assert "proxy-authorization" not in sent
    shown = [repr(model), json.dumps(dumpd(model)), str(model.model_dump())]
    assert all(PROXY_PASSWORD not in place for place in shown)
    assert PROXY_PASSWORD.encode() not in pickle.dumps(model)


BAD_PROXIES = [
    f"ftp://carol:{PROXY_PASSWORD}@127.0.0.1:21",
    f"http://carol:{PROXY_PASSWORD}@127.0.0.1:notaport",
    f"carol:{PROXY_PASSWORD}@127.0.0.1:notaport",
    "http://",
]


@pytest.mark.parametrize("proxy", BAD_PROXIES)
def test_a_bad_proxy_field_is_refused_without_its_password(proxy: str) -> None:
    with pytest.raises(ValueError, match="which is not a proxy URL") as caught:
        ChatDfeHub(proxy=proxy)
    assert PROXY_PASSWORD not in str(caught.value)
    assert "proxy=" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("proxy", BAD_PROXIES)
def test_a_bad_proxy_variable_is_the_same_error_on_both_paths(
    emulator: DfeHubEmulator, mode: str, proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=2)

    with pytest.raises(ValueError, match="HTTP_PROXY names the proxy") as caught:
        call(model, mode)

    assert PROXY_PASSWORD not in everything_shown(caught.value)
    assert emulator.requests == []


def everything_shown(error: BaseException) -> str:
    """What the error and the errors chained to it show."""
    shown: list[str] = []
    current: BaseException | None = error
    while current is not None:
        shown += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return " ".join(shown)
