"""The memory row of the controls: device, memory mode, and the memory plan with the measured peak beside it.

Everything shown comes from the ``Studio`` as plain data (the worker made the plan); changing the device or the
mode loads the model again and is remembered with the session. When the plan does not fit, or a run ran out of
memory, the row says which mode would do and offers a button for it.
"""
from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from ...memory.modes import MEMORY_MODES
from ..model.memory_info import AUTOMATIC, MODE_TIPS, device_kind, fit_note, mode_problem, plan_line, plan_tooltip
from ..model.studio import Studio

DEVICE_TIPS = {
    "cuda": "an NVIDIA GPU (CUDA), computing in bf16",
    "mps": "the Apple GPU (MPS), bf16 from macOS 14 (else fp16); only memory mode full, as it shares the "
           "machine's memory",
    "cpu": "the processor, in fp32: fine for the demo model, very slow for a full one",
}


def device_tip(device: str) -> str:
    kind = device_kind(device)
    tip = DEVICE_TIPS.get(kind, device)
    if kind == "cuda":
        tip = f"GPU {device.partition(':')[2] or '0'}: {tip}"
    return f"{device}: {tip}"


class MemoryPanel(QWidget):
    """The plan and what to do when it does not fit (the width of the controls), with ``choices``: the device and
    memory-mode pickers, a widget of their own for the form's "Memory" row."""

    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self._studio = studio
        self._controls = studio.controls

        self.device = QComboBox()
        self.device.setToolTip("Device: where the model runs. Automatic takes the best present (a CUDA GPU, then "
                               "Apple MPS, then the CPU). Changing it loads the model again; it is remembered.")
        self.device.activated.connect(self._device_chosen)
        self.mode = QComboBox()
        self.mode.setToolTip("Memory mode: how the model is spread over GPU and RAM. Lighter modes (further "
                             "down) need less VRAM and run slower; auto takes the fastest the plan says fits. "
                             "Changing it loads the model again; it is remembered.")
        for mode in MEMORY_MODES:
            self.mode.addItem(mode, mode)
            self.mode.setItemData(self.mode.count() - 1, MODE_TIPS[mode], Qt.ItemDataRole.ToolTipRole)
        self.mode.activated.connect(self._mode_chosen)
        self.choices = QWidget()
        choices = QHBoxLayout(self.choices)
        choices.setContentsMargins(0, 0, 0, 0)
        choices.addWidget(self.device, 1)
        choices.addWidget(self.mode, 1)

        self.plan_label = QLabel(wordWrap=True)
        self.note_label = QLabel(wordWrap=True)  # does not fit / ran out of memory: which mode would do
        for label in (self.plan_label, self.note_label):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.use_button = QToolButton()
        self.use_button.setToolTip("Load the model again in the lighter memory mode named here")
        self.use_button.clicked.connect(studio.models.use_suggested_mode)
        self.use_button.hide()
        self.note_row = QWidget()
        note_row = QHBoxLayout(self.note_row)
        note_row.setContentsMargins(0, 0, 0, 0)
        note_row.addWidget(self.note_label, 1)
        note_row.addWidget(self.use_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.plan_label)
        layout.addWidget(self.note_row)

        self._controls.changed.connect(self._control_changed)
        studio.models.memory_changed.connect(self.refresh)
        studio.models.status_changed.connect(self.refresh)  # a model starts loading
        self.refresh()

    # --- choices ------------------------------------------------------------------------------
    def _device_chosen(self, index: int) -> None:
        self._studio.models.choose_memory(device=self.device.itemData(index))

    def _mode_chosen(self, index: int) -> None:
        mode = self.mode.itemData(index)
        problem = mode_problem(mode, self._controls.get("device"), self._studio.models.devices)
        if problem:  # disabled items cannot be picked with the mouse, but the keyboard may get there
            self._studio.message.emit(f"Memory mode {mode} {problem}")
            self._show_mode()
            return
        self._studio.models.choose_memory(memory=mode)

    # --- showing ------------------------------------------------------------------------------
    def _control_changed(self, name: str) -> None:
        if name in ("", "device", "memory"):
            self.refresh()

    def refresh(self) -> None:
        self._show_devices()
        self._show_mode()
        self._show_plan()

    def _show_devices(self) -> None:
        devices, chosen = self._studio.models.devices, self._controls.get("device")
        choices = devices if not chosen or chosen in devices else [*devices, chosen]  # remembered, not seen yet
        with QSignalBlocker(self.device):
            self.device.clear()
            self.device.addItem(f"Automatic ({devices[0]})" if devices else "Automatic", AUTOMATIC)
            self.device.setItemData(0, "The best device present", Qt.ItemDataRole.ToolTipRole)
            for device in choices:
                self.device.addItem(device, device)
                self.device.setItemData(self.device.count() - 1, device_tip(device), Qt.ItemDataRole.ToolTipRole)
            self.device.setCurrentIndex(max(self.device.findData(chosen), 0))

    def _show_mode(self) -> None:
        device, devices = self._controls.get("device"), self._studio.models.devices
        model = self.mode.model()
        with QSignalBlocker(self.mode):
            for index in range(self.mode.count()):
                mode = self.mode.itemData(index)
                problem = mode_problem(mode, device, devices)
                model.item(index).setEnabled(not problem)
                tip = MODE_TIPS[mode] + (f" Not here: it {problem}." if problem else "")
                self.mode.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
            self.mode.setCurrentIndex(max(self.mode.findData(self._controls.get("memory")), 0))

    def _show_plan(self) -> None:
        studio = self._studio
        self.plan_label.setText("plan: once the model has loaded…" if studio.models.loading_model
                                else plan_line(studio.models.plan, studio.models.peak))
        tip = plan_tooltip(studio.models.plan)
        self.plan_label.setToolTip(tip)
        note = studio.models.memory_problem or fit_note(studio.models.plan)
        self.note_label.setText(note)
        self.note_label.setToolTip(tip)
        suggested = studio.models.suggested_mode()
        self.note_row.setVisible(bool(note or suggested))
        self.use_button.setVisible(bool(suggested))
        if suggested:
            self.use_button.setText(f"Use {suggested}")
            self.use_button.setToolTip(f"Load the model again in memory mode {suggested}: {MODE_TIPS[suggested]}")
