"""Getting a result out of the window (issue 22, seen on screen 7): Save as… for a history result, Copy image
(Ctrl+C on the canvas, never stealing a text field's copy), Show in folder, and dragging a result out."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QDrag, QGuiApplication

from squeeze_studio.recipe import read_recipe

from .helpers import LONG, prepare


def two_results(window, qtbot) -> list[Path]:
    for seed in (1, 2):
        window.studio.controls.set("seed", seed)
        with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
            window.studio.generate()
    return [Path(r.path) for r in window.studio.history.records]


def click_history(window, row: int) -> None:
    strip = window.workspace.history_strip.list
    item = [strip.item(i) for i in range(strip.count()) if strip.item(i).data(Qt.ItemDataRole.UserRole)][row]
    strip.setCurrentItem(item)
    strip.itemClicked.emit(item)


def test_save_as_is_enabled_for_a_history_result_and_writes_its_png_with_the_recipe(make_window, qtbot, images,
                                                                                     tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    first = make_window()
    prepare(first, images[:1], steps=2)
    two_results(first, qtbot)
    first.close()

    window = make_window()  # a later start: nothing made yet, only the history
    assert not window.save_as_action.isEnabled()
    click_history(window, 1)  # the older one: seed 1
    assert window.save_as_action.isEnabled()
    target = tmp_path / "elsewhere" / "mine"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), "PNG"))
    window.save_as_action.trigger()
    saved = target.with_suffix(".png")
    qtbot.waitUntil(saved.is_file, timeout=LONG)
    assert read_recipe(saved).seed == 1
    assert "Saved mine.png" in window.last_message


def test_copy_image_is_ctrl_c_on_the_canvas_and_text_fields_keep_their_copy(make_window, qtbot, images):
    window = make_window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=LONG)
    prepare(window, images[:1], steps=2)
    [newest, _older] = two_results(window, qtbot)
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("before")

    editor = window.workspace.editor
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert clipboard.text() == editor.toPlainText() and clipboard.image().isNull()  # the text field's own copy

    view = window.workspace.canvas.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    copied = clipboard.image()
    assert not copied.isNull() and copied.size().width() > 0
    from PySide6.QtGui import QImage

    assert copied.convertToFormat(QImage.Format.Format_RGB32) == QImage(str(newest)).convertToFormat(
        QImage.Format.Format_RGB32)
    assert "Copied the image" in window.last_message
    edit = [m for m in window.menuBar().actions() if m.text().replace("&", "") == "Edit"][0].menu()
    assert "Copy image" in [a.text() for a in edit.actions()]


def test_show_in_folder_opens_the_results_folder(make_window, qtbot, images, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    window = make_window()
    prepare(window, images[:1], steps=2)
    [newest, older] = two_results(window, qtbot)
    actions = window.result_actions
    assert actions.show_action.isEnabled()
    actions.show_action.trigger()
    assert opened == [QUrl.fromLocalFile(str(newest.parent))]
    click_history(window, 1)
    assert actions.path == str(older)


def test_a_result_drags_out_as_its_png_file_and_its_pixels(make_window, qtbot, images, monkeypatch):
    dragged = []

    def fake_exec(drag, *args):
        dragged.append(drag.mimeData())
        return Qt.DropAction.CopyAction

    monkeypatch.setattr(QDrag, "exec", fake_exec)
    window = make_window()
    prepare(window, images[:1], steps=2)
    [newest, older] = two_results(window, qtbot)

    handle = window.result_actions.drag_handle  # the canvas pans when dragged; this handle drags the result out
    assert handle.isEnabled()
    qtbot.mousePress(handle, Qt.MouseButton.LeftButton, pos=handle.rect().center())
    qtbot.mouseMove(handle, handle.rect().center() + handle.rect().center())
    qtbot.mouseRelease(handle, Qt.MouseButton.LeftButton)
    assert len(dragged) == 1
    mime = dragged[0]
    assert [u.toLocalFile() for u in mime.urls()] == [str(newest)]
    assert mime.hasImage() and not mime.imageData().isNull()

    strip = window.workspace.history_strip.list
    items = [strip.item(i) for i in range(strip.count()) if strip.item(i).data(Qt.ItemDataRole.UserRole)]
    assert strip.dragEnabled()
    mime = strip.mimeData([items[1]])  # a history thumbnail drags out its own result
    assert [u.toLocalFile() for u in mime.urls()] == [str(older)]
    assert mime.hasImage()
