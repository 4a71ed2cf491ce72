"""Unit tests run the same whatever DFEHUB_* variables the shell has set.

`make test` may run with DFEHUB_BASE_URL and DFEHUB_API_KEY pointing at a live
server, for the integration suite; the unit tests build their models against
the emulator and must not pick those up.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_dfehub_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DFEHUB_BASE_URL", "DFEHUB_API_KEY", "DFEHUB_MODEL"):
        monkeypatch.delenv(name, raising=False)
