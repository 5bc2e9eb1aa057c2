"""Lets files be dropped anywhere in the window: a filter that takes file drags from any widget."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Signal

from ..file_names import url_to_path


def local_paths(mime) -> list[str]:
    """The local files of a drop, exact to the byte (a name that is not UTF-8 stays that file)."""
    return [path for path in (url_to_path(url) for url in mime.urls()) if path is not None]


class FileDropFilter(QObject):
    """Installed on widgets that take drops for their own reasons (text, views): file drags go to
    ``files_dropped`` instead, so a generated PNG restores its settings wherever it lands."""

    files_dropped = Signal(object)  # list of local paths; a list signal would drop bytes that are not UTF-8
    image_dropped = Signal(object)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            mime = event.mimeData()
            if mime.hasUrls() or mime.hasImage():
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            mime = event.mimeData()
            if mime.hasUrls():
                event.acceptProposedAction()
                self.files_dropped.emit(local_paths(mime))
                return True
            if mime.hasImage():
                event.acceptProposedAction()
                self.image_dropped.emit(mime.imageData())
                return True
        return False
