"""Serve the DRF chat app under gunicorn: `python -m tests.drf_service --rate 10/s`.

A real WSGI server, as the service would have had: one gunicorn worker
process (so Django's in-memory cache, where DRF keeps the throttle history,
is one for every request) with many threads (gthread), so concurrent
clients are served side by side and race for the throttle as they would on
the service.

The first line on stdout is the base URL, printed by the worker once the
Django app is loaded, so a parent process can read it and start at once;
gunicorn logs to stderr. SIGTERM or SIGINT stops it. With `--watch-stdin`
it also stops when its standard input closes, so a parent that dies without
cleaning up does not leave it behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from gunicorn.app.base import BaseApplication

from ._config import RATE_VARIABLE, check_rate

API_PATH = "/api/openai/v1"


def _announce(worker: Any) -> None:
    """Print the base URL from the worker, once the app is loaded."""
    host, port = worker.sockets[0].getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    print(f"http://{host}:{port}{API_PATH}", flush=True)


def _stop_when_stdin_closes(server: Any) -> None:
    """In the master: a thread that asks the server to stop at stdin's EOF."""

    # os.read, not sys.stdin: a forked worker would inherit the buffered
    # reader's lock held by this thread, and fail at its exit.
    descriptor = sys.stdin.fileno()

    def watch() -> None:
        while os.read(descriptor, 4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Callable[..., Any]:
        from .app import application

        return application


def _rate(text: str) -> str:
    try:
        return check_rate(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.drf_service",
        description="A DRF chat-completions app behind AnonRateThrottle.",
    )
    parser.add_argument("--rate", type=_rate, default="10/s", help="e.g. 3/min")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument(
        "--watch-stdin", action="store_true", help="stop when stdin closes"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and serve until stopped."""
    options = _parser().parse_args(argv)
    os.environ[RATE_VARIABLE] = options.rate
    settings: dict[str, Any] = {
        "bind": [f"{options.host}:{options.port}"],
        "workers": 1,
        "worker_class": "gthread",
        "threads": options.threads,
        "graceful_timeout": 2,
        "keepalive": 5,
        "errorlog": "-",
        "loglevel": "warning",
        "post_worker_init": _announce,
    }
    if options.watch_stdin:
        settings["when_ready"] = _stop_when_stdin_closes
    _Server(settings).run()


if __name__ == "__main__":
    main()
