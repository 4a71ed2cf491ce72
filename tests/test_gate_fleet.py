"""One gate for a fleet: the `gate` setting, its stores, and their failures.

Against real servers only: the emulator or the DRF app for the service, a
SQLite file, a real redis-server (`redis_server`), a Redis that accepts
connections and never answers, one killed mid-burst. Several spawned worker
processes share a gate; a fresh one joins a learned gate warm. Each case
runs on the sync and the async path; counts are asserted, never wall times.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from drf_service import DrfService
from fleet import running_fleet
from redis_server import (
    RedisProcess,
    forget_redis_gates,
    server_binary,
    why_no_redis,
)

from langchain_dfehub import ChatDfeHub
from langchain_dfehub._gate import _stores, forget_gates
from langchain_dfehub.testing import DfeHubEmulator

MODES = ["sync", "async"]
PASSWORD = "pw-gate-0123456789"
ServiceAt = Callable[[str], DrfService]


def invoke(model: ChatDfeHub, mode: str, prompt: str = "hello fleet") -> str:
    if mode == "sync":
        return str(model.invoke(prompt).content)
    return str(asyncio.run(model.ainvoke(prompt)).content)


def burst(model: ChatDfeHub, mode: str, prompts: list[str]) -> list[str]:
    if mode == "sync":
        config: Any = {"max_concurrency": len(prompts)}
        return [str(m.content) for m in model.batch(prompts, config=config)]

    async def all_of_them() -> list[str]:
        answers = await asyncio.gather(*(model.ainvoke(p) for p in prompts))
        return [str(a.content) for a in answers]

    return asyncio.run(all_of_them())


@pytest.fixture
def sqlite_gate(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gates.sqlite3'}"


@pytest.fixture(params=["sqlite", "redis"])
def shared_gate(request: pytest.FixtureRequest, sqlite_gate: str) -> str:
    if request.param == "sqlite":
        return sqlite_gate
    url: str = request.getfixturevalue("redis_server")
    forget_redis_gates(url)  # each test starts from a gate nobody learned
    return url


@pytest.fixture(autouse=True)
def _fresh_stores() -> Iterator[None]:
    yield
    forget_gates()
    _stores.clear()


# --- the setting ----------------------------------------------------------------------


def test_no_gate_setting_keeps_the_gate_in_the_process(
    dfehub_emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    assert model.gate is None
    assert invoke(model, "sync") == "hello fleet"
    assert model.throttle_state.store == "memory"


@pytest.mark.parametrize("mode", MODES)
def test_a_sqlite_gate_is_read_from_the_environment_and_named_in_the_state(
    dfehub_emulator: DfeHubEmulator,
    sqlite_gate: str,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    monkeypatch.setenv("DFEHUB_GATE_URL", sqlite_gate)
    model = ChatDfeHub(base_url=dfehub_emulator.base_url)
    assert model.gate == sqlite_gate
    assert invoke(model, mode) == "hello fleet"
    state = model.throttle_state
    assert (state.store, state.sent, state.admitted) == ("sqlite", 1, 1)
    # Another instance (as another process would) reads the same gate.
    other = ChatDfeHub(base_url=dfehub_emulator.base_url, gate=sqlite_gate)
    forget_gates()
    assert other.throttle_state.sent == 1


@pytest.mark.parametrize(
    "url", ["http://cache.internal:6379", "sqlite:///", "memcached://cache.internal"]
)
def test_a_gate_url_of_no_known_store_is_refused_without_quoting_it(url: str) -> None:
    with pytest.raises(ValueError, match="redis://") as caught:
        ChatDfeHub(gate=url)
    assert "cache.internal" not in str(caught.value)


def test_a_gate_password_is_never_shown_or_pickled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = ChatDfeHub(gate=f"redis://:{PASSWORD}@127.0.0.1:1/0")
    assert model.gate == "redis://127.0.0.1:1/0"
    for shown in (repr(model), str(model.model_dump()), model.model_dump_json()):
        assert PASSWORD not in shown
    pickled = pickle.dumps(model)
    assert PASSWORD.encode() not in pickled
    socket_model = ChatDfeHub(gate=f"unix:///tmp/r.sock?db=1&password={PASSWORD}")
    assert socket_model.gate == "unix:///tmp/r.sock?db=1"
    # Unpickled where the variable holds it, the password is back.
    monkeypatch.setenv("DFEHUB_GATE_URL", f"redis://:{PASSWORD}@127.0.0.1:1/0")
    clone = pickle.loads(pickled)
    assert clone._gate_url is not None
    assert PASSWORD in clone._gate_url.get_secret_value()


# --- a store that fails never fails a call --------------------------------------------


class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers a byte."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()
        self.thread.join(5)


@pytest.fixture
def silent_redis() -> Iterator[SilentServer]:
    if why_no_redis() and "redis package" in (why_no_redis() or ""):
        pytest.skip(f"Redis tests skipped: {why_no_redis()}")
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_redis_that_never_answers_sends_calls_to_the_process_gate_with_one_warning(
    dfehub_emulator: DfeHubEmulator,
    silent_redis: SilentServer,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{silent_redis.port}/0"
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, gate=url)
    with caplog.at_level(logging.WARNING, logger="langchain_dfehub"):
        assert burst(model, mode, [f"call {n}" for n in range(8)]) == [
            f"call {n}" for n in range(8)
        ]
    warnings = [r for r in caplog.records if "gate store" in r.getMessage()]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert f"redis://127.0.0.1:{silent_redis.port}/0" in text
    assert PASSWORD not in caplog.text
    # Only the calls already on their way tried it; for a few seconds now,
    # no call does.
    tried = len(silent_redis.accepted)
    assert 1 <= tried <= 8
    assert burst(model, mode, ["again"] * 4) == ["again"] * 4
    assert len(silent_redis.accepted) == tried
    state = model.throttle_state
    assert (state.store, state.admitted) == ("memory", 12)


@pytest.mark.parametrize(
    ("query", "seconds"),
    [("", 0.25), ("?socket_timeout=1.5&socket_connect_timeout=1.5", 1.5)],
)
def test_a_redis_url_may_give_the_store_more_time(
    redis_server: str, query: str, seconds: float
) -> None:
    from langchain_dfehub._gate._redis import RedisStore

    store = RedisStore(redis_server.split("?")[0] + query)
    store._connect()
    clients = [store._client]

    async def async_client() -> Any:
        client = store._aconnect().registered_client
        await client.aclose()
        return client

    clients.append(asyncio.run(async_client()))
    for client in clients:
        options = client.connection_pool.connection_kwargs
        assert options["socket_timeout"] == seconds
        assert options["socket_connect_timeout"] == seconds
    store._client.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_sqlite_file_that_cannot_be_opened_falls_back_alike(
    dfehub_emulator: DfeHubEmulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'gates.sqlite3'}"
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, gate=url)
    with caplog.at_level(logging.WARNING, logger="langchain_dfehub"):
        assert invoke(model, mode) == "hello fleet"
        assert invoke(model, mode) == "hello fleet"
    assert sum("gate store" in r.getMessage() for r in caplog.records) == 1
    assert model.throttle_state.store == "memory"


@pytest.mark.parametrize("mode", MODES)
def test_a_sqlite_file_that_stays_locked_falls_back_alike(
    dfehub_emulator: DfeHubEmulator,
    sqlite_gate: str,
    mode: str,
) -> None:
    import sqlite3

    model = ChatDfeHub(base_url=dfehub_emulator.base_url, gate=sqlite_gate)
    assert invoke(model, mode) == "hello fleet"  # the file exists now
    _stores[sqlite_gate].retry_after = 0.3
    holder = sqlite3.connect(sqlite_gate[len("sqlite:///") :], isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert invoke(model, mode, "while locked") == "while locked"
        assert model.throttle_state.store == "memory"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # Tried again after `retry_after`: the shared gate is back.
    time.sleep(0.4)
    assert invoke(model, mode, "unlocked") == "unlocked"
    state = model.throttle_state
    assert (state.store, state.sent) == ("sqlite", 2)


def test_async_calls_cancelled_while_a_locked_file_decides_give_their_places_back(
    drf_service: ServiceAt, sqlite_gate: str
) -> None:
    """Async only: a sync decision cannot be cancelled halfway.

    A SQLite decision runs in a worker thread, which a cancelled call cannot
    stop: the place it grants after the file unlocks is given back.
    """
    import sqlite3

    service = drf_service("5/s")
    model = ChatDfeHub(base_url=service.base_url, gate=sqlite_gate)
    prompts = [f"warm up {n}" for n in range(16)]
    assert burst(model, "async", prompts) == prompts
    assert model.throttle_state.pace is not None
    holder = sqlite3.connect(sqlite_gate[len("sqlite:///") :], isolation_level=None)

    async def cancelled_then_patient() -> tuple[int, str]:
        holder.execute("BEGIN EXCLUSIVE")
        try:
            calls = [
                asyncio.wait_for(model.ainvoke(f"cancelled {n}"), timeout=0.1)
                for n in range(12)
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            holder.execute("ROLLBACK")
        # The twelve decisions end in their threads now, each granting a
        # paced place; the loop runs on until they have handed them back.
        for _ in range(200):
            await asyncio.sleep(0.05)
            if asyncio.all_tasks() == {asyncio.current_task()}:
                break
        timed_out = sum(isinstance(r, asyncio.TimeoutError) for r in results)
        patient = ChatDfeHub(
            base_url=service.base_url, gate=sqlite_gate, max_retry_wait=0.5
        )
        return timed_out, str((await patient.ainvoke("after them")).content)

    try:
        assert asyncio.run(cancelled_then_patient()) == (12, "after them")
    finally:
        holder.close()
    assert model.throttle_state.store == "sqlite"  # it never fell back


@pytest.mark.parametrize("mode", MODES)
def test_garbage_under_the_gates_keys_is_reset_not_trusted(
    dfehub_emulator: DfeHubEmulator, redis_server: str, mode: str
) -> None:
    import redis

    model = ChatDfeHub(base_url=dfehub_emulator.base_url, gate=redis_server)
    assert invoke(model, mode) == "hello fleet"
    client = redis.Redis.from_url(redis_server)
    keys = [k.decode() for k in client.keys("dfehub:gate:*")]
    assert keys
    assert all("127.0.0.1" not in k and "http" not in k for k in keys)
    for key in keys:
        client.delete(key)
        if key.endswith(":lane:service"):
            client.hset(key, "closed_until", "1e300")  # not even a string
        elif key.endswith(":counts"):
            client.set(key, b"\xff{not json")
    client.close()
    assert invoke(model, mode, "after the garbage") == "after the garbage"
    state = model.throttle_state
    assert (state.store, state.closed_for, state.sent) == ("redis", 0.0, 1)


# --- a fleet of processes, one gate ---------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_processes_on_one_shared_gate_learn_it_once_and_a_fresh_one_starts_warm(
    drf_service: ServiceAt, shared_gate: str, mode: str
) -> None:
    service = drf_service("20/s")
    workers, each = 3, 16
    calls = workers * each
    with running_fleet(workers, service.base_url, shared_gate, mode=mode) as fleet:
        reports, _ = fleet.burst(each, "cold")
        assert sum(r.completed for r in reports) == calls
        kind = "sqlite" if shared_gate.startswith("sqlite") else "redis"
        assert {r.store for r in reports} == {kind}
        assert all(r.pace is None for r in reports)  # nothing learned yet
        cold = service.stats()
        assert cold.completed == calls
        assert cold.throttled <= calls  # at most one throttled request per call
    # A fresh process joining the learned gate paces from its first call.
    service.reset_stats()
    with running_fleet(1, service.base_url, shared_gate, mode=mode) as fresh:
        (report,), _ = fresh.burst(each, "fresh")
    assert report.completed == each
    assert report.pace is not None
    assert 10 <= report.pace < 20
    assert service.stats().throttled <= 2


def test_redis_killed_mid_burst_every_call_still_completes(
    drf_service: ServiceAt, redis_server: str
) -> None:
    binary = server_binary()
    assert binary is not None or why_no_redis() is None
    if binary is None:
        pytest.skip(
            "Redis tests skipped: REDIS_URL is another's server, not ours to kill"
        )
    own = RedisProcess(binary)
    service = drf_service("20/s")
    killer = threading.Timer(1.0, own.stop)
    try:
        with running_fleet(2, service.base_url, own.url) as fleet:
            killer.start()
            reports, _ = fleet.burst(30, "killed")
        assert sum(r.completed for r in reports) == 60, [r.first_error for r in reports]
        assert service.stats().completed == 60
    finally:
        killer.cancel()
        own.stop()


def _invoke_in_child(base_url: str, gate: str, queue: Any) -> None:
    model = ChatDfeHub(base_url=base_url, gate=gate)
    queue.put((str(model.invoke("from the child").content), model.throttle_state.store))


def test_a_forked_child_opens_its_own_connections_to_the_store(
    dfehub_emulator: DfeHubEmulator, shared_gate: str
) -> None:
    import multiprocessing

    model = ChatDfeHub(base_url=dfehub_emulator.base_url, gate=shared_gate)
    assert invoke(model, "sync") == "hello fleet"  # the parent's connection is open
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(
        target=_invoke_in_child, args=(dfehub_emulator.base_url, shared_gate, queue)
    )
    child.start()
    child.join(30)
    kind = "sqlite" if shared_gate.startswith("sqlite") else "redis"
    assert queue.get(timeout=5) == ("from the child", kind)
    # The parent's connection still works, and the child's call is counted.
    assert invoke(model, "sync") == "hello fleet"
    assert model.throttle_state.sent == 3
