"""The generation controls, bound to ``Controls``: stage bar, guidance, steps, seed, size, batch, model."""
from __future__ import annotations

import random
from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from ..model.controls import MAX_SEED
from ..model.studio import Studio
from .stage_bar import StageBar

CHOOSE_FOLDER = "\x00choose"  # combo item data of "Choose model folder…"


class ControlsPanel(QWidget):
    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self._studio = studio
        self._controls = studio.controls
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)

        self.stage_bar = StageBar()
        self.stage_bar.values_changed.connect(self._stage_changed)
        form.addRow(self.stage_bar)

        self.guidance = QDoubleSpinBox(decimals=1, minimum=0.0, maximum=20.0, singleStep=0.5)
        self.guidance.setToolTip("Guidance (CFG): how strongly the image follows the instruction and references. "
                                 "Higher is more literal and saturated, lower is looser and softer. Paper: 2.5.")
        self.guidance.valueChanged.connect(lambda v: self._controls.set("guidance_scale", v))
        form.addRow("Guidance", self.guidance)

        self.steps = QSpinBox(minimum=1, maximum=200)
        self.steps.setToolTip("Denoising steps: more steps give finer detail and cleaner edges but take longer.")
        self.steps.valueChanged.connect(lambda v: self._controls.set("num_inference_steps", v))
        form.addRow("Steps", self.steps)

        self.seed = QSpinBox(minimum=0, maximum=MAX_SEED)
        self.seed.setToolTip("Seed: the starting noise. The same seed and settings give the same image; "
                             "another seed gives another composition.")
        self.seed.valueChanged.connect(lambda v: self._controls.set("seed", v))
        self.seed_lock = QToolButton(text="Lock", checkable=True)
        self.seed_lock.setToolTip("Locked: every run reuses this seed, so only your changes alter the image. "
                                  "Unlocked: every run draws a new seed (shown here) for a new composition.")
        self.seed_lock.toggled.connect(self._controls.set_seed_locked)
        self.seed_dice = QToolButton(text="New")
        self.seed_dice.setToolTip("Draw a new random seed now: a different composition with the same settings.")
        self.seed_dice.clicked.connect(lambda: self._controls.set("seed", random.randint(0, MAX_SEED)))
        form.addRow("Seed", self._row(self.seed, self.seed_lock, self.seed_dice))

        self.width_box = self._size_box("width")
        self.height_box = self._size_box("height")
        form.addRow("Size", self._row(self.width_box, QLabel("×"), self.height_box))

        self.batch = QSpinBox(minimum=1, maximum=16)
        self.batch.setToolTip("Batch: how many images one click makes, with seeds seed, seed+1, … "
                              "(the references are encoded once per image).")
        self.batch.valueChanged.connect(lambda v: self._controls.set("batch_count", v))
        form.addRow("Batch", self.batch)

        self.negative = QLineEdit(placeholderText="e.g. blurry, watermark")
        self.negative.setToolTip("Negative prompt: what the image should steer away from.")
        self.negative.textEdited.connect(lambda text: self._controls.set("negative_prompt", text or " "))
        form.addRow("Avoid", self.negative)

        self.model = QComboBox()
        self.model.setToolTip("Model: the built-in demo model runs anywhere (small, low detail); choose a "
                              "SqueezePipeline folder for a full model. Changing it loads the model in the background.")
        self.model.activated.connect(self._model_chosen)
        form.addRow("Model", self.model)

        self._controls.changed.connect(self._refresh)
        studio.recent_models_changed.connect(self._fill_models)
        self._fill_models()
        self._refresh("")

    def _row(self, *widgets: QWidget) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            layout.addWidget(widget)
        layout.setStretch(0, 1)
        return row

    def _size_box(self, name: str) -> QSpinBox:
        box = QSpinBox(minimum=0, maximum=4096, singleStep=64)
        box.setSpecialValueText("native")  # 0 = the model's native size
        box.setToolTip(f"Output {name} in pixels. “native” uses the size the model was trained at, which gives "
                       "the best composition; other sizes are rounded to what the model supports.")
        box.valueChanged.connect(lambda v: self._controls.set(name, v))
        return box

    def _stage_changed(self, tau1: float, tau2: float) -> None:
        self._controls.set("tau1", tau1)
        self._controls.set("tau2", tau2)

    def _fill_models(self) -> None:
        with QSignalBlocker(self.model):
            self.model.clear()
            self.model.addItem("Built-in demo model", "")
            for folder in self._studio.recent_models:
                self.model.addItem(Path(folder).name, folder)
                self.model.setItemData(self.model.count() - 1, folder, Qt.ItemDataRole.ToolTipRole)
            self.model.addItem("Choose model folder…", CHOOSE_FOLDER)
        self._refresh("model")

    def _model_chosen(self, index: int) -> None:
        folder = self.model.itemData(index)
        if folder == CHOOSE_FOLDER:
            folder = QFileDialog.getExistingDirectory(self, "Choose a SqueezePipeline model folder")
            if not folder:
                self._refresh("model")
                return
        self._studio.choose_model(folder)

    def _refresh(self, name: str) -> None:
        """Show the model's values; ``name`` "" means everything changed."""
        c = self._controls
        updates = {
            "tau1": lambda: self.stage_bar.set_values(c.get("tau1"), c.get("tau2")),
            "tau2": lambda: self.stage_bar.set_values(c.get("tau1"), c.get("tau2")),
            "guidance_scale": lambda: self.guidance.setValue(c.get("guidance_scale")),
            "num_inference_steps": lambda: self.steps.setValue(c.get("num_inference_steps")),
            "seed": lambda: self.seed.setValue(c.get("seed")),
            "seed_locked": lambda: self.seed_lock.setChecked(c.seed_locked),
            "width": lambda: self.width_box.setValue(c.get("width")),
            "height": lambda: self.height_box.setValue(c.get("height")),
            "batch_count": lambda: self.batch.setValue(c.get("batch_count")),
            "negative_prompt": lambda: self.negative.setText(c.get("negative_prompt").strip()),
            "model": self._show_model,
        }
        # Showing a value must not write it back (and must not re-trigger autosave or a model load).
        blockers = [QSignalBlocker(w) for w in (self.stage_bar, self.guidance, self.steps, self.seed,
                                                 self.seed_lock, self.width_box, self.height_box,
                                                 self.batch, self.negative, self.model)]
        for key, update in updates.items():
            if name in ("", key):
                update()
        del blockers

    def _show_model(self) -> None:
        model = self._controls.get("model")
        index = self.model.findData(model)
        if index < 0:  # a folder restored from a recipe or session that is not in the recent list
            self.model.insertItem(1, Path(model).name, model)
            index = 1
        self.model.setCurrentIndex(index)
