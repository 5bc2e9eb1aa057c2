"""The LoRA list in the controls: one line per file (a tick for on/off, its name and weight), the selected one's
weight, Add… and Remove. Bound to ``Controls.loras`` (``model.loras.LoraList``); adding a file takes the steps,
guidance and taus it recommends (``Controls.add_lora``); a few lines tall, so the window still fits 1366 x 768."""
from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...request import MAX_LORA_WEIGHT
from ..model.controls import Controls

VISIBLE_ROWS = 3


class LoraPanel(QWidget):
    def __init__(self, controls: Controls, parent: QWidget | None = None):
        super().__init__(parent)
        self._controls = controls
        self._loras = loras = controls.loras
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.list = QListWidget()
        self.list.setToolTip("LoRAs for this model (each model keeps its own list): tick to use, untick to leave "
                             "out. ComfyUI/kohya, lightx2v and diffusers .safetensors files; a few-step LoRA brings "
                             "its own steps and scheduler settings.")
        self.list.setMaximumHeight(self.list.fontMetrics().height() * (VISIBLE_ROWS + 1) + 6)
        self.list.itemChanged.connect(self._ticked)
        self.list.currentRowChanged.connect(self._selected)
        layout.addWidget(self.list)

        self.weight = QDoubleSpinBox(decimals=2, minimum=-MAX_LORA_WEIGHT, maximum=MAX_LORA_WEIGHT, singleStep=0.05)
        self.weight.setToolTip("Weight of the selected LoRA: 1 as trained, 0 no effect, negative to push away.")
        self.weight.valueChanged.connect(self._weighted)
        self.add_button = QToolButton(text="Add…")
        self.add_button.setToolTip("Add a LoRA file (.safetensors) to this model's list")
        self.add_button.clicked.connect(self._choose)
        self.remove_button = QToolButton(text="Remove")
        self.remove_button.setToolTip("Take the selected LoRA off this model's list (the file stays)")
        self.remove_button.clicked.connect(self._remove)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Weight"))
        row.addWidget(self.weight, 1)
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        layout.addLayout(row)
        self.problem = QLabel(wordWrap=True)
        self.problem.setVisible(False)
        layout.addWidget(self.problem)
        loras.changed.connect(self.refresh)
        self.refresh()

    def add_file(self, path: str) -> bool:
        """Add ``path`` and take the settings it recommends (said under the list); a refusal is shown there in one
        line."""
        try:
            origin = self._controls.add_lora(path)
        except ValueError as error:
            self.problem.setText(str(error))
            self.problem.setVisible(True)
            return False
        self.problem.setText(f"Took its settings ({origin})" if origin else "")
        self.problem.setVisible(bool(origin))
        self.list.setCurrentRow(self.list.count() - 1)
        return True

    def refresh(self) -> None:
        row = self.list.currentRow()
        with QSignalBlocker(self.list):
            self.list.clear()
            for entry in self._loras.entries:
                item = QListWidgetItem(f"{entry.name}  ×{entry.weight:g}")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if entry.enabled else Qt.CheckState.Unchecked)
                item.setToolTip(entry.path)
                self.list.addItem(item)
            self.list.setCurrentRow(min(max(row, 0), self.list.count() - 1))
        self._selected(self.list.currentRow())

    def _selected(self, row: int) -> None:
        has = 0 <= row < len(self._loras.entries)
        self.weight.setEnabled(has)
        self.remove_button.setEnabled(has)
        if has:
            with QSignalBlocker(self.weight):
                self.weight.setValue(self._loras.entries[row].weight)

    def _ticked(self, item: QListWidgetItem) -> None:
        self._loras.set_enabled(self.list.row(item), item.checkState() == Qt.CheckState.Checked)

    def _weighted(self, value: float) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self._loras.entries):
            self._loras.set_weight(row, value)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a LoRA", "", "LoRA files (*.safetensors)")
        if path:
            self.add_file(path)

    def _remove(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self._loras.entries):
            self._loras.remove(row)
