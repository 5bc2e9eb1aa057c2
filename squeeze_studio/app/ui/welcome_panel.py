"""The welcome panel above the canvas on a first start: what the app does, what the demo model is (and is not),
where results go, how to add a real model. Dismissed once, it stays away (Help > Welcome); after the first result it
folds to a one-line banner that opens again with one click."""
from __future__ import annotations

import html
import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

TITLE = "<b>Welcome to Squeeze Studio</b>"


class WelcomePanel(QFrame):
    dismissed = Signal()
    models_requested = Signal()
    results_requested = Signal()   # open the results folder
    samples_requested = Signal()   # the next sample subject

    def __init__(self, results_folder: str, sample_loaded: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("welcome_panel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.AlternateBase)

        self.collapsed = False
        self.title = QLabel(TITLE)
        self.expand_button = QToolButton(text="Show", autoRaise=True)
        self.expand_button.setToolTip("Open the welcome panel again")
        self.expand_button.clicked.connect(self.expand)
        self.expand_button.hide()
        close = QToolButton(text="✕", autoRaise=True)
        close.setToolTip("Hide this panel (Help › Welcome brings it back)")
        close.clicked.connect(self._dismiss)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.expand_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)

        self.text = QLabel(wordWrap=True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.text.setOpenExternalLinks(False)
        self.text.linkActivated.connect(lambda _link: self.results_requested.emit())
        self._sample_loaded = sample_loaded
        self.set_results_folder(results_folder)

        self.try_button = QPushButton("Another sample")
        self.try_button.setToolTip("Load the next sample subject and one of its suggested instructions")
        self.try_button.clicked.connect(self.samples_requested)
        models = QPushButton("Models…")
        models.setToolTip("Add or download a real model (File › Models…, Ctrl+Shift+M)")
        models.clicked.connect(self.models_requested)
        results = QPushButton("Open results folder")
        results.clicked.connect(self.results_requested)
        done = QPushButton("Got it")
        done.clicked.connect(self._dismiss)
        buttons = QHBoxLayout()
        for button in (self.try_button, models, results):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(done)

        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.text)
        body.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.body)

    def collapse(self) -> None:
        """One line: the title, what the demo model is in a few words, and Show (after the first result)."""
        self.collapsed = True
        self.body.hide()
        self.title.setText(f"{TITLE} · the demo model knows synthetic subjects, not photos")
        self.expand_button.show()
        self.show()

    def expand(self) -> None:
        self.collapsed = False
        self.title.setText(TITLE)
        self.expand_button.hide()
        self.body.show()
        self.show()

    def set_results_folder(self, folder: str) -> None:
        home = str(Path.home())
        shown = "~" + folder[len(home):] if folder == home or folder.startswith(home + os.sep) else folder
        start = ("<b>Try it now:</b> a sample subject and an instruction are loaded. Press <b>Ctrl+Enter</b> "
                 "(Generate), then change the instruction. File › Samples has more."
                 if self._sample_loaded else
                 "<b>Try it:</b> File › Samples loads a sample subject and an instruction the demo model knows.")
        self.text.setText(
            "<p>Give it a few pictures of one subject and an instruction; it makes new images of <i>that</i> "
            "subject following the instruction, without pasting the reference back in.</p>"
            f"<p>{start}</p>"
            "<p>The built-in model is a tiny 64 × 64 <b>demo</b> that runs on any CPU. It was trained on "
            "synthetic subjects like the samples, <b>not on photos</b>: a photo of your dog gives a coloured "
            "blob. For photos, add a real model with File › Models… (Ctrl+Shift+M).</p>"
            f"<p>Every result is saved as a PNG with its recipe in <a href=\"results\">{html.escape(shown)}</a> "
            "(File › Results folder… changes it); the history below lists them.</p>")

    def _dismiss(self) -> None:
        self.hide()
        self.dismissed.emit()
