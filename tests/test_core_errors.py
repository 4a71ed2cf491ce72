"""Our errors are LangChain's: core types, context overflow, unknown models, names.

LangChain's agent middleware decides on `langchain_core.exceptions` types and
`is_retryable`; these tests check the mapping, the servers' wordings that
lead to `ContextOverflowError` and `ModelNotFoundError` (against the
emulator's flavours, sync and async), that messages name the server by its
host, and, in real agents, that LangChain's retry middleware leaves a 401 or
a 400 alone and its summarisation middleware shortens an overflowing summary.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from langchain_dfehub import (
    ChatDfeHub,
    DfeHubAPIError,
    DfeHubAuthenticationError,
    DfeHubConnectionError,
    DfeHubContextOverflowError,
    DfeHubError,
    DfeHubInvalidRequestError,
    DfeHubNotFoundError,
    DfeHubPermissionDeniedError,
    DfeHubProtocolError,
    DfeHubRateLimitError,
    DfeHubServerError,
    DfeHubTimeoutError,
)
from langchain_dfehub._errors import error_from_status
from langchain_dfehub.testing import DfeHubEmulator, ErrorStatus, Throttle

MODES = ["sync", "async"]
LONG_PROMPT = "word " * 40


def call(model: ChatDfeHub, mode: str, how: str, prompt: str = "hello") -> Any:
    if how == "invoke":
        if mode == "sync":
            return model.invoke(prompt)
        return asyncio.run(model.ainvoke(prompt))
    if mode == "sync":
        return list(model.stream(prompt))

    async def consume() -> list[Any]:
        return [chunk async for chunk in model.astream(prompt)]

    return asyncio.run(consume())


# --- the class tree ---


@pytest.mark.parametrize(
    ("ours", "core"),
    [
        (DfeHubError, ModelError),
        (DfeHubAPIError, ModelError),
        (DfeHubProtocolError, ModelError),
        (DfeHubRateLimitError, ModelRateLimitError),
        (DfeHubAuthenticationError, ModelAuthenticationError),
        (DfeHubPermissionDeniedError, ModelPermissionDeniedError),
        (DfeHubNotFoundError, ModelNotFoundError),
        (DfeHubInvalidRequestError, ModelInvalidRequestError),
        (DfeHubContextOverflowError, ContextOverflowError),
        (DfeHubContextOverflowError, ModelInvalidRequestError),
        (DfeHubTimeoutError, ModelTimeoutError),
        (DfeHubConnectionError, ModelConnectionError),
        (DfeHubServerError, ModelAPIError),
    ],
)
def test_each_error_is_also_the_matching_core_type(ours, core):
    assert issubclass(ours, core)
    assert issubclass(ours, DfeHubError)


def test_a_403_is_still_caught_as_an_authentication_error():
    error = error_from_status(403, {}, b"", url="http://127.0.0.1:8080/v1")
    assert isinstance(error, DfeHubAuthenticationError)
    assert isinstance(error, ModelPermissionDeniedError)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (403, False), (404, False), (429, True), (500, True)],
)
def test_is_retryable_says_what_our_retry_policy_decides(status, retryable):
    error = error_from_status(status, {}, b"", url="http://127.0.0.1:8080/v1")
    assert error.is_retryable is retryable
    assert error.retryable is retryable


def test_is_retryable_follows_retryable_on_each_instance():
    assert DfeHubTimeoutError("x", phase="connect").is_retryable
    assert not DfeHubTimeoutError("x", phase="read").is_retryable
    error = DfeHubConnectionError("cut")
    error.retryable = False  # as after text was delivered
    assert not error.is_retryable


def test_our_attributes_survive_the_core_base_classes():
    error = error_from_status(
        503, {"Retry-After": "2"}, b'{"detail": "busy"}', url="http://h:1/v1"
    )
    assert (error.status_code, error.retry_after, error.message[:14]) == (
        503,
        2.0,
        "The server at ",
    )
    assert error.server_message == "busy"


# --- the servers' wordings ---


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    "payload",
    [
        body(
            {
                "error": {
                    "code": 400,
                    "message": "request (6020 tokens) exceeds the available context"
                    " size (4096 tokens)",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": 6020,
                    "n_ctx": 4096,
                }
            }
        ),
        body(
            {
                "error": {
                    "code": 400,
                    "message": "x",
                    "type": "exceed_context_size_error",
                }
            }
        ),
        body(
            {
                "object": "error",
                "message": "This model's maximum context length is 4096 tokens."
                " However, you requested 6020 tokens (5000 in the messages, 1020 in"
                " the completion).",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        ),
        body(
            {
                "object": "error",
                "message": "The prompt (total length 6020) is longer than the"
                " model's context length (4096).",
                "type": "BadRequestError",
                "code": 400,
            }
        ),
        body({"error": {"message": "Too long.", "code": "context_length_exceeded"}}),
        body({"error": "Requested tokens (6020) exceed context window of 4096"}),
        body(
            {
                "error": "The number of tokens to keep from the initial prompt is"
                " greater than the context length"
            }
        ),
        body(
            {
                "error": "<LM Studio error> Trying to keep the first 6020 tokens"
                " when context the overflows. However, the model is loaded with"
                " context length of only 4096 tokens, which is not enough."
            }
        ),
        body(
            {
                "error": "Input validation error: `inputs` tokens +"
                " `max_new_tokens` must be <= 4096. Given: 6020 `inputs` tokens"
                " and 20 `max_new_tokens`",
                "error_type": "validation",
            }
        ),
    ],
    ids=[
        "llama.cpp",
        "llama.cpp-type",
        "vllm",
        "vllm-longer",
        "openai-code",
        "llama-cpp-python",
        "lm-studio",
        "lm-studio-keep",
        "text-generation-inference",
    ],
)
def test_a_prompt_over_the_context_is_a_context_overflow_error(payload):
    error = error_from_status(400, {}, payload, url="http://127.0.0.1:8080/v1")
    assert isinstance(error, DfeHubContextOverflowError)
    assert isinstance(error, ContextOverflowError)
    assert not error.is_retryable
    assert "context size" in str(error)


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (404, body({"error": {"code": "model_not_found", "message": "No."}})),
        (404, body({"object": "error", "message": "The model `x` does not exist."})),
        (400, body({"error": {"message": "Model Not Exist"}})),
        (404, body({"error": 'model "x" not found, try pulling it first'})),
        (404, b"Not Found"),
    ],
    ids=["openai", "vllm", "deepseek", "ollama", "bare-404"],
)
def test_an_unknown_model_is_a_model_not_found_error(status, payload):
    error = error_from_status(status, {}, payload, url="http://127.0.0.1:8080/v1")
    assert isinstance(error, ModelNotFoundError)


def test_a_server_failure_mentioning_the_context_stays_a_server_error():
    payload = body({"error": {"message": "maximum context length cache failed"}})
    error = error_from_status(500, {}, payload, url="http://127.0.0.1:8080/v1")
    assert type(error) is DfeHubServerError


def test_a_message_about_something_else_not_found_is_no_unknown_model():
    payload = body({"error": {"message": "The model called a tool that was not found"}})
    error = error_from_status(400, {}, payload, url="http://127.0.0.1:8080/v1")
    assert type(error) is DfeHubInvalidRequestError


def test_an_ordinary_bad_request_is_an_invalid_request_error():
    payload = body({"error": {"message": "temperature must be at most 2"}})
    error = error_from_status(400, {}, payload, url="http://127.0.0.1:8080/v1")
    assert type(error) is DfeHubInvalidRequestError


# --- against the emulator's flavours ---


@pytest.mark.parametrize("how", ["invoke", "stream"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", ["openai", "llama.cpp", "vllm", "deepseek"])
def test_each_flavours_overflow_raises_context_overflow_once(flavour, mode, how):
    with DfeHubEmulator(flavour=flavour, context_size=30) as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, max_retries=3)
        with pytest.raises(ContextOverflowError) as caught:
            call(model, mode, how, LONG_PROMPT)
        assert len(emulator.requests) == 1
    assert isinstance(caught.value, DfeHubContextOverflowError)
    assert caught.value.status_code == 400


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", ["openai", "vllm", "deepseek"])
def test_each_flavours_unknown_model_raises_model_not_found(flavour, mode):
    with DfeHubEmulator(flavour=flavour, models=["served"]) as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, model="missing")
        with pytest.raises(ModelNotFoundError) as caught:
            call(model, mode, "invoke")
    assert "model" in str(caught.value).lower()


# --- messages name the server ---


@pytest.mark.parametrize("mode", MODES)
def test_an_error_from_a_local_server_names_it_by_its_host(mode):
    with DfeHubEmulator(flavour="llama.cpp", context_size=30) as emulator:
        host = emulator.base_url.split("/")[2]
        model = ChatDfeHub(base_url=emulator.base_url)
        with pytest.raises(DfeHubError) as caught:
            call(model, mode, "invoke", LONG_PROMPT)
    assert str(caught.value).startswith(f"The server at {host} returned HTTP 400")


@pytest.mark.parametrize("as_", ["status", "stream"])
@pytest.mark.parametrize("mode", MODES)
def test_a_throttle_from_a_local_server_names_it_by_its_host(mode, as_):
    with DfeHubEmulator() as emulator:
        host = emulator.base_url.split("/")[2]
        emulator.add_faults(Throttle(wait=99, as_=as_))
        model = ChatDfeHub(base_url=emulator.base_url, max_retry_wait=1)
        with pytest.raises(DfeHubRateLimitError) as caught:
            call(model, mode, "stream")
    assert str(caught.value).startswith(f"The server at {host} throttled the request")


@pytest.mark.parametrize("mode", MODES)
def test_an_error_inside_a_reply_names_the_server(mode):
    with DfeHubEmulator() as emulator:
        host = emulator.base_url.split("/")[2]
        emulator.add_faults(ErrorStatus(200, '{"error": {"message": "boom"}}'))
        model = ChatDfeHub(base_url=emulator.base_url)
        with pytest.raises(DfeHubAPIError) as caught:
            call(model, mode, "invoke")
    assert str(caught.value).startswith(f"The server at {host} reported an error")


# vLLM and llama.cpp report a failure found after the reply began as an error
# object inside it, with the HTTP status it would have had as `code`.
@pytest.mark.parametrize("how", ["invoke", "stream"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("code", "ours", "core"),
    [
        (400, DfeHubInvalidRequestError, ModelInvalidRequestError),
        (401, DfeHubAuthenticationError, ModelAuthenticationError),
        (403, DfeHubPermissionDeniedError, ModelPermissionDeniedError),
        (500, DfeHubServerError, ModelAPIError),
    ],
)
def test_an_error_inside_a_reply_is_the_core_type_of_its_code(
    code, ours, core, mode, how
):
    error = json.dumps(
        {"error": {"message": "no", "type": "BadRequestError", "code": code}}
    )
    with DfeHubEmulator() as emulator:
        if how == "stream":
            fault = ErrorStatus(200, f"data: {error}\n\n", "text/event-stream")
        else:
            fault = ErrorStatus(200, error)
        emulator.add_faults(*[fault] * 3)
        model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)
        with pytest.raises(core) as caught:
            call(model, mode, how)
    assert isinstance(caught.value, ours)
    assert caught.value.status_code == code


def test_the_public_service_is_still_called_dfehub():
    error = error_from_status(
        400, {}, b"", url="https://chat.dfehub.com/api/openai/v1/chat/completions"
    )
    assert str(error).startswith("DfeHub (chat.dfehub.com) returned HTTP 400")


# --- LangChain's own retry middleware, in a real agent ---


def _agent(emulator: DfeHubEmulator, **model_options: Any) -> Any:
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelRetryMiddleware

    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0, **model_options)
    retry = ModelRetryMiddleware(
        max_retries=2, initial_delay=0, jitter=False, on_failure="error"
    )
    return create_agent(model, tools=[], middleware=[retry])


def _run(agent: Any, mode: str) -> Any:
    state = {"messages": [("user", "hello")]}
    if mode == "sync":
        return agent.invoke(state)
    return asyncio.run(agent.ainvoke(state))


@pytest.mark.parametrize("mode", MODES)
def test_langchains_retry_middleware_does_not_retry_a_401(mode):
    with DfeHubEmulator(api_key="right") as emulator:
        agent = _agent(emulator, api_key="wrong")
        with pytest.raises(DfeHubAuthenticationError):
            _run(agent, mode)
        assert len(emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_langchains_retry_middleware_does_not_retry_a_400(mode):
    with DfeHubEmulator() as emulator:
        emulator.add_faults(ErrorStatus(400, '{"error": {"message": "bad"}}'))
        with pytest.raises(DfeHubInvalidRequestError):
            _run(_agent(emulator), mode)
        assert len(emulator.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_langchains_retry_middleware_retries_a_server_failure(mode):
    # The contrast that shows the middleware is really consulted: a 500 is
    # retryable, so it tries again (our own policy is off: max_retries=0).
    with DfeHubEmulator() as emulator:
        emulator.add_faults(ErrorStatus(500), ErrorStatus(500))
        result = _run(_agent(emulator), mode)
        assert len(emulator.requests) == 3
    assert result["messages"][-1].content == "hello"


# --- LangChain's summarisation middleware, on a context overflow ---


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", ["llama.cpp", "vllm"])
def test_langchains_summarisation_middleware_shortens_an_overflowing_summary(
    flavour, mode
):
    # The summary prompt is over the summary server's context: the middleware
    # recognises ContextOverflowError and tries once more with the middle of
    # the history cut out, which fits.
    from langchain.agents import create_agent
    from langchain.agents.middleware import SummarizationMiddleware

    history = []
    for turn in range(6):
        history.append(("user", f"question {turn} " + "word " * 60))
        history.append(("assistant", f"answer {turn} " + "word " * 60))
    history.append(("user", "and now?"))
    with (
        DfeHubEmulator() as main,
        DfeHubEmulator(flavour=flavour, context_size=500) as summariser,
    ):
        summarise = SummarizationMiddleware(
            ChatDfeHub(base_url=summariser.base_url, max_retries=0),
            trigger=("messages", 6),
            keep=("messages", 2),
            summary_prompt="Summarise: {messages}",
        )
        agent = create_agent(
            ChatDfeHub(base_url=main.base_url), tools=[], middleware=[summarise]
        )
        state = {"messages": history}
        if mode == "sync":
            result = agent.invoke(state)
        else:
            result = asyncio.run(agent.ainvoke(state))
        sent = [
            request.body["messages"][0]["content"] for request in summariser.requests
        ]
    assert len(sent) == 2, "the overflow, then the shortened prompt"
    assert "[... middle of conversation omitted ...]" in sent[1]
    assert len(sent[1]) < len(sent[0])
    assert result["messages"][-1].content == "and now?"
