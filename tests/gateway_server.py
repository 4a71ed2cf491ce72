"""A gateway that limits requests per model and throttles late, without a wait.

What a LiteLLM proxy with an `rpm` limit on a deployment does, as its users
meet it: a request over the model's limit gets a 429 whose only words are
"No deployments available for selected model.", with no wait and no
`Retry-After`, and it comes late (the proxy looks for a free deployment,
and retries inside, before it gives up). The limit belongs to the model: a
request to another model is served. The proxy's error body has its shape:
`{"error": {"message", "type", "param", "code": "429"}}`.

Simplified, on purpose: a sliding window of `limit` admitted requests per
`period` seconds for each model (LiteLLM counts per minute; tests need
seconds), and one fixed delay before every 429. Runs on 127.0.0.1 in a
thread; every socket has a timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

NO_DEPLOYMENTS = "No deployments available for selected model."


class GatewayServer:
    """A per-model rate-limited chat-completions server: `limit` per `period`."""

    def __init__(self, *, limit: int, period: float, throttle_delay: float) -> None:
        self.limit = limit
        self.period = period
        self.throttle_delay = throttle_delay
        self._lock = threading.Lock()
        self._admitted: dict[str, deque[float]] = defaultdict(deque)
        self.requests: dict[str, int] = defaultdict(int)
        self.throttled: dict[str, int] = defaultdict(int)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> GatewayServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def admit(self, model: str) -> bool:
        """Whether the model's window has room now (and take it if so)."""
        now = time.monotonic()
        with self._lock:
            self.requests[model] += 1
            window = self._admitted[model]
            while window and window[0] <= now - self.period:
                window.popleft()
            if len(window) < self.limit:
                window.append(now)
                return True
            self.throttled[model] += 1
            return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                model = str(body.get("model"))
                if not gateway.admit(model):
                    time.sleep(gateway.throttle_delay)
                    error = {
                        "message": NO_DEPLOYMENTS,
                        "type": "None",
                        "param": "None",
                        "code": "429",
                    }
                    self._send(429, {"error": error})
                    return
                text = body["messages"][-1]["content"]
                self._send(200, _completion(model, text))

            def _send(self, status: int, payload: dict[str, object]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _completion(model: str, text: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-gateway",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
