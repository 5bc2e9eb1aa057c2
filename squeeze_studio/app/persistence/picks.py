"""The user's pairwise picks ("this result is better than that one"), per model, in their own SQLite file.

Kept apart from the history index: deleting results or rebuilding the history never loses a pick. Each row holds
the two results' stage settings as they were (a result's PNG may be deleted later) and their paths.
``export_jsonl`` writes one pick per line for anyone who wants to fit their own model of them.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..model.preferences import Setting
from .paths import atomic_write_bytes, data_home

SCHEMA = """
CREATE TABLE IF NOT EXISTS picks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    model TEXT NOT NULL,
    winner TEXT NOT NULL,
    loser TEXT NOT NULL,
    winner_path TEXT NOT NULL,
    loser_path TEXT NOT NULL
)
"""
BUSY_TIMEOUT_S = 5.0
FIELDS = ("tau1", "tau2", "guidance_scale")


@dataclass(frozen=True)
class Pick:
    created: float
    model: str
    winner: Setting
    loser: Setting
    winner_path: str
    loser_path: str

    def to_json(self) -> dict:
        return {"created": self.created, "model": self.model,
                "winner": {**dict(zip(FIELDS, self.winner, strict=True)), "path": self.winner_path},
                "loser": {**dict(zip(FIELDS, self.loser, strict=True)), "path": self.loser_path}}


def picks_db_path() -> Path:
    return data_home() / "picks.sqlite"


class PickStore:
    """One sqlite3 connection, used from the GUI thread only (an insert is well under a millisecond in WAL mode)."""

    def __init__(self, path: Path | None = None):
        self.path = path or picks_db_path()
        self._db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._db.commit()

    def add(self, model: str, winner: Setting, loser: Setting, winner_path: str, loser_path: str) -> Pick:
        pick = Pick(time.time(), model, tuple(winner), tuple(loser), winner_path, loser_path)
        self._db.execute("INSERT INTO picks (created, model, winner, loser, winner_path, loser_path)"
                         " VALUES (?, ?, ?, ?, ?, ?)",
                         (pick.created, model, json.dumps(pick.winner), json.dumps(pick.loser),
                          winner_path, loser_path))
        self._db.commit()
        return pick

    def picks(self, model: str | None = None) -> list[Pick]:
        """Oldest first; only ``model``'s when given."""
        query = "SELECT created, model, winner, loser, winner_path, loser_path FROM picks"
        rows = (self._db.execute(query + " WHERE model = ? ORDER BY id", (model,)) if model is not None
                else self._db.execute(query + " ORDER BY id"))
        return [Pick(created, name, tuple(json.loads(winner)), tuple(json.loads(loser)), winner_path, loser_path)
                for created, name, winner, loser, winner_path, loser_path in rows]

    def export_jsonl(self, path: str | Path, model: str | None = None) -> int:
        """Write the picks (``model``'s, or all) as JSON lines to ``path`` in one atomic write; returns the count."""
        picks = self.picks(model)
        text = "".join(json.dumps(pick.to_json(), ensure_ascii=False) + "\n" for pick in picks)
        atomic_write_bytes(Path(path), text.encode("utf-8"))
        return len(picks)

    def close(self) -> None:
        self._db.close()
