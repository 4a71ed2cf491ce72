"""The results table and the machine it was measured on.

The table is Markdown, so the printed output can be pasted into the README
as it is. A row says what was measured, each contender's median, the ratio
the target is about, the target, and whether it was met.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata

_HEADERS = ("measure", "ChatDfeHub", "ChatOpenAI", "floor", "ratio", "target", "met?")
_VERSIONS = ("langchain-dfehub", "langchain-core", "langchain-openai", "openai")


@dataclass(frozen=True)
class Row:
    """One line of the table; `met` is None for a measure without a target."""

    measure: str
    dfehub: str
    openai: str
    floor: str
    ratio: str
    target: str
    met: bool | None

    def cells(self) -> tuple[str, ...]:
        """The row's cells in column order."""
        met = {True: "yes", False: "**NO**", None: ""}[self.met]
        return (
            self.measure,
            self.dfehub,
            self.openai,
            self.floor,
            self.ratio,
            self.target,
            met,
        )


def median(values: Sequence[float]) -> float:
    """The median, the statistic robust to a noisy neighbour's bursts."""
    return statistics.median(values)


def spread(values: Sequence[float], scale: float = 1.0, unit: str = "") -> str:
    """`median (min-max, n=...)` for the detail lines under the table."""
    low, mid, high = (v * scale for v in (min(values), median(values), max(values)))
    return f"{number(mid)}{unit} ({number(low)}-{number(high)}, n={len(values)})"


def number(value: float) -> str:
    """Three significant figures or more, with thousands separators."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned Markdown table."""
    lines = [_HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(_HEADERS))]

    def render(cells: Sequence[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([render(lines[0]), rule, *(render(line) for line in lines[1:])])


def machine_summary() -> str:
    """Date, CPU model, cores, Python and library versions of this run."""
    versions = []
    for name in _VERSIONS:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{date}; {_cpu_model()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()} ({sys.implementation.name}) "
        f"on {platform.system()}; {', '.join(versions)}"
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
