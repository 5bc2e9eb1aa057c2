"""Getting a result out: Save as…, Copy image, Show in folder and dragging it to another application.

"The shown result" is the one the canvas shows: the newest result, or the history result last clicked. Its PNG
carries the recipe, so Save as… copies the file itself. A result that could not be written (``Studio.outputs.unsaved``)
comes first for Save as…, as before. Copy image is Ctrl+C where the canvas has focus: the shortcut lives on the
canvas, so text fields keep their own Ctrl+C.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QMimeData, QObject, QPoint, Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QDrag, QGuiApplication, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QMenu, QToolButton, QWidget

from ...errors import first_line
from ..background_io import run_io
from ..file_names import display_name

DRAG_ICON = 96


def result_mime(paths: list[str], image: QImage | None = None) -> QMimeData:
    """What a dragged result carries: the PNG files (file managers, browsers' upload fields, editors that open
    files) and the pixels (applications that take an image)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    if image is not None and not image.isNull():
        mime.setImageData(image)
    return mime


def start_drag(source: QWidget, paths: list[str], image: QImage | None) -> Qt.DropAction:
    drag = QDrag(source)
    drag.setMimeData(result_mime(paths, image))
    if image is not None and not image.isNull():
        drag.setPixmap(QPixmap.fromImage(image).scaled(DRAG_ICON, DRAG_ICON, Qt.AspectRatioMode.KeepAspectRatio,
                                                       Qt.TransformationMode.SmoothTransformation))
    return drag.exec(Qt.DropAction.CopyAction)


class DragHandle(QToolButton):
    """A button to drag the shown result out of the window (the canvas itself pans when dragged)."""

    def __init__(self, actions: ResultActions):
        super().__init__(text="⠿ Drag")
        self.setObjectName("drag_result")
        self.setToolTip("Drag the shown result into another application or a folder (the PNG, with its recipe)")
        self.setAutoRaise(True)
        self._actions = actions
        self._pressed: QPoint | None = None

    def mousePressEvent(self, event) -> None:
        self._pressed = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pressed is not None and (event.position().toPoint() - self._pressed).manhattanLength() >= \
                QGuiApplication.styleHints().startDragDistance():
            self._pressed = None
            self.setDown(False)
            self._actions.drag(self)
            return
        super().mouseMoveEvent(event)


