"""`ChatDfeHub`'s settings: its fields and their validation.

A pydantic base class rather than a mixin, since pydantic reads fields only
from models. `_saving` adds how a model is copied, pickled and saved;
`ChatDfeHub` (in `chat_models`) adds LangChain's surface on top, and its
class, and so its `lc` path and pickles, stay in `chat_models`. What the
fields mean for a request is `_request_builder`'s business.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.language_models import BaseChatModel
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

from langchain_dfehub._arguments import sort_init_arguments, user_stacklevel
from langchain_dfehub._call_target import TargetCache
from langchain_dfehub._connection import (
    CertFiles,
    ConnectionCache,
    proxy_url,
    warn_unverified,
)
from langchain_dfehub._gate_urls import check_gate_url, without_password
from langchain_dfehub._settings import (
    check_client,
    check_files,
    check_headers,
    check_json_numbers,
    check_key,
    check_timeout,
    hide_credential_headers,
    is_credential_header,
    split_credentials,
)
from langchain_dfehub._urls import chat_completions_url
from langchain_dfehub._version import __version__

if TYPE_CHECKING:
    from typing_extensions import Self

    from langchain_dfehub._async_transport import AsyncTransport
    from langchain_dfehub._transport import SyncTransport

DEFAULT_BASE_URL = "https://chat.dfehub.com/api/openai/v1"
DEFAULT_MODEL = "gpt-3.5-turbo"

_TRANSPORT_SETUP = threading.Lock()


def _fresh_transport_setup_lock() -> None:
    # A fork while another thread held the lock would leave the child's copy
    # held for ever, and its first call waiting on it.
    global _TRANSPORT_SETUP
    _TRANSPORT_SETUP = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_fresh_transport_setup_lock)


class ChatDfeHubFields(BaseChatModel):
    """The fields of `ChatDfeHub`, checked when the model is built.

    Credentials are taken out of URLs here, and left out of copies' pickles
    here, so that no other module has to know where they are kept.
    """

    # A validation error must not print the arguments: they may hold the key.
    # Only `ChatDfeHub` is ever built, and pydantic makes its validator from
    # all its fields: one made for this base too would be thrown away.
    model_config = ConfigDict(
        populate_by_name=True, hide_input_in_errors=True, defer_build=True
    )

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

    # Both made on first use: importing and building a model loads neither
    # `requests`' adapters nor httpx, tenacity or the transports.
    _sync_transport: SyncTransport | None = PrivateAttr(default=None)
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
    _targets: TargetCache = PrivateAttr(default_factory=TargetCache)

    @field_validator("gate")
    @classmethod
    def _check_gate(cls, value: str | None) -> str | None:
        if not value:
            return None
        check_gate_url(value)
        return value

    def _gate_store(self) -> str | None:
        """The gate setting with its password, for the store to connect."""
        return self._gate_url.get_secret_value() if self._gate_url else self.gate

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        chat_completions_url(value)  # raises a clear ValueError when unusable
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
    def _check_files_and_credentials(self) -> Self:
        check_files(self.verify, self.cert)
        bare, credentials = split_credentials(self.base_url)
        if credentials is not None:
            self.base_url = bare
            self._url_credentials = SecretStr(credentials)
        if self.verify is False:
            self._unverified_warned = True
            warn_unverified(self.base_url, user_stacklevel())
        if self.proxy:
            full = proxy_url(self.proxy, "proxy=")
            self.proxy, credentials = split_credentials(full)
            if credentials is not None:
                self._proxy_url = SecretStr(full)
        if self.gate is not None:
            bare = without_password(self.gate)
            if bare != self.gate:
                self._gate_url = SecretStr(self.gate)
                self.gate = bare
        return self

    @model_validator(mode="before")
    @classmethod
    def _collect_extra_fields(cls, values: Any) -> Any:
        """Rename ChatOpenAI's spellings, refuse settings, move the rest to the body."""
        if not isinstance(values, dict):
            return values
        return sort_init_arguments(values, cls.model_fields)

    @model_validator(mode="after")
    def _set_dfehub_version(self) -> Self:
        # Traces name this package beside langchain-core's and langchain's.
        self._add_version("langchain-dfehub", __version__)
        return self

    @model_validator(mode="after")
    def _one_choice_when_streaming(self) -> Self:
        if self.streaming and self.n is not None and self.n > 1:
            msg = "n must be 1 with streaming=True: a stream delivers one message."
            raise ValueError(msg)
        return self

    @property
    def _transport(self) -> SyncTransport:
        # Read from pydantic's dict of private values: `self._sync_transport`
        # goes through `BaseModel.__getattr__`'s slow path on every call.
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        transport: SyncTransport | None = private["_sync_transport"]
        if transport is None:
            from langchain_dfehub._transport import SyncTransport

            with _TRANSPORT_SETUP:  # one transport, even if two threads race here
                if private["_sync_transport"] is None:
                    private["_sync_transport"] = SyncTransport()
                transport = private["_sync_transport"]
        assert transport is not None
        return transport

    @property
    def _atransport(self) -> AsyncTransport:
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        transport: AsyncTransport | None = private["_async_transport"]
        if transport is None:
            # Imported on first async use: httpx is not needed before.
            from langchain_dfehub._async_transport import AsyncTransport

            with _TRANSPORT_SETUP:  # one transport, even if two threads race here
                if self._async_transport is None:
                    self._async_transport = AsyncTransport()
                transport = self._async_transport
        return transport

    def _credential_headers(self) -> list[str]:
        headers = self.default_headers or {}
        return [name for name in headers if is_credential_header(name)]
