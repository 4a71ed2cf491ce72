"""A forked child never uses its parent's connections.

After `os.fork()` (gunicorn or uWSGI pre-fork, `multiprocessing` with the fork
start method, Celery prefork) the child holds copies of the parent's pooled
keep-alive sockets. Were both to send on one, each could read the other's
answer. Every transport registers here; in the child, each one drops what it
inherited and opens fresh connections on first use.

The inherited objects are kept referenced, never closed: closing them in the
child could unregister the parent's sockets from an event-loop selector the
two processes share. They are copies; the cost is a few descriptors.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Protocol


class ForkAware(Protocol):
    """A holder of connections that must not cross a fork."""

    def forget_inherited(self) -> list[Any]:
        """Drop connections and locks; return what was dropped."""
        ...


_TRACKED: weakref.WeakSet[Any] = weakref.WeakSet()
# What children inherited, kept alive so that nothing closes it (see above).
_INHERITED: list[Any] = []


def track(holder: ForkAware) -> None:
    """Have `holder` forget its connections in every forked child."""
    _TRACKED.add(holder)


def _after_fork_in_child() -> None:
    for holder in list(_TRACKED):
        _INHERITED.extend(holder.forget_inherited())


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
