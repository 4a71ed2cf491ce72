"""Reading how long the server asked us to wait.

The DfeHub service ends its throttle text with the wait ("Expected available in
3.512 seconds."); HTTP servers may say it in a `Retry-After` header instead,
as seconds or as an HTTP date. Both are read here, in one place, so the retry
policy treats them alike.
"""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime

# The last number in the text, integer or decimal: "in 3 seconds",
# "in 3.512 seconds", "in 1 second", "in .5 seconds".
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
# A `Retry-After` number of seconds. Checked before calling float(), which
# would also accept "nan", "inf" and "1_0".
_SECONDS = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def wait_from_detail(detail: str) -> float | None:
    """Return the wait a `detail` text asks for, or None when it names none."""
    numbers = _NUMBER.findall(detail)
    if not numbers:
        return None
    return float(numbers[-1])


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
