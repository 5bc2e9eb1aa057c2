"""The comparison view: results side by side (zoom and pan in step), an A/B split, or a sweep grid (equal cells,
columns in τ order, τ1 / τ2 above each column and the seed before each row)."""
from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..background_io import run_io
from ..model.comparison import GRID, SIDE_BY_SIDE, SPLIT, Comparison
from .image_view import ImageView, ViewSync
from .split_view import SplitView

MODES = ((SIDE_BY_SIDE, "Side by side", "All compared results in one row; zoom and pan move together."),
         (SPLIT, "A/B split", "The first two results over each other with a slider between them."),
         (GRID, "Grid", "The results in rows and columns; a stage sweep fills one cell per setting."))


class CompareCell(QWidget):
    """One labelled image of the comparison."""

    def __init__(self, label: str, number: int = 0, number_only: bool = False, parent=None):
        """``number``: the key that picks this cell (1-9), shown before the caption; 0 for none. ``number_only``: the
        caption is just the number (a sweep grid's axes say the settings; the tooltip keeps the whole label)."""
        super().__init__(parent)
        self.number, self.number_only = number, number_only
        self.caption = QLabel(label)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setWordWrap(True)
        self.view = ImageView()
        self.waiting = QLabel("waiting…")
        self.waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.waiting.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.waiting, 1)
        self.view.hide()
        self.setToolTip(label)
        # Every cell the same size, whatever its caption or image asks for.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        metrics = self.caption.fontMetrics()
        self.caption.setWordWrap(False)
        self.caption.setText(self._text())
        self.caption.setFixedHeight(metrics.height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.caption.setText(self.caption.fontMetrics().elidedText(self._text(), Qt.TextElideMode.ElideRight,
                                                                   max(self.caption.width(), 20)))

    def _text(self) -> str:
        if self.number_only:
            return str(self.number) if self.number else ""
        return f"{self.number}: {self.toolTip()}" if self.number else self.toolTip()

    def set_image(self, image: QImage) -> None:
        if image.isNull():
            self.waiting.setText("could not read the image")
            return
        self.waiting.hide()
        self.view.show()
        self.view.set_image(image)


class ComparisonView(QWidget):
    picked = Signal(int)  # the index of the result the user pressed its number for: the best of those shown

    def __init__(self, comparison: Comparison, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the number keys pick a result
        self._comparison = comparison
        self._sync = ViewSync()
        self.cells: list[CompareCell] = []
        self.axis_labels: list[QLabel] = []  # a sweep grid's column labels, then its row labels

        bar = QHBoxLayout()
        self.mode_buttons = QButtonGroup(self)
        for mode, text, tip in MODES:
            button = QPushButton(text, checkable=True)
            button.setToolTip(tip)
            button.setProperty("mode", mode)
            self.mode_buttons.addButton(button)
            bar.addWidget(button)
        self.mode_buttons.buttonClicked.connect(lambda button: comparison.set_mode(button.property("mode")))
        bar.addStretch(1)
        self.pick_hint = QLabel()
        self.pick_hint.setToolTip("Press a result's number to pick it as the best of those shown. The studio learns "
                                  "your preferred stage settings from your picks and shows them on the stage bar.")
        bar.addWidget(self.pick_hint)

        self.empty = QLabel("Select two or more results in the history (Ctrl+click) and press "
                            "“Side by side” or “A/B split”, or press “Sweep stages” to compare tau settings.")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.split_view = SplitView()
        self.split_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=1000, value=500)
        self.split_slider.setToolTip("Where the A/B split line sits: left shows more of B, right more of A.")
        self.split_slider.valueChanged.connect(lambda v: self.split_view.set_split(v / 1000))
        self.split_view.split_changed.connect(lambda f: self.split_slider.setValue(round(f * 1000)))
        split_host = QWidget()
        split_layout = QVBoxLayout(split_host)
        split_layout.setContentsMargins(0, 0, 0, 0)
        split_layout.addWidget(self.split_view, 1)
        split_layout.addWidget(self.split_slider)

        self.stack = QStackedWidget()
        for page in (self.empty, self.grid_host, split_host):
            self.stack.addWidget(page)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)

        comparison.changed.connect(self._rebuild)
        comparison.cell_filled.connect(self._fill)
        self._rebuild()

    def _rebuild(self) -> None:
        comparison = self._comparison
        for button in self.mode_buttons.buttons():
            button.setChecked(button.property("mode") == comparison.mode)
            button.setEnabled(len(comparison.items) >= (2 if button.property("mode") == SPLIT else 1))
        for widget in (*self.cells, *self.axis_labels):
            self.grid.removeWidget(widget)
            widget.deleteLater()
        for index in range(max(self.grid.rowCount(), self.grid.columnCount())):
            self.grid.setRowStretch(index, 0)
            self.grid.setColumnStretch(index, 0)
        self.cells, self.axis_labels, self._sync = [], [], ViewSync()
        count = len(comparison.items)
        self.pick_hint.setText(f"Best? press 1–{min(count, 9)}" if count >= 2 else "")
        if not comparison.items:
            self.stack.setCurrentWidget(self.empty)
            return
        if comparison.mode == SPLIT:
            self.stack.setCurrentIndex(2)
            self._load_split()
            return
        self.stack.setCurrentWidget(self.grid_host)
        if comparison.mode == SIDE_BY_SIDE:
            columns = count
        elif comparison.columns and (count > comparison.columns or comparison.column_labels):
            columns = comparison.columns  # a sweep: a column per setting, under its label, and a row per seed
        else:
            columns = math.ceil(math.sqrt(count))  # near-square cells use the space best
        top, left = self._add_axes(comparison, columns)
        for index, item in enumerate(comparison.items):
            number = index + 1 if index < 9 and count >= 2 else 0
            cell = CompareCell(item.label, number, number_only=bool(comparison.column_labels))
            cell.caption.setVisible(not comparison.column_labels or count >= 2)  # blank past 9: cells stay equal
            self._sync.add(cell.view)
            self.cells.append(cell)
            self.grid.addWidget(cell, top + index // columns, left + index % columns)
            self._fill(index)
        for column in range(columns):
            self.grid.setColumnStretch(left + column, 1)
        for row in range(math.ceil(count / columns)):
            self.grid.setRowStretch(top + row, 1)

    def _add_axes(self, comparison: Comparison, columns: int) -> tuple[int, int]:
        """A sweep grid's labels: τ1 / τ2 above each column, the seed before each row. Returns the first cell's
        row and column."""
        if comparison.mode != GRID or not comparison.column_labels:
            return 0, 0
        left = 1 if comparison.row_labels else 0
        for column, text in enumerate(comparison.column_labels[:columns]):
            self._axis_label(text, 0, left + column)
        for row, text in enumerate(comparison.row_labels):
            self._axis_label(text, 1 + row, 0)
        return 1, left

    def _axis_label(self, text: str, row: int, column: int) -> None:
        label = QLabel(text)
        label.setObjectName("sweep_axis")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setFrameShape(QFrame.Shape.NoFrame)
        label.setWordWrap(True)
        if row == 0:  # a column's label never widens its column
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        font = label.font()
        font.setBold(True)
        label.setFont(font)
        self.axis_labels.append(label)
        self.grid.addWidget(label, row, column)

    def _fill(self, index: int) -> None:
        if self._comparison.mode == SPLIT:
            if index < 2:
                self._load_split()
            return
        if index >= len(self.cells):
            return
        item, cell = self._comparison.items[index], self.cells[index]
        if item.image is not None:
            cell.set_image(item.image)
        elif item.path:
            run_io(QImage, item.path, on_done=lambda image, c=cell: c.set_image(image) if c in self.cells else None)

    def _load_split(self) -> None:
        a, b = self._comparison.items[:2]
        images = [a.image, b.image]

        def show() -> None:
            if all(image is not None for image in images):
                self.split_view.set_images(images[0], images[1], f"A (1): {a.label}", f"B (2): {b.label}")

        for slot, item in enumerate((a, b)):
            if item.image is None and item.path:
                def loaded(image, slot=slot):
                    images[slot] = image
                    show()
                run_io(QImage, item.path, on_done=loaded)
        show()

    def keyPressEvent(self, event) -> None:
        number = event.key() - Qt.Key.Key_1
        shown = len(self._comparison.items) if self._comparison.mode != SPLIT else 2
        filled = 0 <= number < min(shown, 9) and bool(self._comparison.items[number].path)
        if len(self._comparison.items) >= 2 and filled and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            self.picked.emit(number)
        else:
            super().keyPressEvent(event)
