"""The picks room: the user presses a result's number in the comparison view, the studio records that it beat the
others shown, and "your default" (``preferences.preferred_setting``) follows the model chosen in the controls.

Every setting is read from the results' own PNG recipes, so a pick made on results from the history means the same
as one made on a fresh sweep. Picks between results of different models are not recorded: they say nothing about
either model's stages.
"""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ...errors import first_line
from ...models import default_model_path
from ...recipe import read_recipe
from ..persistence.picks import PickStore
from .comparison import CompareItem
from .preferences import Preference, preferred_setting, setting_of

log = logging.getLogger(__name__)


def model_name(model: str, addon: str) -> str:
    """The key picks are kept under: the model ("demo" for the built-in one, named "" by the controls and by its
    folder in a recipe) and its add-on."""
    demo = default_model_path()
    if not model or (demo is not None and Path(model) == demo):
        model = "demo"
    return f"{model}|{addon}" if addon else model


class Picks(QObject):
    changed = Signal()  # a pick was recorded or the model changed: "your default" may have moved
    message = Signal(str)

    def __init__(self, store: PickStore | None = None, parent: QObject | None = None):
        super().__init__(parent)
        try:
            self._store = store or PickStore()
        except (OSError, sqlite3.Error) as error:  # a damaged or unwritable file: picks are off, the app stays up
            log.warning("picks are off: %s", error)
            self._store = None
        self.model = "demo"
        self.preference: Preference | None = None
        self._refresh()

    def set_model(self, model: str, addon: str) -> None:
        name = model_name(model, addon)
        if name != self.model:
            self.model = name
            self._refresh()

    def pick_best(self, items: list[CompareItem], index: int) -> int:
        """Record that ``items[index]`` beat every other item shown; returns the number of picks recorded."""
        if self._store is None:
            self.message.emit("Picks are off: the picks file could not be opened")
            return 0
        requests = [read_recipe(item.path) if item.path and Path(item.path).is_file() else None for item in items]
        winner = requests[index]
        if winner is None:
            self.message.emit("That result has no recipe to learn from")
            return 0
        recorded = 0
        try:
            for item, loser in zip(items, requests, strict=True):
                if loser is None or loser is winner or (loser.model, loser.addon) != (winner.model, winner.addon):
                    continue
                self._store.add(model_name(winner.model, winner.addon), setting_of(winner.to_dict()),
                                setting_of(loser.to_dict()), items[index].path, item.path)
                recorded += 1
        except sqlite3.Error as error:
            self.message.emit(f"Could not record the pick: {first_line(error)}")
        self._refresh()
        if recorded:
            known = f"; {self.preference.words()}" if self.preference else ""
            self.message.emit(f"Picked {index + 1} over {recorded} other result{'s' * (recorded > 1)}{known}")
        return recorded

    def export(self, path: str) -> int:
        """All of this model's picks as JSON lines."""
        return self._store.export_jsonl(path, self.model) if self._store is not None else 0

    def count(self) -> int:
        return len(self._store.picks(self.model)) if self._store is not None else 0

    def _refresh(self) -> None:
        picks = self._store.picks(self.model) if self._store is not None else []
        self.preference = preferred_setting([(pick.winner, pick.loser) for pick in picks])
        self.changed.emit()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
