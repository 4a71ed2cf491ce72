"""Run the DfeHub emulator from a shell: `python -m langchain_dfehub.testing`.

For users whose tests, apps or benchmarks run in another process. The first
line on stdout is the base URL, flushed at once, so a parent process can read
it; everything else goes to stderr. Ctrl-C or SIGTERM stops the server
cleanly with exit status 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._flavours import FLAVOURS
from ._rate import Rate
from ._server import DfeHubEmulator


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        msg = f"expected a number of seconds >= 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(value) if value.is_integer() and "." not in text else value


def _wait(text: str) -> float | None:
    """The throttle wait: as written ("3" stays "3"), or "none" for no number."""
    return None if text.lower() == "none" else _seconds(text)


def _rate(text: str) -> str:
    try:
        Rate.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        msg = f"expected an integer >= 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m langchain_dfehub.testing",
        description=(
            "A local stand-in for the DfeHub chat service (OpenAI chat-completions "
            "wire format) with deterministic answers. Prints the base URL first."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument(
        "--port", type=_count, default=0, help="default: 0 (any free port)"
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer KEY' on API requests",
    )
    parser.add_argument(
        "--throttle-every",
        type=_count,
        default=0,
        metavar="N",
        help="throttle every Nth chat request (default: 0, never)",
    )
    parser.add_argument(
        "--throttle-wait",
        type=_wait,
        default=1.0,
        metavar="S",
        help="the wait written into the throttle text, or 'none' (default: 1.0)",
    )
    parser.add_argument(
        "--throttle-rate",
        type=_rate,
        default=None,
        metavar="N/PERIOD",
        help="throttle like Django REST Framework at this rate per client, "
        "e.g. 10/s or 3/min (default: off)",
    )
    parser.add_argument(
        "--throttle-as",
        choices=("status", "stream"),
        default="status",
        help="throttle with HTTP 429 or inside the stream (default: status)",
    )
    parser.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="seconds before each response starts",
    )
    parser.add_argument(
        "--chunk-delay",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="seconds between streamed chunks",
    )
    parser.add_argument(
        "--flavour",
        choices=sorted(FLAVOURS),
        default="openai",
        help="which server's habits to copy (default: openai)",
    )
    parser.add_argument(
        "--reasoning",
        action="store_true",
        help="send thinking before each answer, where the flavour has a field",
    )
    parser.add_argument(
        "--context-size",
        type=_count,
        default=None,
        metavar="N",
        help="answer prompts over N tokens with the flavour's overflow error",
    )
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME",
        help="a model the server serves (repeat for more); others are unknown",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log each request to stderr"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; return the exit status."""
    options = _parser().parse_args(argv)
    if options.verbose:
        logging.basicConfig(
            stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s"
        )
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    emulator = DfeHubEmulator(
        options.host,
        options.port,
        api_key=options.api_key,
        throttle_every=options.throttle_every,
        throttle_wait=options.throttle_wait,
        throttle_as=options.throttle_as,
        latency=options.latency,
        chunk_delay=options.chunk_delay,
        flavour=options.flavour,
        reasoning=options.reasoning,
        context_size=options.context_size,
        models=options.models,
        throttle_rate=options.throttle_rate,
    )
    with emulator:
        print(emulator.base_url, flush=True)
        print("DfeHub emulator running; Ctrl-C to stop.", file=sys.stderr, flush=True)
        # A timeout keeps the main thread responsive to signals everywhere.
        while not stopping.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
