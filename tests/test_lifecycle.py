"""Connections live as long as they should: not past their loop, not across fork.

Scripts, notebooks, Celery tasks and Django views call async code with one
`asyncio.run` after another; each run's pooled client must go with its loop,
without the caller closing anything. Worker pools fork a process that has
already talked to the server; a child must open its own connections, or parent
and children read each other's answers from one shared socket.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import signal
import socket
import time
import warnings
import weakref
from typing import Any

import pytest
from hostile_server import (
    LAST_CHUNK,
    answer_to,
    chunked,
    framed,
    wait_for_hangup,
)
from model_calls import EVERY_MODE

from langchain_dfehub import ChatDfeHub, DfeHubProtocolError, _model_fields
from langchain_dfehub.testing import DfeHubEmulator

RUNS = 100
# Descriptors the process may open for its own reasons meanwhile (logging,
# the emulator's threads); a leak of one per run would be RUNS.
SLACK = 8


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def model(dfehub_emulator_session: DfeHubEmulator) -> ChatDfeHub:
    dfehub_emulator_session.reset()
    return ChatDfeHub(base_url=dfehub_emulator_session.base_url)


needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc"
)


@needs_proc
def test_asyncio_run_after_asyncio_run_holds_no_descriptors(
    model: ChatDfeHub,
) -> None:
    async def invoke_and_stream(i: int) -> str:
        answer = await model.ainvoke(f"run {i}")
        streamed = [str(c.content) async for c in model.astream(f"run {i}")]
        return f"{answer.content}|{''.join(streamed)}"

    for i in range(3):  # warm up: imports, the emulator's first threads
        asyncio.run(invoke_and_stream(i))
    before = open_descriptors()
    for i in range(RUNS):
        assert asyncio.run(invoke_and_stream(i)) == f"run {i}|run {i}"
    assert open_descriptors() - before <= SLACK


def test_loops_closed_by_hand_are_not_kept_alive(model: ChatDfeHub) -> None:
    # A loop closed without shutting down its async generators cannot close
    # the client's sockets; the next call on another loop drops the client,
    # so that the garbage collector frees the loop, the client and its sockets.
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    for i in range(20):
        loop = asyncio.new_event_loop()
        answer = loop.run_until_complete(model.ainvoke(f"loop {i}"))
        assert answer.content == f"loop {i}"
        loop.close()
        loops.append(weakref.ref(loop))
        del loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # unclosed transports
        gc.collect()
    alive = [ref for ref in loops if ref() is not None]
    assert len(alive) <= 1  # the last one, until a call on another loop


# --- fork ------------------------------------------------------------------------

PROMPTS = [f"prompt number {i} " * 3 for i in range(40)]
_forked_model: ChatDfeHub | None = None
_forked_loop: asyncio.AbstractEventLoop | None = None


def _answer_in_child(prompt: str) -> str:
    assert _forked_model is not None
    return str(_forked_model.invoke(prompt).content)


def _stream_in_child(prompt: str) -> str:
    assert _forked_model is not None
    return "".join(str(c.content) for c in _forked_model.stream(prompt))


def _answer_in_child_on_the_parents_loop(prompt: str) -> tuple[set[int], str]:
    assert _forked_model is not None
    assert _forked_model._async_transport is not None
    assert _forked_loop is not None
    answer = _forked_loop.run_until_complete(_forked_model.ainvoke(prompt))
    clients = _forked_model._async_transport._clients.values()
    return {id(entry.client) for entry in clients}, str(answer.content)


# Children that share a socket can wait for an answer their sibling read.
POOL_TIMEOUT = 60
CHILD_READ_TIMEOUT = 10


def _fork_pool() -> Any:
    return multiprocessing.get_context("fork").Pool(4)


needs_fork = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork"
)


@needs_fork
@pytest.mark.parametrize("call", [_answer_in_child, _stream_in_child])
def test_forked_children_each_get_their_own_answers(
    model: ChatDfeHub, call: Any
) -> None:
    global _forked_model
    model = model.model_copy(update={"timeout": CHILD_READ_TIMEOUT})
    # The parent's pool holds a keep-alive connection when the children fork.
    assert model.invoke("the parent first").content == "the parent first"
    _forked_model = model
    try:
        with _fork_pool() as pool:
            answers = pool.map_async(call, PROMPTS, chunksize=1).get(POOL_TIMEOUT)
    finally:
        _forked_model = None
    assert answers == PROMPTS
    assert model.invoke("the parent after").content == "the parent after"


@needs_fork
def test_forked_children_do_not_use_the_parents_async_clients(
    model: ChatDfeHub,
) -> None:
    global _forked_model, _forked_loop
    model = model.model_copy(update={"timeout": CHILD_READ_TIMEOUT})
    loop = asyncio.new_event_loop()
    try:
        warm = loop.run_until_complete(model.ainvoke("the parent first"))
        assert warm.content == "the parent first"
        assert model._async_transport is not None
        [parents] = [id(e.client) for e in model._async_transport._clients.values()]
        _forked_model, _forked_loop = model, loop
        with _fork_pool() as pool:
            results = pool.map_async(
                _answer_in_child_on_the_parents_loop, PROMPTS[:8], chunksize=1
            ).get(POOL_TIMEOUT)
        assert all(parents not in used for used, _ in results)
        assert [answer for _, answer in results] == PROMPTS[:8]
        after = loop.run_until_complete(model.ainvoke("the parent after"))
        assert after.content == "the parent after"
    finally:
        _forked_model, _forked_loop = None, None
        loop.run_until_complete(model.aclose())
        loop.close()


def _exit_code_of_child(run: Any, seconds: float = 30.0) -> int | None:
    """Fork; run `run` in the child; its exit code, or None if it hung."""
    pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        code = 1
        try:
            code = 0 if run() else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@needs_fork
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_fork_while_another_thread_holds_a_setup_lock_does_not_hang_the_child(
    model: ChatDfeHub, mode: str
) -> None:
    # A model that has not been called: the child's first call takes the
    # locks that build its connection settings and its transport.
    fresh = model.model_copy(update={"timeout": CHILD_READ_TIMEOUT})
    locks = [_model_fields._TRANSPORT_SETUP, fresh._connections._lock]
    for lock in locks:
        lock.acquire()
    try:

        def answer() -> bool:
            if mode == "sync":
                return fresh.invoke("the child").content == "the child"
            reply = asyncio.run(fresh.ainvoke("the child"))
            return reply.content == "the child"

        code = _exit_code_of_child(answer)
    finally:
        for lock in locks:
            lock.release()

    assert code == 0, (
        "the child hung on a lock held at the fork" if code is None else code
    )


# --- answers stay with their call ------------------------------------------------


def answers(model: ChatDfeHub, mode: str, prompts: list[str]) -> list[str]:
    """Each prompt's answer, asked one after another on one pool (one loop)."""
    if mode.endswith("-streaming"):
        model = model.model_copy(update={"streaming": True})
        mode = mode.removesuffix("-streaming")
    if mode == "invoke":
        return [str(model.invoke(p).content) for p in prompts]
    if mode == "stream":
        return ["".join(str(c.content) for c in model.stream(p)) for p in prompts]

    async def run() -> list[str]:
        got = []
        for p in prompts:
            if mode == "astream":
                got.append("".join([str(c.content) async for c in model.astream(p)]))
            else:
                got.append(str((await model.ainvoke(p)).content))
        return got

    return asyncio.run(run())


