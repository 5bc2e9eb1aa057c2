"""Per-model stage defaults: the τ1/τ2 and guidance a model or add-on recommends, and where they came from.

- A Squeeze model folder may carry ``stage_defaults.json`` (``squeeze eval --tau-sweep --write-default``
  writes it); without one it gets the paper's defaults.
- A stock base with no add-on has an identity-initialised, untrained connector. The paper's τ1 = 0.95 /
  τ2 = 0.85 would run most steps with the null instruction on a model never trained for that, so its default
  is its own behaviour: τ1 = 1, τ2 = 0 (MLLM + VAE at every step), CFG 4.0 as Qwen-Image-Edit is run.
- An add-on carries its own in ``squeeze_addon.json`` (``hub.addon`` reads them; ``hub.resolve`` picks).
- A LoRA may recommend steps, guidance, τ and scheduler settings (``LoraDefaults``; ``hub.lora_files`` finds them).

Imports nothing else from ``hub``. Plain Python: the window shows these before torch loads.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

STAGE_DEFAULTS_FILE = "stage_defaults.json"


@dataclass(frozen=True)
class StageDefaults:
    tau1: float
    tau2: float
    guidance_scale: float
    origin: str  # one short sentence: where these numbers come from

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, origin: str) -> StageDefaults:
        try:
            values = cls(float(data["tau1"]), float(data["tau2"]), float(data["guidance_scale"]),
                         str(data.get("origin") or origin))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"stage defaults need tau1, tau2 and guidance_scale ({origin})") from None
        if not 0.0 <= values.tau2 <= values.tau1 <= 1.0 or values.guidance_scale < 0:
            raise ValueError(f"stage defaults out of range: tau1 {values.tau1}, tau2 {values.tau2} ({origin})")
        return values


PAPER_DEFAULTS = StageDefaults(0.95, 0.85, 2.5, "paper default (arXiv 2605.26111)")
BASE_DEFAULTS = StageDefaults(1.0, 0.0, 4.0, "the base model's own behaviour: its connector is untrained")


def folder_defaults(folder: Path, kind: str) -> StageDefaults:
    """The defaults a model folder of ``kind`` recommends on its own (no add-on)."""
    if kind == "stock":
        return BASE_DEFAULTS
    file = folder / STAGE_DEFAULTS_FILE
    if file.is_file():
        return StageDefaults.from_dict(_read_json(file), f"{folder.name}/{STAGE_DEFAULTS_FILE}")
    return PAPER_DEFAULTS


def write_folder_defaults(folder: Path, defaults: StageDefaults) -> Path:
    path = folder / STAGE_DEFAULTS_FILE
    path.write_text(json.dumps(defaults.to_dict(), indent=2) + "\n")
    return path


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ValueError(f"unreadable {path.name} in {path.parent}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} in {path.parent} is not a JSON object")
    return data


# The FlowMatchEulerDiscreteScheduler settings a LoRA may set: its noise schedule, nothing else.
SCHEDULER_KEYS = {"shift": float, "base_shift": float, "max_shift": float, "use_dynamic_shifting": bool,
                  "time_shift_type": str, "shift_terminal": (float, type(None)), "base_image_seq_len": int,
                  "max_image_seq_len": int}


@dataclass(frozen=True)
class LoraDefaults:
    """What a LoRA recommends; ``None`` leaves the model's (or the user's) own value."""

    steps: int | None = None
    guidance_scale: float | None = None
    tau1: float | None = None
    tau2: float | None = None
    scheduler: dict = field(default_factory=dict, hash=False)  # SCHEDULER_KEYS only
    origin: str = ""

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if v not in (None, {}, "")}
        data.pop("origin", None)
        return data

    @classmethod
    def from_dict(cls, data, origin: str) -> LoraDefaults:
        """``ValueError`` in one line naming ``origin`` for a key or value out of place."""
        if not isinstance(data, dict):
            raise ValueError(f"LoRA defaults in {origin} are not a JSON object")
        unknown = sorted(set(data) - {"steps", "guidance_scale", "tau1", "tau2", "scheduler"})
        if unknown:
            raise ValueError(f"LoRA defaults in {origin}: unknown key {unknown[0]!r}")
        steps = data.get("steps")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000):
            raise ValueError(f"LoRA defaults in {origin}: steps must be a whole number from 1 to 1000")
        numbers = {}
        for key in ("guidance_scale", "tau1", "tau2"):
            value = data.get(key)
            top = math.inf if key == "guidance_scale" else 1.0
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 <= value <= top or not math.isfinite(value)):
                raise ValueError(f"LoRA defaults in {origin}: {key} out of range (got {value!r:.40})")
            numbers[key] = None if value is None else float(value)
        if None not in (numbers["tau1"], numbers["tau2"]) and numbers["tau2"] > numbers["tau1"]:
            raise ValueError(f"LoRA defaults in {origin}: tau2 must not exceed tau1")
        scheduler = data.get("scheduler") or {}
        if not isinstance(scheduler, dict):
            raise ValueError(f"LoRA defaults in {origin}: scheduler is not an object")
        for key, value in scheduler.items():
            kind = SCHEDULER_KEYS.get(key)
            if kind is None:
                raise ValueError(f"LoRA defaults in {origin}: scheduler setting {key!r} is not one a LoRA may set")
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or kind is not bool and isinstance(value, bool):
                raise ValueError(f"LoRA defaults in {origin}: scheduler {key} has the wrong type")
        return cls(steps, numbers["guidance_scale"], numbers["tau1"], numbers["tau2"], dict(scheduler), origin)
