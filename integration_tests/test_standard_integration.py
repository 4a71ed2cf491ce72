"""LangChain's standard integration suite for chat models, against a server.

The server is the bundled emulator in each of its flavours, unless
`DFEHUB_BASE_URL` names a live one (see conftest.py). No structured-output
method is named: the model's default (see `with_structured_output`) must
work on every server.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Server
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_dfehub import ChatDfeHub


class TestChatDfeHubStandardIntegration(ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _server(self, dfehub_server: Server) -> None:
        self._under_test = dfehub_server

    @property
    def chat_model_class(self) -> type[ChatDfeHub]:
        return ChatDfeHub

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": self._under_test.model, "base_url": self._under_test.base_url}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return self._under_test.forces_named_tool

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    # Image, image-URL, PDF and audio parts reach the wire in OpenAI's form;
    # the emulator checks them as OpenAI's API does. Tool messages carry
    # text only in Chat Completions, so images and PDFs there stay off.
    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_pdf_inputs(self) -> bool:
        return True

    @property
    def supports_audio_inputs(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str | None:
        return self._under_test.override_model

    @property
    def enable_vcr_tests(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {"invoke": [], "stream": []}
