"""The `gate` setting: which store a gate lives in, and its URL's secrets.

`None` keeps the gate in the process. `redis://`, `rediss://` and
`unix://` put it on a Redis (or Valkey) server shared by a fleet;
`sqlite:///path` in a file shared by the processes of one host. A password
in the URL (`redis://:pw@host`, `unix:///sock?password=pw`) is taken out
of the setting, as base_url's is: the setting, reprs, logs and pickles show
the URL without it.
"""

from __future__ import annotations

import importlib.util
from urllib.parse import parse_qsl, urlencode, urlsplit

REDIS_SCHEMES = ("redis", "rediss", "unix")
SQLITE_PREFIX = "sqlite:///"


def check_gate_url(url: str) -> None:
    """Raise a ValueError that says what a gate URL may be (without the URL)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in REDIS_SCHEMES:
        if importlib.util.find_spec("redis") is None:
            msg = (
                "gate= a Redis URL needs the redis package:"
                " pip install 'langchain-dfehub[redis]'."
            )
            raise ValueError(msg)
        return
    if url.startswith(SQLITE_PREFIX) and len(url) > len(SQLITE_PREFIX):
        return
    msg = (
        "gate must be None (a gate per process), a redis://, rediss:// or unix://"
        " URL of a Redis server (a gate shared by many hosts), or sqlite:///path"
        " to a file (a gate shared by the processes of one host)."
    )
    raise ValueError(msg)


def without_password(url: str) -> str:
    """The URL with its password (in the userinfo or the query) taken out.

    A URL with none comes back as it is.
    """
    if url.startswith(SQLITE_PREFIX):
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}@{host}" if user else host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, v) for k, v in pairs if k.lower() != "password"])
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    # Built by hand: `urlunsplit` drops the `//` of an empty host (unix://).
    bare = f"{parts.scheme}://{netloc}{parts.path}"
    if query:
        bare += f"?{query}"
    if parts.fragment:
        bare += f"#{parts.fragment}"
    return bare
