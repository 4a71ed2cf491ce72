"""Pytest fixtures that start a local DfeHub emulator.

Loaded through the package's `pytest11` entry point, so it runs in every
pytest session of anyone who installs the package: it imports nothing but
pytest at module level, and the server only inside the fixtures.

    def test_answer(dfehub_emulator):
        model = ChatDfeHub(base_url=dfehub_emulator.base_url)

    @pytest.mark.dfehub_emulator(throttle_every=2, throttle_wait=0.01)
    def test_retries(dfehub_emulator): ...

    @pytest.mark.dfehub_emulator(flavour="llama.cpp", reasoning=True)
    def test_thinking(dfehub_emulator): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from langchain_dfehub.testing import DfeHubEmulator

MARKER = "dfehub_emulator"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, so suites run with --strict-markers accept it."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): keyword options for the dfehub_emulator fixture's "
        "DfeHubEmulator (api_key, throttle_every, throttle_wait, throttle_as, "
        "throttle_rate, latency, chunk_delay, flavour, reasoning, context_size,"
        " models, ...)",
    )


@pytest.fixture
def dfehub_emulator(request: pytest.FixtureRequest) -> Iterator[DfeHubEmulator]:
    """A started emulator for one test; options from the `dfehub_emulator` marker."""
    from langchain_dfehub.testing import DfeHubEmulator

    marker = request.node.get_closest_marker(MARKER)
    if marker is not None and marker.args:
        msg = f"@pytest.mark.{MARKER} takes keyword options only"
        raise pytest.UsageError(msg)
    options = dict(marker.kwargs) if marker is not None else {}
    with DfeHubEmulator(**options) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def dfehub_emulator_session() -> Iterator[DfeHubEmulator]:
    """One emulator with default options for the whole session.

    Tests share it: call `reset()` to clear faults and recorded requests.
    """
    from langchain_dfehub.testing import DfeHubEmulator

    with DfeHubEmulator() as emulator:
        yield emulator
