"""Our own sessions send through their adapter what `Session.request` would send."""

from __future__ import annotations

import pickle
import socket

import pytest
import requests
import urllib3
from emulator_requests import last_body

from langchain_dfehub import ChatDfeHub, _sync_pools, _sync_send
from langchain_dfehub._sync_pools import DfeHubAdapter
from langchain_dfehub.testing import DfeHubEmulator

HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": "langchain-dfehub/test",
    "Authorization": "Bearer k",
    "accept-encoding": "identity",  # another case of a session header
}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1/chat/completions",
        "https://Bücher.example/api/v1/chat/completions?x=a b",
    ],
)
def test_the_request_is_prepared_as_session_request_prepares_it(url: str) -> None:
    session = requests.Session()
    session.trust_env = False
    ours = _sync_send.prepare(session, url, b'{"a": 1}', HEADERS)
    theirs = session.prepare_request(
        requests.Request("POST", url, headers=HEADERS, data=b'{"a": 1}')
    )
    assert (ours.method, ours.url) == (theirs.method, theirs.url)
    assert ours.body == theirs.body
    assert list(ours.headers.items()) == list(theirs.headers.items())


def test_a_url_requests_refuses_is_refused_on_every_call() -> None:
    session = requests.Session()
    for _ in range(2):
        with pytest.raises(requests.exceptions.InvalidURL):
            _sync_send.prepare(session, "http://", b"{}", HEADERS)


def test_a_users_session_still_runs_its_hooks(dfehub_emulator: DfeHubEmulator) -> None:
    seen: list[int] = []
    session = requests.Session()
    session.hooks["response"].append(lambda r, *a, **k: seen.append(r.status_code))
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, http_client=session)
    assert model.invoke("hello there").content == "hello there"
    assert seen == [200]


def test_our_session_sends_the_body_and_the_sessions_default_headers(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, api_key="k")
    assert model.invoke("hello there").content == "hello there"
    assert last_body(dfehub_emulator)["messages"][-1]["content"] == "hello there"
    headers = {k.lower(): v for k, v in dfehub_emulator.requests[-1].headers.items()}
    assert headers["authorization"] == "Bearer k"
    assert headers["connection"] == "keep-alive"
    assert "gzip" in headers["accept-encoding"]


def test_a_header_requests_refuses_is_refused_on_every_call() -> None:
    session = requests.Session()
    bad = {**HEADERS, "X-Note": "two\r\nlines"}
    for _ in range(2):
        with pytest.raises(requests.exceptions.InvalidHeader):
            _sync_send.prepare(session, "http://127.0.0.1/v1", b"{}", bad)


def test_the_adapter_looks_up_a_closed_pool_again(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, api_key="k")
    assert model.invoke("hello there").content == "hello there"
    model.close()  # closes the adapter's pools
    assert model.invoke("hello again").content == "hello again"
    session = requests.Session()
    adapter = DfeHubAdapter(unchecked=False)
    session.mount("http://", adapter)
    url = f"{dfehub_emulator.base_url}/models"
    first = adapter.get_connection_with_tls_context(
        session.prepare_request(requests.Request("GET", url)), True
    )
    adapter.close()  # as `model.close()` does: every pool let go
    second = adapter.get_connection_with_tls_context(
        session.prepare_request(requests.Request("GET", url)), True
    )
    assert second is not first
    assert second.pool is not None


def test_the_adapters_response_is_what_requests_builds_but_cookies(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    url = f"{dfehub_emulator.base_url}/models"
    theirs = requests.get(url, timeout=5)
    session = requests.Session()
    session.mount("http://", DfeHubAdapter(unchecked=False))
    ours = session.get(url, timeout=5)
    assert (ours.status_code, ours.reason, ours.url, ours.encoding) == (
        theirs.status_code,
        theirs.reason,
        theirs.url,
        theirs.encoding,
    )
    assert ours.headers.keys() - {"date"} == theirs.headers.keys() - {"date"}
    assert ours.json() == theirs.json()
    assert ours.request.url == url


def test_the_adapter_survives_a_pickle(dfehub_emulator: DfeHubEmulator) -> None:
    adapter = pickle.loads(pickle.dumps(DfeHubAdapter(unchecked=True)))
    session = requests.Session()
    session.mount("http://", adapter)
    assert session.get(f"{dfehub_emulator.base_url}/models", timeout=5).ok


class _RecordingSocket:
    """A connected socket that records each write."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.sock.sendall(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self.sock, name)


@pytest.mark.parametrize(
    ("method", "body", "writes"),
    [
        ("POST", b'{"messages": []}', 1),  # head and body in one write
        ("POST", b"x" * (_sync_pools._JOINED_BODY + 1), 2),  # a large body follows
        ("GET", None, 1),  # a head alone
    ],
)
def test_a_request_is_written_with_as_few_writes_as_its_body_allows(
    dfehub_emulator: DfeHubEmulator, method: str, body: bytes | None, writes: int
) -> None:
    url = urllib3.util.parse_url(dfehub_emulator.base_url)
    assert url.host is not None
    connection = _sync_pools._Connection(url.host, url.port)
    connection.connect()
    recording = _RecordingSocket(connection.sock)
    connection.sock = recording  # type: ignore[assignment]
    connection.request(method, f"{url.path}/models", body=body)
    response = connection.getresponse()
    response.read()
    assert len(recording.writes) == writes
    sent = b"".join(recording.writes)
    assert sent.startswith(f"{method} {url.path}/models HTTP/1.1\r\n".encode())
    assert sent.endswith(b"\r\n\r\n" + (body or b""))
    connection.close()


def test_checked_headers_are_kept_by_the_sessions_adapter_only(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    """The headers hold the key: kept no longer than the session, never pickled."""
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, api_key="sk-kept")
    assert model.invoke("hello there").content == "hello there"
    (session,) = model._transport._sessions.values()
    adapter = session.get_adapter(dfehub_emulator.base_url)
    assert isinstance(adapter, DfeHubAdapter)
    assert any("Bearer sk-kept" in repr(key) for key in adapter.kept_headers)
    assert b"sk-kept" not in pickle.dumps(adapter)
    assert _sync_send.prepare(requests.Session(), "http://127.0.0.1/v1", b"{}", HEADERS)
