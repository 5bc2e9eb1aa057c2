"""The main window: a shell that is on screen first, then filled with the workspace.

Only ``QMainWindow`` and a few ``QtCore`` names are imported with this module, so ``main()`` can show
the window almost as fast as a bare ``QMainWindow``; ``build()`` then imports and assembles the
``Studio`` and the widgets (``workspace.py``) right after the first paint. Tests build at once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSettings, QTimer, Signal
from PySide6.QtWidgets import QMainWindow

from ..persistence.paths import data_home

if TYPE_CHECKING:
    from ..model.studio import Studio
    from ..worker import EngineFactory
    from .workspace import Workspace

MESSAGE_MS = 10_000
DEFAULT_SIZE = (1280, 820)


class MainWindow(QMainWindow):
    first_painted = Signal()  # once, just after the window first reached the screen
    ready = Signal()          # the workspace is built and the window is usable

    def __init__(self, engine_factory: EngineFactory | None = None, build: bool = True):
        super().__init__()
        self.setWindowTitle("Squeeze Studio")
        self.studio: Studio | None = None
        self.workspace: Workspace | None = None
        self.last_message = ""
        self._engine_factory = engine_factory
        self._painted = False
        geometry = self.settings().value("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(*DEFAULT_SIZE)
        if build:
            self.build()
        else:
            self.statusBar().showMessage("Starting…")

    def build(self) -> None:
        """Create the ``Studio`` (session restored, history loaded, worker thread started) and the widgets."""
        if self.workspace is not None:
            return
        from ..model.studio import Studio
        from .workspace import Workspace

        self.studio = Studio(self._engine_factory, parent=self)
        self.studio.message.connect(self.show_message)
        self.workspace = Workspace(self, self.studio)
        state = self.settings().value("state")
        if state is not None:
            self.restoreState(state)
        else:
            self.workspace.default_layout()
        self.statusBar().clearMessage()
        if self.studio.startup_message:
            self.show_message(self.studio.startup_message)
        self.ready.emit()

    def show_message(self, text: str) -> None:
        """One line in the status bar: how every problem reaches the user (never a traceback dialog)."""
        self.last_message = text
        self.statusBar().showMessage(text, MESSAGE_MS)

    def event(self, event) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            QTimer.singleShot(0, self.first_painted.emit)  # after this frame is flushed
        return handled

    @staticmethod
    def settings() -> QSettings:
        return QSettings(str(data_home() / "window.ini"), QSettings.Format.IniFormat)

    def closeEvent(self, event) -> None:
        settings = self.settings()
        settings.setValue("geometry", self.saveGeometry())
        if self.workspace is not None:
            settings.setValue("state", self.saveState())
        settings.sync()
        self.hide()  # joining the worker can take a moment if a model is still loading
        if self.workspace is not None:
            self.workspace.shutdown()  # a download is cancelled, a verification finishes
        if self.studio is not None:
            self.studio.shutdown()  # cancels a running generation and joins the worker thread
        super().closeEvent(event)
