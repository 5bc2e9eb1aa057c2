"""Per-model stage defaults: the τ1/τ2 and guidance a model or add-on recommends, and where they came from.

- A Squeeze model folder may carry ``stage_defaults.json`` (``squeeze eval --tau-sweep --write-default``
  writes it); without one it gets the paper's defaults.
- A stock base with no add-on has an identity-initialised, untrained connector. The paper's τ1 = 0.95 /
  τ2 = 0.85 would run most steps with the null instruction on a model never trained for that, so its default
  is its own behaviour: τ1 = 1, τ2 = 0 (MLLM + VAE at every step), CFG 4.0 as Qwen-Image-Edit is run.
- An add-on carries its own in ``squeeze_addon.json`` (``hub.addon`` reads them; ``hub.resolve`` picks).

Imports nothing else from ``hub``. Plain Python: the window shows these before torch loads.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
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
