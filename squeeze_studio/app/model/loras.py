"""The window's LoRA list: files with a weight and an on/off switch, remembered per model.

Each model (its ``Controls`` value: "" for the demo, a folder or a repo id) keeps its own list; choosing another
model shows that model's list, and choosing it again brings the first one back. The lists are saved with the
session (``to_dict``/``load_dict``); the LoRAs switched on go into every request (``request_loras``). Only
``.safetensors`` files are taken (``hub.lora_files.check_lora_file``): anything else is refused in one line.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from ...hub.lora_files import check_lora_file, lora_name
from ...request import MAX_LORA_WEIGHT, MAX_LORAS

MAX_MODELS = 32  # lists remembered; the oldest model's list is forgotten past this


@dataclass
class LoraEntry:
    path: str
    weight: float = 1.0
    enabled: bool = True

    @property
    def name(self) -> str:
        return lora_name(self.path)


class LoraList(QObject):
    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._lists: dict[str, list[LoraEntry]] = {}
        self._model = ""

    @property
    def entries(self) -> list[LoraEntry]:
        return self._lists.get(self._model, [])

    def set_model(self, model: str) -> None:
        """Show ``model``'s list (empty the first time)."""
        if model != self._model:
            self._model = model
            self.changed.emit()

    def add(self, path: str, weight: float = 1.0) -> LoraEntry:
        """Add a file to the current model's list (switched on); ``ValueError`` in one line for a file that is not
        a .safetensors LoRA, one already listed, or one too many."""
        check_lora_file(path)
        entries = self._lists.setdefault(self._model, [])
        if any(entry.path == str(path) for entry in entries):
            raise ValueError(f"{lora_name(path)} is already in the list")
        if len(entries) >= MAX_LORAS:
            raise ValueError(f"at most {MAX_LORAS} LoRAs per model")
        entry = LoraEntry(str(path), _weight(weight))
        entries.append(entry)
        self._forget_old()
        self.changed.emit()
        return entry

    def remove(self, index: int) -> None:
        del self.entries[index]
        self.changed.emit()

    def set_weight(self, index: int, weight: float) -> None:
        weight = _weight(weight)
        if self.entries[index].weight != weight:
            self.entries[index].weight = weight
            self.changed.emit()

    def set_enabled(self, index: int, enabled: bool) -> None:
        if self.entries[index].enabled != bool(enabled):
            self.entries[index].enabled = bool(enabled)
            self.changed.emit()

    def request_loras(self) -> list[dict]:
        """The LoRAs switched on, as ``GenerationRequest.loras`` holds them."""
        return [{"path": e.path, "weight": e.weight} for e in self.entries if e.enabled]

    def apply_request(self, model: str, loras: list[dict]) -> None:
        """A restored recipe: ``model``'s list becomes the recipe's LoRAs, all switched on."""
        self._model = model
        self._lists[model] = [LoraEntry(str(lora["path"]), _weight(lora.get("weight", 1.0))) for lora in loras]
        self.changed.emit()

    def to_dict(self) -> dict[str, Any]:
        return {model: [asdict(e) for e in entries] for model, entries in self._lists.items() if entries}

    def load_dict(self, data: Any, model: str) -> None:
        """Take a saved session's lists; anything malformed is skipped, never fatal."""
        self._lists = {}
        for key, entries in (data.items() if isinstance(data, dict) else ()):
            if isinstance(key, str) and isinstance(entries, list):
                kept = [LoraEntry(str(e["path"]), _weight(e.get("weight", 1.0)), bool(e.get("enabled", True)))
                        for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str)]
                self._lists[key] = kept[:MAX_LORAS]
        self._model = model
        self._forget_old()
        self.changed.emit()

    def _forget_old(self) -> None:
        while len(self._lists) > MAX_MODELS:
            oldest = next(key for key in self._lists if key != self._model)
            del self._lists[oldest]


def _weight(value: Any) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        return 1.0
    return min(max(weight, -MAX_LORA_WEIGHT), MAX_LORA_WEIGHT) if math.isfinite(weight) else 1.0
