"""Where the standard integration suite sends its requests.

By default, to the bundled DfeHub emulator, started once for the session. Set
`DFEHUB_BASE_URL` (and, if the server wants them, `DFEHUB_API_KEY`,
`DFEHUB_MODEL`, `DFEHUB_OVERRIDE_MODEL` for a second model it serves, and
`DFEHUB_STRUCTURED_OUTPUT_METHOD` for a server without `json_schema`) to run
the same suite against a live OpenAI-compatible server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_tests.conftest import base_vcr_config

from langchain_dfehub.testing import DfeHubEmulator


@pytest.fixture(scope="session")
def dfehub_base_url() -> Iterator[str]:
    """The base URL of the server under test."""
    live = os.environ.get("DFEHUB_BASE_URL")
    if live:
        yield live
        return
    with DfeHubEmulator() as emulator:
        yield emulator.base_url


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
