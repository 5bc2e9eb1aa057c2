"""When the workspace cannot be built: say why in the window, keep File > Quit, never leave an empty grey frame."""
from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow

from ...errors import first_line

log = logging.getLogger(__name__)


def show_build_failure(window: QMainWindow, error: BaseException) -> None:
    from ..persistence.paths import data_home

    log.error("the window could not be built", exc_info=error)
    try:
        folder = str(data_home())
    except OSError:
        folder = "the data folder"
    text = (f"Squeeze Studio could not start: {first_line(error)}\n\nYour results and data in {folder} were not "
            f"changed. The details are in the log; quit with Ctrl+Q.")
    label = QLabel(text)
    label.setObjectName("build_failure")
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setMargin(24)
    window.setCentralWidget(label)
    menu = window.menuBar().addMenu("&File")
    quit_action = menu.addAction("Quit")
    quit_action.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Quit) or [QKeySequence("Ctrl+Q")])
    quit_action.triggered.connect(window.close)
    window.last_message = text.splitlines()[0]
    window.statusBar().showMessage(window.last_message)
