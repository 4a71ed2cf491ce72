"""The SQLite store: one gate for the processes of one host, through a file.

No server: the standard library's `sqlite3`, the file in WAL mode, each
decision one `BEGIN IMMEDIATE` transaction (so the processes take turns, and
each sees the last one's records). Times are the host's monotonic clock,
which every process of the host shares; the file remembers the boot it was
written in and starts afresh after a reboot, when that clock starts over.

A file that cannot be opened, or stays locked past `BUSY_TIMEOUT`, raises
`StoreUnavailable`, and the gate goes on in memory (`_fallback`). Records
that do not parse are reset, not trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from langchain_dfehub._gate._decisions import HISTORY, Counts, Lane, apply
from langchain_dfehub._gate._store import StoreUnavailable

# How long one decision waits for another process's transaction.
BUSY_TIMEOUT = 1.0
# Gates untouched this long are deleted (DRF's longest period is a day).
IDLE_EXPIRY = 2 * 86400.0
# The service lane's row; a model's row is named by the model.
_SERVICE = ""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gate_lanes (
    gate TEXT NOT NULL, lane TEXT NOT NULL, record TEXT,
    touched REAL NOT NULL, PRIMARY KEY (gate, lane)
);
CREATE TABLE IF NOT EXISTS gate_admitted (
    gate TEXT NOT NULL, lane TEXT NOT NULL, at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS gate_admitted_by_lane ON gate_admitted (gate, lane, at);
CREATE TABLE IF NOT EXISTS gate_counts (
    gate TEXT PRIMARY KEY, record TEXT, touched REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS gate_meta (name TEXT PRIMARY KEY, value TEXT);
"""


def path_of(url: str) -> str:
    """The file of a `sqlite:///path` URL (`sqlite:////abs` or `sqlite:///rel`)."""
    return url[len("sqlite:///") :]


def _boot_id() -> str:
    """Which boot of the host this is: the monotonic clock is per boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return f"{time.time() - time.monotonic():.0f}"  # near enough elsewhere


class SqliteStore:
    """Gates in one SQLite file, shared by the processes of this host."""

    kind = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        # A forked child opens its own connection; the parent's stays theirs.
        connection = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            self._start_afresh_after_reboot(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        self._pid = os.getpid()
        return connection

    def _start_afresh_after_reboot(self, connection: sqlite3.Connection) -> None:
        boot = _boot_id()
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute(
                "SELECT value FROM gate_meta WHERE name = 'boot'"
            ).fetchone()
            if row is None or row[0] != boot:
                connection.execute("DELETE FROM gate_lanes")
                connection.execute("DELETE FROM gate_admitted")
                connection.execute("DELETE FROM gate_counts")
                connection.execute(
                    "INSERT OR REPLACE INTO gate_meta VALUES ('boot', ?)", (boot,)
                )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def run(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one decision in one write transaction."""
        with self._lock:
            try:
                connection = self._connect()
                connection.execute("BEGIN IMMEDIATE")
                try:
                    result = self._decide(connection, key, model, op, now, args)
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            except sqlite3.Error as error:
                self._forget_connection()
                raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
            return result

    async def arun(
        self, key: str, model: str | None, op: str, now: float, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The same in a worker thread: a locked file must not stall the loop."""
        return await asyncio.to_thread(self.run, key, model, op, now, args)

    def _decide(
        self,
        connection: sqlite3.Connection,
        key: str,
        model: str | None,
        op: str,
        now: float,
        args: dict[str, Any],
    ) -> dict[str, Any]:
        names = [_SERVICE] if model is None else [_SERVICE, model]
        rows = dict(
            connection.execute(
                "SELECT lane, record FROM gate_lanes WHERE gate = ? AND lane IN (?, ?)",
                (key, names[0], names[-1]),
            ).fetchall()
        )
        if op == "state" and model is not None and model not in rows:
            names = [_SERVICE]  # a model never seen: the service lane alone
        lanes = [Lane.from_record(_loads(rows.get(name))) for name in names]
        histories = []
        for name, lane in zip(names, lanes, strict=True):
            # The admitted sends are read only when a pace is to be learned.
            read = _history(connection, key, name) if lane.learning else []
            lane.history = history = _Admitted(read)
            histories.append(history)
        (counts_text,) = connection.execute(
            "SELECT record FROM gate_counts WHERE gate = ?", (key,)
        ).fetchone() or (None,)
        counts = _counts(_loads(counts_text))
        result = apply(op, lanes, counts, now, args)
        if op == "state":
            return result
        touched = time.time()
        for name, lane, history in zip(names, lanes, histories, strict=True):
            connection.execute(
                "INSERT OR REPLACE INTO gate_lanes VALUES (?, ?, ?, ?)",
                (key, name, json.dumps(lane.to_record()), touched),
            )
            connection.executemany(
                "INSERT INTO gate_admitted VALUES (?, ?, ?)",
                [(key, name, at) for at in history.added()],
            )
        connection.execute(
            "INSERT OR REPLACE INTO gate_counts VALUES (?, ?, ?)",
            (key, json.dumps(counts.__dict__), touched),
        )
        if counts.ids % 1000 == 1:
            self._expire(connection, key, names, touched)
        return result

    def _expire(
        self, connection: sqlite3.Connection, key: str, names: list[str], now: float
    ) -> None:
        """Drop idle gates, and admitted sends past the `HISTORY` kept."""
        for name in names:
            connection.execute(
                "DELETE FROM gate_admitted WHERE gate = ? AND lane = ? AND at < ("
                " SELECT at FROM gate_admitted WHERE gate = ? AND lane = ?"
                " ORDER BY at DESC LIMIT 1 OFFSET ?)",
                (key, name, key, name, HISTORY - 1),
            )
        connection.execute(
            "DELETE FROM gate_lanes WHERE touched < ?", (now - IDLE_EXPIRY,)
        )
        connection.execute(
            "DELETE FROM gate_counts WHERE touched < ?", (now - IDLE_EXPIRY,)
        )
        connection.execute(
            "DELETE FROM gate_admitted WHERE NOT EXISTS (SELECT 1 FROM gate_lanes"
            " WHERE gate_lanes.gate = gate_admitted.gate"
            " AND gate_lanes.lane = gate_admitted.lane)"
        )

    def _forget_connection(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
        self._connection = None

    def close(self) -> None:
        """Close this process's connection (it reopens when used again)."""
        with self._lock:
            self._forget_connection()


class _Admitted(list[float]):
    """A lane's admitted sends as read from the file, and those added since.

    The decisions append a send and drop the oldest past `HISTORY`: with a
    full history read, the length alone would not tell the new ones.
    """

    def __init__(self, sends: list[float]) -> None:
        super().__init__(sends)
        self._added = 0

    def append(self, at: float) -> None:
        super().append(at)
        self._added += 1

    def added(self) -> list[float]:
        """The sends appended since it was read, oldest first (all still in it)."""
        return self[max(len(self) - self._added, 0) :] if self._added else []


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None  # garbage: reset


def _history(connection: sqlite3.Connection, key: str, name: str) -> list[float]:
    """The lane's last `HISTORY` admitted sends, oldest first."""
    rows = connection.execute(
        "SELECT at FROM gate_admitted WHERE gate = ? AND lane = ?"
        " ORDER BY at DESC LIMIT ?",
        (key, name, HISTORY),
    ).fetchall()
    return [float(at) for (at,) in reversed(rows) if isinstance(at, (int, float))]


def _counts(record: Any) -> Counts:
    counts = Counts()
    if isinstance(record, dict):
        for name in counts.__dict__:
            value = record.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                setattr(counts, name, value)
    return counts
