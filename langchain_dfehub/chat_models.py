"""`ChatDfeHub`: the DfeHub chat service as a LangChain chat model.

The class wires LangChain's chat-model surface and nothing more. Message
conversion lives in `_messages`, tools and structured output in `_tools`, the
HTTP exchange in `_transport` (requests) and `_async_transport` (httpx), and
the decisions about a reply in `_stream_state`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import (
    BaseChatModel,
    LangSmithParams,
    LanguageModelInput,
)
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.load.serializable import (
    SerializedConstructor,
    SerializedNotImplemented,
)
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from langchain_dfehub._arguments import (
    CALL_SETTINGS,
    check_choices,
    merge_extra_body,
    sort_call_arguments,
    sort_init_arguments,
    user_stacklevel,
)
from langchain_dfehub._connection import (
    CertFiles,
    ConnectionCache,
    proxy_url,
    warn_unverified,
)
from langchain_dfehub._gate import GateState, ServiceGate, gate_for
from langchain_dfehub._gate._urls import check_gate_url, without_password
from langchain_dfehub._llm_output import combine_llm_outputs
from langchain_dfehub._messages import (
    chunk_to_message,
    messages_to_dicts,
    response_to_messages,
)
from langchain_dfehub._profiles import default_profile
from langchain_dfehub._refusals import refusal_checked
from langchain_dfehub._retry import RetryPolicy
from langchain_dfehub._server_profile import (
    afetch,
    cache_key,
    cached,
    fetch,
    models_url,
    profile_from_reply,
    remember,
)
from langchain_dfehub._settings import (
    CallSettings,
    authorization,
    check_client,
    check_files,
    check_headers,
    check_json_numbers,
    check_key,
    check_timeout,
    header_values,
    header_variable,
    hide_credential_headers,
    is_credential_header,
    proxy_with_credentials_from_environment,
    secret_forms,
    split_credentials,
)
from langchain_dfehub._stream_state import Request
from langchain_dfehub._tokens import count_message_tokens, pseudo_token_ids
from langchain_dfehub._tools import (
    StructuredMethod,
    ToolLike,
    default_method,
    parse_unless_tool_call,
    response_format_to_wire,
    structured_output_parts,
    tool_choice_to_wire,
    tools_to_wire,
)
from langchain_dfehub._transport import SyncTransport
from langchain_dfehub._urls import chat_completions_url, display_url
from langchain_dfehub._version import __version__

if TYPE_CHECKING:
    from langchain_core.language_models.model_profile import ModelProfile
    from typing_extensions import Self

    from langchain_dfehub._async_transport import AsyncTransport

DEFAULT_BASE_URL = "https://chat.dfehub.com/api/openai/v1"
DEFAULT_MODEL = "gpt-3.5-turbo"

# Fields sent in the body when the user set them, under the same name.
_SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "max_tokens",
    "n",
    "logprobs",
    "top_logprobs",
)
# What a call's arguments may set in the body under a field's name.
_BODY_FIELDS = ("model", "stop", *_SAMPLING_FIELDS)
_USER_AGENT = f"langchain-dfehub/{__version__}"
_STREAM_ACCEPT = "text/event-stream, application/json"
_ASYNC_SETUP = threading.Lock()


def _fresh_async_setup_lock() -> None:
    # A fork while another thread held the lock would leave the child's copy
    # held for ever, and its first async call waiting on it.
    global _ASYNC_SETUP
    _ASYNC_SETUP = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_fresh_async_setup_lock)
# Marks a pickled model whose credentials were left out (see `__getstate__`).
_CREDENTIALS_LEFT_OUT = "__dfehub_credentials_left_out__"
# The names of credential headers left out of a pickle, read back from
# their variables (see `header_variable`).
_HEADERS_LEFT_OUT = "__dfehub_headers_left_out__"


class ChatDfeHub(BaseChatModel):
    """Chat model for the DfeHub chat service or any OpenAI-compatible server.

    Setup:
        Install `langchain-dfehub`. The public service needs no key; set
        `DFEHUB_API_KEY` (or `api_key=`) for a server that wants one, and
        `DFEHUB_BASE_URL` (or `base_url=`) to use another server, such as a
        local llama.cpp server, vLLM, Ollama's `/v1` or LM Studio.

    Example:
        ```python
        from langchain_dfehub import ChatDfeHub

        model = ChatDfeHub(temperature=0.5, max_retries=3)
        model.invoke("Hello!")
        ```

    Throttling: when the service answers with its `detail` text ("... Expected
    available in 3.5 seconds."), every call to that service waits as long as
    the text says at one shared gate, then tries again; a throttle is not a
    failed attempt, so it is bounded by time (`max_retry_wait` for one wait,
    `throttle_budget` for all of a call's), not by `max_retries`, which
    bounds retries after errors. Once text has reached the caller, a failure
    is raised, never retried, so no text is delivered twice.
    """

    # A validation error must not print the arguments: they may hold the key.
    model_config = ConfigDict(populate_by_name=True, hide_input_in_errors=True)

    model: str = DEFAULT_MODEL
    """Name of the model to use; the service served `gpt-3.5-turbo`."""

    base_url: str = Field(
        default_factory=from_env("DFEHUB_BASE_URL", default=DEFAULT_BASE_URL)
    )
    """Base URL of the API; requests go to `{base_url}/chat/completions`.

    Read from `DFEHUB_BASE_URL` when not given. Credentials in it
    (`https://user:password@host/...`) are taken out of the URL when the model
    is built and sent as HTTP Basic authorization, unless `api_key` is set,
    which wins."""

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("DFEHUB_API_KEY", default=None)
    )
    """Key sent as `Authorization: Bearer ...`, only when set.

    Read from `DFEHUB_API_KEY` when not given."""

    temperature: float | None = Field(default=None, allow_inf_nan=False)
    """Sampling temperature; the server's default when unset."""

    top_p: float | None = Field(default=None, allow_inf_nan=False)
    """Nucleus-sampling probability mass; the server's default when unset."""

    presence_penalty: float | None = Field(default=None, allow_inf_nan=False)
    """Penalty for tokens already present in the text so far."""

    frequency_penalty: float | None = Field(default=None, allow_inf_nan=False)
    """Penalty for tokens in proportion to how often they appeared so far."""

    max_tokens: int | None = None
    """Most tokens the answer may have; the server's default when unset."""

    n: int | None = Field(default=None, ge=1)
    """How many answers (choices) to generate; each becomes a generation.

    Above 1 only without streaming: a stream delivers one message."""

    logprobs: bool | None = None
    """Ask for each answer token's log probability, returned in
    `response_metadata["logprobs"]`."""

    top_logprobs: int | None = Field(default=None, ge=0)
    """How many most likely alternatives to return per token (with
    `logprobs=True`)."""

    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Sequences at which the server stops the answer (one string is a list
    of one)."""

    timeout: float | tuple[float, float] | None = (10.0, 120.0)
    """Seconds to wait: one number for both, or a `(connect, read)` pair.

    The read timeout bounds each wait for data, so a stream that stalls
    between chunks ends with `DfeHubTimeoutError` rather than hanging; a
    non-streaming call must receive its whole answer within it. `None` waits
    for data without limit; `deadline` still bounds the whole call."""

    max_retries: int = Field(default=2, ge=0)
    """Most retries after an error: a 5xx or 408 reply, a failed connection
    or a connect timeout.

    So at most `max_retries + 1` requests per call for errors. Throttles do
    not count against it: see `throttle_budget`."""

    max_retry_wait: float = Field(default=60.0, ge=0, allow_inf_nan=False)
    """Longest single wait, in seconds, that a throttle may impose on a call.

    A longer wait (asked by the server, or left at the service's closed gate)
    is not slept through: `DfeHubRateLimitError` is raised at once, with
    `retry_after` set to the wait."""

    throttle_budget: float = Field(default=60.0, ge=0, allow_inf_nan=False)
    """Most seconds one call spends waiting out throttles, in all.

    Throttles are not failed attempts: every call to a service waits at one
    shared gate while the service throttles (see `throttle_state`), and is
    bounded by this time rather than by `max_retries`. A call that would
    wait past it raises `DfeHubRateLimitError` without being sent; `0`
    raises on the first throttle."""

    throttle_scope: Literal["auto", "service", "model"] = "auto"
    """Which calls a throttle holds back: `"service"` (every call to the
    endpoint with this key, as Django REST Framework's per-client throttle,
    the DfeHub service's, means), `"model"` (only calls to the throttled
    model, as per-model limits mean: OpenAI's, LiteLLM deployments',
    OpenRouter's), or `"auto"`: a throttle that names the model or speaks of
    one ("Rate limit reached for gpt-4o ...", "No deployments available for
    selected model") is per model, any other is per service."""

    gate: str | None = Field(default_factory=from_env("DFEHUB_GATE_URL", default=None))
    """Where the throttle gate lives: None (one gate per process), a
    `redis://`, `rediss://` or `unix://` URL (one gate for every process of
    every host using that Redis or Valkey server; needs the `redis` extra),
    or `sqlite:///path` (one gate for the processes of one host, through that
    file). Read from `DFEHUB_GATE_URL` when not given. A password in it is
    taken out of the setting, as base_url's is. If the store fails, calls go
    on through the process's own gate."""

    streaming: bool = False
    """Whether `invoke` streams the answer under the hood (callbacks then see
    every token)."""

    stream_usage: bool = True
    """Whether streams ask for token usage (`stream_options.include_usage`).

    Turn off for an old server that rejects `stream_options`."""

    reasoning_in_history: bool = False
    """Whether earlier answers' reasoning is sent back in the history.

    When on, an `AIMessage` with `additional_kwargs["reasoning_content"]` (or
    `reasoning` blocks) goes back with a `reasoning_content` field, as
    DeepSeek's thinking mode with tool calls wants. Off by default: older
    endpoints reject a field they do not know on a message."""

    deadline: float | None = Field(default=600.0, gt=0, allow_inf_nan=False)
    """Most seconds one call may take, retries included; `None` for no limit.

    Checked as data arrives, so a server that trickles its reply (each wait
    shorter than the read timeout) still ends with `DfeHubTimeoutError`
    (`phase="deadline"`), never retried."""

    verify: bool | str = True
    """Check the server's TLS certificate: `True` (against `SSL_CERT_FILE`,
    `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE` when set, else certifi's
    bundle), the path of a CA bundle file or directory, or `False` (unsafe)."""

    cert: CertFiles | None = None
    """A client certificate: a PEM file with certificate and key, or a
    `(certificate, key)` pair of files."""

    proxy: str | None = None
    """Proxy URL for every request. When unset, `HTTPS_PROXY` / `HTTP_PROXY` /
    `ALL_PROXY` and `NO_PROXY` decide; `""` connects directly regardless.
    Credentials in it are taken out, as for `base_url`: used, never shown."""

    http_client: Any = Field(default=None, exclude=True, repr=False)
    """Your own `requests.Session` for the sync path, used as it is (its TLS,
    proxy and adapters; `verify`, `cert` and `proxy` are then not applied).
    You close it."""

    http_async_client: Any = Field(default=None, exclude=True, repr=False)
    """Your own `httpx.AsyncClient` for the async path, used as it is, on the
    event loop it belongs to. You close it."""

    default_headers: dict[str, str | SecretStr] | None = None
    """Extra HTTP headers sent with every request.

    A credential among them (`Authorization`, `X-Api-Key`, a cookie, any
    name with a key or a token) is kept as a `SecretStr`, like `api_key`:
    sent, never shown; left out of pickles and `dumpd`, which name the
    variable it is read from instead (`DFEHUB_HEADER_X_API_KEY`)."""

    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra fields for the request body, sent as given (e.g. `seed`)."""

    extra_body: dict[str, Any] | None = None
    """Fields merged at the top level of every request body, for a server's own
    parameters (vLLM's `top_k`, `chat_template_kwargs`); a call's
    `extra_body=` is merged over it."""

    _sync_transport: SyncTransport = PrivateAttr(default_factory=SyncTransport)
    _async_transport: AsyncTransport | None = None
    # `user:password` taken out of base_url; sent, never shown or pickled.
    _url_credentials: SecretStr | None = PrivateAttr(default=None)
    # The proxy URL with its credentials, when `proxy` had some: the same.
    _proxy_url: SecretStr | None = PrivateAttr(default=None)
    # The gate URL with its password, when it had one: the same.
    _gate_url: SecretStr | None = PrivateAttr(default=None)
    # Whether `verify=False` was warned of, when built or else on first use.
    _unverified_warned: bool = PrivateAttr(default=False)
    _connections: ConnectionCache = PrivateAttr(default_factory=ConnectionCache)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        chat_completions_url(value)  # raises a clear ValueError when unusable
        return value

    @field_validator("gate")
    @classmethod
    def _check_gate(cls, value: str | None) -> str | None:
        if not value:
            return None
        check_gate_url(value)
        return value

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("timeout")
    @classmethod
    def _check_timeout(
        cls, value: float | tuple[float, float] | None
    ) -> float | tuple[float, float] | None:
        check_timeout(value)
        return value

    @field_validator("model_kwargs", "extra_body")
    @classmethod
    def _check_body_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        check_json_numbers(value, str(info.field_name))
        return value

    @field_validator("default_headers", mode="before")
    @classmethod
    def _hide_credential_headers(cls, value: Any) -> Any:
        return hide_credential_headers(value) if isinstance(value, dict) else value

    @field_validator("http_client")
    @classmethod
    def _check_http_client(cls, value: Any) -> Any:
        check_client(value, "http_client", ("post", "close"), "a requests.Session")
        return value

    @field_validator("http_async_client")
    @classmethod
    def _check_http_async_client(cls, value: Any) -> Any:
        needs = ("build_request", "send", "aclose")
        check_client(value, "http_async_client", needs, "an httpx.AsyncClient")
        return value

    def __init__(self, **kwargs: Any) -> None:
        """Build the model; see the fields for the arguments."""
        super().__init__(**kwargs)
        # Checked here, after pydantic's validation: its errors quote the
        # input, which may be the key or a header holding one.
        check_headers(self.default_headers)
        if self.api_key is not None:
            check_key(self.api_key.get_secret_value())

    @model_validator(mode="after")
    def _check_files_and_credentials(self) -> ChatDfeHub:
        check_files(self.verify, self.cert)
        bare, credentials = split_credentials(self.base_url)
        if credentials is not None:
            self.base_url = bare
            self._url_credentials = SecretStr(credentials)
        if self.gate is not None:
            bare = without_password(self.gate)
            if bare != self.gate:
                self._gate_url = SecretStr(self.gate)
                self.gate = bare
        if self.verify is False:
            self._unverified_warned = True
            warn_unverified(self.base_url, user_stacklevel())
        if self.proxy:
            full = proxy_url(self.proxy, "proxy=")
            self.proxy, credentials = split_credentials(full)
            if credentials is not None:
                self._proxy_url = SecretStr(full)
        return self

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        """A deep copy that shares the user's own HTTP clients.

        A client is the user's, with its sockets, locks and event loop: it
        cannot be copied (deep-copying one raises), and two of them would
        need closing twice. `copy.copy` and `model_copy` share them too.
        """
        memo = {} if memo is None else memo
        for client in (self.http_client, self.http_async_client):
            if client is not None:
                memo[id(client)] = client  # "already copied": as itself
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without credentials, which must not travel in clear.

        The key and the credentials of base_url and proxy are left out; the
        unpickled model reads them from `DFEHUB_API_KEY`, `DFEHUB_BASE_URL`
        and the proxy variables again. A user's own HTTP clients belong to
        this process and are left out too.
        """
        state = super().__getstate__()
        fields = dict(state["__dict__"])
        private = dict(state.get("__pydantic_private__") or {})
        left_out = (
            fields.get("api_key") is not None
            or private.get("_url_credentials") is not None
            or private.get("_proxy_url") is not None
            or private.get("_gate_url") is not None
        )
        hidden = self._credential_headers()
        if hidden:
            fields["default_headers"] = {
                name: value
                for name, value in (self.default_headers or {}).items()
                if name not in hidden
            }
        fields.update(api_key=None, http_client=None, http_async_client=None)
        private.update(_url_credentials=None, _proxy_url=None, _gate_url=None)
        return {
            **state,
            "__dict__": fields,
            "__pydantic_private__": private,
            _CREDENTIALS_LEFT_OUT: left_out,
            _HEADERS_LEFT_OUT: hidden,
        }

    def __setstate__(self, state: dict[Any, Any]) -> None:
        """Unpickle, reading left-out credentials from the environment."""
        state = dict(state)
        left_out = state.pop(_CREDENTIALS_LEFT_OUT, False)
        headers_left_out = state.pop(_HEADERS_LEFT_OUT, [])
        super().__setstate__(state)
        for name in headers_left_out:
            value = os.environ.get(header_variable(name))
            if value:
                headers = dict(self.default_headers or {})
                headers[name] = SecretStr(value)
                self.__dict__["default_headers"] = headers
        if left_out:
            key = secret_from_env("DFEHUB_API_KEY", default=None)()
            self.__dict__["api_key"] = key
            bare, credentials = split_credentials(os.environ.get("DFEHUB_BASE_URL", ""))
            if credentials is not None and bare == self.base_url:
                self._url_credentials = SecretStr(credentials)
            proxy = proxy_with_credentials_from_environment(self.proxy)
            if proxy is not None:
                self._proxy_url = SecretStr(proxy)
            gate = os.environ.get("DFEHUB_GATE_URL", "")
            if gate and self.gate is not None and without_password(gate) == self.gate:
                self._gate_url = SecretStr(gate)

    @model_validator(mode="before")
    @classmethod
    def _collect_extra_fields(cls, values: Any) -> Any:
        """Rename ChatOpenAI's spellings, refuse settings, move the rest to the body."""
        if not isinstance(values, dict):
            return values
        return sort_init_arguments(values, cls.model_fields)

    @model_validator(mode="after")
    def _set_dfehub_version(self) -> ChatDfeHub:
        # Traces name this package beside langchain-core's and langchain's.
        self._add_version("langchain-dfehub", __version__)
        return self

    @model_validator(mode="after")
    def _one_choice_when_streaming(self) -> ChatDfeHub:
        if self.streaming and self.n is not None and self.n > 1:
            msg = "n must be 1 with streaming=True: a stream delivers one message."
            raise ValueError(msg)
        return self

    # --- LangChain identity ---------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "dfehub-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "base_url": display_url(self.base_url),
        }
        for name in (*_SAMPLING_FIELDS, "stop"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        return params

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="dfehub",
            ls_model_name=kwargs.get("model") or self.model,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stop = stop or self.stop
        if stop:
            params["ls_stop"] = stop
        return params

    def _resolve_model_profile(self) -> ModelProfile | None:
        """The known profile of `model`'s family (see `_profiles`), if any."""
        return default_profile(self.model)

    def fetch_profile(self, *, refresh: bool = False) -> ModelProfile:
        """Ask the server for `model`'s profile, set it as `profile`, return it.

        Reads `GET {base_url}/models`: vLLM reports the context size it
        serves (`max_model_len`), llama.cpp the loaded model's
        (`meta.n_ctx_train`); both enforce `json_schema` output. What the
        server does not say comes from the known profile of the name. The
        answer is kept for the process, per endpoint, model and key;
        `refresh=True` asks again.

        Raises:
            DfeHubError: (a subclass) when the server cannot be reached or
                answers with an error or something other than a model list.
        """
        url, key, headers, timeout, connection = self._profile_request()
        profile = None if refresh else cached(key)
        if profile is None:
            session = self._transport.session(connection)
            status, reply_headers, body = fetch(
                session, connection, url, headers, timeout
            )
            profile = remember(key, self._read_profile(status, reply_headers, body))
        self.profile = profile
        return profile

    async def afetch_profile(self, *, refresh: bool = False) -> ModelProfile:
        """`fetch_profile` on the async path (httpx)."""
        url, key, headers, timeout, connection = self._profile_request()
        profile = None if refresh else cached(key)
        if profile is None:
            status, reply_headers, body = await afetch(
                connection, url, headers, timeout
            )
            profile = remember(key, self._read_profile(status, reply_headers, body))
        self.profile = profile
        return profile

    def _profile_request(self) -> tuple[Any, ...]:
        url = models_url(self.base_url)
        header, secret = authorization(self.api_key, self._url_credentials)
        headers = self._headers(stream=False, authorization=header)
        del headers["Content-Type"]  # a GET has no body
        connect, read = (
            self.timeout if isinstance(self.timeout, tuple) else (self.timeout,) * 2
        )
        connection = self._connections.get(
            chat_completions_url(self.base_url),
            verify=self.verify,
            cert=self.cert,
            proxy=self._proxy_to_use(),
            http_client=self.http_client,
            http_async_client=self.http_async_client,
        )
        key = cache_key(url, self.model, secret)
        return url, key, headers, (connect, read), connection

    def _read_profile(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> ModelProfile:
        _, secret = authorization(self.api_key, self._url_credentials)
        return profile_from_reply(
            status,
            headers,
            body,
            url=models_url(self.base_url),
            model=self.model,
            secret=secret,
        )

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """The model can be saved with `dumpd` and loaded back (keys excluded)."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Where `load` finds this class."""
        return ["langchain_dfehub", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """The key is stored as a reference to its environment variable."""
        return {"api_key": "DFEHUB_API_KEY"}

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        """The model as `dumpd` saves it, without credential headers.

        LangChain's secret references name top-level arguments only (one
        inside `default_headers` would be saved as data), so a credential
        header is left out, as a pickle leaves it out; give it to the loaded
        model again.
        """
        saved = super().to_json()
        hidden = self._credential_headers()
        kwargs = saved.get("kwargs")
        if hidden and isinstance(kwargs, dict) and kwargs.get("default_headers"):
            kwargs["default_headers"] = {
                name: value
                for name, value in kwargs["default_headers"].items()
                if name not in hidden
            }
        return saved

    def _credential_headers(self) -> list[str]:
        headers = self.default_headers or {}
        return [name for name in headers if is_credential_header(name)]

    # --- requests ---------------------------------------------------------------

    def _request(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        *,
        stream: bool,
        **kwargs: Any,
    ) -> Request:
        body: dict[str, Any] = {"model": self.model}
        for name in _SAMPLING_FIELDS:
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        stop = stop if stop is not None else self.stop
        if stop:
            body["stop"] = stop
        body.update(self.model_kwargs)
        stream_usage = kwargs.pop("stream_usage", self.stream_usage)
        call_extra_body = kwargs.pop("extra_body", None)
        own, fields = sort_call_arguments(kwargs, type(self).model_fields, _BODY_FIELDS)
        body.update(fields)
        settings = CallSettings(
            **{name: own.get(name, getattr(self, name)) for name in CALL_SETTINGS}
        )
        merge_extra_body(body, self.extra_body, call_extra_body)
        check_choices(body, stream=stream)
        body["messages"] = messages_to_dicts(
            messages, reasoning_in_history=self.reasoning_in_history
        )
        body["stream"] = stream
        if stream and stream_usage:
            body["stream_options"] = {"include_usage": True}
        connect, read = settings.connect_and_read
        url = chat_completions_url(self.base_url)
        header, secret = authorization(self.api_key, self._url_credentials)
        # A header set after the model was built is hidden now, as it is sent.
        credentials = hide_credential_headers(self.default_headers)
        if self.verify is False and not self._unverified_warned:
            # Set on a copy or after the model was built: warned of now.
            self._unverified_warned = True
            warn_unverified(self.base_url, user_stacklevel())
        return Request(
            url=url,
            headers=self._headers(stream, header),
            body=_json_body(body),
            stream=stream,
            connect_timeout=connect,
            read_timeout=read,
            secret=secret_forms(header, credentials),
            policy=RetryPolicy(
                max_retries=settings.max_retries,
                max_retry_wait=settings.max_retry_wait,
                throttle_budget=settings.throttle_budget,
                gate=self._gate(url, secret),
                model=body["model"] if isinstance(body.get("model"), str) else None,
                throttle_scope=self.throttle_scope,
            ),
            connection=self._connections.get(
                url,
                verify=self.verify,
                cert=self.cert,
                proxy=self._proxy_to_use(),
                http_client=self.http_client,
                http_async_client=self.http_async_client,
            ),
            deadline=settings.deadline,
        )

    def _proxy_to_use(self) -> str | None:
        """The proxy field, with the credentials taken out of it put back."""
        hidden = self._proxy_url
        if hidden is not None and self.proxy:
            full = hidden.get_secret_value()
            if split_credentials(full)[0] == self.proxy:
                return full
        return self.proxy

    def _headers(self, stream: bool, authorization: str | None) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            # Strict content negotiation (Django REST Framework and others)
            # answers 406 to a request that accepts only `text/event-stream`;
            # naming JSON too is accepted everywhere, as the openai SDK does.
            "Accept": _STREAM_ACCEPT if stream else "application/json",
            "User-Agent": _USER_AGENT,
        }
        # Checked again on each call: a copy with new values, or a field set
        # after the model was built, was not checked then; sent, such a value
        # would be reported as an unreachable server, and retried.
        if authorization:
            check_key(authorization)
            headers["Authorization"] = authorization
        if self.default_headers:
            check_headers(self.default_headers)
            headers.update(header_values(self.default_headers))
        return headers

    @property
    def _transport(self) -> SyncTransport:
        return self._sync_transport

    @property
    def _atransport(self) -> AsyncTransport:
        transport = self._async_transport
        if transport is None:
            # Imported on first async use: httpx is not needed before.
            from langchain_dfehub._async_transport import AsyncTransport

            with _ASYNC_SETUP:  # one transport, even if two threads race here
                if self._async_transport is None:
                    self._async_transport = AsyncTransport()
                transport = self._async_transport
        return transport

    def _gate(self, url: str, secret: str | None) -> ServiceGate:
        store = self._gate_url.get_secret_value() if self._gate_url else self.gate
        return gate_for(url, secret, store)

    @property
    def throttle_state(self) -> GateState:
        """What this model's service gate knows: closed or open, pace, counts.

        Shared by every model, thread and event loop of the process that uses
        the same endpoint and key (and by every process, with a shared `gate`:
        then the counts are the fleet's, and `store` names where it lives);
        `closed_for`, `pace` and `probing` are those a call to this model
        meets (the service's, and its model's).
        """
        url = chat_completions_url(self.base_url)
        _, secret = authorization(self.api_key, self._url_credentials)
        return self._gate(url, secret).state(self.model)

    def close(self) -> None:
        """Close pooled connections (they reopen if the model is used again)."""
        self._sync_transport.close()

    async def aclose(self) -> None:
        """Close the current event loop's pooled async connections."""
        if self._async_transport is not None:
            await self._async_transport.aclose()

    # --- LangChain's chat-model hooks --------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return generate_from_stream(
                self._stream(messages, stop, run_manager, **kwargs)
            )
        request = self._request(messages, stop, stream=False, **kwargs)
        return _chat_result(self._transport.complete(request))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return await agenerate_from_stream(
                self._astream(messages, stop, run_manager, **kwargs)
            )
        request = self._request(messages, stop, stream=False, **kwargs)
        return _chat_result(await self._atransport.complete(request))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # LangChain's `stream` reports each chunk to the callbacks itself.
        request = self._request(messages, stop, stream=True, **kwargs)
        v1 = self.output_version == "v1"
        for data in self._transport.stream(request):
            yield _generation_chunk(data, v1=v1)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, stop, stream=True, **kwargs)
        v1 = self.output_version == "v1"
        async for data in self._atransport.stream(request):
            yield _generation_chunk(data, v1=v1)

    def _combine_llm_outputs(
        self, llm_outputs: list[dict[str, Any] | None]
    ) -> dict[str, Any]:
        """Token usage summed over the results, and the model, as ChatOpenAI's."""
        return combine_llm_outputs(llm_outputs, self.model)

    # --- token counting ---------------------------------------------------------------

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of the text: `custom_get_token_ids`'s, or offline stand-ins.

        Without `custom_get_token_ids`, the ids stand for an offline estimate
        of the tokens (see `_tokens`): their number is the estimated count,
        within about 5% of gpt-3.5-turbo's tokenizer on whole texts.
        """
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        return pseudo_token_ids(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Tokens of a conversation as one request: text, tool calls, tools.

        Adds OpenAI's accounting of 3 tokens per message, 1 per name and 3 for
        the reply; images, audio and files are not counted.
        """
        return count_message_tokens(messages, self.get_num_tokens, tools)

    # --- tools and structured output -----------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[ToolLike],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        response_format: dict[str, Any] | type | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the model may call.

        Args:
            tools: Tools as LangChain tools, functions, pydantic classes,
                TypedDicts or OpenAI function dicts.
            tool_choice: `"auto"`, `"none"`, `"required"` (or `"any"`), a tool
                name to force that tool, `True` to force some tool, or a dict
                in the wire format.
            strict: Ask the server to follow the tools' schemas exactly.
            parallel_tool_calls: Allow (or forbid) several calls in one answer;
                the server's default when unset.
            response_format: A schema for the answer when the model calls no
                tool (a pydantic class, TypedDict, JSON schema or
                `response_format` dict); the JSON arrives in `content`. With
                it, tools default to `strict=True`, as OpenAI requires.
            **kwargs: More request fields to bind.
        """
        if response_format is not None:
            if strict is None:
                strict = True
            kwargs["response_format"] = response_format_to_wire(response_format, strict)
        wire_tools = tools_to_wire(tools, strict=strict)
        choice = tool_choice_to_wire(tool_choice, wire_tools)
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        if wire_tools:  # OpenAI refuses an empty `tools` list
            kwargs["tools"] = wire_tools
        return super().bind(**kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: StructuredMethod | None = None,
        include_raw: bool = False,
        strict: bool | None = None,
        tools: Sequence[ToolLike] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Return a runnable whose output follows `schema`.

        Args:
            schema: A pydantic class (output is an instance), a TypedDict, a
                JSON schema or an OpenAI function dict (output is a dict).
            method: `"json_schema"` (`response_format` with the schema, which
                llama.cpp, vLLM and Ollama enforce while decoding),
                `"function_calling"` (a forced tool call; raises
                `OutputParserException` when the server ignores the forced
                tool and the model answers in prose) or `"json_mode"` (a JSON
                object; say in the prompt which keys you want). By default,
                `"function_calling"` when `profile` says the model has no
                native structured output (gpt-3.5-turbo, DeepSeek's models),
                else `"json_schema"`.
            include_raw: Return `{"raw", "parsed", "parsing_error"}` instead of
                raising when the answer does not parse.
            strict: Ask the server to follow the schema exactly (the schema is
                made strict-mode compliant).
            tools: Tools the model may call instead of answering, with
                `method="json_schema"`: an answer that calls a tool parses to
                `None` (use `include_raw=True` to see the calls).
            **kwargs: Not accepted; present to report misuse clearly.

        Raises:
            ValueError: on an unknown method or unexpected arguments.

        The runnable raises `DfeHubRefusalError` (a `ModelRefusalError`)
        when the model refuses, rather than a parsing error.
        """
        if method is None:
            method = default_method(self.profile)
        if kwargs:
            msg = f"with_structured_output got unexpected arguments {sorted(kwargs)}."
            raise ValueError(msg)
        bound_kwargs, parser = structured_output_parts(schema, method, strict)
        if tools:
            if method != "json_schema":
                msg = (
                    f"with_structured_output(tools=...) needs method='json_schema',"
                    f" not {method!r}: the other methods use tools themselves."
                )
                raise ValueError(msg)
            bound_kwargs["tools"] = tools_to_wire(tools, strict=strict)
            parser = parse_unless_tool_call(parser)
        parser = refusal_checked(parser)
        structured_format = {
            "kwargs": {"method": method, "strict": strict},
            "schema": schema,
        }
        model = self.bind(ls_structured_output_format=structured_format, **bound_kwargs)
        if not include_raw:
            return model | parser
        parse = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        keep_error = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=model) | parse.with_fallbacks(
            [keep_error], exception_key="parsing_error"
        )


def _json_body(body: dict[str, Any]) -> bytes:
    """The request body as JSON, refusing numbers JSON cannot carry."""
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False)
    except ValueError:
        msg = (
            "A request parameter is NaN or infinite, which JSON cannot carry;"
            " check the numbers given to the model or the call."
        )
        raise ValueError(msg) from None
    return text.encode()


def _chat_result(response: Mapping[str, Any]) -> ChatResult:
    llm_output = {
        "model_name": response.get("model"),
        "token_usage": response.get("usage"),
        "id": response.get("id"),
        "system_fingerprint": response.get("system_fingerprint"),
    }
    return ChatResult(
        generations=[
            ChatGeneration(
                message=message,
                generation_info={
                    "finish_reason": message.response_metadata.get("finish_reason")
                },
            )
            for message in response_to_messages(response)
        ],
        llm_output=llm_output,
    )


def _generation_chunk(data: Mapping[str, Any], *, v1: bool) -> ChatGenerationChunk:
    message, finish_reason = chunk_to_message(data)
    if v1 and message.response_metadata:
        # Tells our block translator (`_content_blocks`) the chunk's blocks
        # will be merged by index.
        message.response_metadata["output_version"] = "v1"
    if finish_reason is None:
        return ChatGenerationChunk(message=message)
    return ChatGenerationChunk(
        message=message, generation_info={"finish_reason": finish_reason}
    )


__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "ChatDfeHub"]
