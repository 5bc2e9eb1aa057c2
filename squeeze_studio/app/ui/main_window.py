"""The main window: a shell that is on screen first, then filled with the workspace.

Only ``QMainWindow`` and a few ``QtCore`` names are imported with this module, so ``main()`` can show
the window almost as fast as a bare ``QMainWindow``; ``build()`` then imports and assembles the
``Studio`` and the widgets (``workspace.py``) right after the first paint. Tests build at once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSettings, QTimer, Signal
from PySide6.QtWidgets import QMainWindow

from ..persistence import paths

if TYPE_CHECKING:
    from ..model.samples import Sample
    from ..model.studio import Studio
    from ..worker import EngineFactory
    from .welcome_panel import WelcomePanel
    from .workspace import Workspace

MESSAGE_MS = 10_000
WELCOME_KEY = "welcome/dismissed"


class MainWindow(QMainWindow):
    first_painted = Signal()  # once, just after the window first reached the screen
    complete_painted = Signal()  # once, just after the window first reached the screen with its workspace
    ready = Signal()          # the workspace is built and the window is usable

    def __init__(self, engine_factory: EngineFactory | None = None, build: bool = True):
        super().__init__()
        self.setWindowTitle("Squeeze Studio")
        self.studio: Studio | None = None
        self.workspace: Workspace | None = None
        self.welcome: WelcomePanel | None = None
        self.samples: list[Sample] = []
        self._sample_turn = 0
        self.fresh_start = False
        self.last_message = ""
        self._engine_factory = engine_factory
        self._painted = self._complete_painted = False
        # Quit while a model loads: False (the app) closes at once and leaves the load to the ending process;
        # True (tests, embedding) waits for the load, so the worker thread has always ended after close().
        self.wait_for_load_on_close = True
        self.worker_joined = True  # after close(): whether the worker thread had ended
        from .screen_fit import fit_window

        geometry = self.settings().value("geometry")
        fit_window(self, restored=geometry is not None and self.restoreGeometry(geometry))  # never off-screen
        if build:
            self.build()
        else:
            self.statusBar().showMessage("Starting…")

    def build(self) -> None:
        """Create the ``Studio`` (session restored, history loaded, worker thread started) and the widgets."""
        if self.workspace is not None:
            return
        from ..model.studio import Studio
        from ..persistence.session import session_path
        from .workspace import Workspace

        try:
            self.fresh_start = not session_path().exists()  # no session to restore: a first start
            self.studio = Studio(self._engine_factory, parent=self)
        except Exception as error:  # noqa: BLE001 - never an empty grey frame: say why, keep Quit working
            from .build_failure import show_build_failure

            show_build_failure(self, error)
            return
        self.studio.message.connect(self.show_message)
        self.workspace = Workspace(self, self.studio)
        self.studio.problem.connect(self.show_problem)
        self._add_file_actions()
        self._add_save_as()
        from .help_menu import add_help_menu
        from .result_actions import ResultActions

        self.result_actions = ResultActions(self)  # Save as… for any result, Copy image, Show in folder, drag-out

        add_help_menu(self)  # Welcome, Keyboard shortcuts, Documentation, About
        from .window_actions import add_undo, add_view_actions

        self.controls_undo = add_undo(self)  # Edit > Undo / Redo for control changes
        add_view_actions(self)  # View > Reset layout, Zoom to fit, Actual size: before a saved layout is restored
        self.studio.history.added.connect(self._fold_welcome)
        state = self.settings().value("state")
        if state is not None:
            self.restoreState(state)
        else:
            self.workspace.default_layout()
        self.statusBar().clearMessage()
        if self.studio.startup_message:
            self.show_message(self.studio.startup_message)
        if self.studio.history_problem:
            self.show_problem("history", self.studio.history_problem)
        self.ready.emit()

    def show_message(self, text: str) -> None:
        """One line in the status bar: how every problem reaches the user (never a traceback dialog)."""
        self.last_message = text
        self.statusBar().showMessage(text, MESSAGE_MS)

    def show_problem(self, area: str, text: str) -> None:
        """A problem goes to a banner in the panel it concerns, where it stays until read (``problem_banners``)."""
        self.last_message = text
        if self.workspace is None:
            self.statusBar().showMessage(text)
        else:
            self.workspace.problems.show(area, text)

    def event(self, event) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.Paint and not self._complete_painted:
            if not self._painted:
                self._painted = True
                QTimer.singleShot(0, self.first_painted.emit)  # after this frame is flushed
            if self.workspace is not None:
                self._complete_painted = True
                QTimer.singleShot(0, self.complete_painted.emit)
        return handled

    @staticmethod
    def settings() -> QSettings:
        return paths.settings()

    # --- first start, samples, results folder ---------------------------------------------------
    def first_start(self, load_sample: bool = True) -> bool:
        """On a first start (no session saved yet): load a sample subject with a suggested instruction (unless
        ``load_sample`` is off, e.g. files came on the command line), and show the welcome panel unless it was
        dismissed before. Returns whether a sample was loaded. ``main()`` calls it; tests build bare windows."""
        loaded = False
        if load_sample and self.fresh_start:
            loaded = self.load_sample(0)
        if not self.settings().value(WELCOME_KEY, False, type=bool):
            self.show_welcome(loaded)
        return loaded

    def load_sample(self, index: int | None = None, instruction: int = 0) -> bool:
        """Sample ``index`` (None: the next one in turn) as the current subject, with one of its instructions."""
        from ..model.samples import apply_sample

        if not self.samples:
            self.show_message("No sample subjects found (resources/samples is missing)")
            return False
        if index is None:
            index = self._sample_turn
        sample = self.samples[index % len(self.samples)]
        self._sample_turn = index % len(self.samples) + 1
        apply_sample(self.studio, sample, instruction)
        self.show_message(f"Sample “{sample.name}” loaded: press Ctrl+Enter to generate")
        return True

    def show_welcome(self, sample_loaded: bool = False) -> WelcomePanel:
        from PySide6.QtWidgets import QVBoxLayout, QWidget

        from .welcome_panel import WelcomePanel

        if self.welcome is None:
            self.welcome = WelcomePanel(str(paths.results_dir()), sample_loaded)
            self.welcome.dismissed.connect(lambda: self._remember_welcome(True))
            self.welcome.models_requested.connect(self.workspace.open_models)
            self.welcome.results_requested.connect(self.open_results_folder)
            self.welcome.samples_requested.connect(lambda: self.load_sample(None))
            self.welcome.try_button.setEnabled(bool(self.samples))
            tabs = self.takeCentralWidget()
            holder = QWidget()
            layout = QVBoxLayout(holder)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(self.welcome)
            layout.addWidget(tabs, 1)
            self.setCentralWidget(holder)
            tabs.show()  # takeCentralWidget() hid it
            holder.show()
            for widget in (holder, self.welcome, *self.welcome.findChildren(QWidget)):
                widget.installEventFilter(self.workspace.drop_filter)  # drops land here too
        self._remember_welcome(False)
        self.welcome.expand()
        return self.welcome

    def _fold_welcome(self, *_record) -> None:
        """The first result is on the canvas: the welcome panel folds to a one-line banner and gives its room back
        (its Show, or Help > Welcome, opens it again; it is not remembered as dismissed)."""
        if self.welcome is not None and self.welcome.isVisible() and not self.welcome.collapsed:
            self.welcome.collapse()
            self.show_message("The welcome panel is folded: Show, or Help > Welcome, opens it")

    def _remember_welcome(self, dismissed: bool) -> None:
        store = self.settings()
        store.setValue(WELCOME_KEY, dismissed)
        store.sync()

    def choose_results_folder(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Results folder", str(paths.results_dir()))
        if folder:
            self.set_results_folder(folder)

    def set_results_folder(self, folder: str | None) -> None:
        """New results go to ``folder`` (None: back to the default); results already made stay where they are."""
        chosen = paths.set_results_dir(folder)
        if self.studio is not None:
            self.studio.client.worker.set_results_dir(chosen)
        if self.welcome is not None:
            self.welcome.set_results_folder(str(chosen))
        self.show_message(f"New results go to {chosen}")

    def open_results_folder(self) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        folder = paths.results_dir()
        folder.mkdir(parents=True, exist_ok=True)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.show_message(f"Results are in {folder}")

    def open_files(self, files: list[str]) -> None:
        """Files handed over by a second start (or the desktop's "Open with"): they become references."""
        self.setWindowState(self.windowState() & ~self.windowState().WindowMinimized)
        self.show()
        self.raise_()
        self.activateWindow()
        if files and self.studio is not None:
            subjects = self.studio.subjects
            if subjects.current.images:
                subjects.add_subject("Opened files")
            self.studio.inputs.drop_paths(files, allow_recipe=False)

    def _add_file_actions(self) -> None:
        """File > Samples, Results folder…, Open results folder: put in the File menu before its last separator."""
        from PySide6.QtGui import QAction
        from PySide6.QtWidgets import QMenu

        from ..model.samples import load_samples

        self.samples = load_samples()
        # By title among the menu bar's children: QAction.menu() on a temporary is dangling in PySide6 6.9.
        menus = self.menuBar().findChildren(QMenu)
        file_menu = next((m for m in menus if m.title().replace("&", "") == "File"), menus[0])
        before = next((a for a in reversed(file_menu.actions()) if a.isSeparator()), None)
        self.samples_menu = QMenu("Samples", self)
        self.samples_menu.setToolTip("Sample subjects the demo model knows, with instructions it follows well")
        for index, sample in enumerate(self.samples):
            submenu = self.samples_menu.addMenu(sample.name)
            for number, text in enumerate(sample.instructions):
                action = submenu.addAction(text)
                action.triggered.connect(lambda _c=False, i=index, n=number: self.load_sample(i, n))
        if self.samples:
            self.samples_menu.addSeparator()
        self.samples_menu.addAction("Show welcome").triggered.connect(lambda: self.show_welcome(False))
        file_menu.insertMenu(before, self.samples_menu)
        for text, slot in (("Results folder…", self.choose_results_folder),
                           ("Open results folder", self.open_results_folder)):
            action = QAction(text, self)
            action.triggered.connect(lambda _c=False, s=slot: s())
            file_menu.insertAction(before, action)

    def _add_save_as(self) -> None:
        """File > Save result as… and a status bar button, both shown while a result could not be written."""
        from PySide6.QtGui import QAction, QKeySequence
        from PySide6.QtWidgets import QMenu, QPushButton

        self.save_as_action = QAction("Save result as…", self)
        self.save_as_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.save_as_action.setEnabled(False)
        self.save_as_action.triggered.connect(lambda _c=False: self.save_unsaved_as())
        menus = self.menuBar().findChildren(QMenu)
        file_menu = next((m for m in menus if m.title().replace("&", "") == "File"), menus[0])
        before = next((a for a in reversed(file_menu.actions()) if a.isSeparator()), None)
        file_menu.insertAction(before, self.save_as_action)
        self.save_as_button = QPushButton("Save As…")
        self.save_as_button.setObjectName("save_as_button")
        self.save_as_button.setToolTip("A result could not be written to the results folder; save it elsewhere")
        self.save_as_button.clicked.connect(lambda _c=False: self.save_unsaved_as())
        self.save_as_button.hide()
        self.statusBar().addPermanentWidget(self.save_as_button)
        self.studio.outputs.unsaved_changed.connect(self._unsaved_changed)

    def _unsaved_changed(self) -> None:
        count = len(self.studio.outputs.unsaved)
        self.save_as_action.setEnabled(count > 0)
        self.save_as_button.setVisible(count > 0)
        self.save_as_button.setText("Save As…" if count <= 1 else f"Save As… ({count})")

    def save_unsaved_as(self) -> None:
        """Ask where to write the oldest result that could not be saved, and write it there with its recipe."""
        from pathlib import Path

        from PySide6.QtWidgets import QFileDialog

        if self.studio is None or not self.studio.outputs.unsaved:
            self.show_message("Every result is saved")
            return
        result = self.studio.outputs.unsaved[0]
        suggested = Path.home() / f"squeeze-seed{result.request.seed}.png"
        path, _filter = QFileDialog.getSaveFileName(self, "Save result as", str(suggested), "PNG images (*.png)")
        if path:
            self.studio.outputs.save_unsaved_as(path, result)

    def closeEvent(self, event) -> None:
        if self.studio is not None:
            self.studio.client.cancel()  # first: a slow disk saving the settings and session must not run more steps
        settings = self.settings()
        settings.setValue("geometry", self.saveGeometry())
        if self.workspace is not None:
            settings.setValue("state", self.saveState())
        settings.sync()
        self.hide()  # joining the worker can take a moment if a model is still loading
        if self.workspace is not None:
            self.workspace.shutdown()  # a download is cancelled, a verification finishes
        if self.studio is not None:
            # Cancels a running generation (it stops within one step) and joins the worker thread.
            self.worker_joined = self.studio.shutdown(self.wait_for_load_on_close)
        super().closeEvent(event)
