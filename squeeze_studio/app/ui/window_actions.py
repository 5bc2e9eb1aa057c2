"""Edit > Undo / Redo for control changes (``model/undo.py``) and View > Reset layout, Zoom to fit, Actual size."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMenu

from ..model.undo import ControlsUndo


def _menu(window, title: str) -> QMenu:
    return next(m for m in window.menuBar().findChildren(QMenu) if m.title().replace("&", "") == title)


def add_undo(window) -> ControlsUndo:
    """Undo (Ctrl+Z) and Redo (Ctrl+Shift+Z) at the top of the Edit menu. A text field with focus keeps its own:
    it takes those keys before the window's shortcuts."""
    history = ControlsUndo(window.studio, window)
    undo = history.stack.createUndoAction(window, "Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    redo = history.stack.createRedoAction(window, "Redo")
    keys = [QKeySequence("Ctrl+Shift+Z")]
    keys += [k for k in QKeySequence.keyBindings(QKeySequence.StandardKey.Redo) if k not in keys]  # a key twice
    redo.setShortcuts(keys)  # is ambiguous, and Qt then runs neither
    edit = _menu(window, "Edit")
    first = edit.actions()[0] if edit.actions() else None
    edit.insertActions(first, [undo, redo])
    edit.insertSeparator(first)
    window.undo_action, window.redo_action = undo, redo
    return history


def add_view_actions(window) -> dict[str, QAction]:
    """View > Reset layout (the docks as on a first start), Zoom to fit (Ctrl+0) and Actual size, 1:1 (Ctrl+Alt+0).
    Call before a saved layout is restored: the layout at that moment is the default one."""
    workspace = window.workspace
    default_state = window.saveState()
    view = _menu(window, "View")
    view.addSeparator()

    def reset_layout() -> None:
        window.restoreState(default_state)
        for dock in window.findChildren(QDockWidget):
            dock.setFloating(False)
            dock.show()
        workspace.default_layout()

    actions = {}
    for text, slot, shortcut in (("Reset layout", reset_layout, None),
                                 ("Zoom to fit", lambda: workspace.canvas.view.fit(), QKeySequence("Ctrl+0")),
                                 ("Actual size (1:1)", lambda: workspace.canvas.view.actual_size(),
                                  QKeySequence("Ctrl+Alt+0"))):
        action = QAction(text, window)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda _checked=False, s=slot: s())
        view.addAction(action)
        actions[text] = action
    window.view_actions = actions
    return actions
