"""Where the standard integration suite sends its requests.

By default, to the bundled DfeHub emulator, started once for the session. Set
`DFEHUB_BASE_URL` (and, if the server wants them, `DFEHUB_API_KEY` and
`DFEHUB_MODEL`) to run the same suite against a live OpenAI-compatible server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

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
