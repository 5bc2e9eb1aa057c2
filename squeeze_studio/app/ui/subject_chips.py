"""Chips above the instruction, one per subject in the next image (shown only when there are several): a click
writes that subject's pictures ("Picture 3", "Pictures 1 and 2") into the instruction at the cursor, the way
Qwen-Image-Edit's prompts name them. Without them, the engine ties each subject's name in the instruction to its
pictures itself (``squeeze_studio.pictures.name_pictures``)."""
from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QToolButton, QWidget

from ...pictures import picture_numbers, pictures_phrase
from ..model.subjects import SubjectList


class SubjectChips(QWidget):
    def __init__(self, subjects: SubjectList, editor: QPlainTextEdit, parent: QWidget | None = None):
        super().__init__(parent)
        self._subjects, self._editor = subjects, editor
        self.chips: list[QToolButton] = []
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addStretch(1)
        subjects.changed.connect(self._rebuild)
        subjects.current_changed.connect(self._rebuild)
        self._rebuild()

    def _rebuild(self, *_args) -> None:
        for chip in self.chips:
            self._layout.removeWidget(chip)
            chip.deleteLater()
        self.chips = []
        groups = self._subjects.request_subjects()
        for position, (group, numbers) in enumerate(zip(groups, picture_numbers(groups), strict=True)):
            phrase = pictures_phrase(numbers)
            chip = QToolButton(text=group["name"])
            chip.setToolTip(f"Write “{phrase}” (the pictures of {group['name']}) into the instruction at the cursor")
            chip.clicked.connect(lambda _checked=False, p=phrase: self._insert(p))
            self._layout.insertWidget(position, chip)
            self.chips.append(chip)
        self.setVisible(bool(groups))

    def _insert(self, phrase: str) -> None:
        cursor = self._editor.textCursor()
        before = self._editor.toPlainText()[:cursor.position()]
        cursor.insertText(("" if not before or before.endswith(" ") else " ") + phrase + " ")
        self._editor.setTextCursor(cursor)
        self._editor.setFocus()
