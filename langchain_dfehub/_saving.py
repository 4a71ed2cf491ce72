"""How a `ChatDfeHub` leaves its process: copies, pickles, and `dumpd`.

Credentials never travel in clear. A pickle leaves out the key, the
credentials of `base_url`, `proxy` and `gate`, and credential headers; the
unpickled model reads them from their environment variables again. `dumpd`
stores the key as a reference to `DFEHUB_API_KEY` and leaves credential
headers out. A user's own HTTP clients belong to their process: copies share
them and pickles leave them out.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from langchain_core.load.serializable import (
    SerializedConstructor,
    SerializedNotImplemented,
)
from langchain_core.utils import secret_from_env
from pydantic import SecretStr

from langchain_dfehub._gate_urls import without_password
from langchain_dfehub._settings import (
    header_variable,
    proxy_with_credentials_from_environment,
    split_credentials,
)

if TYPE_CHECKING:
    from typing_extensions import Self

    from langchain_dfehub._model_fields import ChatDfeHubFields

    _Fields = ChatDfeHubFields
else:
    # A plain mixin at run time: each pydantic class level costs a class
    # build at import, and this one adds methods only.
    _Fields = object

# Marks a pickled model whose credentials were left out (see `__getstate__`).
_CREDENTIALS_LEFT_OUT = "__dfehub_credentials_left_out__"
# The names of credential headers left out of a pickle, read back from
# their variables (see `header_variable`).
_HEADERS_LEFT_OUT = "__dfehub_headers_left_out__"


class SavedChatDfeHub(_Fields):
    """Copies, pickles and `dumpd` that keep secrets out (before the fields)."""

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        """A deep copy that shares the user's own HTTP clients.

        A client is the user's, with its sockets, locks and event loop: it
        cannot be copied (deep-copying one raises), and two of them would
        need closing twice. `copy.copy` and `model_copy` share them too.
        """
        memo = {} if memo is None else memo
        for client in (self.http_client, self.http_async_client):
            if client is not None:
                memo[id(client)] = client  # "already copied": as itself
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without credentials, which must not travel in clear.

        The key and the credentials of base_url and proxy are left out; the
        unpickled model reads them from `DFEHUB_API_KEY`, `DFEHUB_BASE_URL`
        and the proxy variables again. A user's own HTTP clients belong to
        this process and are left out too.
        """
        state = super().__getstate__()
        fields = dict(state["__dict__"])
        private = dict(state.get("__pydantic_private__") or {})
        left_out = (
            fields.get("api_key") is not None
            or private.get("_url_credentials") is not None
            or private.get("_proxy_url") is not None
            or private.get("_gate_url") is not None
        )
        hidden = self._credential_headers()
        if hidden:
            fields["default_headers"] = {
                name: value
                for name, value in (self.default_headers or {}).items()
                if name not in hidden
            }
        fields.update(api_key=None, http_client=None, http_async_client=None)
        private.update(_url_credentials=None, _proxy_url=None, _gate_url=None)
        return {
            **state,
            "__dict__": fields,
            "__pydantic_private__": private,
            _CREDENTIALS_LEFT_OUT: left_out,
            _HEADERS_LEFT_OUT: hidden,
        }

    def __setstate__(self, state: dict[Any, Any]) -> None:
        """Unpickle, reading left-out credentials from the environment."""
        state = dict(state)
        left_out = state.pop(_CREDENTIALS_LEFT_OUT, False)
        headers_left_out = state.pop(_HEADERS_LEFT_OUT, [])
        super().__setstate__(state)
        for name in headers_left_out:
            value = os.environ.get(header_variable(name))
            if value:
                headers = dict(self.default_headers or {})
                headers[name] = SecretStr(value)
                self.__dict__["default_headers"] = headers
        if left_out:
            key = secret_from_env("DFEHUB_API_KEY", default=None)()
            self.__dict__["api_key"] = key
            bare, credentials = split_credentials(os.environ.get("DFEHUB_BASE_URL", ""))
            if credentials is not None and bare == self.base_url:
                self._url_credentials = SecretStr(credentials)
            proxy = proxy_with_credentials_from_environment(self.proxy)
            if proxy is not None:
                self._proxy_url = SecretStr(proxy)
            gate = os.environ.get("DFEHUB_GATE_URL", "")
            if gate and self.gate is not None and without_password(gate) == self.gate:
                self._gate_url = SecretStr(gate)

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """The model can be saved with `dumpd` and loaded back (keys excluded)."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Where `load` finds this class."""
        return ["langchain_dfehub", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """The key is stored as a reference to its environment variable."""
        return {"api_key": "DFEHUB_API_KEY"}

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        """The model as `dumpd` saves it, without credential headers.

        LangChain's secret references name top-level arguments only (one
        inside `default_headers` would be saved as data), so a credential
        header is left out, as a pickle leaves it out; give it to the loaded
        model again.
        """
        saved = super().to_json()
        hidden = self._credential_headers()
        kwargs = saved.get("kwargs")
        if hidden and isinstance(kwargs, dict) and kwargs.get("default_headers"):
            kwargs["default_headers"] = {
                name: value
                for name, value in kwargs["default_headers"].items()
                if name not in hidden
            }
        return saved
