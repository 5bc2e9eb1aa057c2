"""The canvas: the live preview at every step, then the result; progress, step count, ETA and Cancel."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..model.generation import CANCELLING, IDLE, LOADING
from ..model.studio import Studio
from .copy_paste_badge import CopyPasteBadge
from .image_view import ImageView


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA …"
    seconds = int(round(seconds))
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


class Canvas(QWidget):
    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self._studio = studio
        self._state = studio.generation
        self.view = ImageView()
        self.view.setToolTip("Wheel to zoom, drag to pan, double-click to fit.")
        self.placeholder = QLabel("Drop photos of your subject on the left, write an instruction, "
                                  "and press Generate (Ctrl+Enter).\nPreviews appear here at every step.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.progress = QProgressBar(textVisible=False)
        self.progress.setRange(0, 1000)
        self.progress.setToolTip("Progress over all images of this run.")
        self.step_label = QLabel()
        self.eta_label = QLabel()
        # Room for the longest texts up front, so the row does not jump about at every step.
        metrics = self.fontMetrics()
        self.step_label.setMinimumWidth(metrics.horizontalAdvance("Step 999/999 · image 99/99"))
        self.eta_label.setMinimumWidth(metrics.horizontalAdvance("ETA 99:99"))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current step (Esc). Finished images are kept.")
        self.cancel_button.clicked.connect(studio.cancel)

        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.step_label)
        bottom.addWidget(self.eta_label)
        bottom.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.placeholder, 1)
        layout.addWidget(self.view, 1)
        self.copy_paste_badge = CopyPasteBadge(studio.controls)
        layout.addWidget(self.copy_paste_badge)
        layout.addWidget(self.caption)
        layout.addLayout(bottom)
        self.view.hide()

        self._result_size: QSize | None = None
        self._state.phase_changed.connect(self._phase_changed)
        self._state.progress_changed.connect(self._progress_changed)
        self._state.preview_changed.connect(self._show_preview)
        studio.canvas_image.connect(self.show_image)
        studio.canvas_caption.connect(self.caption.setText)
        studio.canvas_copy_paste.connect(self.copy_paste_badge.show_score)
        self._phase_changed(self._state.phase)

    def show_image(self, image, caption: str = "") -> None:
        if image is None or image.isNull():
            return
        self._result_size = image.size()
        self._reveal()
        self.view.set_image(image)
        self.caption.setText(caption)

    def _show_preview(self, preview) -> None:
        # Previews are small; showing them at the last result's size keeps zoom and pan steady.
        self._reveal()
        self.view.set_image(preview, self._result_size)
        self.caption.setText(f"Preview · step {self._state.step} of {self._state.total}")

    def _reveal(self) -> None:
        if not self.view.isVisible():
            self.placeholder.hide()
            self.view.show()

    def _phase_changed(self, phase: str) -> None:
        running = phase != IDLE
        if running:
            self.copy_paste_badge.hide()  # it spoke of the result being replaced
        if running and self._state.step == 0 and phase != CANCELLING:
            self.caption.setText("Starting…")  # not the last result's caption under the image being replaced
        for widget in (self.progress, self.step_label, self.eta_label, self.cancel_button):
            widget.setVisible(running)
        self.cancel_button.setEnabled(phase not in (IDLE, CANCELLING))
        if phase == LOADING:
            self.step_label.setText("Loading model…")
            self.eta_label.setText("")
        elif phase == CANCELLING:
            self.step_label.setText("Cancelling…")

    def _progress_changed(self) -> None:
        state = self._state
        self.progress.setValue(int(state.fraction * 1000))
        if state.phase in (LOADING, CANCELLING, IDLE):
            return
        text = f"Step {state.step}/{state.total}"
        if state.images > 1:
            text += f" · image {state.image_index + 1}/{state.images}"
        self.step_label.setText(text)
        self.eta_label.setText(format_eta(state.eta_seconds))
