"""The sync transport's connections: urllib3 pools that read replies our way.

`http.client` (under urllib3, under `requests`) skips only a `100 Continue`
before the reply: a `102 Processing` or `103 Early Hints` is taken as the
final reply, with an empty body, and the connection goes back to the pool
with the real reply unread, for the next call to receive. Our connections
read replies with `FinalResponse`, which skips every interim reply, refuses
the broken heads that the async path's h11 refuses (`head_problem`), has a
chunked body's framing checked as urllib3 reads it (`_chunk_framing`), and hands
its socket to the call's deadline watch (see `_watchdog`) before the status
line is read, so that a server trickling its headers is cut at the deadline.

`requests` knows nothing of this: the sessions we make mount `DfeHubAdapter`,
whose pools (direct or through a proxy) use these connections. A user's own
session keeps its own; the transport then refuses an interim reply it
receives as final (never passing it on), and the deadline bounds its waits.

`DfeHubAdapter` also skips per-call work that cannot change anything for
these sessions, through the hooks `HTTPAdapter` offers its subclasses: the
pool and the path of a URL are looked up once (the pool again only when it
was closed), and a reply's cookies are not read (the sessions keep none).
"""

from __future__ import annotations

import functools
import http.client
import socket
import threading
from collections.abc import Mapping
from typing import Any

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from requests.utils import get_encoding_from_headers
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

from langchain_dfehub._chunk_framing import ChunkFraming
from langchain_dfehub._head_lines import BrokenReply, read_fields, read_status
from langchain_dfehub._stream_state import head_problem
from langchain_dfehub._watchdog import WATCHDOG, Watch

# A chunked body's end: the last (empty) chunk, with no trailer.
_LAST_CHUNK = b"0\r\n\r\n"

_current = threading.local()


class watching:  # noqa: N801 - used as a `with` block, like a function
    """Within the block, replies this thread reads are cut at `watch`'s deadline."""

    __slots__ = ("_watch",)

    def __init__(self, watch: Watch | None) -> None:
        self._watch = watch

    def __enter__(self) -> None:
        _current.watch = self._watch

    def __exit__(self, *exc_info: object) -> None:
        _current.watch = None


