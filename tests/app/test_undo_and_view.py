"""Undo for control changes and the View menu (issue 22, seen on screen 10): Ctrl+Z / Ctrl+Shift+Z over the stage
balance, seed and steps (a text field keeps its own undo), View > Reset layout, Zoom to fit and Actual size."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget

from .helpers import LONG, prepare

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def values(studio) -> tuple:
    c = studio.controls
    return c.get("tau1"), c.get("tau2"), c.get("seed"), c.get("num_inference_steps")


def test_control_changes_undo_and_redo_with_the_keyboard(make_window, qtbot):
    window = make_window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=LONG)
    studio, panel = window.studio, window.workspace.controls_panel
    stack = window.controls_undo.stack
    start = values(studio)
    panel.stage_bar.set_values(0.6, 0.7, emit=True)  # τ2 cannot pass τ1: one step for both handles
    qtbot.waitUntil(lambda: stack.count() == 1, timeout=LONG)
    panel.seed.setValue(1234)
    qtbot.waitUntil(lambda: stack.count() == 2, timeout=LONG)
    panel.steps.setValue(start[3] + 5)
    qtbot.waitUntil(lambda: stack.count() == 3, timeout=LONG)
    changed = values(studio)
    assert changed[2:] == (1234, start[3] + 5)

    editor = window.workspace.editor  # Ctrl+Z in the instruction is the text's own undo
    editor.setFocus()
    qtbot.keyClicks(editor, "abc")
    qtbot.keyClick(editor, Qt.Key.Key_Z, CTRL)
    assert values(studio) == changed and stack.index() == 3

    view = window.workspace.canvas.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)
    assert values(studio) == (*changed[:3], start[3])
    for _ in range(2):
        qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)
    assert values(studio) == start
    assert (panel.stage_bar.values(), panel.seed.value()) == (start[:2], start[2])  # the widgets follow
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL | SHIFT)
    assert values(studio)[:2] == changed[:2]
    assert window.undo_action.text().startswith("Undo Change stage balance")


def test_a_seed_drawn_by_generate_is_not_an_undo_step(make_window, qtbot, images):
    window = make_window()
    prepare(window, images[:1], steps=2)
    window.studio.controls.set_seed_locked(False)
    qtbot.waitUntil(lambda: window.controls_undo.stack.count() >= 1, timeout=LONG)
    count = window.controls_undo.stack.count()
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    qtbot.wait(20)
    assert window.controls_undo.stack.count() == count


def test_view_menu_resets_the_layout_and_zooms(make_window, qtbot, images):
    window = make_window()
    prepare(window, images[:1], steps=2)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    view = window.workspace.canvas.view
    window.view_actions["Actual size (1:1)"].trigger()
    assert view.zoom() == 1.0
    window.view_actions["Zoom to fit"].trigger()
    rect = view.mapFromScene(view.sceneRect()).boundingRect()
    viewport = view.viewport().rect()
    gap = min(viewport.width() - rect.width(), viewport.height() - rect.height())
    assert view.zoom() != 1.0 and 0 <= gap <= 6  # the image fills the view one way (fitInView keeps a margin)

    history = window.findChild(QDockWidget, "history_dock")
    subjects = window.findChild(QDockWidget, "subjects_dock")
    history.hide()
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, subjects)  # moved by the user
    window.view_actions["Reset layout"].trigger()
    assert history.isVisible() and not subjects.isFloating()
    assert window.dockWidgetArea(subjects) == Qt.DockWidgetArea.LeftDockWidgetArea
