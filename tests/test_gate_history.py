"""A shared store keeps every admitted send a learning lane may read."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from langchain_dfehub._gate._decisions import HISTORY, Lane
from langchain_dfehub._gate._sqlite import SqliteStore


def test_a_learning_lane_with_a_full_history_still_keeps_each_admitted_send(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "gates.sqlite3"))
    store.run("g", None, "admitted", 1.0, {"id": 7, "sent_at": 1.0})  # the tables
    connection = sqlite3.connect(store.path)
    with connection:  # a lane learning its pace, with as many sends as are kept
        connection.execute("DELETE FROM gate_admitted")
        connection.executemany(
            "INSERT INTO gate_admitted VALUES ('g', '', ?)",
            [(float(at),) for at in range(HISTORY)],
        )
        connection.execute(
            "UPDATE gate_lanes SET record = ? WHERE gate = 'g' AND lane = ''",
            (json.dumps(Lane(learning=True).to_record()),),
        )

    for sent_at in (5000.0, 5001.0):
        store.run("g", None, "admitted", sent_at, {"id": 7, "sent_at": sent_at})

    newest = connection.execute(
        "SELECT at FROM gate_admitted WHERE gate = 'g' ORDER BY at DESC LIMIT 3"
    ).fetchall()
    assert [at for (at,) in newest] == [5001.0, 5000.0, HISTORY - 1.0]
    connection.close()
    store.close()
