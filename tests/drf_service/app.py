"""A real Django REST Framework chat-completions app, throttled like the service.

The DfeHub service's throttle text is DRF's own `Throttled` exception, so the
most faithful server to test a client against is a DRF app behind DRF's
`AnonRateThrottle`: the same sliding window per client IP in Django's cache,
the same wait arithmetic, the same 429 body and `Retry-After`, and the same
content negotiation (a request that accepts only `text/event-stream` gets
DRF's 406). Nothing of that is reimplemented here; only the chat answer is.

The whole Django project is this module: settings are configured in code when
it is imported (no database, no templates, no middleware), and `application`
is the WSGI callable. The throttle rate comes from the `DRF_SERVICE_RATE`
environment variable (DRF's syntax: `10/s`, `3/min`, `100/h`, `1/d`), read
once at import, because DRF reads `DEFAULT_THROTTLE_RATES` when
`rest_framework.throttling` is first imported.

Answers follow the emulator's echo rule: the text of the last user message
(or a greeting when there is none), one piece per word.

Routes:
    POST /api/openai/v1/chat/completions  the chat view, behind AnonRateThrottle
    GET  /_stats                          {"requests", "throttled", "completed"}
    POST /_stats/reset                    zero the counters
    POST /_throttle/reset                 forget every client's request history
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import django
from django.conf import settings

from ._config import RATE_VARIABLE

CHAT_PATH = "api/openai/v1/chat/completions"

settings.configure(
    DEBUG=False,
    SECRET_KEY="drf-service-for-tests-only",  # not a secret: a test app
    ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["rest_framework"],
    MIDDLEWARE=[],
    DATABASES={},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    USE_TZ=True,
    REST_FRAMEWORK={
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        # No users and no database: every client is anonymous, known by its IP.
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": [],
        "UNAUTHENTICATED_USER": None,
        "DEFAULT_THROTTLE_RATES": {"anon": os.environ.get(RATE_VARIABLE, "10/s")},
    },
)
django.setup()

# Imported after settings: DRF reads them when these modules load.
from django.core.cache import cache  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.http import StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.throttling import AnonRateThrottle  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

_PIECE = re.compile(r"\s*\S+\s*")
_WORD = re.compile(r"\w+|[^\w\s]")
_GREETING = "Hello! How can I help you today?"


class _Counters:
    """What the chat view saw, shared by the worker's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {"requests": 0, "throttled": 0, "completed": 0}

    def add(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)


COUNTERS = _Counters()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        return "\n".join(part for part in parts if isinstance(part, str))
    return ""


def answer_pieces(messages: Sequence[Any]) -> list[str]:
    """The echo answer, one piece per word with the whitespace around it."""
    users = [
        message
        for message in messages
        if isinstance(message, dict) and message.get("role") == "user"
    ]
    text = _text_of(users[-1].get("content")) if users else ""
    if not text.strip():
        text = _GREETING
    return _PIECE.findall(text)


def _prompt_tokens(messages: Sequence[Any]) -> int:
    return sum(
        len(_WORD.findall(_text_of(message.get("content"))))
        for message in messages
        if isinstance(message, dict)
    )


class _Answer:
    """One chat completion: its identity, its pieces and its usage."""

    _sequence = 0
    _sequence_lock = threading.Lock()

    def __init__(self, body: Mapping[str, Any]) -> None:
        messages = body.get("messages")
        messages = messages if isinstance(messages, list) else []
        with self._sequence_lock:
            _Answer._sequence += 1
            self.id = f"chatcmpl-drf-{_Answer._sequence:06d}"
        self.created = int(time.time())
        model = body.get("model")
        self.model = model if isinstance(model, str) else "gpt-3.5-turbo"
        self.pieces = answer_pieces(messages)
        prompt = _prompt_tokens(messages)
        self.usage = {
            "prompt_tokens": prompt,
            "completion_tokens": len(self.pieces),
            "total_tokens": prompt + len(self.pieces),
        }

    def completion(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": "".join(self.pieces)}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": self.usage,
        }

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return self._event({"choices": [choice]})

    def usage_chunk(self) -> bytes:
        return self._event({"choices": [], "usage": self.usage})

    def _event(self, fields: dict[str, Any]) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            **fields,
        }
        return f"data: {json.dumps(chunk)}\n\n".encode()


def _stream(answer: _Answer, include_usage: bool) -> Iterator[bytes]:
    yield answer.chunk({"role": "assistant", "content": ""})
    for piece in answer.pieces:
        yield answer.chunk({"content": piece})
    yield answer.chunk({}, finish="stop")
    if include_usage:
        yield answer.usage_chunk()
    yield b"data: [DONE]\n\n"
    COUNTERS.add("completed")


class ChatCompletions(APIView):
    """OpenAI's chat completions, behind DRF's `AnonRateThrottle`."""

    throttle_classes = (AnonRateThrottle,)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        COUNTERS.add("requests")
        super().initial(request, *args, **kwargs)

    def throttled(self, request: Request, wait: float | None) -> None:
        COUNTERS.add("throttled")
        super().throttled(request, wait)

    def post(self, request: Request) -> Response | StreamingHttpResponse:
        body = request.data
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            error = {"message": "'messages' is a required list", "param": "messages"}
            return Response({"error": error}, status=400)
        answer = _Answer(body)
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and bool(
                options.get("include_usage")
            )
            response = StreamingHttpResponse(
                _stream(answer, include_usage), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            return response
        COUNTERS.add("completed")
        return Response(answer.completion())


class Stats(APIView):
    """The chat view's counters (GET), or zeroing them (POST /_stats/reset)."""

    throttle_classes = ()

    def get(self, request: Request) -> Response:
        return Response(COUNTERS.snapshot())


class ResetStats(APIView):
    throttle_classes = ()

    def post(self, request: Request) -> Response:
        COUNTERS.reset()
        return Response(COUNTERS.snapshot())


class ResetThrottle(APIView):
    """Forget every client's request history (the throttle lives in the cache)."""

    throttle_classes = ()

    def post(self, request: Request) -> Response:
        cache.clear()
        return Response({"reset": True})


urlpatterns = [
    path(CHAT_PATH, ChatCompletions.as_view()),
    path("_stats", Stats.as_view()),
    path("_stats/reset", ResetStats.as_view()),
    path("_throttle/reset", ResetThrottle.as_view()),
]

application = WSGIHandler()
