"""Where the standard integration suite sends its requests.

By default, to the bundled DfeHub emulator, once per flavour (`openai`,
`llama.cpp`, `vllm`, `deepseek`), each serving the model a user of that
server would name (`FLAVOUR_MODELS`). Set `DFEHUB_BASE_URL` (and, if the
server wants them, `DFEHUB_API_KEY`, `DFEHUB_MODEL`, `DFEHUB_OVERRIDE_MODEL`
for a second model it serves) to run the same suite once against a live
OpenAI-compatible server instead.

The suite's multimodal tests download a PNG, a PDF and a WAV from the web;
here they get small files made in code instead, so no test needs the network.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from langchain_tests.conftest import base_vcr_config

from langchain_dfehub.testing import DfeHubEmulator
from langchain_dfehub.testing._media import pdf_bytes, png_bytes, wav_bytes


@dataclass(frozen=True)
class Server:
    """The server under test, and what the suite may expect of it."""

    base_url: str
    flavour: str | None
    model: str
    override_model: str | None
    forces_named_tool: bool = True


# The model each flavour's users name, and a second one for the per-call
# override tests where the server serves several.
FLAVOUR_MODELS: dict[str, tuple[str, str | None]] = {
    "openai": ("gpt-3.5-turbo", "gpt-3.5-turbo-16k"),
    "vllm": ("Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
    # llama.cpp serves the one model it loaded and names it by its alias in
    # every reply, whatever the request says: no second model to switch to.
    "llama.cpp": ("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", None),
    "deepseek": ("deepseek-chat", "deepseek-reasoner"),
}
_LIVE = os.environ.get("DFEHUB_BASE_URL")


@pytest.fixture(scope="session", params=[None] if _LIVE else sorted(FLAVOUR_MODELS))
def dfehub_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The server under test: the live one, or the emulator in each flavour."""
    flavour = request.param
    if flavour is None:
        yield Server(
            base_url=str(_LIVE),
            flavour=None,
            model=os.environ.get("DFEHUB_MODEL", "gpt-3.5-turbo"),
            override_model=os.environ.get("DFEHUB_OVERRIDE_MODEL"),
        )
        return
    model, override = FLAVOUR_MODELS[flavour]
    with DfeHubEmulator(flavour=flavour) as emulator:
        yield Server(
            base_url=emulator.base_url,
            flavour=flavour,
            model=model,
            override_model=override,
            # llama.cpp ignores a `tool_choice` object naming a tool (it logs
            # "Wrong type supplied for parameter 'tool_choice'").
            forces_named_tool=flavour != "llama.cpp",
        )


_MEDIA = {".png": png_bytes, ".pdf": pdf_bytes, ".wav": wav_bytes}


@pytest.fixture(autouse=True)
def _media_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answer the suite's downloads of sample media with files made in code."""
    real_get = httpx.get

    def get(url: str, *args: Any, **kwargs: Any) -> httpx.Response:
        host = httpx.URL(url).host
        if host in ("127.0.0.1", "localhost"):
            return real_get(url, *args, **kwargs)
        make = next((m for end, m in _MEDIA.items() if url.endswith(end)), None)
        if make is None:
            msg = f"the tests reach no network; no local stand-in for {url}"
            raise AssertionError(msg)
        return httpx.Response(200, content=make(), request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", get)
    monkeypatch.setenv("LANGCHAIN_TESTS_USER_AGENT", "langchain-dfehub-tests")


@pytest.fixture(scope="session")
def vcr_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Record each run afresh, into a temporary folder.

    The suite's streaming-time test runs under VCR. The server here is local
    (or the live one named by DFEHUB_BASE_URL), so replaying stored cassettes
    would measure nothing real: every run records a new one, and the Authorization
    header is filtered out of it like the suite's own settings do.
    """
    config = base_vcr_config()
    config["record_mode"] = "all"
    config["cassette_library_dir"] = str(tmp_path_factory.mktemp("cassettes"))
    return config
