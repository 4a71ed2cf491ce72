"""Shared fixtures of the unit tests.

Unit tests run the same whatever DFEHUB_* variables the shell has set: `make
test` may run with DFEHUB_BASE_URL and DFEHUB_API_KEY pointing at a live
server, for the integration suite; the unit tests build their models against
the emulator (or the DRF app) and must not pick those up, nor a proxy or CA
bundle of the shell.

`hostile_server` starts a raw local server whose replies a test writes byte by
byte: trickles, endless lines, redirects, TLS with a self-signed certificate.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from drf_service import DrfService, running_drf_service
from gate_stores import STORES, MakeGate, gate_maker
from hostile_server import HostileServer
from redis_server import forget_redis_gates, running_redis, why_no_redis

from langchain_dfehub._gate import _stores, forget_gates

CONNECTION_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@pytest.fixture(autouse=True)
def _no_dfehub_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DFEHUB_BASE_URL",
        "DFEHUB_API_KEY",
        "DFEHUB_MODEL",
        "DFEHUB_GATE_URL",
        *CONNECTION_VARIABLES,
        *(variable.lower() for variable in CONNECTION_VARIABLES),
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def drf_service() -> Iterator[Callable[[str], DrfService]]:
    """Start (once per rate) the real DRF chat app: `drf_service("3/min")`.

    Each call hands back the app for that rate with its counters zeroed and
    its throttle history forgotten (and the client's gates with it), so a
    test starts from a quiet server.
    Every app is stopped when the session ends.
    """
    with ExitStack() as stack:
        services: dict[str, DrfService] = {}

        def service_at(rate: str) -> DrfService:
            service = services.get(rate)
            if service is None:
                service = stack.enter_context(running_drf_service(rate))
                services[rate] = service
            service.reset_stats()
            service.reset_throttle()
            forget_gates(service.base_url)  # the client remembers its throttle
            return service

        yield service_at


_REDIS_LEFT_OUT = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The URL of a real Redis server for the session (see `redis_server.py`)."""
    reason = why_no_redis()
    if reason is not None:
        pytest.skip(f"Redis tests skipped: {reason}")
    with running_redis() as url:
        yield with_test_timeouts(url)


def with_test_timeouts(url: str) -> str:
    """The URL with socket timeouts for a busy test machine.

    A local redis-server on a loaded machine can stall past the store's
    0.25 s default, and the store then falls back to the process's gate in
    the middle of a scenario; the tests prove the gate's decisions on Redis,
    so they give it the time a far Redis would get, the way a user would: in
    the URL. The fallback tests use servers of their own.
    """
    if "socket_timeout=" in url:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}socket_timeout=2&socket_connect_timeout=2"


def _needs_redis(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return "redis_server" in getattr(item, "fixturenames", ()) or "redis" in params


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Without a Redis server, leave out the tests that need one (one line says so)."""
    if why_no_redis() is None:
        return
    left_out = [item for item in items if _needs_redis(item)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not _needs_redis(item)]
        config.stash[_REDIS_LEFT_OUT] = len(left_out)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Say in one line when the Redis tests could not run, and why."""
    left_out = config.stash.get(_REDIS_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"Redis tests skipped ({left_out}): {why_no_redis()}", yellow=True
        )


@pytest.fixture(params=STORES)
def every_gate_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Run a test with models' gates on each store in turn (`DFEHUB_GATE_URL`).

    Each test gets a gate nobody learned: a fresh SQLite file, Redis keys
    deleted; the process's gates and store connections are dropped after.
    """
    if request.param == "sqlite":
        monkeypatch.setenv("DFEHUB_GATE_URL", f"sqlite:///{tmp_path / 'gates.db'}")
    elif request.param == "redis":
        url = request.getfixturevalue("redis_server")
        forget_redis_gates(url)
        monkeypatch.setenv("DFEHUB_GATE_URL", url)
    yield request.param
    forget_gates()
    _stores.clear()


@pytest.fixture(params=STORES)
def make_gate(request: pytest.FixtureRequest, tmp_path: Path) -> MakeGate:
    """Fresh gates on each store in turn, for the gate's scenario suite."""
    redis_url = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_server")
    return gate_maker(request.param, tmp_path, redis_url)


@pytest.fixture
def hostile_server() -> Iterator[Callable[..., HostileServer]]:
    """Start hostile servers for one test: `hostile_server(reply, tls=None)`.

    `keep_alive=True` serves request after request on each connection.
    """
    started: list[HostileServer] = []

    def start(
        reply: Callable[[socket.socket, bytes], None],
        *,
        tls: ssl.SSLContext | None = None,
        keep_alive: bool = False,
    ) -> HostileServer:
        server = HostileServer(reply, tls=tls, keep_alive=keep_alive)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
