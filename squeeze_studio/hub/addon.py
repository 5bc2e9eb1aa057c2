"""Add-ons: what training produces and what users share, small files over a big shared base.

An add-on folder holds:

- ``squeeze_addon.json``: the base it was trained on (repo id or folder) and that base's component sizes,
  the backbone family, the recommended τ1/τ2 and guidance, and how it was trained;
- ``connector/``: the layer connector (safetensors + JSON, ``LayerConnector.save_pretrained``);
- ``pytorch_lora_weights.safetensors`` (optional): a transformer LoRA in the diffusers/peft format that
  ``QwenImageLoraLoaderMixin.load_lora_weights`` reads, so other diffusers tools can load it too.

This module is the config's format: read and checked once (``read_addon``), written. The weights are read and
written by ``pipeline.addon``. Imports ``hub.source`` and ``hub.defaults`` only. Plain Python: no torch.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .defaults import StageDefaults
from .source import FAMILY, model_shapes

ADDON_CONFIG = "squeeze_addon.json"
CONNECTOR_FOLDER = "connector"
LORA_FILE = "pytorch_lora_weights.safetensors"
FORMAT = 1


@dataclass(frozen=True)
class AddonConfig:
    """``squeeze_addon.json`` of the add-on in ``folder``, checked."""

    folder: Path
    base: str  # repo id or folder of the base it was trained on
    family: str
    base_shapes: dict[str, int]
    stage_defaults: StageDefaults
    lora: str | None  # file name of the transformer LoRA in the folder
    data: dict = field(repr=False)  # the whole file as read, so a rewrite keeps what this class does not model


def is_addon(folder: str | os.PathLike) -> bool:
    return (Path(folder) / ADDON_CONFIG).is_file()


def read_addon(folder: str | os.PathLike) -> AddonConfig:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ValueError(f"add-on folder not found: {folder}")
    if not is_addon(folder):
        raise ValueError(f"not an add-on (no {ADDON_CONFIG}): {folder}")
    try:
        data = json.loads((folder / ADDON_CONFIG).read_text())
    except (OSError, ValueError):
        raise ValueError(f"unreadable {ADDON_CONFIG} in {folder}") from None
    try:
        base, family = str(data["base"]), str(data["family"])
        base_shapes = {k: int(v) for k, v in dict(data["base_shapes"]).items()}
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{folder.name}/{ADDON_CONFIG} lacks base, family or base_shapes") from None
    defaults = StageDefaults.from_dict(data.get("stage_defaults") or {}, f"add-on {folder.name}")
    config = AddonConfig(folder, base, family, base_shapes, defaults, data.get("lora"), data)
    if not (folder / CONNECTOR_FOLDER / "config.json").is_file():
        raise ValueError(f"add-on {folder.name} has no {CONNECTOR_FOLDER}/config.json")
    if config.lora and not (folder / config.lora).is_file():
        raise ValueError(f"add-on {folder.name} names {config.lora}, which is missing")
    return config


def check_addon_matches(config: AddonConfig, base_folder: Path) -> None:
    """Refuse, in one line naming both, an add-on trained for a base of another family or other sizes."""
    shapes = model_shapes(base_folder)
    differ = [f"{key} {config.base_shapes[key]} vs {shapes.get(key)}" for key in sorted(config.base_shapes)
              if shapes.get(key) != config.base_shapes[key]]
    if config.family != FAMILY or differ:
        reason = f"family {config.family} vs {FAMILY}" if config.family != FAMILY else ", ".join(differ)
        raise ValueError(f"add-on {config.folder.name} was made for {config.base}, which {base_folder.name} does "
                         f"not match ({reason})")


def write_addon_config(folder: Path, base: str, base_revision: str | None, base_folder: Path,
                       defaults: StageDefaults, lora: str | None, training: dict | None = None) -> Path:
    """A new add-on's config: ``base`` as it will be named (repo id or full path), sizes read from ``base_folder``."""
    data = {"format": FORMAT, "family": FAMILY, "base": base, "base_revision": base_revision,
            "base_shapes": model_shapes(base_folder), "stage_defaults": defaults.to_dict(), "lora": lora,
            "training": training or {}}
    return _write(folder, data)


def write_addon_defaults(config: AddonConfig, defaults: StageDefaults) -> Path:
    return _write(config.folder, dict(config.data, stage_defaults=defaults.to_dict()))


def _write(folder: Path, data: dict) -> Path:
    path = folder / ADDON_CONFIG
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
