"""How to reach the server: one object, read by both transports.

TLS verification, a client certificate, the proxy, a user's own HTTP client,
and the redirect and cookie policies are decided here, once, from the model's
fields and the environment. The `requests` and the `httpx` transport only
translate this object into their library's arguments, so the sync and async
paths cannot disagree (before, each library read its own environment
variables, at its own moment, and followed redirects its own way).

The environment is read when the object is built, on a model's first call:
`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` for the CA bundle, and
`HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` (either case) for the
proxy, read as `requests` reads them (a proxy without a scheme is an HTTP
one; `NO_PROXY` may name networks in CIDR form). A field given to the model
wins over its variable.
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import os
import ssl
import threading
import urllib.request
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from urllib3.exceptions import InsecureRequestWarning

from langchain_dfehub import _fork
from langchain_dfehub._urls import display_url

# The environment variables naming a CA bundle, the first one set wins.
CA_BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

CertFiles = str | tuple[str, str]


@dataclass(frozen=True, eq=False)
class Connection:
    """The connection settings of one model, for one endpoint.

    Attributes:
        verify: `True` (check certificates against the default CA bundle),
            `False` (do not check; unsafe), or the path of a CA bundle file or
            directory.
        cert: A client certificate: one PEM file holding the certificate and
            its key, or a `(certificate, key)` pair of files.
        proxy: The proxy URL for the endpoint, or None to connect directly.
        http_client: A `requests.Session` the user owns, used as it is.
        http_async_client: An `httpx.AsyncClient` the user owns, used as it is.
    """

    verify: bool | str = True
    cert: CertFiles | None = None
    proxy: str | None = field(default=None, repr=False)  # may hold credentials
    http_client: Any = field(default=None, repr=False)
    http_async_client: Any = field(default=None, repr=False)

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for `httpx`, from the same settings `requests` gets.

        Built here rather than left to each library, so both check the same
        certificates: `certifi`'s bundle by default, as `requests` does. Built
        once and shared by every client of these settings: loading a CA
        bundle is the slow part of making a client, and each event loop
        (each `asyncio.run`) makes one.
        """
        if self.verify is False:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif isinstance(self.verify, str):
            if os.path.isdir(self.verify):
                context = ssl.create_default_context(capath=self.verify)
            else:
                context = ssl.create_default_context(cafile=self.verify)
        else:
            import certifi

            context = ssl.create_default_context(cafile=certifi.where())
        if self.cert is not None:
            if isinstance(self.cert, tuple):
                context.load_cert_chain(self.cert[0], self.cert[1])
            else:
                context.load_cert_chain(self.cert)
        return context

    def requests_settings(self) -> dict[str, Any]:
        """Per-call arguments for a `requests.Session` of our own."""
        proxies = {"http": self.proxy, "https": self.proxy} if self.proxy else {}
        return {"verify": self.verify, "cert": self.cert, "proxies": proxies}


def warn_unverified(url: str, stacklevel: int) -> None:
    """Warn, once per model, that `verify=False` leaves `url`'s host unchecked.

    The one warning for both paths: httpx says nothing of an unchecked
    certificate, and urllib3's warning on every request is kept off our
    sync requests (see `_transport`). Its category is urllib3's
    `InsecureRequestWarning`, so a filter a user already has for it (as
    `urllib3.disable_warnings()` sets) covers ours too.
    """
    host = urlsplit(url).hostname or url
    warnings.warn(
        f"verify=False: TLS certificates of {host} (and of an HTTPS proxy) are"
        " not checked, on the sync and the async path, so anyone on the network"
        " path can read and change the traffic. Give verify= the CA bundle that"
        " signed the server's certificate instead.",
        InsecureRequestWarning,
        stacklevel=stacklevel + 1,
    )


# Default settings, without the environment: for requests built by hand.
DEFAULT_CONNECTION = Connection()


def build_connection(
    url: str,
    *,
    verify: bool | str,
    cert: CertFiles | None,
    proxy: str | None,
    http_client: Any = None,
    http_async_client: Any = None,
) -> Connection:
    """Decide the connection settings for `url` from the fields and environment.

    `verify=True` checks against the CA bundle the environment names, else
    the default one; `proxy=None` takes the environment's proxy for `url`,
    and `proxy=""` connects directly whatever the environment says.
    """
    if verify is True:
        verify = _ca_bundle_from_environment(url) or True
    if proxy is None:
        proxy = _proxy_from_environment(url)
    elif proxy:
        proxy = proxy_url(proxy, "proxy=")
    connection = Connection(
        verify=verify,
        cert=cert,
        proxy=proxy or None,
        http_client=http_client,
        http_async_client=http_async_client,
    )
    if isinstance(verify, str) or cert is not None:
        _check_loadable(connection)
    return connection


def _check_loadable(connection: Connection) -> None:
    """Load the CA bundle and client certificate now, on both paths alike.

    Else a file that is not PEM fails each path its own way: a bare
    `ssl.SSLError` on the async path, a certificate failure on the sync one
    (after connecting). The context is kept for the async path's clients.
    """
    try:
        connection.ssl_context  # noqa: B018 - built and cached for its errors
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        msg = (
            f"The CA bundle ({connection.verify!r}) or client certificate"
            f" ({connection.cert!r}) could not be loaded ({reason}): check that"
            " they are PEM files, and that the key matches the certificate."
        )
        raise ValueError(msg) from None


