"""The local emulator in its own process, for the duration of a benchmark.

The server runs in a separate process so that its work (and its GIL) does not
count against the client being measured; on a shared 2-core machine that
still leaves the two competing for CPU, which is why every result is a ratio
between contenders measured against the same server in the same run.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from types import TracebackType
from typing import IO

# The CLI contract: prints its base URL as the first stdout line, stops on
# SIGINT/SIGTERM.
EMULATOR_COMMAND: tuple[str, ...] = (
    sys.executable,
    "-m",
    "langchain_dfehub.testing",
    "--port",
    "0",
)
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0


class EmulatorError(RuntimeError):
    """The emulator did not start, or did not print its base URL."""


class Emulator:
    """Starts the emulator CLI on a free port; `base_url` is where it listens.

    Use as a context manager: the process is stopped (SIGINT, then killed if
    it lingers) on exit, whatever happened inside.
    """

    def __init__(self, *options: str) -> None:
        self._command = (*EMULATOR_COMMAND, *options)
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.base_url = ""

    def __enter__(self) -> Emulator:
        # stderr goes to a temporary file: shown only if the start fails, and
        # never able to block the server by filling a pipe.
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self._command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        try:
            self.base_url = self._read_base_url(self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _read_base_url(self, process: subprocess.Popen[bytes]) -> str:
        assert process.stdout is not None
        stdout = process.stdout
        deadline = time.monotonic() + _START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmulatorError(self._failure("did not print its base URL"))
            ready, _, _ = select.select([stdout], [], [], remaining)
            if not ready:
                continue
            byte = os.read(stdout.fileno(), 1)
            if not byte:
                raise EmulatorError(self._failure("exited before printing its URL"))
            line += byte
        # Whatever the server prints later is read and dropped, so a full pipe
        # can never stall it mid-benchmark.
        threading.Thread(target=_drain, args=(stdout,), daemon=True).start()
        url = line.decode().strip()
        if not url.startswith("http"):
            raise EmulatorError(self._failure(f"printed {url!r}, not a URL"))
        return url

    def _failure(self, what: str) -> str:
        stderr = b""
        if self._stderr is not None:
            self._stderr.seek(0)
            stderr = self._stderr.read()[-2000:]
        command = " ".join(self._command[1:])
        return (
            f"The emulator ({command}) {what}. Is langchain_dfehub.testing "
            f"installed and runnable?\n{stderr.decode(errors='replace')}"
        )

    def stop(self) -> None:
        """Stop the server process and wait for it; safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def _drain(stream: IO[bytes]) -> None:
    while stream.read(65536):
        pass