def early_hints_first(status: str) -> Any:
    def reply(conn: socket.socket, request: bytes) -> None:
        kind, body = answer_to(request)
        conn.sendall(
            f"HTTP/1.1 {status}\r\nLink: </style.css>; rel=preload\r\n\r\n".encode()
            + framed("200 OK", kind, body)
        )

    return reply


@pytest.mark.parametrize("status", ["103 Early Hints", "102 Processing"])
@pytest.mark.parametrize("mode", EVERY_MODE)
def test_an_interim_reply_before_the_answer_does_not_shift_answers(
    hostile_server: Any, mode: str, status: str
) -> None:
    server = hostile_server(early_hints_first(status), keep_alive=True)
    model = ChatDfeHub(base_url=server.base_url, max_retries=0, timeout=5)

    got = answers(model, mode, ["alpha", "bravo", "charlie"])

    assert got == ["alpha", "bravo", "charlie"]
    assert server.connections == 1  # kept alive: the interim replies were read


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_a_users_session_that_takes_an_interim_reply_as_final_fails_typed(
    hostile_server: Any, mode: str
) -> None:
    # `requests` alone takes a 103 as the reply: it must be refused, and its
    # connection (with the real reply unread) closed, never reused.
    import requests

    server = hostile_server(early_hints_first("103 Early Hints"), keep_alive=True)
    model = ChatDfeHub(
        base_url=server.base_url,
        max_retries=0,
        timeout=5,
        http_client=requests.Session(),
    )

    for prompt in ["alpha", "bravo"]:
        with pytest.raises(DfeHubProtocolError, match="interim reply"):
            answers(model, mode, [prompt])
    assert server.connections == 2


def held_open_after_done(conn: socket.socket, request: bytes) -> None:
    """A whole answer, `[DONE]` included, then the connection held open."""
    _, body = answer_to(request)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body)
    )
    wait_for_hangup(conn)


@pytest.mark.parametrize("mode", [m for m in EVERY_MODE if "stream" in m], ids=str)
def test_done_ends_the_stream_while_the_server_holds_the_connection(
    hostile_server: Any, mode: str
) -> None:
    server = hostile_server(held_open_after_done)
    # Waiting for the end of the body would fail with a read timeout.
    model = ChatDfeHub(base_url=server.base_url, max_retries=0, timeout=(5, 3))

    assert answers(model, mode, ["alpha", "bravo"]) == ["alpha", "bravo"]
    assert server.connections == 2  # the held connection was closed, not reused


def clean_chunked_answer(conn: socket.socket, request: bytes) -> None:
    _, body = answer_to(request)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body) + LAST_CHUNK
    )


@pytest.mark.parametrize("mode", [m for m in EVERY_MODE if "stream" in m], ids=str)
def test_a_stream_that_ends_cleanly_after_done_keeps_its_connection(
    hostile_server: Any, mode: str
) -> None:
    server = hostile_server(clean_chunked_answer, keep_alive=True)
    model = ChatDfeHub(base_url=server.base_url, max_retries=0, timeout=5)

    assert answers(model, mode, ["a", "b", "c"]) == ["a", "b", "c"]
    assert server.connections == 1
