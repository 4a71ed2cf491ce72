"""A small hostile HTTP server for tests, on 127.0.0.1.

The emulator speaks the protocol well, even when told to fail; this server
lets a test write the reply byte by byte: trickles, endless lines, a redirect
to elsewhere, TLS with a self-signed certificate.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable

HEAD_END = b"\r\n\r\n"


class HostileServer:
    """A raw HTTP server on 127.0.0.1 whose replies a test writes byte by byte.

    Each connection serves one request: the server reads the request head and
    body, records them, and hands the socket to `reply`, then closes it. With
    `keep_alive=True` it serves request after request on one connection, until
    the client closes it or `reply` raises. Every socket has a timeout, so a
    test cannot hang on it.
    """

    def __init__(
        self,
        reply: Callable[[socket.socket, bytes], None],
        *,
        tls: ssl.SSLContext | None = None,
        keep_alive: bool = False,
    ) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.connections = 0
        self._tls = tls
        self._keep_alive = keep_alive
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/openai/v1"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            pending = b""
            while True:
                request, pending = _read_request(conn, pending)
                if not request:
                    break  # the client closed the connection
                self.requests.append(request)
                self.reply(conn, request)
                if not self._keep_alive:
                    break
        except (OSError, ssl.SSLError):
            pass  # the client went away, or refused our certificate
        finally:
            conn.close()


def _read_request(conn: socket.socket, data: bytes = b"") -> tuple[bytes, bytes]:
    """One request from the connection, and what arrived after it."""
    while HEAD_END not in data:
        received = conn.recv(65536)
        if not received:
            return b"", b""
        data += received
    head, _, body = data.partition(HEAD_END)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        received = conn.recv(65536)
        if not received:
            break
        body += received
    return head + HEAD_END + body[:length], body[length:]


def wait_for_hangup(conn: socket.socket, seconds: float = 20.0) -> bool:
    """Send nothing until the client hangs up (True) or `seconds` pass (False)."""
    conn.settimeout(seconds)
    try:
        while conn.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        pass  # reset: hung up too
    return True


def prompt_of(request: bytes) -> str:
    """The last message's text in a chat-completions request."""
    body = json.loads(request.partition(HEAD_END)[2])
    return str(body["messages"][-1]["content"])


def is_streaming(request: bytes) -> bool:
    return bool(json.loads(request.partition(HEAD_END)[2]).get("stream"))


def completion(text: str) -> bytes:
    """A whole `chat.completion` body answering `text`."""
    return json.dumps(
        {
            "id": "c",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
    ).encode()


def sse_answer(text: str) -> bytes:
    """A whole event stream answering `text`, `[DONE]` included."""
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    events = b"".join(
        b"data: "
        + json.dumps(
            {"id": "c", "object": "chat.completion.chunk", "model": "m", **c}
        ).encode()
        + b"\n\n"
        for c in chunks
    )
    return events + b"data: [DONE]\n\n"


def answer_to(request: bytes) -> tuple[str, bytes]:
    """The content type and body of a good answer to `request`: its prompt."""
    text = prompt_of(request)
    if is_streaming(request):
        return "text/event-stream", sse_answer(text)
    return "application/json", completion(text)


def framed(status: str, content_type: str, body: bytes, extra: str = "") -> bytes:
    """A whole keep-alive reply, its body delimited by Content-Length."""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def chunked(body: bytes) -> bytes:
    """`body` as one chunk of a chunked body."""
    return f"{len(body):x}\r\n".encode() + body + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"


def http_head(status: str, content_type: str, extra: str = "") -> bytes:
    """A response head for a body that ends when the connection closes."""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}"
        "Connection: close\r\n\r\n"
    ).encode()
