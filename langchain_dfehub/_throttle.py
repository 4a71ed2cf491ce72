"""Reading a throttle: whether a server's words are one, and how long it asks.

The DfeHub service was a Django REST Framework app: its throttle text is DRF's
`Throttled` message, "Request was throttled. Expected available in 3 seconds."
(singular "1 second.", the wait rounded up to whole seconds), sent with a 429
and a `Retry-After` header of the same seconds, or as a bare `{"detail": ...}`
line inside a 200 stream. Other servers say "try again in 20s" or "retry
after 500 ms", or give only the header.

The wait is read from a *wait phrase* only: "available in", "try again in",
"retry after", "wait" followed by a number and a unit. A number anywhere else
("limit 100 per 60 seconds", "exceeded by 12 tokens", "gpt-9") is not a wait.
Everything here is pure, so both transports and the retry policy agree.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# Seconds per unit, by the spellings servers use.
_UNITS = {
    "ms": 0.001,
    "msec": 0.001,
    "msecs": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
# Longest spellings first, so "ms" is not read as "m" followed by "s".
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
# A unit ends where letters end: "1m30s" is two amounts, "5 secondary" none.
_AMOUNT = rf"({_NUMBER})\s*({_UNIT})(?![a-zA-Z])"
# What introduces a wait: DRF's "Expected available in", OpenAI's "Please try
# again in", and the plain "retry after" / "wait" of other servers.
_WAIT_PHRASE = re.compile(
    rf"\b(?:available|again|retry|wait)\s+(?:in|after|for)?\s*"
    rf"((?:{_NUMBER}\s*(?:{_UNIT})(?![a-zA-Z])\s*)+)",
    re.IGNORECASE,
)
_PART = re.compile(_AMOUNT, re.IGNORECASE)
# DRF's own sentence, which it sends alone when it cannot name a wait.
_THROTTLE_SENTENCE = re.compile(r"\brequest was throttled\b", re.IGNORECASE)
# A `Retry-After` number of seconds. Checked before calling float(), which
# would also accept "nan", "inf" and "1_0".
_SECONDS = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def wait_from_detail(detail: str) -> float | None:
    """Return the seconds a text's wait phrase asks for, or None without one.

    "1m30s" adds up; a negative wait is returned as it is (the caller floors
    it), and an absurdly long number is infinite rather than a crash.
    """
    match = _WAIT_PHRASE.search(detail)
    if match is None:
        return None
    total = 0.0
    for number, unit in _PART.findall(match.group(1)):
        # float() of a huge number is inf, never an error.
        total += float(number) * _UNITS[unit.lower()]
    return total


def is_throttle_text(detail: str) -> bool:
    """Whether a `detail` text is a throttle: DRF's sentence or a wait phrase."""
    return (
        bool(_THROTTLE_SENTENCE.search(detail)) or wait_from_detail(detail) is not None
    )


def wait_from_retry_after(value: str, *, now: float | None = None) -> float | None:
    """Return the wait a `Retry-After` header asks for, or None if unreadable.

    The header holds either a number of seconds or an HTTP date; a date in the
    past, like a negative number, means "now" (0 seconds).
    """
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return max(float(value), 0.0)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(moment.timestamp() - current, 0.0)


@dataclass(frozen=True)
class ThrottleSignal:
    """What a throttle said: how long to wait (None: it did not say), and why.

    Attributes:
        wait: Seconds the server asked for; may be zero or negative (a wait
            already over), which the gate floors at a short backoff.
        source: `"detail"` (a wait phrase), `"retry-after"` (the header) or
            `"none"`.
    """

    wait: float | None
    source: str


def read_throttle(detail: str | None, retry_after_header: str | None) -> ThrottleSignal:
    """Read a throttle's wait: the text's wait phrase first, then `Retry-After`.

    DRF sends both with the same seconds; the text may carry decimals the
    header cannot, and other servers send only one of them.
    """
    if detail:
        wait = wait_from_detail(detail)
        if wait is not None:
            return ThrottleSignal(wait, "detail")
    if retry_after_header is not None:
        wait = wait_from_retry_after(retry_after_header)
        if wait is not None:
            return ThrottleSignal(wait, "retry-after")
    return ThrottleSignal(None, "none")
