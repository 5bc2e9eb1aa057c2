"""The copy-paste badge under the canvas: "Looks pasted from reference 2", when the result shown scores over the
threshold (``squeeze_studio.copy_paste``: one reference aligned onto the result under shift and scale, then SSIM
over the overlap; docs/copy-paste.md measures it). Its button is the remedy the stage bar offers: the handles
move toward freedom, so the reference tokens come in later and the first steps lay the image out freely."""
from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from ..model.controls import Controls

FREEDOM_STEP = 0.1  # how far one press moves both handles toward freedom (τ down)


class CopyPasteBadge(QFrame):
    def __init__(self, controls: Controls, parent=None):
        super().__init__(parent)
        self._controls = controls
        self.setObjectName("copy_paste_badge")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel()
        self.label.setToolTip("How much the result is one reference pasted back unchanged: that reference, aligned "
                              "onto the result, matches it closely. The score is in the result's recipe.")
        self.remedy = QPushButton("Less reference influence")
        self.remedy.setToolTip(f"Move both stage handles {FREEDOM_STEP:g} toward freedom: the references come in "
                               "later, so the instruction lays out pose and place first. Then generate again.")
        self.remedy.clicked.connect(self.move_toward_freedom)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.remedy)
        self.hide()

    def show_score(self, copy_paste) -> None:
        """``copy_paste``: the shown result's ``CopyPaste`` (or ``None``): the badge shows only when it is over."""
        if copy_paste is None or not copy_paste.over:
            self.hide()
            return
        self.label.setText(f"⚠ Looks pasted from reference {copy_paste.reference + 1} "
                           f"(score {copy_paste.score:.2f}, warned from {copy_paste.threshold:.2f})")
        self.remedy.setEnabled(self._controls.get("tau1") > 0)
        self.show()

    def move_toward_freedom(self) -> None:
        tau1 = round(max(self._controls.get("tau1") - FREEDOM_STEP, 0.0), 2)
        tau2 = round(min(max(self._controls.get("tau2") - FREEDOM_STEP, 0.0), tau1), 2)
        self._controls.set("tau2", tau2)
        self._controls.set("tau1", tau1)
        self.remedy.setEnabled(tau1 > 0)
