"""What makes one OpenAI-compatible server differ from another, as data.

Each `Flavour` describes, field by field, the habits one server has on the
wire; the HTTP server and the renderer read the description and never branch
on a server's name. A flavour copies what the server really does, as its
public sources show it, never what a client's test would like to see:

- `openai`: the OpenAI chat-completions API, the emulator's default: usage
  with its detail objects, errors as `{"error": {message, type, param,
  code}}`, `code: "context_length_exceeded"` and `"model_not_found"`, no
  reasoning text in Chat Completions.
- `llama.cpp`: llama.cpp's `llama-server` (the `tools/server` README and
  source): a `tool_choice` object is not understood (the server logs "Wrong
  type supplied for parameter 'tool_choice'" and answers as with `auto`); with
  `--reasoning-format deepseek` the thinking streams as `reasoning_content`
  deltas before the content; the last chunk (and a whole completion) carries a
  `timings` object; `model` in replies is the server's alias whatever the
  request named; `GET /models` lists that alias, `"owned_by": "llamacpp"`,
  with `meta.n_ctx_train` (`tools/server/server.cpp`, `handle_models`); a
  prompt over the context size is an HTTP 400 of type
  `exceed_context_size_error`, "request (N tokens) exceeds the available
  context size (C tokens)", with `n_prompt_tokens` and `n_ctx`.
- `vllm`: vLLM's OpenAI server (its "Reasoning Outputs" docs and error
  responses): the thinking as `reasoning` (newer releases; `reasoning_content`
  before), usage without detail objects, `GET /models` entries with
  `"owned_by": "vllm"` and `max_model_len` (its `ModelCard`), errors as
  `{"object": "error", "message", "type": "BadRequestError", "param": null,
  "code": 400}`, an unknown model a 404 "The model `x` does not exist.", a
  long prompt "This model's maximum context length is C tokens. However, you
  requested N tokens ...".
- `deepseek`: the DeepSeek API (its reasoning-model and context-caching docs):
  `reasoning_content`, a 400 "This response_format type is unavailable now"
  for a `json_schema` response format (it has `json_object` only), usage
  with `prompt_cache_hit_tokens`,
  `prompt_cache_miss_tokens` and `completion_tokens_details.reasoning_tokens`;
  an unknown model is a 400 "Model Not Exist"; `GET /models` entries are
  `"owned_by": "deepseek"`. The emulator keeps no cache, so
  every prompt token is a miss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# The `model` a llama.cpp server names in replies when started without
# `--alias`: the file it loaded.
LLAMA_CPP_ALIAS = "model.gguf"

ErrorShape = Callable[[int, str, str, "str | None", "str | None"], dict[str, Any]]
"""(status, message, type, param, code) -> the error body a server sends."""


def _openai_error(
    status: int, message: str, kind: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _llama_cpp_error(
    status: int, message: str, kind: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "type": kind}}


def _vllm_error(
    status: int, message: str, kind: str, param: str | None, code: str | None
) -> dict[str, Any]:
    names = {400: "BadRequestError", 404: "NotFoundError"}
    return {
        "object": "error",
        "message": message,
        "type": names.get(status, kind),
        "param": param,
        "code": status,
    }


@dataclass(frozen=True)
class Overflow:
    """How a server words a prompt longer than its context size."""

    message: str  # formatted with {prompt} and {context}
    type: str
    code: str | None = None
    extra: bool = False  # llama.cpp adds n_prompt_tokens and n_ctx


@dataclass(frozen=True)
class UnknownModel:
    """How a server answers a request for a model it does not serve."""

    status: int
    message: str  # formatted with {model}
    code: str | None = None


@dataclass(frozen=True)
class Flavour:
    """One server's habits on the wire."""

    name: str
    error_shape: ErrorShape
    reasoning_field: str | None = None
    """Where thinking goes when reasoning is on; None: the server sends none."""
    honours_forced_tool: bool = True
    """False: a `tool_choice` object is ignored and the server acts on `auto`."""
    json_schema_refusal: str | None = None
    """The 400 message for a `json_schema` response format; None: it is honoured."""
    model_alias: str | None = None
    """The model every reply names, whatever the request said."""
    timings: bool = False
    """Whether the last chunk and a whole completion carry `timings`."""
    usage_details: bool = True
    """Whether usage has OpenAI's `*_tokens_details` objects."""
    cache_usage: bool = False
    """Whether usage has DeepSeek's `prompt_cache_hit/miss_tokens`."""
    overflow: Overflow | None = None
    """How a prompt over `context_size` is refused; None: as OpenAI does."""
    unknown_model: UnknownModel | None = None
    """How an unknown model is refused; None: the server never checks."""
    service_tier: str | None = None
    """The `service_tier` every reply names; None: the server sends none."""
    single_choice: bool = False
    """True: `n` other than 1 fails as llama.cpp fails it (see `choices_error`)."""
    model_owner: str = "dfehub"
    """`owned_by` of each entry of `GET /models`."""
    context_in_models: str | None = None
    """Where `GET /models` tells the context size: vLLM's `max_model_len`,
    llama.cpp's `meta.n_ctx_train`; None: it does not."""

    def model_entry(self, name: str, created: int, context: int) -> dict[str, Any]:
        """One entry of this server's `GET /models` list."""
        entry: dict[str, Any] = {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": self.model_owner,
        }
        if self.context_in_models == "max_model_len":
            entry["max_model_len"] = context
        elif self.context_in_models == "n_ctx_train":
            entry["meta"] = {"n_ctx_train": context}
        return entry

    def choices_error(self) -> tuple[int, dict[str, Any]]:
        """llama.cpp's answer to `n` other than 1: its parser throws, a 500."""
        return 500, self.error(
            500, "Only one completion choice is allowed", "server_error"
        )

    def error(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> dict[str, Any]:
        """The server's error body for one failure."""
        return self.error_shape(status, message, kind, param, code)

    def overflow_error(self, prompt_tokens: int, context: int) -> dict[str, Any]:
        """The 400 body for a prompt of `prompt_tokens` over `context`."""
        overflow = self.overflow or _OPENAI_OVERFLOW
        message = overflow.message.format(prompt=prompt_tokens, context=context)
        body = self.error(400, message, overflow.type, "messages", overflow.code)
        if overflow.extra:
            body["error"].update(n_prompt_tokens=prompt_tokens, n_ctx=context)
        return body

    def unknown_model_error(self, model: str) -> tuple[int, dict[str, Any]] | None:
        """The status and body for a model the server does not serve, if it checks."""
        unknown = self.unknown_model
        if unknown is None:
            return None
        message = unknown.message.format(model=model)
        kind = "invalid_request_error" if unknown.status == 400 else "NotFoundError"
        return unknown.status, self.error(
            unknown.status, message, kind, None, unknown.code
        )

    def usage(
        self, prompt_tokens: int, completion_tokens: int, reasoning_tokens: int
    ) -> dict[str, Any]:
        """The `usage` object this server reports."""
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if self.cache_usage:
            usage["prompt_tokens_details"] = {"cached_tokens": 0}
            usage["prompt_cache_hit_tokens"] = 0
            usage["prompt_cache_miss_tokens"] = prompt_tokens
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        elif self.usage_details:
            usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {
                "reasoning_tokens": reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            }
        return usage


def timings(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """llama.cpp's `timings` object, with fixed, documented speeds.

    The emulator takes 1 ms per prompt token and 10 ms per predicted token.
    """
    return {
        "prompt_n": prompt_tokens,
        "prompt_ms": float(prompt_tokens),
        "prompt_per_token_ms": 1.0,
        "prompt_per_second": 1000.0,
        "predicted_n": completion_tokens,
        "predicted_ms": 10.0 * completion_tokens,
        "predicted_per_token_ms": 10.0,
        "predicted_per_second": 100.0,
    }


_OPENAI_OVERFLOW = Overflow(
    "This model's maximum context length is {context} tokens. However, your"
    " messages resulted in {prompt} tokens. Please reduce the length of the"
    " messages.",
    "invalid_request_error",
    "context_length_exceeded",
)

FLAVOURS: Mapping[str, Flavour] = {
    "openai": Flavour(
        name="openai",
        error_shape=_openai_error,
        overflow=_OPENAI_OVERFLOW,
        service_tier="default",
        unknown_model=UnknownModel(
            404,
            "The model `{model}` does not exist or you do not have access to it.",
            "model_not_found",
        ),
    ),
    "llama.cpp": Flavour(
        name="llama.cpp",
        error_shape=_llama_cpp_error,
        reasoning_field="reasoning_content",
        honours_forced_tool=False,
        model_alias=LLAMA_CPP_ALIAS,
        timings=True,
        single_choice=True,
        model_owner="llamacpp",
        context_in_models="n_ctx_train",
        usage_details=False,
        overflow=Overflow(
            "request ({prompt} tokens) exceeds the available context size"
            " ({context} tokens)",
            "exceed_context_size_error",
            extra=True,
        ),
    ),
    "vllm": Flavour(
        name="vllm",
        error_shape=_vllm_error,
        reasoning_field="reasoning",
        usage_details=False,
        model_owner="vllm",
        context_in_models="max_model_len",
        overflow=Overflow(
            "This model's maximum context length is {context} tokens. However, you"
            " requested {prompt} tokens in the messages. Please reduce the length"
            " of the messages.",
            "BadRequestError",
        ),
        unknown_model=UnknownModel(404, "The model `{model}` does not exist."),
    ),
    "deepseek": Flavour(
        name="deepseek",
        error_shape=_openai_error,
        reasoning_field="reasoning_content",
        json_schema_refusal="This response_format type is unavailable now",
        cache_usage=True,
        model_owner="deepseek",
        overflow=Overflow(
            "This model's maximum context length is {context} tokens. However, you"
            " requested {prompt} tokens ({prompt} in the messages, 0 in the"
            " completion). Please reduce the length of the messages or"
            " completion.",
            "invalid_request_error",
            "invalid_request_error",
        ),
        unknown_model=UnknownModel(400, "Model Not Exist", "invalid_request_error"),
    ),
}


def flavour_named(name: str) -> Flavour:
    """The flavour called `name`; a ValueError lists the known ones."""
    flavour = FLAVOURS.get(name)
    if flavour is None:
        msg = f"unknown flavour {name!r}; choose one of {sorted(FLAVOURS)}"
        raise ValueError(msg)
    return flavour
