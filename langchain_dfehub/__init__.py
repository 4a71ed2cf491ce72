"""LangChain integration for the DfeHub chat service.

`ChatDfeHub` is the chat model; the `DfeHub*Error` classes are everything it
raises; `GateState` is what `ChatDfeHub.throttle_state` reports. A local
emulator of the service, for offline tests, lives in `langchain_dfehub.testing`.

The names are loaded on first use (PEP 562): the package's pytest plugin is
imported by every pytest session of anyone who installs the package, and must
not drag LangChain in with it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from langchain_dfehub._version import __version__

if TYPE_CHECKING:
    from langchain_dfehub._errors import (
        DfeHubAPIError,
        DfeHubAuthenticationError,
        DfeHubConnectionError,
        DfeHubContextOverflowError,
        DfeHubError,
        DfeHubInvalidRequestError,
        DfeHubNotFoundError,
        DfeHubPermissionDeniedError,
        DfeHubProtocolError,
        DfeHubRateLimitError,
        DfeHubRefusalError,
        DfeHubServerError,
        DfeHubTimeoutError,
    )
    from langchain_dfehub._gate import GateState
    from langchain_dfehub.chat_models import ChatDfeHub

_HOMES = {
    "ChatDfeHub": "langchain_dfehub.chat_models",
    "DfeHubAPIError": "langchain_dfehub._errors",
    "DfeHubAuthenticationError": "langchain_dfehub._errors",
    "DfeHubConnectionError": "langchain_dfehub._errors",
    "DfeHubPermissionDeniedError": "langchain_dfehub._errors",
    "DfeHubNotFoundError": "langchain_dfehub._errors",
    "DfeHubInvalidRequestError": "langchain_dfehub._errors",
    "DfeHubContextOverflowError": "langchain_dfehub._errors",
    "DfeHubError": "langchain_dfehub._errors",
    "DfeHubProtocolError": "langchain_dfehub._errors",
    "DfeHubRateLimitError": "langchain_dfehub._errors",
    "DfeHubRefusalError": "langchain_dfehub._errors",
    "DfeHubServerError": "langchain_dfehub._errors",
    "DfeHubTimeoutError": "langchain_dfehub._errors",
    "GateState": "langchain_dfehub._gate",
}

__all__ = [
    "ChatDfeHub",
    "DfeHubAPIError",
    "DfeHubAuthenticationError",
    "DfeHubConnectionError",
    "DfeHubContextOverflowError",
    "DfeHubError",
    "DfeHubInvalidRequestError",
    "DfeHubNotFoundError",
    "DfeHubPermissionDeniedError",
    "DfeHubProtocolError",
    "DfeHubRateLimitError",
    "DfeHubRefusalError",
    "DfeHubServerError",
    "DfeHubTimeoutError",
    "GateState",
    "__version__",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        msg = f"module 'langchain_dfehub' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
