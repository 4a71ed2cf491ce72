"""A model's call target is made once per setting, and again whenever one differs."""

from __future__ import annotations

import copy
import pickle

import pytest
from langchain_core.messages import HumanMessage
from pydantic import SecretStr

from langchain_dfehub import ChatDfeHub
from langchain_dfehub._gate import forget_gates
from langchain_dfehub._request_builder import build_request
from langchain_dfehub._stream_state import Request

BASE_URL = "http://127.0.0.1:9/v1"
MESSAGES = [HumanMessage("hello")]


def _request(model: ChatDfeHub, *, stream: bool = False) -> Request:
    return build_request(model, MESSAGES, None, stream=stream)


def _target(model: ChatDfeHub) -> object:
    return model._targets.get(model)


def test_calls_with_the_same_settings_share_one_target() -> None:
    model = ChatDfeHub(base_url=BASE_URL, api_key="sk-one")
    assert _target(model) is _target(model)
    first, second = _request(model), _request(model)
    assert first.headers == second.headers
    assert first.headers is not second.headers  # each call may change its own
    assert first.policy.gate is second.policy.gate


def test_streaming_and_plain_calls_accept_what_they_read() -> None:
    model = ChatDfeHub(base_url=BASE_URL, api_key="sk-one")
    assert _request(model).headers["Accept"] == "application/json"
    assert "text/event-stream" in _request(model, stream=True).headers["Accept"]


def test_a_field_set_after_building_is_sent_from_the_next_call() -> None:
    model = ChatDfeHub(base_url=BASE_URL, api_key="sk-one")
    gate = _request(model).policy.gate
    model.api_key = SecretStr("sk-two")
    request = _request(model)
    assert request.headers["Authorization"] == "Bearer sk-two"
    assert "sk-two" in request.secret
    assert request.policy.gate is not gate  # another key, another gate
    model.base_url = "http://127.0.0.1:10/v1"
    assert _request(model).url == "http://127.0.0.1:10/v1/chat/completions"


def test_a_header_changed_in_place_is_sent_and_hidden_from_the_next_call() -> None:
    model = ChatDfeHub(base_url=BASE_URL, default_headers={"X-Team": "a"})
    assert _request(model).headers["X-Team"] == "a"
    assert model.default_headers is not None
    model.default_headers["X-Team"] = "b"
    model.default_headers["X-Api-Key"] = "hdr-secret"
    request = _request(model)
    assert (request.headers["X-Team"], request.headers["X-Api-Key"]) == (
        "b",
        "hdr-secret",
    )
    assert "hdr-secret" in request.secret


def test_a_value_that_must_be_refused_is_refused_on_every_call() -> None:
    model = ChatDfeHub(base_url=BASE_URL, default_headers={"X-Team": "a"})
    _request(model)
    assert model.default_headers is not None
    model.default_headers["X-Team"] = "a\r\nX-Injected: 1"
    for _ in range(2):
        with pytest.raises(ValueError, match="line break") as caught:
            _request(model)
        assert "X-Injected" not in str(caught.value)
    model.default_headers["X-Team"] = "c"
    assert _request(model).headers["X-Team"] == "c"


def test_copies_with_other_settings_keep_their_own() -> None:
    model = ChatDfeHub(base_url=BASE_URL, api_key="sk-one")
    other = model.model_copy(update={"api_key": SecretStr("sk-two")})
    for _ in range(2):  # in turns: each finds its own, whatever the other kept
        assert _request(model).headers["Authorization"] == "Bearer sk-one"
        assert _request(other).headers["Authorization"] == "Bearer sk-two"


@pytest.mark.parametrize(
    "remake",
    [copy.deepcopy, lambda model: pickle.loads(pickle.dumps(model))],
    ids=["deepcopy", "pickle"],
)
def test_a_copied_or_unpickled_model_makes_its_own(
    remake: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DFEHUB_API_KEY", "sk-env")
    model = ChatDfeHub(base_url=BASE_URL, api_key="sk-env")
    kept = _target(model)
    again = remake(model)  # type: ignore[operator]
    assert again._targets is not model._targets
    assert _target(again) is not kept
    assert _request(again).headers["Authorization"] == "Bearer sk-env"


def test_a_forgotten_gate_is_not_kept() -> None:
    model = ChatDfeHub(base_url=BASE_URL, api_key="sk-one")
    gate = _request(model).policy.gate
    forget_gates(BASE_URL)
    assert _request(model).policy.gate is not gate


def test_the_target_shows_no_credential() -> None:
    model = ChatDfeHub(
        base_url=BASE_URL,
        api_key="sk-shown",
        default_headers={"X-Api-Key": "hdr-shown"},
    )
    target = _target(model)
    assert "shown" not in repr(target)
    assert "shown" not in str(target)
