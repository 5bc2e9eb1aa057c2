"""The Models dialog: what is installed (the demo, the Hugging Face cache, added folders), what can be
downloaded, and Use, Verify, Add folder…, Remove, Download… on them.

Listing, verifying, removing and downloading each run in a ``ThreadTask``: verifying imports torch, so it never
runs on the GUI thread, and a download asks the Hub only when the user asked for it. Remove deletes cache
entries only (after a confirmation); an added folder is forgotten, never deleted from disk.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...errors import first_line
from ...hub import manager
from ...hub.registry import KNOWN_MODELS, KnownModel
from ..model.studio import Studio
from ..thread_task import ThreadTask

WHERE = {"demo": "Built in", "cache": "Hugging Face cache", "folder": "Added folder"}
INSTALLED_COLUMNS = ("Model", "Where", "Size", "Status")
AVAILABLE_COLUMNS = ("Model", "Repository", "Download", "License", "GPU memory (estimate)")


def model_spec(model: manager.InstalledModel) -> str:
    """What the window's model choice holds for ``model``: "" for the demo, a repo id, or a folder."""
    if model.location == "demo":
        return ""
    if model.location == "cache" and model.repo_id:
        return model.repo_id if model.revision in (None, "main") else f"{model.repo_id}@{model.revision}"
    return str(model.path)


def vram_text(entry: KnownModel) -> str:
    """The least and most GPU memory over the memory modes, e.g. ``3–56 GiB``, marked when estimated."""
    most, least = max(entry.vram_gib.values()), min(entry.vram_gib.values())
    text = f"{least:g}–{most:g} GiB" if least != most else f"{most:g} GiB"
    return text + (" (estimate)" if entry.vram_is_estimate else "")


