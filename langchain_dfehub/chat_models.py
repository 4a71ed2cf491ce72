"""`ChatDfeHub`: the DfeHub chat service as a LangChain chat model.

The class wires LangChain's chat-model surface and nothing more. Its fields
and their validation live in `_model_fields`, its copies, pickles and `dumpd`
in `_saving`, the building of a request in `_request_builder`, what tracers
read in `_tracing`, and LangChain's result types in `_results`; message
conversion in `_messages`, tools and structured output in `_tools`, the
server's profile in `_profile_lookup`, the HTTP exchange in `_transport`
(requests) and `_async_transport` (httpx), and the decisions about a reply
in `_stream_state`.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict

from langchain_dfehub._model_fields import (
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    ChatDfeHubFields,
)
from langchain_dfehub._saving import SavedChatDfeHub
from langchain_dfehub._settings import authorization
from langchain_dfehub._tools import (
    StructuredMethod,
    ToolLike,
    default_method,
    tool_fields,
)
from langchain_dfehub._tracing import (
    combine_llm_outputs,
    identifying_params,
    langsmith_params,
)
from langchain_dfehub._urls import chat_completions_url

if TYPE_CHECKING:
    from langchain_core.language_models.model_profile import ModelProfile

    from langchain_dfehub._gate import GateState
    from langchain_dfehub._stream_state import Request

# The transports, the request builder, the gate and the result builders are
# imported by the methods that use them, on a model's first call: importing
# ChatDfeHub (and building one) stays close to importing `BaseChatModel`.


class ChatDfeHub(SavedChatDfeHub, ChatDfeHubFields):
    """Chat model for the DfeHub chat service or any OpenAI-compatible server.

    Setup:
        Install `langchain-dfehub`. The public service needs no key; set
        `DFEHUB_BASE_URL` to use another server (a local llama.cpp server,
        vLLM, Ollama's `/v1`, LM Studio), and `DFEHUB_API_KEY` for one that
        wants a key.

        ```bash
        pip install -U langchain-dfehub
        export DFEHUB_BASE_URL="http://127.0.0.1:8080/v1"
        ```

    Key init args — completion params:
        model: Model name sent with each request (`"gpt-3.5-turbo"`).
        temperature: Sampling temperature; the server's default when unset.
        max_tokens: Longest answer, in tokens; the server's default when unset.

    Key init args — client params:
        base_url: API base, from `DFEHUB_BASE_URL` when not given.
        api_key: Sent as a bearer token, only when set; from `DFEHUB_API_KEY`.
        timeout: Seconds, one number or a `(connect, read)` pair.
        max_retries: Retries after errors; throttles are bounded by time
            instead (`max_retry_wait`, `throttle_budget`).
        deadline: Most seconds one call may take, retries included.

    The fields below, and the guide's Configuration page, list every argument.

    Instantiate:
        ```python
        from langchain_dfehub import ChatDfeHub

        model = ChatDfeHub(model="gpt-3.5-turbo", temperature=0, max_retries=2)
        ```

    Invoke:
        ```python
        messages = [("system", "You are terse."), ("human", "I love programming.")]
        answer = model.invoke(messages)
        print(answer.content)  # the emulator echoes: I love programming.
        ```

    Stream:
        ```python
        for chunk in model.stream(messages):
            print(chunk.content, end="|")  # |I |love |programming.||||
        print()
        ```

    Async:
        ```python
        import asyncio


        async def main() -> None:
            print((await model.ainvoke(messages)).content)
            async for chunk in model.astream(messages):
                print(chunk.content, end="|")
            print()
            await model.aclose()  # this event loop's pooled connections


        asyncio.run(main())
        ```

    Tool calling:
        ```python
        from pydantic import BaseModel, Field


        class GetWeather(BaseModel):
            '''Get the current weather in a city.'''

            city: str = Field(description="The city, e.g. Paris")


        with_tools = model.bind_tools([GetWeather])
        called = with_tools.invoke("What is the weather in 'Paris'?")
        print(called.tool_calls[0]["args"])  # {'city': 'Paris'}
        ```

    Structured output:
        ```python
        class Joke(BaseModel):
            '''A joke to tell the user.'''

            setup: str
            punchline: str


        print(model.with_structured_output(Joke).invoke("A joke about cats"))
        ```

    Token usage:
        ```python
        print(answer.usage_metadata)  # {'input_tokens': ..., 'output_tokens': ...}
        ```

    Response metadata:
        ```python
        print(answer.response_metadata["model_name"])  # gpt-3.5-turbo
        print(answer.response_metadata["finish_reason"])  # stop
        ```

    Throttling: a throttled call waits as long as the service's `detail`
    text says, at one gate shared by every call to that service, within
    `max_retry_wait` and `throttle_budget` (see the guide's page "Throttling,
    retries and errors").
    Once text has reached the caller, a failure is raised, never retried.
    """

    # Its validator is made here, at import, not at the first model built
    # (the base defers its own: see `ChatDfeHubFields`).
    model_config = ConfigDict(defer_build=False)

    # --- LangChain identity ---------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "dfehub-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return identifying_params(self)

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        return langsmith_params(self, stop, kwargs)

    def _resolve_model_profile(self) -> ModelProfile | None:
        """The known profile of `model`'s family (see `_profiles`), if any."""
        from langchain_dfehub._profiles import default_profile

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
        from langchain_dfehub._profile_lookup import fetch_profile

        return fetch_profile(self, refresh=refresh)

    async def afetch_profile(self, *, refresh: bool = False) -> ModelProfile:
        """`fetch_profile` on the async path (httpx)."""
        from langchain_dfehub._profile_lookup import afetch_profile

        return await afetch_profile(self, refresh=refresh)

    def _request(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        *,
        stream: bool,
        **kwargs: Any,
    ) -> Request:
        from langchain_dfehub._request_builder import build_request

        return build_request(self, messages, stop, stream=stream, **kwargs)

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
        from langchain_dfehub._gate import gate_for

        return gate_for(url, secret, self._gate_store()).state(self.model)

    def close(self) -> None:
        """Close pooled connections (they reopen if the model is used again)."""
        if self._sync_transport is not None:
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
        from langchain_dfehub._results import chat_result

        return chat_result(self._transport.complete(request))

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
        from langchain_dfehub._results import chat_result

        return chat_result(await self._atransport.complete(request))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # LangChain's `stream` reports each chunk to the callbacks itself.
        from langchain_dfehub._results import generation_chunk

        request = self._request(messages, stop, stream=True, **kwargs)
        v1 = self.output_version == "v1"
        for data in self._transport.stream(request):
            yield generation_chunk(data, v1)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        from langchain_dfehub._results import generation_chunk

        request = self._request(messages, stop, stream=True, **kwargs)
        v1 = self.output_version == "v1"
        async for data in self._atransport.stream(request):
            yield generation_chunk(data, v1)

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
        from langchain_dfehub._tokens import pseudo_token_ids

        return pseudo_token_ids(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Tokens of a conversation as one request: text, tool calls, tools.

        Adds OpenAI's accounting of 3 tokens per message, 1 per name and 3 for
        the reply; images, audio and files are not counted.
        """
        from langchain_dfehub._tokens import count_message_tokens

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
        fields = tool_fields(
            tools, tool_choice, strict, parallel_tool_calls, response_format
        )
        return super().bind(**{**kwargs, **fields})

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
        from langchain_dfehub._structured_output import structured_output

        return structured_output(
            self, schema, method, include_raw=include_raw, strict=strict, tools=tools
        )


# LangChain looks at `_generate`'s (or `_agenerate`'s) signature on every call,
# to learn whether it takes `run_manager`. Given as `__signature__`, which
# `inspect.signature` reads first, it is a lookup: built anew, about 15 us.
for _method in (ChatDfeHub._generate, ChatDfeHub._agenerate):
    _method.__signature__ = inspect.signature(_method)  # type: ignore[union-attr]
del _method

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "ChatDfeHub"]
