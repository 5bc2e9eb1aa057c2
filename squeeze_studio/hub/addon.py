"""Add-ons: what training produces and what users share, small files over a big shared base.

An add-on folder holds:

- ``squeeze_addon.json``: the base it was trained on (repo id or folder) and that base's component sizes,
  the backbone family, the recommended τ1/τ2 and guidance, and how it was trained;
- ``connector/``: the layer connector (safetensors + JSON, ``LayerConnector.save_pretrained``);
- ``pytorch_lora_weights.safetensors`` (optional): a transformer LoRA in the diffusers/peft format that
  ``QwenImageLoraLoaderMixin.load_lora_weights`` reads, so other diffusers tools can load it too.

Reading the config is plain Python; saving and loading weights import torch inside the functions.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .defaults import StageDefaults
from .source import FAMILY, ModelSource, model_shapes

ADDON_CONFIG = "squeeze_addon.json"
CONNECTOR_FOLDER = "connector"
LORA_FILE = "pytorch_lora_weights.safetensors"
FORMAT = 1


class AddonConfig:
    """``squeeze_addon.json``, checked on read."""

    def __init__(self, data: dict, folder: Path):
        self.data, self.folder = data, folder
        try:
            self.base = str(data["base"])
            self.family = str(data["family"])
            self.base_shapes = {k: int(v) for k, v in dict(data["base_shapes"]).items()}
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{folder.name}/{ADDON_CONFIG} lacks base, family or base_shapes") from None
        self.stage_defaults = StageDefaults.from_dict(data.get("stage_defaults") or {}, f"add-on {folder.name}")
        self.lora = data.get("lora")


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
    config = AddonConfig(data, folder)
    if not (folder / CONNECTOR_FOLDER / "config.json").is_file():
        raise ValueError(f"add-on {folder.name} has no {CONNECTOR_FOLDER}/config.json")
    if config.lora and not (folder / config.lora).is_file():
        raise ValueError(f"add-on {folder.name} names {config.lora}, which is missing")
    return config


def check_addon_matches(folder: Path, config: AddonConfig, base_folder: Path) -> None:
    """Refuse, in one line naming both, an add-on trained for a base of another family or other sizes."""
    from .source import model_kind

    model_kind(base_folder)
    shapes = model_shapes(base_folder)
    differ = [f"{key} {config.base_shapes[key]} vs {shapes.get(key)}" for key in sorted(config.base_shapes)
              if shapes.get(key) != config.base_shapes[key]]
    if config.family != FAMILY or differ:
        reason = f"family {config.family} vs {FAMILY}" if config.family != FAMILY else ", ".join(differ)
        raise ValueError(f"add-on {folder.name} was made for {config.base}, which {base_folder.name} does not "
                         f"match ({reason})")


def update_addon_defaults(folder: Path, defaults: StageDefaults) -> Path:
    config = read_addon(folder)
    data = dict(config.data, stage_defaults=defaults.to_dict())
    path = folder / ADDON_CONFIG
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def base_reference(source: ModelSource) -> str:
    """How an add-on names its base: the repo id when it came from the cache, else the folder's full path."""
    return source.repo_id or str(source.folder.resolve())


def save_addon(pipe, folder: str | os.PathLike, base: ModelSource, defaults: StageDefaults,
               training: dict | None = None) -> Path:
    """Write ``pipe``'s connector and, when its transformer carries a peft adapter, that LoRA as an add-on."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe.connector.save_pretrained(folder / CONNECTOR_FOLDER)
    lora = None
    if getattr(pipe.transformer, "peft_config", None):
        from peft.utils import get_peft_model_state_dict

        adapter = next(iter(pipe.transformer.peft_config.values()))
        pipe.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(pipe.transformer),
                               weight_name=LORA_FILE, transformer_lora_adapter_metadata=adapter.to_dict())
        lora = LORA_FILE
    data = {"format": FORMAT, "family": FAMILY, "base": base_reference(base), "base_revision": base.revision,
            "base_shapes": model_shapes(base.folder), "stage_defaults": defaults.to_dict(), "lora": lora,
            "training": training or {}}
    (folder / ADDON_CONFIG).write_text(json.dumps(data, indent=2) + "\n")
    return folder


def load_addon_connector(folder: Path, dtype=None):
    from ..dla import LayerConnector

    return LayerConnector.from_pretrained(folder / CONNECTOR_FOLDER, use_safetensors=True, torch_dtype=dtype)
