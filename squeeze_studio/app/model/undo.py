"""Undo and redo for control changes: the stage balance, guidance, steps, seed and its lock, size and batch.

Every change of those ``Controls`` fields in one turn of the event loop is one step (a τ1 handle that pushes τ2
along is one step); steps of the same fields within ``MERGE_S`` merge (a drag, a spin box held down). The instruction
and the "avoid" text keep their own fields' undo, and the model, add-on and memory choices load a model, so they are
left out. A seed drawn by Generate (seed unlocked) is not a step of its own.
"""
from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QUndoCommand, QUndoStack

UNDOABLE = ("tau1", "tau2", "guidance_scale", "num_inference_steps", "seed", "width", "height", "batch_count")
MERGE_S = 0.6
NAMES = {"tau1": "stage balance", "tau2": "stage balance", "guidance_scale": "guidance", "num_inference_steps": "steps",
         "seed": "seed", "width": "size", "height": "size", "batch_count": "batch", "seed_locked": "seed lock"}


class ControlsChange(QUndoCommand):
    def __init__(self, history: ControlsUndo, before: dict, after: dict):
        names = sorted({NAMES[name] for name in after})
        super().__init__(f"Change {' and '.join(names)}")
        self.history, self.before, self.after = history, before, after
        self.when = time.monotonic()

    def id(self) -> int:
        return 1

    def mergeWith(self, other) -> bool:
        if set(other.after) != set(self.after) or other.when - self.when > MERGE_S:
            return False
        self.after, self.when = other.after, other.when
        return True

    def undo(self) -> None:
        self.history.apply(self.before)

    def redo(self) -> None:
        self.history.apply(self.after)


class ControlsUndo(QObject):
    """Follows ``studio.controls`` and keeps a ``QUndoStack`` of its changes."""

    def __init__(self, studio, parent: QObject | None = None):
        super().__init__(parent or studio)
        self.studio, self.controls = studio, studio.controls
        self.stack = QUndoStack(self)
        self._seen = self._snapshot()
        self._applying = False
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.setInterval(0)
        self._pending.timeout.connect(self._record)
        self.controls.changed.connect(self._changed)

    def _snapshot(self) -> dict:
        values = {name: self.controls.get(name) for name in UNDOABLE}
        values["seed_locked"] = self.controls.seed_locked
        return values

    def _changed(self, _name: str) -> None:
        if not self._applying:
            self._pending.start()  # after the rest of this turn: a handle that pushes the other is one step

    def _record(self) -> None:
        now = self._snapshot()
        before = {k: v for k, v in self._seen.items() if now[k] != v}
        after = {k: now[k] for k in before}
        self._seen = now
        if not after:
            return
        if set(after) == {"seed"} and self.studio.busy and not self.controls.seed_locked:
            return  # the fresh seed Generate drew, not the user's change
        command = ControlsChange(self, before, after)
        self._applying = True  # push() calls redo(), which sets what is already set
        try:
            self.stack.push(command)
        finally:
            self._applying = False

    def apply(self, values: dict) -> None:
        self._applying = True
        try:
            for name, value in values.items():  # τ1 and τ2 come out right in either order, as both are set
                if name == "seed_locked":
                    self.controls.set_seed_locked(value)
                else:
                    self.controls.set(name, value)
        finally:
            self._applying = False
        self._seen = self._snapshot()
