"""Start the DRF app in its own gunicorn process, and be sure to stop it.

Tests and benchmarks both need a real DRF server for a while and nothing left
behind afterwards. The server is started in a new session (its own process
group: the gunicorn master and its worker) with a pipe as its stdin, so it is
stopped three ways: SIGTERM on `stop()`, SIGKILL to the whole group if it
lingers, and, should this process die without cleaning up, the end of its
stdin, which makes the server stop by itself.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from ._config import check_rate

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
_CONTROL_TIMEOUT = 10.0


class DrfServiceError(RuntimeError):
    """The DRF app did not start, or did not answer a control request."""


@dataclass(frozen=True)
class ServerStats:
    """What the chat view saw since the start or the last `reset_stats()`.

    `requests` counts every request to the chat view (406s and 429s too),
    `throttled` those DRF refused with a 429, `completed` the answers sent
    whole (a stream counts when its `[DONE]` has been written).
    """

    requests: int
    throttled: int
    completed: int


def _import_root() -> str:
    """The sys.path entry this package was imported from (repo root or tests/)."""
    depth = len(__package__.split("."))
    return str(Path(__file__).resolve().parents[depth])


def _read_first_line(stream: IO[bytes], lines: queue.Queue[bytes]) -> None:
    """Hand the first line over, then keep reading so the pipe never fills."""
    lines.put(stream.readline())
    while stream.read(65536):
        pass


class DrfService:
    """A running DRF chat app: where it listens and what it counted.

    Built by `running_drf_service`; `base_url` is what a client takes
    (`http://127.0.0.1:PORT/api/openai/v1`).
    """

    def __init__(
        self, rate: str, *, threads: int = 64, start_timeout: float = START_TIMEOUT
    ) -> None:
        self.rate = check_rate(rate)
        # Shown only when the start fails; a file cannot fill up and block it.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [_import_root(), environment.get("PYTHONPATH")])
        )
        command = [
            sys.executable,
            "-m",
            __package__,
            "--rate",
            rate,
            "--threads",
            str(threads),
            "--watch-stdin",
        ]
        self._reader: threading.Thread | None = None
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=environment,
            start_new_session=True,
        )
        try:
            self.base_url = self._wait_for_url(start_timeout)
        except BaseException:
            self.stop()
            raise
        parts = urlsplit(self.base_url)
        self.root_url = f"{parts.scheme}://{parts.netloc}"

    def __repr__(self) -> str:
        return f"<DrfService {self.rate} at {self.base_url}>"

    @property
    def pid(self) -> int:
        """The gunicorn master's process id (also its process group's)."""
        return self._process.pid

    def _wait_for_url(self, timeout: float) -> str:
        stdout = self._process.stdout
        assert stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        reader = threading.Thread(
            target=_read_first_line, args=(stdout, lines), daemon=True
        )
        reader.start()
        self._reader = reader
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise DrfServiceError(
                self._failure(f"did not start in {timeout} s")
            ) from None
        url = line.decode(errors="replace").strip()
        if not url.startswith("http://"):
            raise DrfServiceError(self._failure("exited before printing its URL"))
        return url

    def _failure(self, what: str) -> str:
        self._stderr.seek(0)
        said = self._stderr.read()[-4000:].decode(errors="replace")
        return (
            f"The DRF test app (python -m {__package__} --rate {self.rate}) {what}. "
            "Are django, djangorestframework and gunicorn installed "
            f"(pip install -e '.[test]')? Its stderr:\n{said}"
        )

    def _control(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.root_url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=_CONTROL_TIMEOUT) as reply:
                return json.load(reply)
        except OSError as error:
            msg = f"{method} {path} failed on the DRF test app: {error}"
            raise DrfServiceError(msg) from error

    def stats(self) -> ServerStats:
        """The chat view's counters."""
        counts = self._control("GET", "/_stats")
        return ServerStats(counts["requests"], counts["throttled"], counts["completed"])

    def reset_stats(self) -> None:
        """Zero the counters (the throttle's request history stays)."""
        self._control("POST", "/_stats/reset")

    def reset_throttle(self) -> None:
        """Forget every client's request history: the next request is let through."""
        self._control("POST", "/_throttle/reset")

    def stop(self) -> None:
        """Stop the server and its worker, whatever state they are in."""
        process = self._process
        if process.stdin is not None:
            with suppress(OSError):
                process.stdin.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT)
        # The group outlives a killed master while its worker runs on.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT)  # at EOF now that every writer is gone
        if process.stdout is not None:
            process.stdout.close()
        self._stderr.close()


@contextmanager
def running_drf_service(
    rate: str = "10/s", *, threads: int = 64, start_timeout: float = START_TIMEOUT
) -> Iterator[DrfService]:
    """Run the DRF chat app at `rate` (DRF's syntax) for the `with` block."""
    service = DrfService(rate, threads=threads, start_timeout=start_timeout)
    try:
        yield service
    finally:
        service.stop()