class FinalResponse(http.client.HTTPResponse):
    """`http.client`'s response, past every interim (1xx) reply, on a watch."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.checked_body: CheckedBody | None = None  # a chunked body's reader
        self._asks_head = kwargs.get("method") == "HEAD"  # a reply without body
        self._sock: socket.socket | None = sock
        self._watch: Watch | None = getattr(_current, "watch", None)
        if self._watch is not None:
            # The plain socket's own shutdown: an `SSLSocket`'s would drop its
            # TLS state under the reading thread.
            cut = functools.partial(socket.socket.shutdown, sock, socket.SHUT_RDWR)
            WATCHDOG.attach(self._watch, cut)

    def _read_status(self) -> tuple[str, int, str]:
        # As many as come: h11 (the async path) has no limit either, and the
        # deadline bounds a server that sends nothing else.
        while True:
            version, status, reason = read_status(self.fp.readline)
            # 101 switches protocols, and is final.
            if not 100 <= status < 200 or status == 101:
                return version, status, reason
            read_fields(self.fp.readline)  # the interim reply's: unused

    def begin(self) -> None:
        """Read the status line and headers; refuse a head h11 would refuse.

        The head is read by `read_fields`, not by `http.client`'s email
        parser; what `begin` sets for `http.client` and urllib3 is the same.
        """
        try:
            version, status, reason = self._read_status()
            if not version.startswith("HTTP/1."):
                raise http.client.UnknownProtocol(version)
            fields = read_fields(self.fp.readline)
            problem = head_problem(version, reason, fields)
            if problem is not None:
                raise BrokenReply(problem)
        except (BrokenReply, http.client.UnknownProtocol):
            self._close_conn()  # and off the watch
            raise
        self.code = self.status = status
        self.reason = reason.strip()
        self.version = 10 if version == "HTTP/1.0" else 11
        message = http.client.HTTPMessage()
        length: int | None = None
        self.chunked = False
        connection: list[str] = []  # the Connection tokens, lower case
        for name, value in fields:
            message.set_raw(name, value)
            lowered = name.lower()
            if lowered == "content-length":  # one number: `head_problem`
                length = int(value.partition(",")[0])
            elif lowered == "transfer-encoding":  # chunked: `head_problem`
                self.chunked = True
            elif lowered == "connection" or lowered == "proxy-connection":
                connection.extend(token.strip() for token in value.lower().split(","))
            elif lowered == "keep-alive":
                connection.append("keep-alive")
        self.headers = self.msg = message
        self.chunk_left = None
        if self.chunked:
            length = None
        if status in (204, 304) or status < 200 or self._asks_head:
            length = 0  # a reply that has no body, whatever it says
        self.length = length
        if "close" in connection:
            self.will_close = True
        elif self.version == 11:  # HTTP/1.1 keeps a connection unless told
            self.will_close = length is None and not self.chunked
        else:  # HTTP/1.0 closes one unless told
            self.will_close = "keep-alive" not in connection or (
                length is None and not self.chunked
            )
        if self.chunked:
            self.checked_body = CheckedBody(self.fp)
            self.fp = self.checked_body  # type: ignore[assignment]

    def ends_here(self) -> bool:
        """Whether the body's end is read, or received and waiting to be.

        Looks without waiting: the socket is made non-blocking for one peek
        at what is buffered. Only a chunked body's last chunk with no
        trailer counts; anything else is not known to end soon.
        """
        fp: Any = self.fp
        if fp is None:
            return True  # read to its end
        if not self.chunked or self._sock is None:
            return False
        timeout = self._sock.gettimeout()
        try:
            self._sock.settimeout(0.0)
            ahead = fp.peek(len(_LAST_CHUNK))
        except OSError:  # nothing buffered (TLS says "want read"), or gone
            return False
        finally:
            self._sock.settimeout(timeout)
        return bytes(ahead).startswith(_LAST_CHUNK)

    def _close_conn(self) -> None:
        # The reply is read (or abandoned): the connection may now go back to
        # the pool, where the watch must no longer reach its socket.
        if self._watch is not None:
            WATCHDOG.detach(self._watch)
            self._watch = None
        super()._close_conn()  # type: ignore[misc]


class CheckedBody:
    """A reply's file, whose chunked body `ChunkFraming` checks as it is read.

    urllib3 reads the chunk framing through `readline` and `read`; the checks
    see the same bytes first, so a framing urllib3 would take leniently is
    refused as the async path refuses it. A body that ends before its last
    chunk was cut (`IncompleteRead`), not broken.
    """

    def __init__(self, fp: Any) -> None:
        self._fp = fp
        self._framing = ChunkFraming(keep_unread=True)

    def arrived_unread(self) -> bytes:
        """The data of a chunk cut short that came before the cut, if any.

        Nothing once the framing is broken: that is refused, as on the async
        path, before the data it came with is handed over.
        """
        framing = self._framing
        if framing.problem is not None or framing.unread is None:
            return b""
        return bytes(framing.unread)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)  # peek, close, flush...: unchecked

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._fp.readline(limit)
        self._check(line, ended=not line.endswith(b"\n") and len(line) != limit)
        return line

    def read(self, size: int | None = -1) -> bytes:
        data: bytes = self._fp.read(size)
        wanted = size is not None and size >= 0
        self._check(data, ended=not wanted or len(data) < (size or 0))
        return data

    def read1(self, size: int = -1) -> bytes:
        data: bytes = self._fp.read1(size)
        self._check(data, ended=not data and size != 0)
        return data

    def readinto(self, buffer: Any) -> int:
        count: int = self._fp.readinto(buffer)
        self._check(bytes(memoryview(buffer)[:count]), ended=count < len(buffer))
        return count

    def _check(self, data: bytes, *, ended: bool) -> None:
        problem = self._framing.feed(data)
        if problem is not None:
            raise BrokenReply(problem)
        if ended and not self._framing.complete:
            raise http.client.IncompleteRead(data)


# A body up to this size goes out in one send with the request's head.
_JOINED_BODY = 64 * 1024


class _HeadWithBody:
    """Sends a request's head and a small body in one write, not two.

    `http.client` writes the head as soon as it is complete and the body
    after it: on a local link each write wakes the server, which reads the
    head, finds no body yet and sleeps again, and the request costs two
    wake-ups. A larger body still follows in writes of its own.
    """

    _holding = False
    _head: bytes | None = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._holding = True
        try:
            super().request(*args, **kwargs)  # type: ignore[misc]
        except BaseException:
            self._head = None  # the connection is dropped; nothing to send
            raise
        finally:
            self._holding = False
        head, self._head = self._head, None
        if head is not None:  # no body followed
            super().send(head)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        if self._holding:
            if self._head is None and isinstance(data, bytes):
                self._head = data
                return
            self._holding = False
            head, self._head = self._head, None
            if head is not None:
                if isinstance(data, bytes) and len(data) <= _JOINED_BODY:
                    data = head + data
                else:
                    super().send(head)  # type: ignore[misc]
        super().send(data)  # type: ignore[misc]


class _Connection(_HeadWithBody, HTTPConnection):
    response_class = FinalResponse


class _TLSConnection(_HeadWithBody, HTTPSConnection):
    response_class = FinalResponse


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


class _UncheckedTLSPool(_TLSPool):
    """A pool for `verify=False` that does not warn on every request.

    The model warned once when it was built (`warn_unverified`), as the
    async path does; urllib3 would add an `InsecureRequestWarning` per
    request. Left out here, in these pools only, rather than by a warnings
    filter, which is process-wide (and not thread-safe to set per call), or
    by `urllib3.disable_warnings()`, which would silence the user's own code.
    """

    def _validate_conn(self, conn: Any) -> None:
        # urllib3's own, but for the warning: connect early, as it does.
        super(HTTPSConnectionPool, self)._validate_conn(conn)
        if getattr(conn, "sock", None) is None:  # `is_closed` in urllib3 2
            conn.connect()


# Lookups kept per adapter: a model calls one URL, a process a few.
_KEPT_LOOKUPS = 64


class DfeHubAdapter(HTTPAdapter):
    """An adapter whose pools, direct or through a proxy, are ours."""

    def __init__(self, *, unchecked: bool, **kwargs: Any) -> None:
        self._unchecked = unchecked
        self._pools: dict[tuple[Any, ...], Any] = {}
        self._paths: dict[tuple[Any, ...], str] = {}
        # Requests' checked headers per set sent (see `_sync_send.prepare`).
        self.kept_headers: dict[Any, Any] = {}
        super().__init__(**kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()  # type: ignore[assignment]
        state["_unchecked"] = self._unchecked
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._pools = {}
        self._paths = {}
        self.kept_headers = {}
        super().__setstate__(state)  # type: ignore[misc]  # in requests, not its stubs

    def get_connection_with_tls_context(
        self,
        request: PreparedRequest,
        verify: Any,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        """The pool `requests` would pick, looked up once per URL and settings.

        Looked up again after the adapter's `close` (which lets every pool
        go), or once the pool itself is closed.
        """
        key = (request.url, verify, cert, _proxies_key(proxies))
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:
            pool = super().get_connection_with_tls_context(
                request, verify, proxies=proxies, cert=cert
            )
            keep(self._pools, key, pool)
        return pool

    def request_url(
        self, request: PreparedRequest, proxies: Mapping[str, str] | None
    ) -> str:
        """What `requests` sends as the request's target, once per URL."""
        key = (request.url, _proxies_key(proxies))
        path = self._paths.get(key)
        if path is None:
            path = super().request_url(request, proxies)
            keep(self._paths, key, path)
        return path

    def build_response(self, req: PreparedRequest, resp: Any) -> Response:
        """`requests`' response, without reading cookies: our sessions keep none.

        Its headers are urllib3's, not a copy: already a case-insensitive
        mapping, which the transport only reads.
        """
        response = Response()
        response.status_code = resp.status
        response.headers = resp.headers
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url or ""
        response.request = req
        response.connection = self
        return response

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Make urllib3's pool manager, with our pools."""
        super().init_poolmanager(*args, **kwargs)
        self._use_our_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        """The proxy's pool manager, with our pools."""
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        self._use_our_pools(manager)
        return manager

    def close(self) -> None:
        """Close every pool; the next call looks its pool up again."""
        self._pools.clear()
        super().close()

    def _use_our_pools(self, manager: PoolManager) -> None:
        classes = dict(manager.pool_classes_by_scheme)
        if classes.get("http") is HTTPConnectionPool:  # a SOCKS manager keeps its own
            classes["http"] = _Pool
        if classes.get("https") is HTTPSConnectionPool:
            classes["https"] = _UncheckedTLSPool if self._unchecked else _TLSPool
        manager.pool_classes_by_scheme = classes


def _proxies_key(proxies: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(proxies.items())) if proxies else ()


def keep(lookups: dict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any) -> None:
    if len(lookups) >= _KEPT_LOOKUPS:
        lookups.clear()
    lookups[key] = value
