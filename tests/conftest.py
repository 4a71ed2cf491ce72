"""Shared fixtures of the unit tests.

Unit tests run the same whatever DFEHUB_* variables the shell has set: `make
test` may run with DFEHUB_BASE_URL and DFEHUB_API_KEY pointing at a live
server, for the integration suite; the unit tests build their models against
the emulator (or the DRF app) and must not pick those up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from drf_service import DrfService, running_drf_service

from langchain_dfehub._gate import forget_gates


@pytest.fixture(autouse=True)
def _no_dfehub_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DFEHUB_BASE_URL", "DFEHUB_API_KEY", "DFEHUB_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def drf_service() -> Iterator[Callable[[str], DrfService]]:
    """Start (once per rate) the real DRF chat app: `drf_service("3/min")`.

    Each call hands back the app for that rate with its counters zeroed and
    its throttle history forgotten (and the client's gates with it), so a
    test starts from a quiet server.
    Every app is stopped when the session ends.
    """
    with ExitStack() as stack:
        services: dict[str, DrfService] = {}

        def service_at(rate: str) -> DrfService:
            service = services.get(rate)
            if service is None:
                service = stack.enter_context(running_drf_service(rate))
                services[rate] = service
            service.reset_stats()
            service.reset_throttle()
            forget_gates(service.base_url)  # the client remembers its throttle
            return service

        yield service_at
