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
# A sign is read ("-5 seconds" is a wait phrase, whose wait `usable_wait`
# refuses). Each part is followed by something it cannot start with, so a
# match never backtracks over more than a unit's letters: the reader is
# linear on any text.
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
# Longest spellings first, so "ms" is not read as "m" followed by "s".
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
# A unit ends where letters end: "1m30s" is two amounts, "5 secondary" none.
_AMOUNT = rf"({_NUMBER})[ \t]?({_UNIT})(?![a-zA-Z])"
# What introduces a wait: DRF's "Expected available in", OpenAI's "Please try
# again in", and the plain "retry after" / "wait" of other servers. Spaces
# are one or a few, never a run: a long run of blanks cannot start a wait,
# and reading one must not cost time.
_WAIT_PHRASE = re.compile(
    rf"\b(?:available|again|retry|wait)[ \t]{{1,3}}(?:(?:in|after|for)[ \t]{{1,3}})?"
    rf"((?:{_NUMBER}[ \t]?(?:{_UNIT})(?![a-zA-Z])[ \t]?)+)",
    re.IGNORECASE,
)
_PART = re.compile(_AMOUNT, re.IGNORECASE)
# How much of a text is read for a wait: a wait phrase is in a message's
# first sentences; the rest of a long body is not read at all.
_READ_CHARS = 4096
# A wait longer than this is no wait a server means: DRF's longest period is
# a day, and "1e999 seconds" must not shut a service out.
ABSURD_WAIT = 86400.0 * 1.5
# DRF's own sentence, which it sends alone when it cannot name a wait.
_THROTTLE_SENTENCE = re.compile(r"\brequest was throttled\b", re.IGNORECASE)
# A `Retry-After` number of seconds. Checked before calling float(), which
# would also accept "nan", "inf" and "1_0".
_SECONDS = re.compile(r"[+-]?(?:\d{1,32}(?:\.\d{0,32})?|\.\d{1,32})")


def wait_from_detail(detail: str) -> float | None:
    """Return the seconds a text's wait phrase asks for, or None without one.

    "1m30s" adds up; an absurdly long number is infinite rather than a crash
    (`usable_wait` then says it is no wait). Only the text's first
    `_READ_CHARS` characters are read.
    """
    match = _WAIT_PHRASE.search(detail[:_READ_CHARS])
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
        bool(_THROTTLE_SENTENCE.search(detail[:_READ_CHARS]))
        or wait_from_detail(detail) is not None
    )


def usable_wait(wait: float | None) -> float | None:
    """A wait as the gate may use it; None for a wait that is not one.

    Zero (a wait already over) stays, for the gate to floor at a backoff; a
    wait that is negative, not a finite number, or absurdly long is none.
    """
    if wait is None or not 0 <= wait <= ABSURD_WAIT:  # False for NaN too
        return None
    return wait


# Wordings of limits that belong to one model, whatever model it is: LiteLLM's
# router ("No deployments available for selected model"), and limits named
# per model or per deployment.
_PER_MODEL_WORDS = re.compile(
    r"\b(?:selected model|for (?:this |the )?model|per[- ]model|model[- ]level"
    r"|deployments?)\b",
    re.IGNORECASE,
)


def throttle_is_per_model(detail: str, model: str) -> bool:
    """Whether a throttle's words say it is about one model, not the client.

    OpenAI ("Rate limit reached for gpt-4o in organization ..."), OpenRouter
    ("x/y:free is temporarily rate-limited upstream") and LiteLLM deployments
    name the model or speak of it; Django REST Framework's "Request was
    throttled." speaks of the client, and so does any text naming no model.
    """
    text = detail[:_READ_CHARS]
    if _PER_MODEL_WORDS.search(text):
        return True
    if not model or model not in text:
        return False
    # The model's name as a whole token: "a" in "a request" is not model "a"
    # unless it stands alone between characters a model name cannot hold.
    return bool(re.search(rf"(?<![\w./:-]){re.escape(model)}(?![\w/:-]|\.\w)", text))


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
        wait: Seconds the server asked for; may be zero (a wait already
            over), which the gate floors at a short backoff; never negative,
            infinite or absurd (such a wait is read as none).
        source: `"detail"` (a wait phrase), `"retry-after"` (the header) or
            `"none"`.
    """

    wait: float | None
    source: str


def read_throttle(detail: str | None, retry_after_header: str | None) -> ThrottleSignal:
    """Read a throttle's wait: the text's wait phrase first, then `Retry-After`.

    DRF sends both with the same seconds; the text may carry decimals the
    header cannot, and other servers send only one of them. A wait that
    cannot be real (see `usable_wait`) is passed over for the next source.
    """
    if detail:
        wait = usable_wait(wait_from_detail(detail))
        if wait is not None:
            return ThrottleSignal(wait, "detail")
    if retry_after_header is not None:
        wait = usable_wait(wait_from_retry_after(retry_after_header))
        if wait is not None:
            return ThrottleSignal(wait, "retry-after")
    return ThrottleSignal(None, "none")
