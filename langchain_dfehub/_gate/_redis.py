"""The Redis store: one gate for a fleet of processes and hosts.

Each decision is one Lua script call (`lua/decisions.lua` then
`lua/gate.lua`, the port of `_decisions`), so it runs atomically in Redis in
one round trip, and by Redis's clock (`TIME`): hosts get back durations and
never compare their clocks. Keys are named by digests only (no URL, no API
key), share one cluster hash slot, and expire when idle for
`IDLE_EXPIRY` (longer than DRF's daily period).

A store that does not answer must cost little: short socket timeouts, no
redis-py retry loop (its default retries take seconds). Any failure raises
`StoreUnavailable` and the gate goes on in memory (`_fallback`). A forked
child opens its own connections. Works with Valkey too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import weakref
from importlib import resources
from typing import Any

from langchain_dfehub._gate._decisions import HISTORY
from langchain_dfehub._gate._store import StoreUnavailable

# Seconds to connect and to wait for an answer: the store is near, or down.
SOCKET_TIMEOUT = 0.25
# Seconds an idle gate's keys live (DRF's longest period is a day).
IDLE_EXPIRY = 2 * 86400
_PREFIX = "dfehub:gate"


def script_source() -> str:
    """The Lua of one gate decision: the decisions, then the entry point."""
    folder = resources.files("langchain_dfehub._gate").joinpath("lua")
    return "\n".join(
        folder.joinpath(name).read_text(encoding="utf-8")
        for name in ("decisions.lua", "gate.lua")
    )


def keys_of(key: str, model: str | None) -> list[str]:
    """The Redis keys of gate `key` for `model`'s calls, in the script's order.

    `{key}` is the hash tag: every key of one gate is in one cluster slot.
    """
    base = f"{_PREFIX}:{{{key}}}"
    keys = [f"{base}:counts", f"{base}:lane:service", f"{base}:admitted:service"]
    if model is not None:
        lane = hashlib.sha256(model.encode()).hexdigest()[:16]
        keys += [f"{base}:lane:{lane}", f"{base}:admitted:{lane}"]
    return keys


class RedisStore:
    """Gates on a Redis server, shared by every process that uses it.

    Args:
        url: A `redis://`, `rediss://` or `unix://` URL, password included.
        server_time: Decide by Redis's clock (False: by the `now` callers
            pass, so a test's fake clock can drive a real server).
    """

    kind = "redis"

    def __init__(self, url: str, server_time: bool = True) -> None:
        try:
            import redis  # noqa: F401 - only checked here
        except ImportError:
            msg = (
                "gate= a Redis URL needs the redis package:"
                " pip install 'langchain-dfehub[redis]'."
            )
            raise ImportError(msg) from None
        self._url = url
        self.server_time = server_time
        self._source = script_source()
        self._lock = threading.Lock()
        self._client: Any = None
        self._script: Any = None
        self._pid = 0
        # One async client per event loop, as the transports keep theirs:
        # a client's connections belong to the loop that opened them.
        self._async_scripts: weakref.WeakKeyDictionary[Any, Any] = (
            weakref.WeakKeyDictionary()
        )

    def _options(self) -> dict[str, Any]:
        return {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            "retry_on_timeout": False,
            "health_check_interval": 0,
        }

    def _connect(self) -> Any:
        if self._script is not None and self._pid == os.getpid():
            return self._script
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        with self._lock:
            if self._script is None or self._pid != os.getpid():
                # A forked child never uses its parent's sockets.
                self._client = redis.Redis.from_url(
                    self._url, retry=Retry(NoBackoff(), 0), **self._options()
                )
                self._script = self._client.register_script(self._source)
                self._pid = os.getpid()
        return self._script

    def run(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one decision as one script call."""
        import redis

        argv = self._argv(op, now, args)
        try:
            reply = self._connect()(keys=keys_of(key, model), args=argv)
        except (redis.RedisError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from None
        return _result(reply)

    def _aconnect(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._pid != os.getpid():
            self._async_scripts = weakref.WeakKeyDictionary()
            self._connect()
        script = self._async_scripts.get(loop)
        if script is None:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = Redis.from_url(
                self._url, retry=Retry(NoBackoff(), 0), **self._options()
            )
            script = self._async_scripts[loop] = client.register_script(self._source)
        return script

    async def arun(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one decision as one script call, on this loop's client."""
        import redis

        argv = self._argv(op, now, args)
        try:
            script = self._aconnect()
            reply = await script(keys=keys_of(key, model), args=argv)
        except (redis.RedisError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from None
        return _result(reply)

    def _argv(self, op: str, now: float, args: dict[str, Any]) -> list[Any]:
        return [
            op,
            json.dumps(args),
            "" if self.server_time else repr(now),
            IDLE_EXPIRY,
            HISTORY,
        ]

    def close(self) -> None:
        """Close this process's connections (they reopen when used again)."""
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = self._script = None

    def forget(self, key: str, models: list[str]) -> None:
        """Delete a gate's keys (tests, and a store being reset)."""
        names = keys_of(key, None)
        for model in models:
            names += keys_of(key, model)[3:]
        self._connect()
        self._client.delete(*names)


def _result(reply: Any) -> dict[str, Any]:
    try:
        result = json.loads(reply)
    except (TypeError, ValueError):
        raise StoreUnavailable("a reply that is not a gate's") from None
    if not isinstance(result, dict) or "now" not in result:
        raise StoreUnavailable("a reply that is not a gate's")
    # Lua's JSON writes an empty list as an empty object.
    for name in ("holds", "notes"):
        if result.get(name) == {}:
            result[name] = []
    return result
