"""The emulator server: routes, replies on the wire, faults, and its thread.

`DfeHubEmulator` runs an asyncio HTTP server on its own event loop in a
daemon thread, so synchronous tests, async tests and the CLI all use the same
server. Everything that waits (latency, chunk delays, stalls) is an
`asyncio.sleep`, never a blocking call, so one slow stream never holds up
another and hundreds of streams run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import chain, islice
from types import TracebackType
from typing import Any, Literal

from langchain_dfehub._gate import forget_gates
from langchain_dfehub._server_profile import forget_profiles

from ._chat_request import DEFAULT_MODEL, InvalidRequest, parse_chat_request
from ._faults import (
    Drop,
    ErrorStatus,
    Fault,
    Malformed,
    Stall,
    Throttle,
    ThrottleForm,
    Truncate,
    fault_from_json,
    throttle_body,
)
from ._flavours import Flavour, flavour_named
from ._http import (
    LAST_CHUNK,
    MAX_HEAD_BYTES,
    BadRequest,
    HttpRequest,
    chunk_frame,
    read_request,
    response_head,
)
from ._rate import Rate, RateWindow, client_ident, rate_throttle
from ._render import (
    DONE_EVENT,
    Identity,
    Sampling,
    StreamEvents,
    render_completion,
    render_stream,
)
from ._replies import compose_reply, with_reasoning

logger = logging.getLogger("langchain_dfehub.testing")

BASE_PATH = "/api/openai/v1"
CONTROL_PATH = "/_emulator/"
_JSON = "application/json"
_EVENT_STREAM = "text/event-stream; charset=utf-8"
# Stream events are sent in frames of about this size when there is no delay.
_FRAME_BYTES = 64 * 1024
_STOP_TIMEOUT = 10.0
_MODEL_CREATED = 1_677_610_602
DEFAULT_CONTEXT = 16385


@dataclass(frozen=True)
class RecordedRequest:
    """A chat request as the emulator received it (header names lower-case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _check_number(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        msg = f"{name} must be a number >= 0, got {value!r}"
        raise ValueError(msg)


@dataclass(frozen=True)
class _Options:
    api_key: str | None
    throttle_every: int
    throttle_wait: float | None
    throttle_as: ThrottleForm
    latency: float
    chunk_delay: float
    flavour: Flavour
    reasoning: bool = False
    context_size: int | None = None
    models: frozenset[str] | None = None
    throttle_rate: Rate | None = None


class _State:
    """What the server thread and the test thread share, behind one lock."""

    def __init__(self, options: _Options) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._recorded: list[RecordedRequest] = []
        self._chat_count = 0
        self._sequence = 0
        rate = options.throttle_rate
        self._window = RateWindow(rate) if rate is not None else None

    def add_faults(self, faults: Iterable[Fault]) -> None:
        with self._lock:
            self._faults.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._recorded.clear()
            self._chat_count = 0
            if self._window is not None:
                self._window.clear()

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._recorded.append(request)

    def recorded(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._recorded)

    def next_fault(self, client: str = "") -> Fault | None:
        """The fault for the next valid chat request: queued, else throttle mode."""
        options = self.options
        with self._lock:
            self._chat_count += 1
            if self._faults:
                return self._faults.popleft()
            if self._window is not None:
                decision = self._window.check(client, time.monotonic())
                return rate_throttle(decision, options.throttle_as)
            every = options.throttle_every
            if every and self._chat_count % every == 0:
                return Throttle(options.throttle_wait, options.throttle_as)
            return None

    def next_identity(self, model: str) -> Identity:
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        return Identity(
            completion_id=f"chatcmpl-{sequence:06d}",
            created=int(time.time()),
            model=model,
            call_id_prefix=f"call_{sequence:06d}_",
        )


def error_body(
    message: str, param: str | None = None, code: str | None = None
) -> bytes:
    """OpenAI's error object."""
    error = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }
    return json.dumps(error).encode()


class _Exchange:
    """Writes one response, remembering whether any of it has been sent."""

    def __init__(self, writer: asyncio.StreamWriter, keep_alive: bool) -> None:
        self.writer = writer
        self.keep_alive = keep_alive
        self.started = False
        self.status = 0

    def _head(self, status: int, headers: Sequence[tuple[str, str]]) -> bytes:
        self.started = True
        self.status = status
        connection = "keep-alive" if self.keep_alive else "close"
        return response_head(status, [*headers, ("connection", connection)])

    async def send(
        self,
        status: int,
        body: bytes,
        content_type: str = _JSON,
        headers: Sequence[tuple[str, str]] = (),
        *,
        length: int | None = None,
    ) -> None:
        """A whole response; `length` may claim more bytes than `body` holds."""
        declared = len(body) if length is None else length
        head = self._head(
            status,
            [
                ("content-type", content_type),
                ("content-length", str(declared)),
                *headers,
            ],
        )
        self.writer.write(head + body)
        await self.writer.drain()

    async def start_stream(self) -> None:
        head = self._head(
            200,
            [
                ("content-type", _EVENT_STREAM),
                ("cache-control", "no-cache"),
                ("transfer-encoding", "chunked"),
            ],
        )
        self.writer.write(head)

    async def write_events(self, events: Iterable[bytes], delay: float) -> None:
        """Send events as chunks: batched when `delay` is 0, else one by one.

        Batches are sent as soon as they fill, while later events are still
        being rendered (see `LazyEvents`).
        """
        writer = self.writer
        if delay <= 0:
            batch: list[bytes] = []
            size = 0
            for event in events:
                batch.append(event)
                size += len(event)
                if size >= _FRAME_BYTES:
                    writer.write(chunk_frame(b"".join(batch)))
                    await writer.drain()
                    batch, size = [], 0
            if batch:
                writer.write(chunk_frame(b"".join(batch)))
            await writer.drain()
            return
        for index, event in enumerate(events):
            if index:
                await asyncio.sleep(delay)
            writer.write(chunk_frame(event))
            await writer.drain()

    async def end_stream(self) -> None:
        self.writer.write(LAST_CHUNK)
        await self.writer.drain()

    async def abort(self) -> None:
        """Flush what was written, then cut the connection without a clean end."""
        transport = self.writer.transport
        self.keep_alive = False
        if self.started:
            transport.set_write_buffer_limits(high=0)
            await self.writer.drain()
        transport.abort()


class _Service:
    """The asyncio HTTP server: connections, routing, answers and faults."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(
            self._serve_connection, host, port, limit=MAX_HEAD_BYTES
        )
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def close(self) -> None:
        """Stop listening, end every connection, and wait for them to finish."""
        if self._server is not None:
            self._server.close()
        while True:
            await asyncio.sleep(0)  # let just-accepted connections register
            tasks = list(self._connections)
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        except asyncio.CancelledError:
            # close() cancels us. Ending normally matters: on Python 3.11 the
            # streams machinery calls task.exception(), which raises for a
            # cancelled task and logs a spurious error.
            pass
        except Exception:
            logger.exception("dfehub emulator: unexpected error on a connection")
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; return whether the connection stays open."""
        try:
            request = await read_request(reader, writer)
        except BadRequest as exc:
            logger.info("malformed request (%s) 400", exc)
            exchange = _Exchange(writer, keep_alive=False)
            await exchange.send(400, error_body(f"Bad request: {exc}"))
            return False
        if request is None:
            return False
        began = time.perf_counter()
        exchange = _Exchange(writer, request.keep_alive)
        try:
            await self._route(request, exchange)
        except Exception:
            logger.exception("dfehub emulator: error answering %s", request.path)
            if exchange.started:
                await exchange.abort()
                return False
            exchange.keep_alive = False
            await exchange.send(500, error_body("The emulator failed; see its log."))
        elapsed = time.perf_counter() - began
        status = exchange.status or "-"
        logger.info("%s %s %s %.3fs", request.method, request.path, status, elapsed)
        return exchange.keep_alive

    async def _route(self, request: HttpRequest, exchange: _Exchange) -> None:
        path = request.path
        if path.startswith(CONTROL_PATH):
            await self._control(request, exchange)
        elif path.endswith("/chat/completions"):
            if await self._admit(request, exchange, "POST", record=True):
                await self._chat(request, exchange)
        elif path.endswith("/models"):
            if await self._admit(request, exchange, "GET", record=False):
                await self._models(exchange)
        else:
            message = f"Invalid URL ({request.method} {path})"
            await exchange.send(404, error_body(message))

    async def _admit(
        self, request: HttpRequest, exchange: _Exchange, method: str, *, record: bool
    ) -> bool:
        """Method, recording, latency and key check shared by the API routes."""
        if request.method != method:
            await _method_not_allowed(request, exchange, method)
            return False
        if record:
            body = _parse_json(request.body)
            recorded = RecordedRequest(
                request.method,
                request.path,
                dict(request.headers),
                None if body is _NOT_JSON else body,
            )
            self._state.record(recorded)
        options = self._state.options
        if options.latency:
            await asyncio.sleep(options.latency)
        refusal = self._authorisation_error(request)
        if refusal is not None:
            await exchange.send(401, refusal)
            return False
        return True

    def _authorisation_error(self, request: HttpRequest) -> bytes | None:
        key = self._state.options.api_key
        if key is None:
            return None
        header = request.headers.get("authorization")
        if header is None:
            return error_body(
                "You didn't provide an API key. You need to provide your API key "
                "in an Authorization header using Bearer auth (i.e. "
                "Authorization: Bearer YOUR_KEY)."
            )
        if hmac.compare_digest(header.encode(), f"Bearer {key}".encode()):
            return None
        return error_body("Incorrect API key provided.", code="invalid_api_key")

    async def _models(self, exchange: _Exchange) -> None:
        options = self._state.options
        names = [options.flavour.model_alias or DEFAULT_MODEL]
        if options.models and not options.flavour.model_alias:
            names = sorted(options.models)
        # The context size a server reports: the limit set, else the
        # default model's (gpt-3.5-turbo's 16,385 tokens).
        context = options.context_size or DEFAULT_CONTEXT
        models = {
            "object": "list",
            "data": [
                options.flavour.model_entry(name, _MODEL_CREATED, context)
                for name in names
            ],
        }
        await exchange.send(200, json.dumps(models).encode())

    async def _chat(self, request: HttpRequest, exchange: _Exchange) -> None:
        body = _parse_json(request.body)
        if body is _NOT_JSON:
            message = (
                "We could not parse the JSON body of your request. The API "
                "expects a JSON payload."
            )
            await exchange.send(400, error_body(message))
            return
        options = self._state.options
        flavour = options.flavour
        try:
            chat = parse_chat_request(body)
        except InvalidRequest as exc:
            error = flavour.error(400, exc.message, param=exc.param)
            await exchange.send(400, json.dumps(error).encode())
            return
        if options.models is not None and chat.model not in options.models:
            unknown = flavour.unknown_model_error(chat.model)
            if unknown is not None:
                await exchange.send(unknown[0], json.dumps(unknown[1]).encode())
                return
        if chat.n != 1 and flavour.single_choice:
            status, error = flavour.choices_error()
            await exchange.send(status, json.dumps(error).encode())
            return
        schema_format = chat.response_format is not None and (
            chat.response_format.kind == "json_schema"
        )
        if schema_format and flavour.json_schema_refusal is not None:
            error = flavour.error(
                400, flavour.json_schema_refusal, code="invalid_request_error"
            )
            await exchange.send(400, json.dumps(error).encode())
            return
        if chat.forced_tool is not None and not flavour.honours_forced_tool:
            chat = replace(chat, tool_choice="auto", forced_tool=None)
        reply = compose_reply(chat)
        context = options.context_size
        if context is not None and reply.prompt_tokens > context:
            error = flavour.overflow_error(reply.prompt_tokens, context)
            await exchange.send(400, json.dumps(error).encode())
            return
        if options.reasoning and flavour.reasoning_field:
            reply = with_reasoning(reply)
        peer = exchange.writer.get_extra_info("peername")
        fault = self._state.next_fault(client_ident(request.headers, peer))
        identity = self._state.next_identity(flavour.model_alias or chat.model)
        sampling = Sampling(choices=chat.n, logprobs=chat.logprobs)
        if chat.stream:
            events = render_stream(
                reply,
                identity,
                include_usage=chat.include_usage,
                flavour=flavour,
                sampling=sampling,
            )
            await self._stream(exchange, events, fault)
        else:
            body = render_completion(reply, identity, flavour, sampling)
            await self._complete(exchange, body, fault)

    async def _complete(
        self, exchange: _Exchange, body: bytes, fault: Fault | None
    ) -> None:
        """A non-streaming answer; faults counted in chunks act on its JSON body."""
        if fault is not None and await self._refuse(exchange, fault):
            return
        if isinstance(fault, Stall):
            await asyncio.sleep(fault.seconds)
        elif isinstance(fault, Drop):
            if fault.after_chunks is not None:  # half the body, then the cut
                await exchange.send(200, body[: len(body) // 2], length=len(body))
            await exchange.abort()
            return
        elif isinstance(fault, Truncate) and not fault.finish:
            body = body[: len(body) // 2]  # cut JSON, cleanly framed
        elif isinstance(fault, Malformed):
            body = fault.line.encode()
        elif isinstance(fault, Throttle):  # as_="stream": the detail is the body
            body = throttle_body(fault.wait).encode()
        await exchange.send(200, body)

    async def _refuse(self, exchange: _Exchange, fault: Fault) -> bool:
        """Faults answered instead of any response: a 429 or an error status."""
        if isinstance(fault, Throttle) and fault.as_ == "status":
            headers = [("retry-after", fault.retry_after)] if fault.retry_after else []
            await exchange.send(
                429, throttle_body(fault.wait).encode(), headers=headers
            )
            return True
        if isinstance(fault, ErrorStatus):
            reserved = {
                "content-type",
                "content-length",
                "transfer-encoding",
                "connection",
            }
            headers = [
                (name, value)
                for name, value in fault.headers.items()
                if name.lower() not in reserved
            ]
            await exchange.send(
                fault.status, fault.body.encode(), fault.content_type, headers
            )
            return True
        return False

    async def _stream(
        self, exchange: _Exchange, events: StreamEvents, fault: Fault | None
    ) -> None:
        """A streaming answer, played through the fault if there is one."""
        if fault is not None and await self._refuse(exchange, fault):
            return
        if isinstance(fault, Drop) and fault.after_chunks is None:
            await exchange.abort()
            return
        if isinstance(fault, Stall) and fault.after_chunks is None:
            await asyncio.sleep(fault.seconds)
            fault = None
        answer = events.answer
        # Every fault left here counts answer chunks (Stall(None) became None).
        after = getattr(fault, "after_chunks", 0) or 0
        before = [events.role, *answer[:after]]
        # The rest is rendered as it is sent, as a server generates its answer.
        tail = chain(islice(answer, after, None), events.ending(), [DONE_EVENT])
        delay = self._state.options.chunk_delay
        await exchange.start_stream()
        if isinstance(fault, Throttle):
            detail = (throttle_body(fault.wait) + "\n\n").encode()
            await exchange.write_events([*before, detail], delay)
        elif isinstance(fault, Drop):
            await exchange.write_events(before, delay)
            await exchange.abort()
            return
        elif isinstance(fault, Stall):
            await exchange.write_events(before, delay)
            await asyncio.sleep(fault.seconds)
            await exchange.write_events(tail, delay)
        elif isinstance(fault, Malformed):
            line = (fault.line + "\n\n").encode()
            await exchange.write_events(chain(before, [line], tail), delay)
        elif isinstance(fault, Truncate):
            ending = events.ending() if fault.finish else []
            await exchange.write_events([*before, *ending], delay)
        else:
            await exchange.write_events(chain(before, tail), delay)
        await exchange.end_stream()

    async def _control(self, request: HttpRequest, exchange: _Exchange) -> None:
        """The out-of-process control surface for users of the CLI."""
        state = self._state
        routes = {"faults": "POST", "requests": "GET", "reset": "POST"}
        name = request.path[len(CONTROL_PATH) :]
        method = routes.get(name)
        if method is None:
            message = f"Invalid URL ({request.method} {request.path})"
            await exchange.send(404, error_body(message))
            return
        if request.method != method:
            await _method_not_allowed(request, exchange, method)
            return
        if name == "requests":
            bodies = [recorded.body for recorded in state.recorded()]
            answer = {"count": len(bodies), "bodies": bodies}
        elif name == "reset":
            state.reset()
            answer = {"reset": True}
        else:
            items = _parse_json(request.body)
            if isinstance(items, dict):
                items = [items]
            try:
                if not isinstance(items, list):
                    msg = "send a JSON list of faults"
                    raise ValueError(msg)
                faults = [fault_from_json(item) for item in items]
            except ValueError as exc:
                await exchange.send(400, error_body(str(exc)))
                return
            state.add_faults(faults)
            answer = {"queued": len(faults)}
        await exchange.send(200, json.dumps(answer).encode())


_NOT_JSON: Any = object()


async def _method_not_allowed(
    request: HttpRequest, exchange: _Exchange, method: str
) -> None:
    message = (
        f"Method {request.method} is not allowed for {request.path}; use {method}."
    )
    await exchange.send(405, error_body(message), headers=[("allow", method)])


def _parse_json(body: bytes) -> Any:
    """The parsed body, None for an empty body, `_NOT_JSON` if it does not parse."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON


class DfeHubEmulator:
    """A local stand-in for the DfeHub chat service (OpenAI wire format).

    Start it (`start()` or `with DfeHubEmulator() as emulator:`) and point a
    client at `emulator.base_url`. Answers follow documented, deterministic
    rules (see the README); `add_faults` scripts failures, `requests` shows
    what clients sent.

    Args:
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one.
        api_key: When set, requests must carry `Authorization: Bearer <key>`.
        throttle_every: Throttle every Nth valid chat request (0: never).
        throttle_wait: The wait written into the throttle text (None: no number).
        throttle_as: Throttle with an HTTP 429 ("status") or inside the stream.
        latency: Seconds before each API response starts.
        chunk_delay: Seconds between streamed chunks.
        flavour: Which server's habits to copy: "openai" (the default),
            "llama.cpp", "vllm" or "deepseek" (see the README).
        reasoning: Whether a flavour with a reasoning field sends thinking
            before each answer (a reasoning model, or llama.cpp started with
            `--reasoning-format deepseek`).
        context_size: Prompts of more tokens (the emulator's count) get the
            flavour's context-overflow error; None: no limit.
        models: The models served; a request for another gets the flavour's
            unknown-model error (llama.cpp never checks). None: any model.
        throttle_rate: Throttle like Django REST Framework's `AnonRateThrottle`
            at this rate per client (`"10/s"`, `"3/min"`); None: off. Not
            together with `throttle_every`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        throttle_every: int = 0,
        throttle_wait: float | None = 1.0,
        throttle_as: Literal["status", "stream"] = "status",
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        flavour: str = "openai",
        reasoning: bool = False,
        context_size: int | None = None,
        models: Iterable[str] | None = None,
        throttle_rate: str | None = None,
    ) -> None:
        if isinstance(throttle_every, bool) or not isinstance(throttle_every, int):
            msg = f"throttle_every must be an int, got {throttle_every!r}"
            raise TypeError(msg)
        if throttle_every < 0:
            msg = "throttle_every must be >= 0"
            raise ValueError(msg)
        Throttle(throttle_wait, throttle_as)  # checks both
        rate = None if throttle_rate is None else Rate.parse(throttle_rate)
        if rate is not None and throttle_every:
            msg = "throttle_every and throttle_rate are two throttle modes; set one"
            raise ValueError(msg)
        _check_number("latency", latency)
        _check_number("chunk_delay", chunk_delay)
        _check_number("context_size", context_size, optional=True)
        self._host = host
        self._port = port
        self._state = _State(
            _Options(
                api_key,
                throttle_every,
                throttle_wait,
                throttle_as,
                latency,
                chunk_delay,
                flavour=flavour_named(flavour),
                reasoning=bool(reasoning),
                context_size=context_size,
                models=None if models is None else frozenset(models),
                throttle_rate=rate,
            )
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._address: tuple[str, int] | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._address else "not started"
        return f"<DfeHubEmulator {where}>"

    @property
    def base_url(self) -> str:
        """The URL to give a client, e.g. `http://127.0.0.1:PORT/api/openai/v1`."""
        if self._address is None:
            msg = "the emulator is not running; call start() first"
            raise RuntimeError(msg)
        host, port = self._address
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}{BASE_PATH}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the chat requests received so far, oldest first."""
        return self._state.recorded()

    def add_faults(self, *faults: Fault) -> None:
        """Queue faults; each is used by exactly one later valid chat request."""
        fault_types = (Throttle, ErrorStatus, Drop, Stall, Malformed, Truncate)
        strays = [fault for fault in faults if type(fault) not in fault_types]
        if strays:
            msg = f"not a fault: {strays[0]!r}"
            raise TypeError(msg)
        self._state.add_faults(faults)

    def reset(self) -> None:
        """Forget queued faults, recorded requests and what the throttle counted.

        ChatDfeHub's throttle gates for this emulator's URL, in this process,
        are forgotten too: they remember a throttle that no longer holds.
        """
        self._state.reset()
        if self._address is not None:
            forget_gates(self.base_url)
            forget_profiles(self.base_url)

    def start(self) -> DfeHubEmulator:
        """Start serving in a background thread; return once it listens."""
        if self._thread is not None:
            msg = "the emulator is already running"
            raise RuntimeError(msg)
        ready = threading.Event()
        failures: list[Exception] = []
        thread = threading.Thread(
            target=self._run,
            args=(ready, failures),
            name="dfehub-emulator",
            daemon=True,
        )
        thread.start()
        ready.wait()
        if failures:
            thread.join()
            raise failures[0]
        self._thread = thread
        # A port an earlier server used may come back: a gate that remembers
        # that server's throttle must not hold this one's calls.
        forget_gates(self.base_url)
        forget_profiles(self.base_url)
        return self

    def stop(self) -> None:
        """Close every connection, stop the server and join its thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has just ended
                loop.call_soon_threadsafe(stopping.set)
        thread.join(_STOP_TIMEOUT)
        self._thread = None
        self._loop = None
        self._stopping = None
        self._address = None

    def __enter__(self) -> DfeHubEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event, failures: list[Exception]) -> None:
        try:
            asyncio.run(self._serve(ready))
        except Exception as exc:
            if ready.is_set():
                logger.exception("dfehub emulator: the server failed")
            else:
                failures.append(exc)  # raised again by start()
        finally:
            ready.set()

    async def _serve(self, ready: threading.Event) -> None:
        service = _Service(self._state)
        self._address = await service.start(self._host, self._port)
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            await service.close()
