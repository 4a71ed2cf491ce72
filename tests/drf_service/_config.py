"""What the runner, the command line and the app agree on, without Django."""

from __future__ import annotations

import re

# The app reads its throttle rate from this environment variable.
RATE_VARIABLE = "DRF_SERVICE_RATE"
# DRF's rate syntax: requests, a slash, a period whose first letter counts.
_RATE = re.compile(r"\d+/[smhd][a-z]*")


def check_rate(rate: str) -> str:
    """Return `rate` if DRF can read it (`10/s`, `3/min`, `100/hour`, `1/d`)."""
    if not _RATE.fullmatch(rate):
        msg = f"a rate is N/period with period s, m, h or d (e.g. 10/s), got {rate!r}"
        raise ValueError(msg)
    return rate
