"""Small helpers shared by the window tests: synthetic drops, filling the form, waiting for a run."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from squeeze_studio.app.worker import default_engine_factory

LONG = 120_000  # ms; waits return as soon as their condition holds, this only bounds a hang


def url_mime(paths: list[str]) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def drop(widget: QWidget, mime: QMimeData) -> bool:
    """Drag ``mime`` onto the middle of ``widget`` and drop it, as the file manager would."""
    centre = widget.rect().center()
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    try:  # PySide6 up to 6.11 takes a QPoint here, 6.12 a QPointF
        enter = QDragEnterEvent(centre, *args)
    except TypeError:
        enter = QDragEnterEvent(QPointF(centre), *args)
    QApplication.sendEvent(widget, enter)
    event = QDropEvent(QPointF(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def drop_files(widget: QWidget, paths: list[str]) -> bool:
    return drop(widget, url_mime(paths))


def real_engine_window(make_window, tiny_model):
    """A window whose worker loads the real engine, pointed at the tiny model folder."""
    window = make_window(default_engine_factory)
    window.studio.controls.set("model", str(tiny_model))
    return window


def prepare(window, references: list[str], instruction: str = "the toy on a beach at sunset", steps: int = 4):
    studio = window.studio
    studio.subjects.add_images(references)
    window.workspace.editor.setPlainText(instruction)
    studio.controls.set("num_inference_steps", steps)
    studio.controls.set_seed_locked(True)
    studio.controls.set("seed", 7)


def wait_until_paused(qtbot, factory) -> None:
    """Until the fake engine's run has reached its ``pause_after_step`` and waits there."""
    qtbot.waitUntil(lambda: factory.engine is not None and factory.engine.paused.is_set(), timeout=LONG)


def centre(widget: QWidget) -> QPoint:
    return widget.rect().center()
