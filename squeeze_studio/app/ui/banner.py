"""A banner in the panel a problem concerns: the whole line, wrapped, until it is closed or the problem is gone.

Problems used to be a ten-second line in the status bar, cut off by the model label and gone before anyone read
them. Each panel now has one banner where the eye already is: the subjects (a refused drop, too many references),
the instruction (empty, too long), the canvas (a failed or unsaved run) and the history (a damaged database).
The status bar is left to progress.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton

STYLES = {  # translucent, so they read on light and dark palettes alike
    "error": "background: rgba(214, 48, 49, 38); border: 1px solid rgba(214, 48, 49, 150); border-radius: 4px;",
    "info": "background: rgba(52, 120, 246, 30); border: 1px solid rgba(52, 120, 246, 130); border-radius: 4px;",
}


class Banner(QFrame):
    def __init__(self, area: str, parent=None):
        super().__init__(parent)
        self.setObjectName(f"{area}_banner")
        self.kind = "error"
        self.label = QLabel(wordWrap=True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setStyleSheet("background: transparent; border: none;")
        self.close_button = QToolButton(text="×")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.setStyleSheet("background: transparent; border: none;")
        self.close_button.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 2, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_text(self, text: str, kind: str = "error") -> None:
        self.kind = kind
        self.setStyleSheet(f"#{self.objectName()} {{ {STYLES.get(kind, STYLES['error'])} }}")
        self.label.setText(text)
        self.label.setToolTip(text)
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def clear(self) -> None:
        self.label.clear()
        self.hide()
