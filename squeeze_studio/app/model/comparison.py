"""What the comparison view shows: results side by side, an A/B split of two, or a sweep grid."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

SIDE_BY_SIDE, SPLIT, GRID = "side_by_side", "split", "grid"


@dataclass
class CompareItem:
    path: str                 # "" while a sweep cell is still being generated
    label: str
    image: QImage | None = None  # already decoded (fresh results), else the view loads ``path``


class Comparison(QObject):
    changed = Signal()            # items or mode replaced: rebuild
    cell_filled = Signal(int)     # one sweep cell got its image

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.mode = SIDE_BY_SIDE
        self.items: list[CompareItem] = []
        self.columns = 0  # grid columns; 0 = as many as fit side by side
        self.column_labels: list[str] = []  # a sweep grid's axes: τ1 / τ2 per column, the seed per row
        self.row_labels: list[str] = []

    def show(self, items: list[CompareItem], mode: str | None = None, columns: int = 0) -> None:
        self.items = list(items)
        self.columns = columns
        self.column_labels, self.row_labels = [], []
        if mode is not None:
            self.mode = mode
        if self.mode == SPLIT and len(self.items) < 2:
            self.mode = SIDE_BY_SIDE
        self.changed.emit()

    def set_mode(self, mode: str) -> None:
        if mode != self.mode:
            self.mode = mode
            self.changed.emit()

    def start_grid(self, labels: list[str], columns: int, axes: tuple[list[str], list[str]] = ([], [])) -> None:
        """A sweep: ``labels`` one per cell, row by row; ``axes`` the column and row labels (``sweep.sweep_axes``)."""
        self.items = [CompareItem("", label) for label in labels]
        self.columns, self.mode = columns, GRID
        self.column_labels, self.row_labels = list(axes[0]), list(axes[1])
        self.changed.emit()

    def fill_cell(self, index: int, path: str, image: QImage | None) -> None:
        if 0 <= index < len(self.items):
            self.items[index].path = path
            self.items[index].image = image
            self.cell_filled.emit(index)
