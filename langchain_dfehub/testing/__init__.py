"""A local DfeHub emulator for offline tests, demos and benchmarks.

`DfeHubEmulator` is a faithful stand-in for the DfeHub chat service (the
OpenAI chat-completions wire format) whose answers follow documented,
deterministic rules; the fault classes script throttles, errors, dropped
connections, stalls, malformed lines and truncated streams.

Names are imported on first use: the package's pytest plugin imports this
package in every pytest session of anyone who installs it, and a session that
never starts an emulator should not pay for the server's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._faults import (
        Drop,
        ErrorStatus,
        Fault,
        Malformed,
        Stall,
        Throttle,
        Truncate,
    )
    from ._server import DfeHubEmulator, RecordedRequest

__all__ = [
    "DfeHubEmulator",
    "Drop",
    "ErrorStatus",
    "Fault",
    "Malformed",
    "RecordedRequest",
    "Stall",
    "Throttle",
    "Truncate",
]

_HOMES = {
    "DfeHubEmulator": "._server",
    "RecordedRequest": "._server",
    "Drop": "._faults",
    "ErrorStatus": "._faults",
    "Fault": "._faults",
    "Malformed": "._faults",
    "Stall": "._faults",
    "Throttle": "._faults",
    "Truncate": "._faults",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
