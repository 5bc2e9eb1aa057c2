"""The generation controls, bound to ``Controls``: stage bar, guidance, steps, seed, size, batch, model, add-on,
the LoRA list, and the memory row (device, memory mode, the memory plan)."""
from __future__ import annotations

import random

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
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

from ...request import CACHE_MODES
from ..model.controls import MAX_SEED
from ..model.model_names import DEMO_LABEL, NO_ADDON_LABEL, addon_label, model_label
from ..model.studio import Studio
from .lora_panel import LoraPanel
from .memory_panel import MemoryPanel
from .screen_fit import available_area, is_short
from .section import Section
from .stage_bar import StageBar

CHOOSE_FOLDER = "\x00choose"  # combo item data of "Choose model folder…" / "Choose add-on folder…"
OPEN_MODELS = "\x00models"    # combo item data of "Models…"


class ControlsPanel(QWidget):
    models_dialog_requested = Signal()

    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self._studio = studio
        self._controls = studio.controls
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)

        self.stage_bar = StageBar()
        self.stage_bar.values_changed.connect(self._stage_changed)
        self.stage_bar.user_default_chosen.connect(self._use_user_default)
        studio.picks.changed.connect(self._show_user_default)
        form.addRow(self.stage_bar)

        # One plain button; the values and where they come from are its tooltip (no paper terms in the panel).
        self.defaults_button = QToolButton(text="Reset to model defaults")
        self.defaults_button.clicked.connect(lambda: studio.models.apply_model_defaults(announce=True))
        form.addRow(self._row(QWidget(), self.defaults_button))

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
        # The rows most runs leave alone fold away; on a short screen they start folded (screen_fit).
        self.advanced = Section("Size, batch, avoid, add-on, LoRAs, speed, memory",
                                expanded=not is_short(available_area()))
        advanced = self.advanced.form
        advanced.addRow("Size", self._row(self.width_box, QLabel("×"), self.height_box))

        self.batch = QSpinBox(minimum=1, maximum=16)
        self.batch.setToolTip("Batch: how many images one click makes, with seeds seed, seed+1, … "
                              "(the references are encoded once per image).")
        self.batch.valueChanged.connect(lambda v: self._controls.set("batch_count", v))
        advanced.addRow("Batch", self.batch)

        self.negative = QLineEdit(placeholderText="e.g. blurry, watermark")
        self.negative.setToolTip("Negative prompt: what the image should steer away from.")
        self.negative.textEdited.connect(lambda text: self._controls.set("negative_prompt", text or " "))
        advanced.addRow("Avoid", self.negative)

        self.model = QComboBox()
        self.model.setToolTip("Model: the built-in demo model runs anywhere (small, low detail). For a full model "
                              "choose a Squeeze model folder, a stock Qwen-Image-Edit-Plus folder, or one from the "
                              "Hugging Face cache (Models…). It loads in the background; one that fails to load "
                              "is not kept and the status bar says why.")
        self.model.activated.connect(self._model_chosen)
        form.addRow("Model", self.model)

        self.addon = QComboBox()
        self.addon.setToolTip("Add-on: what Squeeze training adds to a base model (a trained connector, a LoRA, and "
                              "recommended stage settings). Without one, a stock base runs as itself.")
        self.addon.activated.connect(self._addon_chosen)
        advanced.addRow("Add-on", self.addon)

        self.loras = LoraPanel(self._controls)
        advanced.addRow("LoRAs", self.loras)
        self.cache = QComboBox()
        for mode in CACHE_MODES:
            self.cache.addItem("No step cache" if mode == "none" else f"Cache: {mode}", mode)
        self.cache.setToolTip("Step cache: reuse transformer work between steps of a stage (reset at every stage "
                              "boundary). Faster, at some cost in quality; docs/models.md has both, measured.")
        self.cache.activated.connect(lambda i: self._controls.set("cache", self.cache.itemData(i)))
        self.compile = QCheckBox("Compile")
        self.compile.setToolTip("Compile the transformer's blocks (CUDA only): the first image takes longer while "
                                "it compiles, the next ones run faster. The result's line says both times.")
        self.compile.toggled.connect(lambda on: self._controls.set("compile", on))
        advanced.addRow("Speed", self._row(self.cache, self.compile))

        self.memory = MemoryPanel(studio)
        advanced.addRow("Memory", self.memory.choices)
        advanced.addRow(self.memory)  # the plan, the width of the controls
        form.addRow(self.advanced)
        studio.models.memory_changed.connect(self._unfold_for_memory)  # a memory problem is never folded away

        self._controls.changed.connect(self._refresh)
        self._controls.changed.connect(self._show_cost)
        studio.subjects.changed.connect(self._show_cost)
        studio.subjects.current_changed.connect(self._show_cost)
        studio.models.recent_models_changed.connect(self._fill_models)
        studio.models.recent_addons_changed.connect(self._fill_addons)
        studio.models.stage_defaults_changed.connect(self._show_model_defaults)
        self._show_model_defaults()
        self._show_user_default()
        self._refresh("")
        self._show_cost()

    def _show_cost(self, *_args) -> None:
        """The stage bar's cost figures follow the steps, the guidance and the current subject's references."""
        self.stage_bar.set_run(self._controls.get("num_inference_steps"), self._controls.get("guidance_scale"),
                               len(self._studio.subjects.references()))

    def _unfold_for_memory(self) -> None:
        if self._studio.models.memory_problem or self._studio.models.suggested_mode():
            self.advanced.set_expanded(True)

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
        """Demo, the recent models (and the current choice while it loads), "Models…", "Choose model folder…"."""
        self._fill(self.model, DEMO_LABEL, self._studio.models.recent_models, self._controls.get("model"), model_label,
                   [("Models…", OPEN_MODELS, "What is installed: use, verify, download, remove"),
                    ("Choose model folder…", CHOOSE_FOLDER, "A Squeeze model folder or a stock diffusers one")])

    def _fill_addons(self) -> None:
        self._fill(self.addon, NO_ADDON_LABEL, self._studio.models.recent_addons, self._controls.get("addon"),
                   addon_label, [("Choose add-on folder…", CHOOSE_FOLDER, "A folder with squeeze_addon.json")])

    @staticmethod
    def _fill(combo: QComboBox, none_label: str, recent: list[str], current: str, label, actions) -> None:
        choices = recent if not current or current in recent else [current, *recent]
        with QSignalBlocker(combo):
            combo.clear()
            combo.addItem(none_label, "")
            for value in choices:
                combo.addItem(label(value), value)
                combo.setItemData(combo.count() - 1, value, Qt.ItemDataRole.ToolTipRole)
            for text, data, tip in actions:
                combo.addItem(text, data)
                combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
            combo.setCurrentIndex(max(combo.findData(current), 0))

    def _model_chosen(self, index: int) -> None:
        model = self.model.itemData(index)
        if model == OPEN_MODELS:
            self._refresh("model")  # the dialog's "Use" makes the choice
            self.models_dialog_requested.emit()
            return
        if model == CHOOSE_FOLDER:
            model = QFileDialog.getExistingDirectory(self, "Choose a model folder (Squeeze or stock diffusers)")
            if not model:
                self._refresh("model")
                return
        if self._studio.models.loaded != (model, self._controls.get("addon")):  # picking a failed one again retries
            self._studio.models.choose_model(model)

    def _addon_chosen(self, index: int) -> None:
        addon = self.addon.itemData(index)
        if addon == CHOOSE_FOLDER:
            addon = QFileDialog.getExistingDirectory(self, "Choose an add-on folder (with squeeze_addon.json)")
            if not addon:
                self._refresh("addon")
                return
        if self._studio.models.loaded != (self._controls.get("model"), addon):
            self._studio.models.choose_addon(addon)

    def _show_user_default(self) -> None:
        preference = self._studio.picks.preference
        if preference is None:
            self.stage_bar.clear_user_default()
        else:
            tau1, tau2, _guidance = preference.setting
            self.stage_bar.set_user_default(tau1, tau2, preference.picks, preference.words())

    def _use_user_default(self) -> None:
        preference = self._studio.picks.preference
        if preference is not None:
            for name, value in zip(("tau1", "tau2", "guidance_scale"), preference.setting, strict=True):
                self._controls.set(name, value)

    def _show_model_defaults(self) -> None:
        defaults = self._studio.models.stage_defaults
        if defaults is None:
            self.stage_bar.clear_model_default()
            self.defaults_button.setToolTip("The model's own stage settings, once it has loaded")
            self.defaults_button.setEnabled(False)
            return
        self.stage_bar.set_model_default(defaults["tau1"], defaults["tau2"], defaults["origin"])
        self.defaults_button.setToolTip(f"Set the stage balance and guidance to this model's: τ1 {defaults['tau1']:.2f}"
                                        f" / τ2 {defaults['tau2']:.2f}, guidance {defaults['guidance_scale']:g} "
                                        f"({defaults['origin']})")
        self.defaults_button.setEnabled(True)

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
            "addon": self._show_addon,
            "cache": lambda: self.cache.setCurrentIndex(max(self.cache.findData(c.get("cache")), 0)),
            "compile": lambda: self.compile.setChecked(c.get("compile")),
        }
        # Showing a value must not write it back (and must not re-trigger autosave or a model load).
        blockers = [QSignalBlocker(w) for w in (self.stage_bar, self.guidance, self.steps, self.seed,
                                                 self.seed_lock, self.width_box, self.height_box,
                                                 self.batch, self.negative, self.model, self.addon, self.cache,
                                                 self.compile)]
        for key, update in updates.items():
            if name in ("", key):
                update()
        del blockers

    def _show_model(self) -> None:
        self._fill_models()  # a choice that failed to load leaves the list again

    def _show_addon(self) -> None:
        self._fill_addons()
