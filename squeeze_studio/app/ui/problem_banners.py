"""The banners of the workspace (one per panel, ``banner.py``) and the Generate buttons that say why they are off.

Kept out of ``workspace.py``: it places a banner in each panel, shows ``Studio.problem`` in the right one, clears a
banner once its cause is gone (a new run, an edited instruction, changed references), and keeps Generate and Sweep
disabled with the reason as their tooltip while a run cannot start.
"""
from __future__ import annotations

from PySide6.QtCore import QObject

from ..model.problems import HISTORY, INSTRUCTION, RUN, SUBJECTS, why_not_ready
from .banner import Banner

GENERATE_TIP = "Make new images of the subject following the instruction (Ctrl+Enter)."
QUEUE_TIP = "Queue these settings as they are now: the job runs after the ones before it (Ctrl+Enter)."
SWEEP_TIP = ("One click: a grid of images over several stage settings from a single MLLM encoding, to see how the "
             "balance trades pose freedom for identity.")


class ProblemBanners(QObject):
    def __init__(self, workspace, parent: QObject | None = None):
        super().__init__(parent or workspace)
        self.workspace = workspace
        studio = self.studio = workspace.studio
        self.banners = {area: Banner(area) for area in (SUBJECTS, INSTRUCTION, RUN, HISTORY)}
        workspace.gallery.layout().insertWidget(1, self.banners[SUBJECTS])
        workspace.canvas.layout().insertWidget(0, self.banners[RUN])
        strip = workspace.history_strip
        strip.layout().insertWidget(0, self.banners[HISTORY])
        controls = workspace.controls_layout
        controls.insertWidget(controls.indexOf(workspace.editor) + 1, self.banners[INSTRUCTION])

        studio.generation.phase_changed.connect(self._phase_changed)
        studio.controls.changed.connect(self._control_changed)
        studio.subjects.changed.connect(self._references_changed)
        studio.subjects.current_changed.connect(self._references_changed)
        studio.models.status_changed.connect(self.update_buttons)
        self.update_buttons()

    def show(self, area: str, text: str) -> None:
        self.banners.get(area, self.banners[RUN]).show_text(text)
        self.update_buttons()

    def text(self, area: str) -> str:
        return self.banners[area].text()

    def update_buttons(self, *_args) -> None:
        """Generate and Sweep are enabled exactly when a run can start (Generate: or be queued, while a job runs);
        otherwise their tooltip says why."""
        workspace, busy = self.workspace, self.studio.busy
        generate_tip = QUEUE_TIP if busy else GENERATE_TIP
        for widget, tip, queueing in ((workspace.generate_button, generate_tip, True),
                                      (workspace.sweep_button, SWEEP_TIP, False)):
            reason = why_not_ready(self.studio, queueing)
            widget.setEnabled(not reason)
            widget.setToolTip(f"{reason}." if reason else tip)
        reason = why_not_ready(self.studio, queueing=True)
        workspace.generate_button.setText("Queue" if busy else "Generate")
        workspace.generate_action.setEnabled(not reason)
        workspace.generate_action.setToolTip(reason or generate_tip)

    def _phase_changed(self, *_phase) -> None:
        if self.studio.busy:
            self.banners[RUN].clear()  # a new run: the last one's failure is history
        self.update_buttons()

    def _control_changed(self, name: str) -> None:
        if name in ("", "instruction"):
            self.banners[INSTRUCTION].clear()
        self.update_buttons()

    def _references_changed(self, *_args) -> None:
        self.banners[SUBJECTS].clear()
        self.update_buttons()
