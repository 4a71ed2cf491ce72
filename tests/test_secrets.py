"""Keys stay secret: scrubbed as whole tokens, from every reply, never pickled.

A server may echo the key back in an error, in a 2xx reply as much as in a
4xx one; the key is blanked wherever it is a whole token, and nowhere else, so
a placeholder key such as "x" cannot mangle the server's words. A pickled
model carries no key. Credentials written into base_url are taken out of it:
sent, but never shown.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import pickle
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, load
from pydantic import SecretStr

from langchain_dfehub import ChatDfeHub, DfeHubError
from langchain_dfehub._errors import _scrub as scrub
from langchain_dfehub.testing import DfeHubEmulator, ErrorStatus, Malformed

SECRET = "sk-live-0123456789abcdef"
MODES = ["sync", "async"]


# --- scrubbing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (
            "request (6020 tokens) exceeds the available context size",
            "x",
            "request (6020 tokens) exceeds the available context size",
        ),
        (
            "http://127.0.0.1:8081/v1 rejected key 1.",
            "1",
            "http://127.0.0.1:8081/v1 rejected key ***.",
        ),
        (f"Incorrect API key: {SECRET}.", SECRET, "Incorrect API key: ***."),
        (f"key={SECRET}&next", SECRET, "key=***&next"),
        (f"'{SECRET}' twice: {SECRET}", SECRET, "'***' twice: ***"),
        (f"{SECRET}extra is another token", SECRET, f"{SECRET}extra is another token"),
    ],
)
def test_the_key_is_blanked_as_a_whole_token_only(
    text: str, key: str, expected: str
) -> None:
    assert scrub(text, key) == expected


# --- keys echoed in 2xx replies ----------------------------------------------------

ECHOES = {
    "an in-band error object": ErrorStatus(
        200, json.dumps({"error": {"message": f"key {SECRET} is revoked"}})
    ),
    "an in-band error string": ErrorStatus(
        200, json.dumps({"error": f"key {SECRET} is revoked"})
    ),
    "a throttle detail": ErrorStatus(
        200, json.dumps({"detail": f"{SECRET} throttled. Expected in 900 seconds."})
    ),
    "a body that is not JSON": ErrorStatus(
        200, f"<html>key {SECRET} refused</html>", content_type="text/html"
    ),
}
# Not a 2xx reply, but a header rather than a body: scrubbed alike.
ECHOES["a redirect's target"] = ErrorStatus(
    307, headers={"Location": f"http://elsewhere.example/{SECRET}/v1"}
)
STREAM_ECHOES = {
    "an in-stream detail": Malformed(line=json.dumps({"detail": f"{SECRET} slow"})),
    "an in-stream error": Malformed(
        line="data: " + json.dumps({"error": {"message": f"bad key {SECRET}"}})
    ),
    "a malformed line": Malformed(line=f"data: oops {SECRET}"),
    "a chunk of the wrong shape": Malformed(
        line="data: " + json.dumps({"choices": [{"delta": SECRET}]})
    ),
}


class ErrorRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)


def everything_shown(error: BaseException) -> str:
    """What the error shows, and what the errors it holds (chained) keep."""
    shown = []
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        shown += [str(current), repr(current), repr(vars(current))]
        shown += [str(arg) for arg in current.args]
        shown.append(str(getattr(current, "doc", "")))  # a JSONDecodeError's input
        current = current.__cause__ or current.__context__
    return " ".join(shown)


@pytest.fixture
def emulator(dfehub_emulator_session: DfeHubEmulator) -> DfeHubEmulator:
    dfehub_emulator_session.reset()
    return dfehub_emulator_session


def call(model: ChatDfeHub, mode: str, streaming: bool, config: Any) -> None:
    if mode == "sync":
        if streaming:
            list(model.stream("hi", config=config))
        else:
            model.invoke("hi", config=config)
        return

    async def run() -> None:
        if streaming:
            async for _ in model.astream("hi", config=config):
                pass
        else:
            await model.ainvoke("hi", config=config)

    asyncio.run(run())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("case", "streaming"),
    [(case, False) for case in ECHOES] + [(case, True) for case in STREAM_ECHOES],
)
def test_a_key_echoed_in_a_2xx_reply_is_blanked_everywhere(
    emulator: DfeHubEmulator, mode: str, case: str, streaming: bool
) -> None:
    emulator.add_faults(ECHOES.get(case) or STREAM_ECHOES[case])
    model = ChatDfeHub(base_url=emulator.base_url, api_key=SECRET, max_retries=0)
    recorder = ErrorRecorder()

    with pytest.raises(DfeHubError) as caught:
        call(model, mode, streaming, {"callbacks": [recorder]})

    assert SECRET not in everything_shown(caught.value)
    assert "***" in str(caught.value)
    assert recorder.errors
    assert all(SECRET not in everything_shown(e) for e in recorder.errors)


# --- pickle ----------------------------------------------------------------------


def test_a_pickled_model_holds_no_key(
    dfehub_emulator: DfeHubEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, api_key=SECRET)
    pickled = pickle.dumps(model)
    assert SECRET.encode() not in pickled

    # The copy reads the key from the environment, as a model built there would.
    monkeypatch.setenv("DFEHUB_API_KEY", "sk-from-the-environment")
    twin = pickle.loads(pickled)
    assert twin.api_key is not None
    assert twin.api_key.get_secret_value() == "sk-from-the-environment"
    assert model.api_key is not None
    assert model.api_key.get_secret_value() == SECRET


def test_an_unpickled_model_answers_with_the_environments_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with DfeHubEmulator(api_key=SECRET) as emulator:
        model = ChatDfeHub(base_url=emulator.base_url, api_key=SECRET)
        monkeypatch.setenv("DFEHUB_API_KEY", SECRET)
        twin = pickle.loads(pickle.dumps(model))
        assert twin.invoke("still allowed").content == "still allowed"
        assert asyncio.run(twin.ainvoke("async too")).content == "async too"


# --- credentials in base_url ---------------------------------------------------------

PASSWORD = "pw-0123456789secret"


class StartRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.serialized: list[Any] = []

    def on_chat_model_start(self, serialized: Any, *args: Any, **kwargs: Any) -> None:
        self.serialized.append(serialized)


def with_credentials(base_url: str) -> str:
    return base_url.replace("http://", f"http://alice:{PASSWORD}@")


@pytest.mark.parametrize("mode", MODES)
def test_credentials_in_base_url_are_sent_but_never_shown(
    emulator: DfeHubEmulator, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    model = ChatDfeHub(base_url=with_credentials(emulator.base_url))
    recorder = StartRecorder()
    with caplog.at_level(logging.DEBUG):
        call(model, mode, False, {"callbacks": [recorder]})

    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert emulator.requests[-1].headers["authorization"] == f"Basic {basic}"
    shown = [
        repr(model),
        str(model.model_dump()),
        json.dumps(dumpd(model)),
        json.dumps(recorder.serialized),
        str(model._identifying_params),
        caplog.text,
    ]
    for place in shown:
        assert PASSWORD not in place
        assert basic not in place
    assert model.base_url == emulator.base_url


@pytest.mark.parametrize("mode", MODES)
def test_api_key_wins_over_credentials_in_base_url(
    emulator: DfeHubEmulator, mode: str
) -> None:
    model = ChatDfeHub(base_url=with_credentials(emulator.base_url), api_key=SECRET)
    call(model, mode, False, None)
    assert emulator.requests[-1].headers["authorization"] == f"Bearer {SECRET}"


def test_a_pickled_model_holds_no_credentials_from_base_url(
    emulator: DfeHubEmulator,
) -> None:
    model = ChatDfeHub(base_url=with_credentials(emulator.base_url))
    assert PASSWORD.encode() not in pickle.dumps(model)


# --- secrets given to a call ---------------------------------------------------------

CALL_SECRETS = {
    "api_key": {"api_key": SECRET},
    "openai_api_key": {"openai_api_key": SECRET},
    "password": {"password": SECRET},
    "a SecretStr value": {"auth_header": SecretStr(SECRET)},
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize("bound", [False, True], ids=["call", "bind"])
@pytest.mark.parametrize(
    "arguments", list(CALL_SECRETS.values()), ids=list(CALL_SECRETS)
)
def test_a_secret_given_to_a_call_is_refused_before_sending(
    emulator: DfeHubEmulator,
    mode: str,
    streaming: bool,
    bound: bool,
    arguments: dict[str, Any],
) -> None:
    model = ChatDfeHub(base_url=emulator.base_url, max_retries=0)
    runnable: Any = model.bind(**arguments) if bound else model
    extra = {} if bound else arguments

    async def run() -> None:
        if streaming:
            async for _ in runnable.astream("hi", **extra):
                pass
        else:
            await runnable.ainvoke("hi", **extra)

    def run_in_mode() -> None:
        if mode == "async":
            asyncio.run(run())
        elif streaming:
            list(runnable.stream("hi", **extra))
        else:
            runnable.invoke("hi", **extra)

    with pytest.raises(ValueError, match=next(iter(arguments))) as caught:
        run_in_mode()

    assert SECRET not in everything_shown(caught.value)
    assert emulator.requests == []


# --- credentials in default_headers ------------------------------------------------

HEADER_KEY = "hk-0123456789abcdef"
COOKIE = "sess-0123456789abcdef"
CREDENTIAL_HEADERS = {
    "Authorization": f"Bearer {SECRET}",
    "X-Api-Key": HEADER_KEY,
    "Cookie": f"session={COOKIE}",
}


def credential_model(emulator: DfeHubEmulator, **settings: Any) -> ChatDfeHub:
    headers = {**CREDENTIAL_HEADERS, "X-Team": "blue"}
    return ChatDfeHub(base_url=emulator.base_url, default_headers=headers, **settings)


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [s for s in (SECRET, HEADER_KEY, COOKIE) if s.encode() in data]


@pytest.mark.parametrize("mode", MODES)
def test_credential_headers_are_sent_but_never_shown(
    emulator: DfeHubEmulator, mode: str
) -> None:
    model = credential_model(emulator)
    recorder = StartRecorder()
    call(model, mode, False, {"callbacks": [recorder]})

    sent = emulator.requests[-1].headers
    assert sent["authorization"] == f"Bearer {SECRET}"
    assert sent["x-api-key"] == HEADER_KEY
    assert sent["cookie"] == f"session={COOKIE}"
    assert sent["x-team"] == "blue"
    for place in [
        repr(model),
        str(model.model_dump()),
        model.model_dump_json(),
        json.dumps(dumpd(model)),
        json.dumps(recorder.serialized),
    ]:
        assert leaks(place) == []
    assert "blue" in repr(model)  # other headers are shown as they are
    assert leaks(pickle.dumps(model)) == []


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
def test_a_dump_leaves_credential_headers_out_and_loads_back() -> None:
    model = ChatDfeHub(default_headers={"X-Api-Key": HEADER_KEY, "X-Team": "blue"})
    saved = dumpd(model)
    assert saved["kwargs"]["default_headers"] == {"X-Team": "blue"}
    loaded = load(
        saved, allowed_objects=[ChatDfeHub], valid_namespaces=["langchain_dfehub"]
    )
    assert isinstance(loaded, ChatDfeHub)
    assert loaded.default_headers == {"X-Team": "blue"}
    assert model.default_headers is not None
    assert set(model.default_headers) == {"X-Api-Key", "X-Team"}  # untouched


@pytest.mark.parametrize("mode", MODES)
def test_an_unpickled_model_reads_its_credential_headers_from_the_environment(
    emulator: DfeHubEmulator, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    twin = pickle.loads(pickle.dumps(credential_model(emulator)))
    assert set(twin.default_headers or {}) == {"X-Team"}

    monkeypatch.setenv("DFEHUB_HEADER_X_API_KEY", "hk-from-the-environment")
    twin = pickle.loads(pickle.dumps(credential_model(emulator)))
    call(twin, mode, False, None)
    sent = emulator.requests[-1].headers
    assert sent["x-api-key"] == "hk-from-the-environment"
    assert "authorization" not in sent


ECHOED_HEADERS = {
    "the whole header value": f"Bearer {SECRET}",
    "the token alone": SECRET,
    "an api-key header": HEADER_KEY,
    "a cookie": f"session={COOKIE}",
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize(
    "echo", list(ECHOED_HEADERS.values()), ids=list(ECHOED_HEADERS)
)
def test_a_credential_header_echoed_by_the_server_is_blanked(
    emulator: DfeHubEmulator, mode: str, streaming: bool, echo: str
) -> None:
    body = json.dumps({"error": {"message": f"refused credentials: {echo}"}})
    emulator.add_faults(ErrorStatus(401, body))
    model = credential_model(emulator, max_retries=0)
    recorder = ErrorRecorder()

    with pytest.raises(DfeHubError) as caught:
        call(model, mode, streaming, {"callbacks": [recorder]})

    assert "***" in str(caught.value)
    assert leaks(everything_shown(caught.value)) == []
    assert all(leaks(everything_shown(e)) == [] for e in recorder.errors)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize("form", ["header", "base64", "password"])
def test_basic_credentials_from_base_url_echoed_by_the_server_are_blanked(
    emulator: DfeHubEmulator, mode: str, streaming: bool, form: str
) -> None:
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    echo = {"header": f"Basic {basic}", "base64": basic, "password": PASSWORD}[form]
    body = json.dumps({"error": {"message": f"bad credentials {echo}"}})
    emulator.add_faults(ErrorStatus(401, body))
    model = ChatDfeHub(base_url=with_credentials(emulator.base_url), max_retries=0)

    with pytest.raises(DfeHubError) as caught:
        call(model, mode, streaming, None)

    shown = everything_shown(caught.value)
    assert basic not in shown
    assert PASSWORD not in shown
    assert "bad credentials" in str(caught.value)