def _ca_bundle_from_environment(url: str) -> str | None:
    """The CA bundle the environment names, checked to exist for an HTTPS url.

    Else each library fails its own way on the first call (a bare `OSError`
    from `requests`, a `FileNotFoundError` with no path from `ssl`).
    """
    for name in CA_BUNDLE_VARIABLES:
        value = os.environ.get(name)
        if value:
            if urlsplit(url).scheme == "https" and not os.path.exists(value):
                msg = (
                    f"{name} names the CA bundle {value!r}, which does not exist:"
                    f" correct or unset {name}, or give verify= a CA bundle."
                )
                raise ValueError(msg)
            return value
    return None


# Proxy schemes both libraries speak (SOCKS needs `requests[socks]` and
# `httpx[socks]` installed).
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def with_scheme(proxy: str) -> str:
    """A proxy URL with its scheme: `http://` when it has none."""
    return proxy if "://" in proxy else f"http://{proxy}"


def proxy_url(proxy: str, source: str) -> str:
    """A proxy URL as both libraries read it, checked once for both paths.

    A proxy without a scheme (`host:3128`, `user:password@host:3128`) is an
    HTTP proxy, as `requests` and httpx take one from the environment; given
    as it is, httpx would refuse it with its password in the message, and
    `urlsplit` would read `user` as its scheme.

    Raises:
        ValueError: naming `source` and the proxy, without its credentials.
    """
    full = with_scheme(proxy)
    parts = urlsplit(full)
    try:
        parts.port  # noqa: B018 - read for its ValueError on a bad port
    except ValueError:
        good = False
    else:
        good = parts.scheme.lower() in PROXY_SCHEMES and bool(parts.hostname)
    if not good:
        schemes = ", ".join(f"{scheme}://" for scheme in PROXY_SCHEMES)
        msg = (
            f"{source} names the proxy {display_url(full)!r}, which is not a"
            f" proxy URL: give scheme://host:port (scheme one of {schemes}),"
            " with user:password@ before the host if the proxy wants them."
        )
        raise ValueError(msg)
    return full


def _proxy_from_environment(url: str) -> str | None:
    """The proxy the `*_PROXY` variables name for `url`, unless `NO_PROXY` says no."""
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    scheme = parts.scheme if proxies.get(parts.scheme) else "all"
    proxy = proxies.get(scheme)
    if not proxy or _bypassed(parts.hostname or "", parts.port, proxies):
        return None
    return proxy_url(proxy, f"{scheme.upper()}_PROXY")


def _bypassed(host: str, port: int | None, proxies: dict[str, str]) -> bool:
    """Whether `NO_PROXY` exempts the host, as `requests` reads it.

    Beside names (`.example.com`, `localhost`) and `*`, which `urllib` knows,
    an address is exempt by a network in CIDR form (`127.0.0.0/8`, `::1/128`),
    as `requests` and `ChatOpenAI` honour: `urllib` reads such an entry as
    a name, which no host has.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        for entry in proxies.get("no", "").split(","):
            try:
                network = ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                continue
            if address in network:
                return True
    named = f"{host}:{port}" if port is not None else host
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    return bool(bypass(named, proxies))


class ConnectionCache:
    """A model's connection settings, built on its first call and kept.

    Both transports read the one object it returns, so they agree, and the
    environment is read once. Other field values (as a `model_copy` may
    have) make new settings.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._connection = DEFAULT_CONNECTION
        self._lock = threading.Lock()
        _fork.track(self)

    def forget_inherited(self) -> list[Any]:
        """In a forked child: a fresh lock, should a thread have held it."""
        self._lock = threading.Lock()
        return []

    def get(
        self,
        url: str,
        *,
        verify: bool | str,
        cert: CertFiles | None,
        proxy: str | None,
        http_client: Any,
        http_async_client: Any,
    ) -> Connection:
        """The settings for these field values, built if they are new."""
        key = (url, verify, cert, proxy, id(http_client), id(http_async_client))
        if key == self._key:
            return self._connection
        with self._lock:
            if key != self._key:
                self._connection = build_connection(
                    url,
                    verify=verify,
                    cert=cert,
                    proxy=proxy,
                    http_client=http_client,
                    http_async_client=http_async_client,
                )
                self._key = key
            return self._connection

    def __deepcopy__(self, memo: dict[int, Any]) -> ConnectionCache:
        return ConnectionCache()  # a lock cannot be copied; rebuilt on use

    def __getstate__(self) -> dict[str, Any]:
        return {}  # the environment is read again where the model lands

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]


class NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Refuse all cookies: each call stands alone, on both paths."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        """Reject every cookie a server sets."""
        return False


def cookie_jar() -> http.cookiejar.CookieJar:
    """A cookie jar that keeps nothing."""
    return http.cookiejar.CookieJar(policy=NoCookies())
