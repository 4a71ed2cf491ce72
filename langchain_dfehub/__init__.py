"""LangChain integration for the DfeHub chat service.

`ChatDfeHub` is the chat model; the `DfeHub*Error` classes are everything it
raises. A local emulator of the service, for offline tests, lives in
`langchain_dfehub.testing`.
"""

from langchain_dfehub._errors import (
    DfeHubAPIError,
    DfeHubAuthenticationError,
    DfeHubConnectionError,
    DfeHubError,
    DfeHubProtocolError,
    DfeHubRateLimitError,
    DfeHubServerError,
    DfeHubTimeoutError,
)
from langchain_dfehub._version import __version__
from langchain_dfehub.chat_models import ChatDfeHub

__all__ = [
    "ChatDfeHub",
    "DfeHubAPIError",
    "DfeHubAuthenticationError",
    "DfeHubConnectionError",
    "DfeHubError",
    "DfeHubProtocolError",
    "DfeHubRateLimitError",
    "DfeHubServerError",
    "DfeHubTimeoutError",
    "__version__",
]