class ModelsDialog(QDialog):
    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(860, 520)
        self._studio = studio
        self.models: list[manager.InstalledModel] = []
        self.downloadable: list[KnownModel] = []
        self._tasks: set[ThreadTask] = set()
        self.download_progress: QProgressDialog | None = None
        self._listings = 0  # how many listings were started; only the latest is shown

        self.installed = self._table(INSTALLED_COLUMNS)
        self.installed.setToolTip("Models on this computer. Size is what each takes on disk.")
        self.installed.itemSelectionChanged.connect(self._selection_changed)
        self.installed.itemDoubleClicked.connect(lambda _item: self.use())
        self.use_button = self._button("Use", "Load the selected model in the window.", self.use)
        self.verify_button = self._button("Verify", "Check every file and tensor shape of the selected model "
                                          "(safetensors only; nothing is loaded).", self.verify)
        self.add_button = self._button("Add folder…", "Add a model folder from this computer to the list.",
                                       self.add_folder)
        self.remove_button = self._button("Remove…", "Delete a Hugging Face cache entry (asks first), or take an "
                                          "added folder off the list (the folder stays on disk).", self.remove)
        self.refresh_button = self._button("Refresh", "Look at the cache and the folders again.", self.refresh)

        self.available = self._table(AVAILABLE_COLUMNS)
        self.available.setToolTip("Models Squeeze Studio knows that are not (completely) in the cache. Nothing "
                                  "is downloaded unless you ask; GPU memory figures are estimates.")
        self.available.itemSelectionChanged.connect(self._selection_changed)
        self.download_button = self._button("Download…", "Download the selected model into the Hugging Face cache "
                                            "(says the size and the free disk space first).", self.download)

        self.status = QLabel(wordWrap=True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = self._button("Close", "Close this dialog.", self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Installed</b>"))
        layout.addWidget(self.installed, 3)
        layout.addLayout(self._buttons(self.use_button, self.verify_button, self.add_button, self.remove_button,
                                       None, self.refresh_button))
        layout.addWidget(QLabel("<b>Available to download</b>"))
        layout.addWidget(self.available, 2)
        layout.addLayout(self._buttons(self.download_button, None))
        layout.addWidget(self.status)
        layout.addLayout(self._buttons(None, close))
        self._selection_changed()
        self.refresh()

    # --- building -----------------------------------------------------------------------------
    @staticmethod
    def _table(columns: tuple[str, ...]) -> QTableWidget:
        table = QTableWidget(0, len(columns))
        table.setHorizontalHeaderLabels(list(columns))
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().hide()
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(columns) - 1, QHeaderView.ResizeMode.Stretch)
        return table

    def _button(self, text: str, tip: str, slot: Callable[[], Any]) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    @staticmethod
    def _buttons(*buttons: QPushButton | None) -> QHBoxLayout:
        row = QHBoxLayout()
        for button in buttons:
            if button is None:
                row.addStretch(1)
            else:
                row.addWidget(button)
        return row

    def _fill(self, table: QTableWidget, rows: list[tuple[list[str], str]]) -> None:
        """``rows``: the cells and a tooltip for the whole row."""
        table.setRowCount(len(rows))
        for row, (cells, tip) in enumerate(rows):
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                table.setItem(row, column, item)

    # --- listing ------------------------------------------------------------------------------
    def refresh(self, announce: bool = True) -> None:
        """List again; ``announce`` off keeps the line that says how the last action went."""
        if announce:
            self.say("Looking for models…")
        self._listings += 1
        number = self._listings
        self._start(lambda _task: manager.list_installed(), lambda models: self._show(models, number, announce),
                    "Could not list the models")

    def _show(self, models: list[manager.InstalledModel], number: int, announce: bool) -> None:
        if number != self._listings:
            return  # an older listing that finished after a newer one started
        self.models = models
        chosen = self._studio.controls.get("model")
        self._fill(self.installed, [
            ([m.name + ("  (chosen)" if model_spec(m) == chosen else ""), WHERE.get(m.location, m.location),
              manager.human_size(m.size_bytes), "complete" if m.complete else m.problem],
             f"{m.path}" + (f"\n{m.problem}" if m.problem else "")) for m in models])
        whole = {m.repo_id.lower() for m in models if m.repo_id and m.complete}
        self.downloadable = [k for k in KNOWN_MODELS if k.repo_id and k.repo_id.lower() not in whole]
        self._fill(self.available, [
            ([k.title, k.repo_id or "", f"≈ {manager.human_size(k.download_bytes)}", k.license, vram_text(k)],
             k.notes) for k in self.downloadable])
        self._selection_changed()
        incomplete = sum(not m.complete for m in models)
        if announce:
            self.say(f"{len(models)} installed" + (f", {incomplete} incomplete" if incomplete else ""))

    def selected(self) -> manager.InstalledModel | None:
        rows = self.installed.selectionModel().selectedRows()
        return self.models[rows[0].row()] if rows and rows[0].row() < len(self.models) else None

    def selected_download(self) -> KnownModel | None:
        rows = self.available.selectionModel().selectedRows()
        return self.downloadable[rows[0].row()] if rows and rows[0].row() < len(self.downloadable) else None

    def _selection_changed(self) -> None:
        model = self.selected()
        self.use_button.setEnabled(model is not None and model.complete)
        self.verify_button.setEnabled(model is not None)
        self.remove_button.setEnabled(model is not None and model.location != "demo")
        self.download_button.setEnabled(self.selected_download() is not None)

    # --- actions ------------------------------------------------------------------------------
    def use(self) -> None:
        model = self.selected()
        if model is None or not model.complete:
            return
        self._studio.models.choose_model(model_spec(model))
        self.accept()

    def verify(self) -> None:
        model = self.selected()
        if model is not None:
            self._verify(model.path, model.name)

    def _verify(self, folder, name: str) -> None:
        def report(problems: list[str]) -> None:
            if not problems:
                self.say(f"{name}: complete; every file and tensor shape checks out", window=True)
            else:
                more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
                self.say(f"{name}: {problems[0]}{more}", window=True)

        from ...hub.verify import verify_model  # plain at import; it imports torch inside, in the task's thread

        self.say(f"Verifying {name}…")
        self._start(lambda _task: verify_model(folder), report, f"Could not verify {name}")

    def add_folder(self) -> None:
        folder = self.choose_folder()
        if not folder:
            return
        try:
            manager.add_user_folder(folder)
        except ValueError as error:
            self.say(f"Not added: {first_line(error)}", window=True)
            return
        self.refresh(announce=False)
        self._verify(folder, folder.rstrip("/").rsplit("/", 1)[-1])

    def choose_folder(self) -> str:
        return QFileDialog.getExistingDirectory(self, "Add a model folder (Squeeze or stock diffusers)")

    def remove(self) -> None:
        model = self.selected()
        if model is None or model.location == "demo":
            return
        if model.location == "folder":
            if self.ask("Remove from the list", f"Take {model.name} off the list?\n\nThe folder {model.path} "
                        "stays on disk; nothing is deleted."):
                try:
                    manager.remove_user_folder(model.path)
                except ValueError as error:
                    self.say(f"Not removed: {first_line(error)}", window=True)
                    return
                self.refresh(announce=False)
                self.say(f"Took {model.name} off the list; its folder stays on disk", window=True)
            return
        if not self.ask("Delete from the cache", f"Delete {model.name} from the Hugging Face cache?\n\nThis frees "
                        f"about {manager.human_size(model.size_bytes)} (every revision of it) and cannot be undone; "
                        "using it again means downloading it again."):
            return
        self.say(f"Deleting {model.name}…")
        self._start(lambda _task: manager.remove_cached(model.repo_id or model.name), lambda freed: (
            self.say(f"Deleted {model.name} from the cache ({manager.human_size(freed)} freed)", window=True),
            self.refresh(announce=False)),
            f"Could not delete {model.name}")

    def ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    # --- download -----------------------------------------------------------------------------
    def download(self) -> None:
        entry = self.selected_download()
        if entry is None or entry.repo_id is None:
            return
        self.say(f"Asking the Hub how much of {entry.repo_id} is still to download…")
        self._start(lambda _task: manager.download_size(entry.repo_id, entry.revision),
                    lambda needed: self._confirm_download(entry, needed), f"Cannot download {entry.title}")

    def _confirm_download(self, entry: KnownModel, needed: int) -> None:
        try:
            free, where = manager.check_space(needed)
        except ValueError as error:  # refused in one line, before anything is fetched
            self.say(f"Cannot download {entry.title}: {first_line(error)}", window=True)
            return
        if not self.ask("Download model", f"Download {entry.repo_id} ({entry.license})?\n\n"
                        f"{manager.human_size(needed)} to download; {manager.human_size(free)} free on {where}."):
            self.say("Download not started")
            return
        self._start_download(entry, needed)

    def _start_download(self, entry: KnownModel, needed: int) -> None:
        progress = QProgressDialog(f"Downloading {entry.repo_id}…", "Cancel", 0, 1000, self)
        progress.setWindowTitle("Download")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(0)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        self.download_progress = progress
        task = self._start(
            lambda task: manager.download(entry.repo_id, entry.revision, progress=task.report,
                                          should_cancel=task.cancel.is_set, needed=needed),
            lambda _path: self._download_ended(f"Downloaded {entry.repo_id} into the Hugging Face cache"),
            "", on_failed=lambda error: self._download_ended(self._download_failure(entry, error)))

        def advance(done: int, total: int) -> None:
            if total:
                progress.setValue(min(int(done * 1000 / total), 1000))
            progress.setLabelText(f"Downloading {entry.repo_id}: {manager.human_size(done)} of "
                                  f"{manager.human_size(total)}")

        def cancel() -> None:
            task.cancel.set()  # the download stops at its next chunk; complete files stay in the cache
            progress.setLabelText(f"Cancelling the download of {entry.repo_id}…")
            progress.show()

        task.progress.connect(advance)
        progress.canceled.connect(cancel)
        progress.show()

    @staticmethod
    def _download_failure(entry: KnownModel, error: BaseException) -> str:
        if isinstance(error, manager.DownloadCancelled):
            return f"Download of {entry.repo_id} cancelled; complete files are kept"
        return f"Download of {entry.repo_id} failed: {first_line(error)}"

    def _download_ended(self, text: str) -> None:
        if self.download_progress is not None:
            self.download_progress.close()
            self.download_progress.deleteLater()
            self.download_progress = None
        self.say(text, window=True)
        self.refresh(announce=False)

    # --- tasks and messages -------------------------------------------------------------------
    def _start(self, work: Callable[[ThreadTask], Any], on_done: Callable[[Any], Any], what: str,
               on_failed: Callable[[BaseException], Any] | None = None) -> ThreadTask:
        task = ThreadTask(work, self)
        self._tasks.add(task)
        task.done.connect(lambda result: (self._tasks.discard(task), on_done(result)))
        task.failed.connect(lambda error: (self._tasks.discard(task), on_failed(error) if on_failed
                                           else self.say(f"{what}: {first_line(error)}", window=True)))
        task.start()
        return task

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def say(self, text: str, window: bool = False) -> None:
        """One line at the bottom of the dialog; outcomes (``window``) go to the window's status bar too."""
        self.status.setText(text)
        if window:
            self._studio.message.emit(text)

    def stop_tasks(self) -> None:
        """Cancel a download and wait for every task (the window calls this before it closes)."""
        for task in list(self._tasks):
            try:
                task.stop()
            except RuntimeError:  # already finished and deleted
                pass
        self._tasks.clear()