class ResultActions(QObject):
    def __init__(self, window, parent: QObject | None = None):
        super().__init__(parent or window)
        self.window = window
        workspace, studio = window.workspace, window.studio
        self.studio, self.canvas = studio, workspace.canvas
        self.path = ""  # the shown result's PNG; "" for none yet, or one that could not be written
        self.image: QImage | None = None  # what the canvas shows (the PNG is read again for a copy)
        studio.history.added.connect(lambda record: self._shown(record.path))
        studio.outputs.unsaved_changed.connect(self._unsaved_changed)
        studio.canvas_image.connect(lambda image, _caption: setattr(self, "image", image))
        workspace.history_strip.list.itemClicked.connect(self._history_clicked)
        self._unsaved_count = len(studio.outputs.unsaved)

        self.copy_action = self._action("Copy image", self.copy_image, QKeySequence.StandardKey.Copy,
                                        "Copy the shown result to the clipboard (Ctrl+C on the canvas)")
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.canvas.addAction(self.copy_action)  # Ctrl+C where the canvas has focus; text fields keep theirs
        self.show_action = self._action("Show in folder", self.show_in_folder, None,
                                        "Open the folder that holds the shown result")
        self.save_action = window.save_as_action
        self.save_action.triggered.disconnect()
        self.save_action.triggered.connect(lambda _c=False: self.save_as())
        edit_menu = next(m for m in window.menuBar().findChildren(QMenu) if m.title().replace("&", "") == "Edit")
        edit_menu.insertAction(edit_menu.actions()[0] if edit_menu.actions() else None, self.copy_action)
        self.canvas.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.canvas.view.customContextMenuRequested.connect(self._context_menu)
        self._add_buttons()
        self.update()

    def _action(self, text: str, slot, shortcut, tip: str) -> QAction:
        action = QAction(text, self.window)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.setToolTip(tip)
        action.triggered.connect(lambda _c=False: slot())
        return action

    def _add_buttons(self) -> None:
        """Copy, Save as…, Show in folder and the drag handle at the right of the canvas's caption."""
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.buttons = QWidget()
        self.buttons.setObjectName("result_buttons")
        layout = QHBoxLayout(self.buttons)
        layout.setContentsMargins(0, 0, 0, 0)
        for action, text in ((self.copy_action, "Copy"), (self.save_action, "Save as…"),
                             (self.show_action, "Show in folder")):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setText(text)
            button.setAutoRaise(True)
            layout.addWidget(button)
        self.drag_handle = DragHandle(self)
        layout.addWidget(self.drag_handle)
        canvas_layout = self.canvas.layout()
        index = canvas_layout.indexOf(self.canvas.caption)
        canvas_layout.takeAt(index)
        row.addStretch(1)
        row.addWidget(self.canvas.caption, 0)
        row.addStretch(1)
        row.addWidget(self.buttons)
        canvas_layout.insertLayout(index, row)

    # --- which result is shown ------------------------------------------------------------------
    def _shown(self, path: str) -> None:
        self.path = path
        self.update()

    def _history_clicked(self, item) -> None:
        record = self.studio.history.find(item.data(Qt.ItemDataRole.UserRole))
        if record is not None:
            self._shown(record.path)

    def _unsaved_changed(self) -> None:
        count = len(self.studio.outputs.unsaved)
        if count > self._unsaved_count:
            self.path = ""  # the canvas shows a result that could not be written
        self._unsaved_count = count
        self.update()

    def has_result(self) -> bool:
        return bool(self.path) or self.image is not None

    def update(self) -> None:
        saved = bool(self.path)
        self.save_action.setEnabled(saved or bool(self.studio.outputs.unsaved))
        self.show_action.setEnabled(saved)
        self.copy_action.setEnabled(self.has_result())
        self.drag_handle.setEnabled(saved)
        self.buttons.setVisible(self.has_result() or bool(self.studio.outputs.unsaved))

    def shown_image(self) -> QImage | None:
        if self.path:
            image = QImage(self.path)
            if not image.isNull():
                return image
        return self.image

    # --- the actions ----------------------------------------------------------------------------
    def copy_image(self) -> bool:
        image = self.shown_image()
        if image is None or image.isNull():
            self.window.show_message("No result to copy yet")
            return False
        QGuiApplication.clipboard().setImage(image)
        self.window.show_message(f"Copied the image ({image.width()} × {image.height()})")
        return True

    def show_in_folder(self) -> None:
        if not self.path:
            self.window.show_message("This result has no file yet")
            return
        folder = Path(self.path).parent
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.window.show_message(f"The result is in {display_name(str(folder))}")

    def save_as(self) -> None:
        """A result that could not be written first (as before); else the shown one, copied with its recipe."""
        if self.studio.outputs.unsaved or not self.path:
            self.window.save_unsaved_as()
            return
        source = Path(self.path)
        target, _filter = QFileDialog.getSaveFileName(self.window, "Save result as", str(Path.home() / source.name),
                                                      "PNG images (*.png)")
        if target:
            self.save_copy(source, Path(target))

    def save_copy(self, source: Path, target: Path) -> None:
        target = target if target.suffix.lower() == ".png" else target.with_suffix(".png")
        run_io(shutil.copyfile, str(source), str(target),
               on_done=lambda _saved: self.window.show_message(f"Saved {target.name} in {target.parent}"),
               on_error=lambda error: self.window.show_problem("run", f"Could not save {target.name}: "
                                                               f"{first_line(error)}"))

    def drag(self, source: QWidget) -> None:
        if self.path:
            start_drag(source, [self.path], self.shown_image())

    def _context_menu(self, position) -> None:
        if not self.has_result():
            return
        menu = QMenu(self.canvas)
        for action in (self.copy_action, self.save_action, self.show_action):
            menu.addAction(action)
        menu.exec(self.canvas.view.viewport().mapToGlobal(position))
