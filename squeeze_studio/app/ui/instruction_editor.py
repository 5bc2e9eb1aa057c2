"""The multi-line instruction editor: Ctrl+Enter generates, Esc cancels, dropped files are not text."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QPlainTextEdit

from .file_drops import local_paths


class InstructionEditor(QPlainTextEdit):
    generate_requested = Signal()
    cancel_requested = Signal()
    files_dropped = Signal(object)  # list of local paths: handled like any other drop, not pasted as text
    image_pasted = Signal(object)  # QImage from the clipboard: becomes a reference

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setPlaceholderText("Describe the new image of your subject, e.g. “the toy on a beach at sunset, "
                                "seen from above”.  Ctrl+Enter generates, Esc cancels.")
        self.setToolTip("The instruction the MLLM reads together with the reference images. Say what should "
                        "change (scene, pose, viewpoint, style); the subject's identity comes from the references. "
                        "Ctrl+Enter generates, Esc cancels.")
        self.setTabChangesFocus(True)

    def keyPressEvent(self, event) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.generate_requested.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.cancel_requested.emit()
            return
        super().keyPressEvent(event)

    def canInsertFromMimeData(self, source) -> bool:
        if source.hasUrls() or (source.hasImage() and not source.hasText()):
            return True  # accept, so the drop or paste reaches insertFromMimeData below
        return super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source) -> None:
        if source.hasUrls():
            paths = local_paths(source)
            if paths:
                self.files_dropped.emit(paths)
            return
        if source.hasImage() and not source.hasText():
            self.image_pasted.emit(source.imageData())
            return
        super().insertFromMimeData(source)
