"""The job queue, compact, under the Generate button: the running job and the waiting ones in order. A waiting job
can be moved, duplicated or removed; the whole queue paused and resumed. Hidden while the queue is empty."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QToolButton, QVBoxLayout, QWidget

ID_ROLE = Qt.ItemDataRole.UserRole
APP_TITLE = "Squeeze Studio"  # the title ends with it, so Qt does not append the display name a second time


def progress_title(generation, queue) -> str:
    """"42 % · 3 queued — Squeeze Studio" while a job runs; the queue alone while paused; the name when idle."""
    parts = [f"{round(generation.fraction * 100)} %"] if generation.busy else []
    waiting = len(queue.waiting)
    if waiting:
        parts.append(f"{waiting} queued" + (" (paused)" if queue.paused else ""))
    return f"{' · '.join(parts)} — {APP_TITLE}" if parts else APP_TITLE


class QueuePanel(QWidget):
    def __init__(self, studio, parent: QWidget | None = None):
        super().__init__(parent)
        self._studio, self._queue = studio, studio.queue
        self.title = QLabel()
        self.list = QListWidget()
        self.list.setMaximumHeight(96)
        self.list.setUniformItemSizes(True)  # lays out only the rows in view, however long the queue
        self.list.setToolTip("Jobs run top to bottom, each with the references and settings it was queued with.")
        self.list.currentRowChanged.connect(self._update_buttons)
        self.up = self._button("▲", "Run this job sooner", lambda job: self._queue.move(job, -1))
        self.down = self._button("▼", "Run this job later", lambda job: self._queue.move(job, 1))
        self.duplicate = self._button("Duplicate", "Queue the same job again, right after it",
                                      self._queue.duplicate)
        self.remove = self._button("Remove", "Take this waiting job out of the queue (Del)", self._remove)
        self.list.installEventFilter(self)  # Del removes the selected job
        self.pause = QToolButton()
        self.pause.setCheckable(True)
        self.pause.setText("Pause")
        self.pause.setToolTip("Pause the queue: the running job finishes, the next ones wait until Resume")
        self.pause.toggled.connect(self._studio.set_queue_paused)
        row = QHBoxLayout()
        for button in (self.up, self.down, self.duplicate, self.remove):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.pause)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.list)
        layout.addLayout(row)
        self._queue.changed.connect(self.refresh)
        self.refresh()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.list and event.type() == QEvent.Type.KeyPress \
                and event.matches(QKeySequence.StandardKey.Delete):
            self.remove.click()
            return True
        return super().eventFilter(watched, event)

    def _button(self, text: str, tip: str, act) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda: self._act(act))
        return button

    def selected_id(self) -> str:
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item is not None else ""

    def _act(self, act) -> None:
        job_id = self.selected_id()
        if job_id:
            result = act(job_id)
            if hasattr(result, "id"):  # a duplicate: select the copy
                job_id = result.id
            self.select(job_id)

    def _remove(self, job_id: str) -> None:
        job = self._queue.find(job_id)
        if job is not None and job.running:
            self._studio.cancel()
        else:
            self._queue.remove(job_id)

    def select(self, job_id: str) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(ID_ROLE) == job_id:
                self.list.setCurrentRow(row)
                return

    def refresh(self) -> None:
        queue = self._queue
        self.setVisible(bool(queue.waiting) or queue.paused)  # a lone running job is the canvas's to show
        chosen = self.selected_id()
        waiting = queue.waiting
        running = len(queue.jobs) - len(waiting)
        paused = " · paused" if queue.paused else ""
        self.title.setText(f"Queue: {'1 running, ' if running else ''}{len(waiting)} waiting{paused}")
        self.list.setUpdatesEnabled(False)
        self.list.clear()
        number = 0
        for job in queue.jobs:
            if job.running:
                text = f"▶ {job.label()}"
            else:
                number += 1
                text = f"{number}. {job.label()}"
            item = QListWidgetItem(text)
            item.setData(ID_ROLE, job.id)
            item.setToolTip(job.request.instruction[:500])
            self.list.addItem(item)
        self.list.setUpdatesEnabled(True)
        self.select(chosen)
        self.pause.blockSignals(True)
        self.pause.setChecked(queue.paused)
        self.pause.setText("Resume" if queue.paused else "Pause")
        self.pause.blockSignals(False)
        self._update_buttons()

    def _update_buttons(self, *_args) -> None:
        job = self._queue.find(self.selected_id())
        waiting = job is not None and not job.running
        for button in (self.up, self.down):
            button.setEnabled(waiting)
        self.duplicate.setEnabled(job is not None)
        self.remove.setEnabled(job is not None)
        self.remove.setText("Cancel" if job is not None and job.running else "Remove")
