"""Which kind of failure an HTTP error reply reports, read from its words.

LangChain's agent middleware decides on the kind of a model error: its
summarisation middleware shortens the conversation on a context overflow, its
retry middleware leaves an unknown model alone. Servers say both with a plain
400 or 404 and their own wording, so this module reads the status, the error
object's `code`/`type` and the message, and names the kind. It is pure: no
classes, no I/O; `_errors` turns the kind into an exception.

The wordings are those the servers send, as their sources and users' reports
show them:

- llama.cpp server: HTTP 400, type `exceed_context_size_error`, "request (6020
  tokens) exceeds the available context size (4096 tokens)".
- vLLM: "This model's maximum context length is 4096 tokens. However, you
  requested 6020 tokens ..." and "The prompt (length 6020) is longer than the
  maximum model length of 4096" / "... longer than the model's context length";
  an unknown model: HTTP 404 "The model `x` does not exist.".
- OpenAI: `code: "context_length_exceeded"`; `code: "model_not_found"`.
- llama-cpp-python: "Requested tokens (6020) exceed context window of 4096".
- LM Studio: "... is greater than the context length ...", and "Trying to
  keep the first 6020 tokens when context the overflows. However, the model
  is loaded with context length of only 4096 tokens ..." (HTTP 400).
- Hugging Face's text-generation-inference: HTTP 422 "Input validation
  error: `inputs` tokens + `max_new_tokens` must be <= 4096. ...".
- Ollama: `model "x" not found, try pulling it first` (404).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any


class Kind(Enum):
    """What an error reply reports, in LangChain's terms."""

    CONTEXT_OVERFLOW = "context overflow"
    MODEL_NOT_FOUND = "model not found"
    OTHER = "other"


_OVERFLOW_CODES = frozenset(
    {"context_length_exceeded", "exceed_context_size_error", "context_window_exceeded"}
)
_OVERFLOW_WORDS = re.compile(
    r"exceeds? the available context size"
    r"|maximum context length"
    r"|longer than the (?:model's context length|maximum model length)"
    r"|exceeds? (?:the )?context (?:window|length|size)"
    r"|greater than the context length"
    r"|when context (?:the )?overflows"
    r"|`inputs` tokens \+ `max_new_tokens` must be"
    r"|context[ _]length[ _]exceeded"
    r"|prompt is too long",
    re.IGNORECASE,
)
_NOT_FOUND_CODES = frozenset({"model_not_found"})
# "The model `x` does not exist", 'model "x" not found', "Model Not Exist":
# the model's name, if any, right after the word, so that "the model called a
# tool that was not found" is not read as an unknown model.
_NOT_FOUND_WORDS = re.compile(
    r"\bmodel\s+(?:[`'\"][^`'\"]{0,200}[`'\"]\s+|[\w./:-]+\s+)?"
    r"(?:does not exist|is not found|not found|not exist)",
    re.IGNORECASE,
)
# Statuses a context overflow or an unknown model is reported with.
_REQUEST_STATUSES = frozenset({400, 404, 413, 422})


def kind_of(status: int | None, parsed: Any, said: str) -> Kind:
    """Name the kind of an error reply from its status, codes and message.

    Args:
        status: The HTTP status, or None for an error inside a stream.
        parsed: The parsed JSON body (or None).
        said: The server's message, as read from the body.
    """
    if status is not None and status not in _REQUEST_STATUSES:
        return Kind.OTHER
    codes = _codes(parsed)
    if codes & _OVERFLOW_CODES or _OVERFLOW_WORDS.search(said):
        return Kind.CONTEXT_OVERFLOW
    if codes & _NOT_FOUND_CODES or _NOT_FOUND_WORDS.search(said):
        return Kind.MODEL_NOT_FOUND
    return Kind.OTHER


def _codes(parsed: Any) -> set[str]:
    """The `code` and `type` strings of an error body, wherever it puts them."""
    found: set[str] = set()
    for holder in (parsed, parsed.get("error") if isinstance(parsed, dict) else None):
        if isinstance(holder, dict):
            for key in ("code", "type"):
                value = holder.get(key)
                if isinstance(value, str):
                    found.add(value.lower())
    return found
