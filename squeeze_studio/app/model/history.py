"""Every result, newest first, backed by the SQLite index so it survives restarts."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ...request import GenerationRequest
from ..persistence.history_index import HistoryIndex, HistoryRecord

HISTORY_LIMIT = 500  # how many recent results the strip lists; older ones stay on disk and in the index


class History(QObject):
    added = Signal(object)    # HistoryRecord, newest
    removed = Signal(int)     # record id
    reset = Signal()

    def __init__(self, index: HistoryIndex | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._index = index or HistoryIndex()
        self.records: list[HistoryRecord] = []
        self.reload()

    def reload(self) -> None:
        # Results deleted by hand from the results folder are left out rather than shown broken.
        self.records = [r for r in self._index.recent(HISTORY_LIMIT) if r.exists]
        self.reset.emit()

    def add(self, path: str, request: GenerationRequest, seconds: float, label: str = "",
            thumbnail: bytes | None = None) -> HistoryRecord:
        record = self._index.add(path, request, seconds, label, thumbnail)
        self.records.insert(0, record)
        self.added.emit(record)
        return record

    def forget(self, record_id: int) -> None:
        """Drop from the strip and the index; the PNG itself stays on disk."""
        self._index.remove(record_id)
        self.records = [r for r in self.records if r.id != record_id]
        self.removed.emit(record_id)

    def find(self, record_id: int) -> HistoryRecord | None:
        return next((r for r in self.records if r.id == record_id), None)

    def find_path(self, path: str) -> HistoryRecord | None:
        target = str(Path(path))
        return next((r for r in self.records if r.path == target), None)

    def close(self) -> None:
        self._index.close()
