"""The SQLite index of every result PNG, newest first, so the history strip survives restarts.

The PNG (with its recipe) is the truth; this index only makes listing fast and keeps a thumbnail.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ...request import GenerationRequest
from .paths import data_home

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    instruction TEXT NOT NULL,
    request_json TEXT NOT NULL,
    seconds REAL NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    thumbnail BLOB
)
"""
BUSY_TIMEOUT_S = 5.0


@dataclass
class HistoryRecord:
    id: int
    path: str
    created: float
    request: GenerationRequest
    seconds: float
    label: str
    thumbnail: bytes | None  # PNG bytes

    @property
    def exists(self) -> bool:
        return Path(self.path).exists()


def history_db_path() -> Path:
    return data_home() / "history.sqlite"


class HistoryIndex:
    """A thin wrapper over one sqlite3 connection, used from the GUI thread only."""

    def __init__(self, path: Path | None = None):
        self.path = path or history_db_path()
        # A second window on the same data folder (when the hand-over socket was unavailable) writes here too:
        # SQLite's locks keep the file whole; a writer waits up to BUSY_TIMEOUT_S for the other's commit.
        self._db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S)
        # WAL + NORMAL: an insert costs well under a millisecond, so the GUI thread never stalls on it.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._db.commit()

    def add(self, path: str, request: GenerationRequest, seconds: float, label: str = "",
            thumbnail: bytes | None = None, created: float | None = None) -> HistoryRecord:
        created = time.time() if created is None else created
        cursor = self._db.execute(
            "INSERT OR REPLACE INTO results (path, created, instruction, request_json, seconds, label, thumbnail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (path, created, request.instruction, json.dumps(request.to_dict()), seconds, label, thumbnail),
        )
        self._db.commit()
        return HistoryRecord(cursor.lastrowid, path, created, request, seconds, label, thumbnail)

    def recent(self, limit: int = 500) -> list[HistoryRecord]:
        rows = self._db.execute(
            "SELECT id, path, created, request_json, seconds, label, thumbnail FROM results"
            " ORDER BY created DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [self._record(row) for row in rows]

    def remove(self, record_id: int) -> None:
        self._db.execute("DELETE FROM results WHERE id = ?", (record_id,))
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _record(row) -> HistoryRecord:
        record_id, path, created, request_json, seconds, label, thumbnail = row
        try:
            request = GenerationRequest.from_dict(json.loads(request_json))
        except (ValueError, TypeError):
            request = GenerationRequest(instruction="")
        return HistoryRecord(record_id, path, created, request, seconds, label, thumbnail)
