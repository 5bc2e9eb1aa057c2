"""Everything inside the main window: canvas and comparison tabs, the docks, menus and status bar.

Kept apart from ``MainWindow`` so the window can be on screen before these modules (and the
``Studio`` behind them) are even imported: ``MainWindow.build()`` creates the ``Workspace`` right after
the first paint. Widgets are reached as ``window.workspace.canvas`` and so on.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..launcher_progress import LauncherProgress
from ..model.studio import Studio
from .canvas import Canvas
from .comparison_view import ComparisonView
from .controls_panel import ControlsPanel
from .file_drops import FileDropFilter, local_paths
from .gallery import SubjectGallery
from .history_strip import HistoryStrip
from .instruction_editor import InstructionEditor
from .problem_banners import ProblemBanners
from .queue_panel import QueuePanel, progress_title
from .subject_chips import SubjectChips


class Workspace(QObject):
    def __init__(self, window: QMainWindow, studio: Studio):
        super().__init__(window)
        self.window, self.studio = window, studio
        self.models_dialog = None  # built on first use

        self.canvas = Canvas(studio)
        self.comparison_view = ComparisonView(studio.comparison)
        self.comparison_view.picked.connect(lambda index: studio.picks.pick_best(studio.comparison.items, index))
        self.tabs = QTabWidget()
        self.tabs.addTab(self.canvas, "Canvas")
        self.tabs.addTab(self.comparison_view, "Compare")
        window.setCentralWidget(self.tabs)

        self.gallery = SubjectGallery(studio)
        self.history_strip = HistoryStrip(studio)
        self._dock("Subjects", "subjects_dock", self.gallery, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Instruction and controls", "controls_dock", self._build_controls(),
                   Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_dock = self._dock("History", "history_dock", self.history_strip,
                                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self._build_status_bar()
        self._build_menus()
        self.problems = ProblemBanners(self)  # a banner in each panel; Generate says why it is off
        self._route_drops()

        studio.show_comparison.connect(lambda: self.tabs.setCurrentWidget(self.comparison_view))
        studio.show_canvas.connect(lambda: self.tabs.setCurrentWidget(self.canvas))
        studio.generation.phase_changed.connect(self._phase_changed)
        studio.controls.changed.connect(self._instruction_changed)
        self.launcher = LauncherProgress()  # the desktop's taskbar progress, where it has one
        for signal in (studio.generation.phase_changed, studio.generation.progress_changed, studio.queue.changed):
            signal.connect(self._update_title)
        self._update_title()
        self._instruction_changed("instruction")
        self._phase_changed()

    def default_layout(self) -> None:
        """First start (no saved layout): a history strip just tall enough for its thumbnails."""
        height = self.history_strip.minimumHeight()
        self.window.resizeDocks([self.history_dock], [height], Qt.Orientation.Vertical)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)  # saveState() finds docks by object name
        dock.setWidget(widget)
        self.window.addDockWidget(area, dock)
        return dock

    def _build_controls(self) -> QWidget:
        self.editor = InstructionEditor()
        self.editor.setMinimumHeight(70)
        self.editor.setMaximumHeight(140)  # the controls below matter more than a tall empty editor
        self.editor.textChanged.connect(
            lambda: self.studio.controls.set("instruction", self.editor.toPlainText()))
        self.editor.generate_requested.connect(self.studio.generate)
        self.editor.cancel_requested.connect(self.studio.cancel)
        self.editor.files_dropped.connect(self.studio.inputs.drop_paths)
        self.editor.image_pasted.connect(self.studio.inputs.paste_image)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.studio.generate)
        self.sweep_button = QPushButton("Sweep stages")  # tooltips: ProblemBanners.update_buttons
        self.sweep_seeds = QCheckBox("× 2 seeds")
        self.sweep_seeds.setToolTip("Also vary the seed in the sweep, to tell the stage effect from chance.")
        self.sweep_button.clicked.connect(lambda: self.studio.sweep(self.sweep_seeds.isChecked()))
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.sweep_button)
        buttons.addWidget(self.sweep_seeds)

        self.controls_panel = ControlsPanel(self.studio)
        self.controls_panel.models_dialog_requested.connect(self.open_models)
        panel = QWidget()
        layout = self.controls_layout = QVBoxLayout(panel)
        layout.addWidget(QLabel("Instruction"))
        self.subject_chips = SubjectChips(self.studio.subjects, self.editor)
        layout.addWidget(self.subject_chips)
        layout.addWidget(self.editor)
        layout.addLayout(buttons)
        self.queue_panel = QueuePanel(self.studio)
        layout.addWidget(self.queue_panel)
        layout.addWidget(self.controls_panel)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(panel.sizeHint().width() + 20)
        return scroll

    def _build_status_bar(self) -> None:
        self.model_label, self.device_label, self.memory_label = QLabel(), QLabel(), QLabel()
        self.model_label.setToolTip("The loaded model")
        self.device_label.setToolTip("Where the model runs")
        self.memory_label.setToolTip("Memory the engine uses now")
        for label in (self.model_label, self.device_label, self.memory_label):
            self.window.statusBar().addPermanentWidget(label)
        self.studio.models.status_changed.connect(self._status_changed)
        self._status_changed()

    def _build_menus(self) -> None:
        file_menu = self.window.menuBar().addMenu("&File")
        self._action(file_menu, "Add reference images…", self._add_images, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Models…", self.open_models, QKeySequence("Ctrl+Shift+M"))
        self._action(file_menu, "Export picks…", self.export_picks)
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.window.close, QKeySequence.StandardKey.Quit)
        edit_menu = self.window.menuBar().addMenu("&Edit")
        self._action(edit_menu, "Paste images as references", self.paste, QKeySequence.StandardKey.Paste)
        run_menu = self.window.menuBar().addMenu("&Generate")
        self.generate_action = self._action(run_menu, "Generate", self.studio.generate,
                                            [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.cancel_action = self._action(run_menu, "Cancel", self.studio.cancel, QKeySequence("Esc"))
        self._action(run_menu, "Sweep stages", lambda: self.studio.sweep(self.sweep_seeds.isChecked()))
        view_menu = self.window.menuBar().addMenu("&View")
        for dock in self.window.findChildren(QDockWidget):
            view_menu.addAction(dock.toggleViewAction())
        self._action(view_menu, "Canvas", lambda: self.tabs.setCurrentWidget(self.canvas), QKeySequence("Ctrl+1"))
        self._action(view_menu, "Compare", lambda: self.tabs.setCurrentWidget(self.comparison_view),
                     QKeySequence("Ctrl+2"))

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self.window)
        if isinstance(shortcut, list):
            action.setShortcuts(shortcut)
        elif shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    def _route_drops(self) -> None:
        """Files dropped on any part of the window (bar the gallery, which takes them itself) go to
        the studio, so a generated PNG restores its settings wherever it lands."""
        self.drop_filter = FileDropFilter(self)
        self.drop_filter.files_dropped.connect(self.studio.inputs.drop_paths)
        self.drop_filter.image_dropped.connect(self.studio.inputs.paste_image)
        self.window.setAcceptDrops(True)
        self.window.installEventFilter(self.drop_filter)
        gallery_list = self.gallery.list
        for widget in self.window.findChildren(QWidget):
            if widget in (gallery_list, gallery_list.viewport(), self.editor, self.editor.viewport()):
                continue
            widget.installEventFilter(self.drop_filter)

    # --- reacting -----------------------------------------------------------------------------
    def _status_changed(self) -> None:
        studio = self.studio
        self.model_label.setText(f"Model: {studio.models.model_name or 'not loaded yet'}")
        self.device_label.setText(f"Device: {studio.models.device_name}" if studio.models.device_name else "")
        self.memory_label.setText(studio.models.memory_text)

    def _phase_changed(self, *_phase) -> None:
        self.cancel_action.setEnabled(self.studio.busy)  # Generate: ProblemBanners.update_buttons

    def _update_title(self, *_args) -> None:
        """Progress and the queue in the window title (every taskbar shows it), and on the launcher entry."""
        generation = self.studio.generation
        self.window.setWindowTitle(progress_title(generation, self.studio.queue))
        self.launcher.show(generation.fraction if generation.busy else None)

    def _instruction_changed(self, name: str) -> None:
        text = self.studio.controls.get("instruction")
        if name in ("", "instruction") and text != self.editor.toPlainText():
            self.editor.setPlainText(text)  # restored from a recipe or the session

    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasUrls():
            self.studio.inputs.drop_paths(local_paths(mime))
        elif mime is not None and mime.hasImage():
            self.studio.inputs.paste_image(mime.imageData())
        else:
            self.window.show_message("The clipboard holds no image or file")

    def open_models(self):
        """The Models dialog (one, kept while the window lives): installed, downloadable, verify, remove."""
        from .models_dialog import ModelsDialog

        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(self.studio, self.window)
        else:
            self.models_dialog.refresh()
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def export_picks(self) -> None:
        """This model's pairwise picks as JSON lines, where the user says."""
        if not self.studio.picks.count():
            self.window.show_message("No picks yet: in Compare, press a result's number to pick the best")
            return
        path, _ = QFileDialog.getSaveFileName(self.window, "Export picks", "picks.jsonl", "JSON lines (*.jsonl)")
        if path:
            try:
                count = self.studio.picks.export(path)
            except OSError as error:
                self.window.show_message(f"Could not export the picks: {error.strerror or error}")
                return
            self.window.show_message(f"Exported {count} picks to {path}")

    def shutdown(self) -> None:
        """Before the window closes: stop a download or verification still running."""
        if self.models_dialog is not None:
            self.models_dialog.stop_tasks()

    def _add_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Add reference images", "",
                                                "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff)")
        if paths:
            self.studio.inputs.drop_paths(paths, allow_recipe=False)
