"""Invoke latency: many small non-streaming calls, interleaved between models.

A small answer makes the fixed cost of a call visible: building the request,
the HTTP round trip through the client's stack, parsing the reply, and
LangChain's own bookkeeping. Both models are warmed up first so that neither
pays for opening its pooled connection inside the measurement.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from langchain_core.language_models import BaseChatModel

from benchmarks._contenders import MODEL_FACTORIES, answer_pieces, check_answer

_WARM_UP_CALLS = 10
_ANSWER_WORDS = 8


def invoke_seconds(who: str, model: BaseChatModel, prompt: str) -> float:
    """Seconds for one `invoke`, after checking its answer is the prompt."""
    start = time.perf_counter()
    message = model.invoke(prompt)
    seconds = time.perf_counter() - start
    text = message.content if isinstance(message.content, str) else ""
    check_answer(who, text, 1, prompt, 1)
    return seconds


def measure_invoke(
    base_url: str, *, calls: int, progress: Callable[[str], None]
) -> dict[str, list[float]]:
    """Seconds per `invoke`, `calls` per model, alternating between models."""
    prompt = "".join(answer_pieces(_ANSWER_WORDS, "i"))
    models = {name: factory(base_url) for name, factory in MODEL_FACTORIES.items()}
    for _ in range(_WARM_UP_CALLS):
        for name, model in models.items():
            invoke_seconds(name, model, prompt)
    latencies: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(calls):
        for name, model in models.items():
            latencies[name].append(invoke_seconds(name, model, prompt))
    progress(f"invoke: {calls} calls each done")
    return latencies
