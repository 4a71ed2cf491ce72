"""Checks of a model's settings, made when the model is built.

A bad setting found at construction is one clear `ValueError` at the line
that made it; found at the first call it was a failure that looked like the
server's (a header with a line break reported as "could not reach", a NaN
timeout as a raw `ValueError` from the socket layer, an infinite wait as a
sleep that never ends).
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import SecretStr

from langchain_dfehub._connection import with_scheme

_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")
_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")


Headers = Mapping[str, str | SecretStr]

# Words of a header name that make its value a credential: `Authorization`,
# `X-Api-Key`, `Cookie`, `X-Auth-Token`, `Ocp-Apim-Subscription-Key`...
_CREDENTIAL_WORDS = frozenset(
    {
        "auth",
        "authorization",
        "key",
        "apikey",
        "token",
        "cookie",
        "secret",
        "password",
        "passwd",
        "credential",
        "credentials",
        "session",
        "signature",
    }
)


def is_credential_header(name: str) -> bool:
    """Whether a header's value is a credential, judged by the header's name."""
    words = re.split(r"[^a-z0-9]+", name.lower())
    return any(
        word in _CREDENTIAL_WORDS or word.endswith(("key", "token")) for word in words
    )


def hide_credential_headers(
    headers: Headers | None,
) -> dict[str, str | SecretStr] | None:
    """The headers with each credential's value a `SecretStr`, shown nowhere.

    A credential in `default_headers` is as secret as the key: the refusal
    of a secret-like argument recommends putting one there. A `None` value
    (a secret `load` did not find) leaves the header out, as a key not found
    leaves `api_key` unset.
    """
    if headers is None:
        return None
    return {
        name: SecretStr(value)
        if isinstance(value, str) and is_credential_header(name)
        else value
        for name, value in headers.items()
        if value is not None
    }


def header_values(headers: Headers | None) -> dict[str, str]:
    """The headers as sent: every value in clear."""
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in (headers or {}).items()
    }


def header_variable(name: str) -> str:
    """The variable an unpickled model reads a credential header from.

    `X-Api-Key` is read from `DFEHUB_HEADER_X_API_KEY`.
    """
    return "DFEHUB_HEADER_" + re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


def check_headers(headers: Headers | None) -> None:
    """Refuse header names or values that would split the HTTP request.

    Raises:
        ValueError: naming the header, never printing its value.
    """
    for name, value in header_values(headers).items():
        if any(char in name + value for char in _FORBIDDEN_IN_HEADERS):
            msg = (
                f"default_headers[{name!r}] contains a line break or NUL, which"
                " HTTP headers cannot carry; remove it."
            )
            raise ValueError(msg)


def check_json_numbers(value: Any, name: str) -> None:
    """Refuse NaN or infinity anywhere in `value`, a part of the request body.

    JSON has no such numbers: Python would send `NaN`, which servers reject.

    Raises:
        ValueError: naming the field and where in it the number is.
    """
    for path, number in _floats(value, name):
        if not math.isfinite(number):
            msg = (
                f"{path} is NaN or infinite, which JSON cannot carry; give a"
                " finite number."
            )
            raise ValueError(msg)


def _floats(value: Any, path: str) -> list[tuple[str, float]]:
    if isinstance(value, float):
        return [(path, value)]
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return []
    return [found for key, item in items for found in _floats(item, f"{path}[{key!r}]")]


def check_key(key: str) -> None:
    """Refuse an API key that cannot be sent in a header (without showing it)."""
    if any(char in key for char in _FORBIDDEN_IN_HEADERS):
        msg = (
            "api_key (or DFEHUB_API_KEY) contains a line break or NUL, which an"
            " HTTP header cannot carry; check for a stray newline."
        )
        raise ValueError(msg)


def check_files(verify: bool | str, cert: str | tuple[str, str] | None) -> None:
    """Refuse a CA bundle or client certificate file that does not exist."""
    named = [("verify", verify)] if isinstance(verify, str) else []
    if isinstance(cert, tuple):
        named += [("cert", path) for path in cert]
    elif cert is not None:
        named.append(("cert", cert))
    for field, path in named:
        if not os.path.exists(path):
            msg = f"{field} names {path!r}, which does not exist."
            raise ValueError(msg)


def check_timeout(value: float | tuple[float, float] | None) -> None:
    """Refuse a timeout that is not a positive, finite number of seconds."""
    values = value if isinstance(value, tuple) else (value,)
    for seconds in values:
        if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
            msg = (
                "timeout must be positive, finite seconds, a (connect, read)"
                f" pair of them, or None (wait forever); got {value!r}."
            )
            raise ValueError(msg)


@dataclass(frozen=True)
class CallSettings:
    """The client settings one call runs with: the model's, or the call's own.

    `invoke(..., timeout=5)` bounds that call only; none of these ever goes
    into the request body, where a server would refuse an unknown field.
    """

    timeout: float | tuple[float, float] | None
    max_retries: int
    deadline: float | None
    max_retry_wait: float
    throttle_budget: float

    @property
    def connect_and_read(self) -> tuple[float | None, float | None]:
        """The connect and the read timeout."""
        if isinstance(self.timeout, tuple):
            return self.timeout
        return self.timeout, self.timeout


# What each per-call setting must be, as the model's field of that name.
_CALL_SETTING_RULES = {
    "max_retries": "a whole number, 0 or more",
    "deadline": "positive, finite seconds, or None (no deadline)",
    "max_retry_wait": "finite seconds, 0 or more",
    "throttle_budget": "finite seconds, 0 or more",
}


def check_call_setting(name: str, value: Any) -> Any:
    """Check a client setting given to one call; return it as the model keeps it.

    Raises:
        ValueError: naming the setting and what it must be.
    """
    if name == "timeout":
        if isinstance(value, list):
            value = tuple(value)
        if not _is_timeout(value):
            msg = (
                "timeout must be positive, finite seconds, a (connect, read) pair"
                f" of them, or None (wait forever); got {_shown(value)}."
            )
            raise ValueError(msg)
        check_timeout(value)
        return value
    if name == "max_retries":
        good = _is_number(value) and isinstance(value, int) and value >= 0
    elif name == "deadline":
        good = value is None or (
            _is_number(value) and math.isfinite(value) and value > 0
        )
    else:
        good = _is_number(value) and math.isfinite(value) and value >= 0
    if not good:
        msg = f"{name} must be {_CALL_SETTING_RULES[name]}; got {_shown(value)}."
        raise ValueError(msg)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_timeout(value: Any) -> bool:
    if isinstance(value, tuple):
        return len(value) == 2 and all(_is_number(v) for v in value)
    return value is None or _is_number(value)


def _shown(value: Any) -> str:
    """A value for a message: a number as itself, anything else by its type."""
    return repr(value) if value is None or _is_number(value) else type(value).__name__


def check_client(value: Any, name: str, needs: tuple[str, ...], kind: str) -> None:
    """Refuse something that is not the HTTP client a field asks for."""
    if value is not None and not all(hasattr(value, attr) for attr in needs):
        msg = f"{name} must be {kind}, got {type(value).__name__}."
        raise ValueError(msg)


def split_credentials(url: str) -> tuple[str, str | None]:
    """Take `user:password@` out of a URL: the URL without it, and the pair.

    Credentials kept in `base_url` would be shown wherever the URL is (repr,
    serialised models, traces, httpx's request log); kept apart, they are
    only ever sent.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, f"{unquote(user)}:{unquote(password)}"


def proxy_with_credentials_from_environment(proxy: str | None) -> str | None:
    """The environment's proxy URL with credentials, if it is `proxy`'s.

    An unpickled model, whose proxy credentials were left out, takes them
    back from the proxy variables of the process it lands in.
    """
    if not proxy:
        return None
    for name in _PROXY_VARIABLES:
        for variable in (name, name.lower()):
            value = with_scheme(os.environ.get(variable, ""))
            bare, credentials = split_credentials(value)
            if credentials is not None and bare == proxy:
                return value
    return None


def authorization(
    api_key: SecretStr | None, url_credentials: SecretStr | None
) -> tuple[str | None, str | None]:
    """The `Authorization` header value, and the secret that names the key.

    `api_key` wins over credentials taken from base_url: both would need the
    one `Authorization` header. The secret (the key, or the password) tells
    one key's throttle gate from another's.
    """
    if api_key is not None:
        key = api_key.get_secret_value()
        return f"Bearer {key}", key
    if url_credentials is not None:
        credentials = url_credentials.get_secret_value()
        return _basic(credentials), credentials.partition(":")[2] or None
    return None, None


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode("ascii")


def secret_forms(authorization: str | None, headers: Headers | None) -> tuple[str, ...]:
    """Every form in which the request's credentials travel, to blank out of errors.

    A server that echoes a header echoes what was sent: the key, or for
    Basic authorization `user:password` in base64, which is the password
    all the same. So each credential is blanked as sent, as its token
    without the scheme (`Bearer`, `Basic`), and, for Basic, as the password.
    """
    values = [authorization] if authorization else []
    values += [
        value.get_secret_value()
        for value in (headers or {}).values()
        if isinstance(value, SecretStr)
    ]
    forms: set[str] = set()
    for value in values:
        forms.add(value)
        scheme, _, token = value.partition(" ")
        if token:
            forms.add(token.strip())
        if scheme.lower() == "basic" and token:
            try:
                pair = base64.b64decode(token.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                continue
            forms.add(pair.partition(":")[2])
    # Longest first, so a part never breaks the whole it belongs to.
    return tuple(sorted((form for form in forms if form), key=len, reverse=True))
