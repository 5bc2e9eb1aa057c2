"""The generation controls the user edits: every ``GenerationRequest`` field except the references, and where
and how the engine runs (device, memory mode), which are engine settings, not request fields.

One ``changed(name)`` signal per edit lets the widgets, the autosave and the session all follow the
same object without knowing about each other.
"""
from __future__ import annotations

import random
from typing import Any

from PySide6.QtCore import QObject, Signal

from ...memory.modes import MEMORY_MODES
from ...request import CACHE_MODES, GenerationRequest
from .loras import LoraList

MAX_SEED = 2**31 - 1

# Fields the controls own, with the type each value is coerced to (JSON and spin boxes disagree on types).
FIELDS: dict[str, type] = {
    "instruction": str,
    "negative_prompt": str,
    "tau1": float,
    "tau2": float,
    "guidance_scale": float,
    "num_inference_steps": int,
    "seed": int,
    "width": int,
    "height": int,
    "batch_count": int,
    "model": str,  # "" = built-in demo, a folder, or a Hugging Face repo id
    "addon": str,  # "" = no add-on, else an add-on folder
    "cache": str,  # a step cache mode of request.CACHE_MODES
    "compile": bool,  # compile the transformer's blocks (CUDA only)
}
# Where and how the engine runs: saved with the session, never part of a request (or a PNG's recipe); the engine
# is loaded again when they change.
ENGINE_SETTINGS: dict[str, type] = {
    "device": str,  # "" = automatic (the best present), else "cuda", "cuda:1", "mps" or "cpu"
    "memory": str,  # a mode of memory.MEMORY_MODES; "auto" = the fastest the memory plan says fits
}
ENGINE_DEFAULTS = {"device": "", "memory": "auto"}
ALL_FIELDS = {**FIELDS, **ENGINE_SETTINGS}


class Controls(QObject):
    changed = Signal(str)  # the field name; "" after a bulk update

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        defaults = GenerationRequest(instruction="")
        self._values: dict[str, Any] = {name: getattr(defaults, name) for name in FIELDS}
        self._values.update(ENGINE_DEFAULTS)
        self._values["width"] = self._values["width"] or 0  # 0 = the model's native size
        self._values["height"] = self._values["height"] or 0
        self.seed_locked = False  # unlocked: every Generate draws a fresh seed and shows it
        self.loras = LoraList(self)  # the LoRA list of the model chosen; changes are changed("loras")
        self.loras.changed.connect(lambda: self.changed.emit("loras"))

    def get(self, name: str) -> Any:
        return self._values[name]

    def set(self, name: str, value: Any) -> None:
        value = ALL_FIELDS[name](value if value is not None else 0)
        if name == "memory" and value not in MEMORY_MODES:
            raise ValueError(f"unknown memory mode {value!r}")
        if name == "cache" and value not in CACHE_MODES:
            raise ValueError(f"unknown cache mode {value!r}")
        if name == "tau1":
            value = min(max(value, 0.0), 1.0)
        if name == "tau2":
            value = min(max(value, 0.0), 1.0)
        if self._values[name] == value:
            return
        self._values[name] = value
        self.changed.emit(name)
        if name == "model":
            self.loras.set_model(value)
        # Keep tau2 <= tau1: moving one handle past the other pushes it along.
        if name == "tau1" and self._values["tau2"] > value:
            self.set("tau2", value)
        if name == "tau2" and self._values["tau1"] < value:
            self.set("tau1", value)

    def add_lora(self, path: str) -> str:
        """Add a LoRA to the current model's list and take the steps, guidance and taus it recommends (a few-step
        LoRA needs its own); returns where they came from ("" when it recommends none). ``ValueError`` in one
        line for a file that is not a .safetensors LoRA or whose recommended settings cannot be read."""
        from ...hub.lora_files import lora_defaults

        defaults = lora_defaults(path)  # checks the file before it is listed
        self.loras.add(path)
        taken = {"tau1": defaults.tau1, "tau2": defaults.tau2, "num_inference_steps": defaults.steps,
                 "guidance_scale": defaults.guidance_scale}  # tau1 first: setting one pushes the other along
        for name, value in taken.items():
            if value is not None:
                self.set(name, value)
        return defaults.origin if any(v is not None for v in taken.values()) else ""

    def set_seed_locked(self, locked: bool) -> None:
        if locked != self.seed_locked:
            self.seed_locked = locked
            self.changed.emit("seed_locked")

    def next_seed(self) -> int:
        """The seed for the next run: the shown one if locked, a fresh random one (then shown) if not."""
        if not self.seed_locked:
            self.set("seed", random.randint(0, MAX_SEED))
        return self._values["seed"]

    def engine_settings(self) -> tuple[str, str]:
        """(device, memory mode) the engine should run with."""
        return self._values["device"], self._values["memory"]

    def to_request(self, references: list[str]) -> GenerationRequest:
        values = {name: self._values[name] for name in FIELDS}
        values["width"] = values["width"] or None
        values["height"] = values["height"] or None
        return GenerationRequest(references=list(references), loras=self.loras.request_loras(), **values)

    def apply_request(self, request: GenerationRequest, *, lock_seed: bool = True) -> None:
        """Take every control from ``request`` (a restored recipe); lock the seed so it reproduces."""
        for name in FIELDS:
            value = getattr(request, name)
            self._values[name] = FIELDS[name](value if value is not None else 0)
        self.seed_locked = lock_seed or self.seed_locked
        self.loras.apply_request(self._values["model"], request.loras)
        self.changed.emit("")

    def to_dict(self) -> dict[str, Any]:
        return {**self._values, "seed_locked": self.seed_locked, "loras": self.loras.to_dict()}

    def load_dict(self, data: dict[str, Any]) -> None:
        """Take the values of a saved session; a field it lacks (an older session) keeps its current value."""
        for name, kind in ALL_FIELDS.items():
            if name in data and data[name] is not None:
                try:
                    self._values[name] = kind(data[name])
                except (TypeError, ValueError):
                    pass  # one bad field in an old session must not cost the others
        if self._values["memory"] not in MEMORY_MODES:
            self._values["memory"] = ENGINE_DEFAULTS["memory"]
        if self._values["cache"] not in CACHE_MODES:
            self._values["cache"] = "none"
        if self._values["tau2"] > self._values["tau1"]:
            self._values["tau2"] = self._values["tau1"]
        self.seed_locked = bool(data.get("seed_locked", self.seed_locked))
        self.loras.load_dict(data.get("loras"), self._values["model"])
        self.changed.emit("")
