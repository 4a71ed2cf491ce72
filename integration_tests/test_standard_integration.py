"""LangChain's standard integration suite for chat models, against a server.

The server is the bundled emulator unless `DFEHUB_BASE_URL` names a live one
(see conftest.py).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_dfehub import ChatDfeHub


class TestChatDfeHubStandardIntegration(ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _server(self, dfehub_base_url: str) -> None:
        self._base_url = dfehub_base_url

    @property
    def chat_model_class(self) -> type[ChatDfeHub]:
        return ChatDfeHub

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": os.environ.get("DFEHUB_MODEL", "gpt-3.5-turbo"),
            "base_url": self._base_url,
        }

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        # The default method (json_schema) unless the server under test has
        # none, as DeepSeek's API: DFEHUB_STRUCTURED_OUTPUT_METHOD names another.
        method = os.environ.get("DFEHUB_STRUCTURED_OUTPUT_METHOD")
        return {"method": method} if method else {}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str | None:
        # The emulator serves any model name; a live server only its own, so
        # there the second model must be named (or these four tests skip).
        default = None if os.environ.get("DFEHUB_BASE_URL") else "gpt-3.5-turbo-16k"
        return os.environ.get("DFEHUB_OVERRIDE_MODEL", default)

    @property
    def enable_vcr_tests(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {"invoke": [], "stream": []}
