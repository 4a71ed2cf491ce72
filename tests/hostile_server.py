"""A small hostile HTTP server for tests, on 127.0.0.1.

The emulator speaks the protocol well, even when told to fail; this server
lets a test write the reply byte by byte: trickles, endless lines, a redirect
to elsewhere, TLS with a self-signed certificate.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable

HEAD_END = b"\r\n\r\n"


class HostileServer:
    """A raw HTTP server on 127.0.0.1 whose replies a test writes byte by byte.

    Each connection serves one request: the server reads the request head and
    body, records them, and hands the socket to `reply`, then closes it. Every
    socket has a timeout, so a test cannot hang on it.
    """

    def __init__(
        self,
        reply: Callable[[socket.socket, bytes], None],
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.connections = 0
        self._tls = tls
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
            request = _read_request(conn)
            self.requests.append(request)
            self.reply(conn, request)
        except (OSError, ssl.SSLError):
            pass  # the client went away, or refused our certificate
        finally:
            conn.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while HEAD_END not in data:
        received = conn.recv(65536)
        if not received:
            return data
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
    return head + HEAD_END + body


def http_head(status: str, content_type: str, extra: str = "") -> bytes:
    """A response head for a body that ends when the connection closes."""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}"
        "Connection: close\r\n\r\n"
    ).encode()
